import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import { silentLogger, type Logger } from '../lib/log.js'
import { second } from '../lib/units.js'
import { FrameDecoder, encodeLengthPrefixed } from '../rpc/framing.js'
import { MAX_FRAME_BYTES, MAX_OUTBOUND_PEERS, MAX_PUSH_PULL_BACKLOG, MAX_PUSH_PULL_BACKLOG_TOTAL, PROTOCOL } from './constants.js'
import { MessageType, SwimMessage } from './swim.js'
import type { PeerAddress, Transport } from './types.js'

export interface Libp2pTransportInit {
  libp2p: Libp2p
  /** @default PROTOCOL ('/meshos/swim/1.0.0') */
  protocol?: string
  /** Frames larger than this are refused; an inbound one closes its stream. @default MAX_FRAME_BYTES (64 KiB) */
  maxFrameBytes?: number
  /** Give up opening a stream after this long (the message is dropped, like a lost datagram). @default 5 s */
  dialTimeout?: number
  /** Messages held while a stream is being opened; beyond this they are dropped. @default 32 */
  maxPendingPerPeer?: number
  /** Bytes of push-pull parts held for one peer until its stream drains (or opens). @default MAX_PUSH_PULL_BACKLOG (4 MiB) */
  maxBacklogBytes?: number
  /** The same over all peers. @default MAX_PUSH_PULL_BACKLOG_TOTAL (32 MiB) */
  maxTotalBacklogBytes?: number
  /** Peers with an outbound entry (stream or waiting messages); the least recently used goes beyond it. @default MAX_OUTBOUND_PEERS (1024) */
  maxPeers?: number
  /** @default 8 */
  maxInboundStreams?: number
  /** @default 8 */
  maxOutboundStreams?: number
  /** @default silentLogger */
  logger?: Logger
  /** Called once per malformed or oversized inbound frame. @default undefined */
  onMalformed?: () => void
  /** Called per frame sent or received, with its size in bytes (metrics). @default undefined */
  onFrame?: (direction: 'sent' | 'received', bytes: number) => void
}

export interface Libp2pTransportStats {
  messagesSent: number
  bytesSent: number
  messagesReceived: number
  bytesReceived: number
  malformedFrames: number
  /** Messages dropped: stream busy or failing, frame too big, dial failed. */
  dropped: number
}

interface Outbound {
  stream?: Stream
  opening: boolean
  /** Frames held while the stream is being opened. */
  pending: Array<{ frame: Uint8Array, reliable: boolean }>
  /** Push-pull parts, in order, waiting for the stream to drain. */
  backlog: Uint8Array[]
  /** Bytes of push-pull parts in `pending` and `backlog`. */
  reliableBytes: number
  /** The stream whose `drain` the backlog waits for. */
  waiting?: Stream
}

/** Thrown inside the frame reader; never escapes it. */
class BadFrame extends Error {}

/**
 * The membership Transport over libp2p streams: one persistent outbound stream per peer, reused,
 * carrying unsigned-varint length-prefixed SwimMessage frames; inbound streams are only read.
 * Sending never blocks the state machine: a busy stream (send() returned false), a stream being
 * opened with a full backlog, or a failed dial all drop the message, as UDP would. Push-pull parts are the exception,
 * as memberlist sends its push-pull over TCP: a table comes in parts sent back to back, and one lost part is every
 * member in it, so they wait for the stream, up to maxBacklogBytes per peer.
 */
export class Libp2pTransport implements Transport {
  readonly stats: Libp2pTransportStats = { messagesSent: 0, bytesSent: 0, messagesReceived: 0, bytesReceived: 0, malformedFrames: 0, dropped: 0 }
  private readonly libp2p: Libp2p
  private readonly protocol: string
  private readonly maxFrameBytes: number
  private readonly dialTimeout: number
  private readonly maxPending: number
  private readonly maxBacklogBytes: number
  private readonly maxTotalBacklogBytes: number
  /** Push-pull bytes held over all peers. */
  private backlogBytes = 0
  private readonly maxPeers: number
  private readonly maxInboundStreams: number
  private readonly maxOutboundStreams: number
  private readonly log: Logger
  private readonly onMalformed?: () => void
  private readonly onFrame?: (direction: 'sent' | 'received', bytes: number) => void
  private readonly outbound = new Map<string, Outbound>()
  private readonly inbound = new Set<Stream>()
  private readonly dials = new Set<AbortController>()
  private receiver?: (from: string, msg: SwimMessage) => void
  private running = false

