import { readFile } from 'node:fs/promises'
import { writeFileDurable } from '../lib/durable.js'
import { createRequire } from 'node:module'
import { generateKey, preSharedKey } from '@libp2p/pnet'
import { InvalidConfigError } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import { simdAvailable, xsalsa20 as simdXsalsa20, type XorStream as SimdStream } from './xsalsa20.js'
import type { AbortOptions, ConnectionProtector, MessageStream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * pnet encrypts with the `xsalsa20` package, whose WebAssembly instances share one memory. Each instance caches a
 * view of that memory; when one grows it, every other view is detached (length 0), so the next write through another
 * connection "grows" the memory by its whole size again, until a busy node hits WebAssembly's limit and crashes
 * (seen with concurrent 1 MiB file chunks). The patch keeps every instance on the live view and feeds the cipher in
 * bounded pieces, which the cipher's own 64-byte carry-over makes equivalent to one call.
 *
 * Where the engine has WebAssembly SIMD, each instance hands its stream to ./xsalsa20.js instead, which computes
 * four blocks at once, at half the package's CPU (`npm run bench -- xsalsa20`). It takes the nonce and key from the
 * instance's own slot in the package's memory, where the package's constructor put them, at the instance's first
 * update, before any keystream was used; then it frees the slot. pnet never finalizes its streams, and the package
 * recycles a slot only on finalize: its memory used to grow with every update and so made room for new slots, but a
 * stream handed over never updates through the package, and ~10,000 of them would fill its memory.
 */
function patchXsalsa20 (): void {
  const XSalsa20 = createRequire(import.meta.url)('xsalsa20') as ((nonce: Uint8Array, key: Uint8Array) => { _xor: unknown, finalize: () => void })
  const probe = XSalsa20(new Uint8Array(24), new Uint8Array(32))
  const proto = Object.getPrototypeOf(probe._xor) as { update?: (i: Uint8Array, o: Uint8Array) => void, realloc?: (size: number) => void, finalize?: () => void, __meshos?: boolean }
  probe.finalize()
  if (proto.update == null || proto.realloc == null || proto.finalize == null || proto.__meshos === true) return
  proto.__meshos = true
  const update = proto.update
  const realloc = proto.realloc
  const finalize = proto.finalize
  let live: Uint8Array | undefined
  const refresh = (stream: PackageStream): void => {
    if (stream._memory.byteLength === 0 && live != null && live.byteLength > 0) stream._memory = live
  }
  proto.realloc = function (this: PackageStream, size: number) {
    realloc.call(this, size)
    live = this._memory
  }
  proto.update = function (this: PackageStream, input: Uint8Array, output: Uint8Array) {
    refresh(this)
    if (this.__simd === undefined) this.__simd = handOver(this)
    if (this.__simd != null) {
      this.__simd.update(input, output)
      return
    }
    for (let o = 0; o < input.length; o += xsalsaPiece) {
      refresh(this)
      update.call(this, input.subarray(o, o + xsalsaPiece), output.subarray(o, o + xsalsaPiece))
    }
  }
  proto.finalize = function (this: PackageStream) {
    if (this.__simd != null) {
      this.__simd.finalize()
      return
    }
    refresh(this)
    finalize.call(this)
  }
  finalizePackage = (stream: PackageStream): void => { proto.finalize?.call(stream) }
  handOverNow = (stream: PackageStream): void => {
    refresh(stream)
    if (stream.__simd === undefined) stream.__simd = handOver(stream)
  }
  /**
   * The SIMD stream for a package stream that has produced no keystream yet (its 8-byte block counter is zero too)
   * and whose slot is readable; null, to stay on the package, otherwise.
   */
  const handOver = (stream: PackageStream): SimdStream | null => {
    const { _memory: memory, _pointer: pointer, _nonce: nonce, _key: key } = stream
    if (!simdCipher || stream._overflow !== 0 || pointer == null || nonce == null || key == null || key + 32 > memory.byteLength) return null
    for (let i = pointer; i < pointer + 8; i++) if (memory[i] !== 0) return null
    const simd = simdXsalsa20(memory.subarray(nonce, nonce + 24), memory.subarray(key, key + 32))
    // Wipes the nonce and key from the shared memory and puts the slot back on the package's free list.
    finalize.call(stream)
    return simd
  }
}

let simdCipher = simdAvailable

/** Hands a package stream that has not been used yet to the SIMD cipher now (which frees its slot); set by the patch. */
let handOverNow: ((stream: PackageStream) => void) | undefined
/** Ends a package stream (its SIMD one, or its slot); set by the patch. */
let finalizePackage: ((stream: PackageStream) => void) | undefined

/**
 * Whether pnet streams created from now on (at their first update) go through ./xsalsa20.js; true wherever the
 * engine has WebAssembly SIMD. Off, they run on the `xsalsa20` package as pnet ships it: for tests of that path, and
 * to compare the two.
 */
export function setSimdCipher (on: boolean): void {
  simdCipher = on && simdAvailable
}

/** The fields of the package's per-stream object that the patch reads. */
interface PackageStream {
  _memory: Uint8Array
  _pointer?: number
  _nonce?: number
  _key?: number
  _overflow?: number
  __simd?: SimdStream | null
}

const xsalsaPiece = 256 * 1024
patchXsalsa20()

/** Writes a new pre-shared network key in libp2p's swarm.key format, readable by its owner only. */
export async function writeNetworkKey (path: string): Promise<void> {
  const key = new Uint8Array(95)
  generateKey(key)
  await writeFileDurable(path, key, { mode: 0o600, exclusive: true })
}

export async function readNetworkKey (path: string): Promise<Uint8Array> {
  let psk: Uint8Array
  try {
    psk = await readFile(path)
  } catch (err) {
    throw new InvalidConfigError(`cannot read network key ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  try {
    preSharedKey({ psk })()
  } catch (err) {
    throw new InvalidConfigError(`network key ${path} is not a libp2p pre-shared key (make one with \`mesh keygen --network-key FILE\`): ${(err as Error).message}`)
  }
  return psk
}

interface XorStream { update: (input: Uint8Array, output?: Uint8Array) => Uint8Array }

/** Smallest outbound write ciphered in place; see cipherInPlace. */
const IN_PLACE_OUTBOUND = 1024

/**
 * pnet's cipher allocates a new buffer for every read and write it ciphers, one more copy of every byte a node moves
 * on top of the socket's and noise's; for 1 MiB file chunks that garbage is most of what drives V8's full
 * collections. XOR-ing in place is safe where the buffer is the cipher's alone:
 * - inbound, a buffer the socket has just read, which no one else holds;
 * - outbound, what noise hands down, which is always a buffer noise has just encrypted into (pnet sits under noise,
 *   and every byte above noise is encrypted by it). Before noise is up, only multistream-select's and noise's own
 *   handshake messages pass, all well under IN_PLACE_OUTBOUND, so a shared constant is never overwritten.
 */
function cipherInPlace (boxed: MessageStream): void {
  const inbound = (boxed as unknown as { inboundXor?: XorStream }).inboundXor
  const outbound = (boxed as unknown as { outboundXor?: XorStream }).outboundXor
  if (inbound == null || outbound == null || typeof inbound.update !== 'function' || typeof outbound.update !== 'function') return
  const inUpdate = inbound.update.bind(inbound)
  const outUpdate = outbound.update.bind(outbound)
  inbound.update = (input, output) => inUpdate(input, output ?? input)
  outbound.update = (input, output) => outUpdate(input, output ?? (input.byteLength >= IN_PLACE_OUTBOUND ? input : undefined))
}

interface PackageCipher { _xor: PackageStream | null, finalize: () => void, update: (input: Uint8Array, output?: Uint8Array) => Uint8Array }

/** What a connection's cipher streams point at once it has closed: updates pass the bytes through unchanged. */
const spent = { update: () => {}, finalize: () => {} } as unknown as PackageStream

/**
 * Each of pnet's two cipher streams per connection takes a 64-byte slot in the `xsalsa20` package's fixed memory,
 * about 10,000 slots in all, and pnet never gives one back. A stream hands its slot back when it moves to the SIMD
 * cipher, which used to be at its first update: so a connection that closed before carrying data both ways kept a
 * slot for good (a stranger that sends a nonce and nothing more keeps two; a peer refused for the wrong key, one).
 * Once they ran out, every new connection failed, for peers holding the key too: 5,000 nonce-only connections from
 * anyone who could reach the port cut a node off until it restarted. So both streams move to the SIMD cipher as soon
 * as pnet makes them, and are finalized when the connection closes, which also frees them on the package's own path.
 */
function releaseCiphers (boxed: MessageStream): void {
  const streams = [(boxed as unknown as { inboundXor?: PackageCipher }).inboundXor, (boxed as unknown as { outboundXor?: PackageCipher }).outboundXor]
    .filter((x): x is PackageCipher => x != null && typeof x.finalize === 'function')
  for (const x of streams) if (x._xor != null) handOverNow?.(x._xor)
  const end = (): void => {
    for (const x of streams) {
      const inner = x._xor
      // A stream on the SIMD cipher holds no slot: nothing to give back, and it goes with the connection.
      if (inner == null || inner.__simd != null) continue
      // The stream stays callable, and hands up nothing: data a paused connection buffered can still arrive after its
      // close, and an update through a finalized stream would throw inside an event listener, which ends the process.
      x.update = () => new Uint8Array(0)
      x._xor = spent
      try {
        finalizePackage?.(inner)
      } catch {}
    }
  }
  if ((boxed as unknown as { status?: string }).status !== 'open') end()
  else boxed.addEventListener('close', end, { once: true })
}

interface Inbound {
  onData: (data: Uint8Array | Uint8ArrayList) => void
  readBuffer?: Uint8ArrayList
}

/**
 * Calls `refuse` if the first two decrypted bytes are not those every libp2p connection opens with, without taking any
 * byte from the layers above. (It used to listen for the first 'message' itself. A stream that already holds data
 * when its first 'message' listener is added hands that data to that listener alone, and then to no one else; so when
 * the peer's first bytes arrived before the check was attached, as they do under load or with both ends in one
 * process, the check swallowed the multistream header and the handshake above hung until its timeout.)
 */
function checkFirstBytes (boxed: MessageStream, refuse: () => void): void {
  const stream = boxed as unknown as Inbound
  if (typeof stream.onData !== 'function') return
  const prefix: number[] = []
  let decided = false
  const look = (data: Uint8Array | Uint8ArrayList): boolean => {
    for (let i = 0; prefix.length < 2 && i < data.byteLength; i++) prefix.push(data instanceof Uint8Array ? data[i] : data.get(i))
    if (prefix.length < 2) return true
    decided = true
    // 0x13 is the length of "/multistream/1.0.0\n", which opens every libp2p connection.
    return prefix[0] === 0x13 && prefix[1] === 0x2f
  }
  const onData = stream.onData
  const restore = (): void => { stream.onData = onData }
  if (stream.readBuffer != null && stream.readBuffer.byteLength > 0 && !look(stream.readBuffer)) { refuse(); return }
  if (decided) return
  stream.onData = (data) => {
    if (!look(data)) { restore(); refuse(); return }
    if (decided) restore()
    onData.call(stream, data)
  }
}

/** At most one log line per this many ms for refused connections (all are counted). */
const REFUSAL_LOG_INTERVAL = 10_000

/**
 * libp2p's pnet protector, plus a log line that says why a connection was refused. A peer without our key still
 * completes pnet's nonce exchange; what it sends next decrypts to noise instead of the multistream-select header
 * every libp2p connection opens with. That is checked on the first decrypted bytes, so the refusal is logged and the
 * connection closed at once instead of failing later as an opaque handshake error.
 */
export function guardedPreSharedKey (init: { psk: Uint8Array, logger: Logger, onRefused?: () => void }): () => ConnectionProtector {
  const inner = preSharedKey({ psk: init.psk })()
  // Anyone who can reach the port can make refusals (a scan, a health check that connects and closes): each is counted,
  // but at most one line per REFUSAL_LOG_INTERVAL is logged, with how many were left out, so they cannot flood the log.
  // One limiter per message, so that one kind of refusal cannot hide the other.
  const limiters = new Map<string, { lastLogged: number, unlogged: number }>()
  const refused = (fields: Record<string, unknown>, msg: string): void => {
    init.onRefused?.()
    const now = performance.now()
    let l = limiters.get(msg)
    if (l == null) { l = { lastLogged: -Infinity, unlogged: 0 }; limiters.set(msg, l) }
    if (now - l.lastLogged < REFUSAL_LOG_INTERVAL) { l.unlogged++; return }
    l.lastLogged = now
    init.logger.warn({ ...fields, ...(l.unlogged > 0 ? { notLogged: l.unlogged } : {}) }, msg)
    l.unlogged = 0
  }
  return () => ({
    protect: async (connection: MessageStream, options?: AbortOptions): Promise<MessageStream> => {
      const remoteAddr = String((connection as unknown as { remoteAddr?: unknown }).remoteAddr ?? 'unknown')
      let boxed: MessageStream
      try {
        boxed = await inner.protect(connection, options)
      } catch (err) {
        // A dial this node gave up on (another address won it, its deadline passed) is no refusal.
        if (options?.signal?.aborted !== true) {
          refused({ remoteAddr, direction: connection.direction, err: (err as Error).message }, 'connection refused: network key exchange failed')
        }
        throw err
      }
      checkFirstBytes(boxed, () => {
        refused({ remoteAddr, direction: connection.direction }, 'connection refused: the peer does not hold this mesh\'s network key')
        boxed.abort(new Error('network key mismatch'))
      })
      releaseCiphers(boxed)
      cipherInPlace(boxed)
      return boxed
    }
  })
}