  constructor (init: Libp2pTransportInit) {
    this.libp2p = init.libp2p
    this.protocol = init.protocol ?? PROTOCOL
    this.maxFrameBytes = init.maxFrameBytes ?? MAX_FRAME_BYTES
    this.dialTimeout = init.dialTimeout ?? 5 * second
    this.maxPending = init.maxPendingPerPeer ?? 32
    this.maxBacklogBytes = init.maxBacklogBytes ?? MAX_PUSH_PULL_BACKLOG
    this.maxTotalBacklogBytes = init.maxTotalBacklogBytes ?? MAX_PUSH_PULL_BACKLOG_TOTAL
    this.maxPeers = Math.max(1, init.maxPeers ?? MAX_OUTBOUND_PEERS)
    this.maxInboundStreams = init.maxInboundStreams ?? 8
    this.maxOutboundStreams = init.maxOutboundStreams ?? 8
    this.log = init.logger ?? silentLogger
    this.onMalformed = init.onMalformed
    this.onFrame = init.onFrame
  }

  /** Peers with an outbound entry: an open stream, a dial in progress, or messages waiting. */
  get outboundPeers (): number { return this.outbound.size }

  /** Where received messages go (the state machine's onMessage). */
  setReceiver (fn: (from: string, msg: SwimMessage) => void): void {
    this.receiver = fn
  }

  async start (): Promise<void> {
    if (this.running) return
    await this.libp2p.handle(this.protocol, (stream, connection) => {
      this.onInbound(stream, connection.remotePeer.toString())
    }, { maxInboundStreams: this.maxInboundStreams, maxOutboundStreams: this.maxOutboundStreams })
    this.running = true
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    for (const c of this.dials) c.abort()
    this.dials.clear()
    await this.libp2p.unhandle(this.protocol).catch(() => {})
    const closing: Array<Promise<void>> = []
    for (const o of this.outbound.values()) {
      o.pending.length = 0
      o.backlog.length = 0
      o.reliableBytes = 0
      if (o.stream !== undefined) closing.push(closeQuietly(o.stream))
    }
    this.backlogBytes = 0
    this.outbound.clear()
    for (const s of this.inbound) closing.push(closeQuietly(s))
    this.inbound.clear()
    await Promise.all(closing)
  }

  send (to: PeerAddress, msg: SwimMessage): void {
    if (!this.running) return
    let frame: Uint8Array
    try {
      const body = SwimMessage.encode(msg)
      if (body.byteLength > this.maxFrameBytes) {
        this.stats.dropped++
        this.log.warn({ bytes: body.byteLength }, 'membership message exceeds the frame limit; dropped')
        return
      }
      frame = encodeLengthPrefixed(body)
    } catch (err) {
      this.stats.dropped++
      this.log.warn({ err }, 'could not encode membership message')
      return
    }
    const key = to.peerId ?? to.addrs[0]
    if (key === undefined) {
      this.stats.dropped++
      return
    }
    const reliable = msg.type === MessageType.PUSH_PULL || msg.type === MessageType.PUSH_PULL_REPLY
    let out = this.outbound.get(key)
    if (out === undefined) {
      // Bounded: every id a message names could otherwise leave an entry here (relayed probes, accusers, strangers).
      while (this.outbound.size >= this.maxPeers) {
        const [oldKey, oldest] = this.outbound.entries().next().value as [string, Outbound]
        this.evict(oldKey, oldest)
      }
      out = { opening: false, pending: [], backlog: [], reliableBytes: 0 }
    } else {
      // Map order is insertion order: moved to the end, the map's first entry is the least recently used.
      this.outbound.delete(key)
    }
    this.outbound.set(key, out)
    const stream = out.stream
    if (stream !== undefined && stream.status === 'open' && stream.writeStatus === 'writable') {
      this.write(key, out, stream, frame, reliable)
      return
    }
    out.stream = undefined
    if (reliable ? !this.holdReliable(out, frame) : out.pending.length >= this.maxPending) {
      this.stats.dropped++
      return
    }
    out.pending.push({ frame, reliable })
    if (!out.opening) this.open(key, out, to)
  }

  /** Drops a peer's entry, what waits in it and its stream; a dial in progress closes what it opens (see open). */
  private evict (key: string, out: Outbound): void {
    this.outbound.delete(key)
    this.stats.dropped += out.pending.length + out.backlog.length
    for (const p of out.pending) if (p.reliable) this.release(out, p.frame.byteLength)
    for (const f of out.backlog) this.release(out, f.byteLength)
    out.pending.length = 0
    out.backlog.length = 0
    const stream = out.stream
    out.stream = undefined
    if (stream !== undefined) void closeQuietly(stream)
  }

  /** Forgets a peer's entry once it holds nothing: no stream, no dial, nothing waiting. */
  private forgetIfIdle (key: string, out: Outbound): void {
    if (this.outbound.get(key) !== out) return
    if (out.stream === undefined && !out.opening && out.pending.length === 0 && out.backlog.length === 0) this.outbound.delete(key)
  }

  private release (out: Outbound, bytes: number): void {
    out.reliableBytes -= bytes
    this.backlogBytes -= bytes
  }

  /** Counts a push-pull part against the peer's backlog; false when it does not fit. */
  private holdReliable (out: Outbound, frame: Uint8Array): boolean {
    // Per peer, and over all peers: many joiners that never read their replies must not hold a table each.
    if (out.reliableBytes + frame.byteLength > this.maxBacklogBytes || this.backlogBytes + frame.byteLength > this.maxTotalBacklogBytes) return false
    out.reliableBytes += frame.byteLength
    this.backlogBytes += frame.byteLength
    return true
  }

  private write (key: string, out: Outbound, stream: Stream, frame: Uint8Array, reliable: boolean, held = false): void {
    if (reliable && (stream.writableNeedsDrain || (out.backlog.length > 0 && !held))) {
      if (!held && !this.holdReliable(out, frame)) {
        this.stats.dropped++
        return
      }
      out.backlog.push(frame)
      this.awaitDrain(key, out, stream)
      return
    }
    if (held) this.release(out, frame.byteLength)
    // A full buffer means the peer or the link is behind; queueing more would only delay fresher news.
    if (stream.writableNeedsDrain) {
      this.stats.dropped++
      return
    }
    try {
      stream.send(frame)
      this.stats.messagesSent++
      this.stats.bytesSent += frame.byteLength
      this.onFrame?.('sent', frame.byteLength)
    } catch (err) {
      this.stats.dropped++
      this.log.debug({ err, peer: key }, 'membership stream send failed; will reopen')
      if (out.stream === stream) out.stream = undefined
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }

  /** Sends the backlog as the stream drains; a stream that closes first takes its backlog with it. */
  private awaitDrain (key: string, out: Outbound, stream: Stream): void {
    if (out.waiting === stream) return
    out.waiting = stream
    const done = (): void => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      if (out.waiting === stream) out.waiting = undefined
    }
    const onDrain = (): void => {
      while (out.backlog.length > 0 && !stream.writableNeedsDrain && stream.writeStatus === 'writable') {
        const frame = out.backlog.shift() as Uint8Array
        this.write(key, out, stream, frame, true, true)
      }
      if (out.backlog.length === 0 || stream.writeStatus !== 'writable') {
        done()
        if (out.backlog.length > 0) onClose()
      }
    }
    const onClose = (): void => {
      done()
      this.stats.dropped += out.backlog.length
      for (const f of out.backlog) this.release(out, f.byteLength)
      out.backlog.length = 0
      if (out.stream === stream) out.stream = undefined
      this.forgetIfIdle(key, out)
    }
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
  }

  private open (key: string, out: Outbound, to: PeerAddress): void {
    out.opening = true
    const controller = new AbortController()
    this.dials.add(controller)
    const timer = setTimeout(() => { controller.abort() }, this.dialTimeout)
    timer.unref?.()
    this.dial(to, controller.signal).then(stream => {
      if (!this.running || this.outbound.get(key) !== out) {
        void closeQuietly(stream)
        return
      }
      out.stream = stream
      stream.addEventListener('close', () => {
        // Idle streams time out after 120 s: forget this one (and the peer, when nothing waits for it) and open a
        // fresh one on the next send.
        if (out.stream === stream) out.stream = undefined
        this.forgetIfIdle(key, out)
      })
      // We never expect data on our outbound stream; reading it keeps the muxer's buffers empty.
      stream.addEventListener('message', () => {})
      const pending = out.pending.splice(0)
      for (const p of pending) this.write(key, out, stream, p.frame, p.reliable, p.reliable)
    }, err => {
      this.stats.dropped += out.pending.length
      for (const p of out.pending) if (p.reliable) this.release(out, p.frame.byteLength)
      out.pending.length = 0
      this.log.debug({ err, peer: key }, 'could not open a membership stream')
    }).finally(() => {
      clearTimeout(timer)
      this.dials.delete(controller)
      out.opening = false
      // A failed dial leaves nothing: one entry per id ever dialled (relayed probes of peers that never answer) grew
      // the map without bound.
      this.forgetIfIdle(key, out)
    })
  }

  private async dial (to: PeerAddress, signal: AbortSignal): Promise<Stream> {
    const addrs: Multiaddr[] = []
    for (const a of to.addrs) {
      try { addrs.push(multiaddr(a)) } catch {}
    }
    if (to.peerId === undefined) {
      if (addrs.length === 0) throw new Error('no address to dial')
      return await this.libp2p.dialProtocol(addrs, this.protocol, { signal })
    }
    const peer: PeerId = peerIdFromString(to.peerId)
    // A peer the peer store does not know is dialled at the given addresses without recording them: they may come from
    // any peer (a relayed probe's target), and merging them filled the store with whatever strangers named. Members'
    // addresses are recorded from their signed alive (index.ts, on join, update and alive).
    if (addrs.length > 0 && !(await this.libp2p.peerStore.has(peer).catch(() => false))) {
      const id = peer.toString()
      const withId: Multiaddr[] = []
      for (const a of addrs) {
        const last = lastPeerId(a.toString())
        // An address that ends in another peer's id is not this peer's.
        if (last === undefined) withId.push(a.encapsulate(`/p2p/${id}`))
        else if (last === id) withId.push(a)
      }
      if (withId.length > 0) return await this.libp2p.dialProtocol(withId, this.protocol, { signal })
    }
    return await this.libp2p.dialProtocol(peer, this.protocol, { signal })
  }

  private onInbound (stream: Stream, from: string): void {
    if (!this.running) {
      stream.abort(new Error('membership transport stopped'))
      return
    }
    this.inbound.add(stream)
    const decoder = new FrameDecoder(this.maxFrameBytes)
    stream.addEventListener('close', () => { this.inbound.delete(stream) })
    stream.addEventListener('message', (evt) => {
      try {
        for (const frame of decoder.push(evt.data)) {
          let msg: SwimMessage
          try {
            msg = SwimMessage.decode(frame, { limits: { updates: 4096, states: 65536, targetAddrs: 64 } })
          } catch {
            throw new BadFrame('undecodable frame')
          }
          this.stats.messagesReceived++
          this.stats.bytesReceived += frame.byteLength
          this.onFrame?.('received', frame.byteLength)
          this.receiver?.(from, msg)
        }
      } catch (err) {
        // Only this stream is at fault: close it and count it; the peer may open another.
        this.stats.malformedFrames++
        this.onMalformed?.()
        this.log.debug({ err, peer: from }, 'malformed membership frame; closing the stream')
        this.inbound.delete(stream)
        stream.abort(err instanceof Error ? err : new Error(String(err)))
      }
    })
  }
}

/** The peer id an address ends in (`…/p2p/<id>`), if any. */
function lastPeerId (addr: string): string | undefined {
  const i = addr.lastIndexOf('/p2p/')
  if (i < 0) return undefined
  const id = addr.slice(i + 5)
  return id.includes('/') ? undefined : id
}

/** close() may reject with an Event rather than an Error; either way the stream is done with. */
async function closeQuietly (stream: Stream): Promise<void> {
  try {
    await stream.close({ signal: AbortSignal.timeout(2 * second) })
  } catch {
    try { stream.abort(new Error('closed')) } catch {}
  }
}
