import { peerIdFromString } from '@libp2p/peer-id'
import { Counter, Histogram, type Registry } from 'prom-client'
import { MeshError, MessageTooLargeError, MalformedMessageError, UnavailableError, TimeoutError, isErrorCode, toMeshError } from '../lib/errors.js'
import { silentLogger, type Logger } from '../lib/log.js'
import { raceSignal } from '../lib/abort.js'
import { TokenBuckets } from '../lib/token-bucket.js'
import { FrameDecoder, appendBytesField, encodeFrameWithBody } from './framing.js'
import { Frame } from './frame.js'
import * as C from './constants.js'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'

const EMPTY = new Uint8Array(0)

/** How a request or response type goes to and from bytes; protons-generated namespaces fit as they are. */
export interface Codec<T> {
  /** A list is sent as it is, without being joined into one buffer. */
  encode (value: T): Uint8Array | Uint8ArrayList
  decode (bytes: Uint8Array | Uint8ArrayList): T
}

/**
 * `codec`, encoding the `bytes` field `key` (field number `field`) by reference instead of copying it into the
 * message: for messages that carry file chunks, where each copy is a megabyte of garbage.
 */
export function bytesByReference<T> (codec: { encode: (value: Partial<T>) => Uint8Array | Uint8ArrayList, decode: (bytes: Uint8Array | Uint8ArrayList) => T }, field: number, key: keyof T & string): Codec<T> {
  return {
    encode: (value: T) => {
      const data = value[key] as unknown as Uint8Array | undefined
      if (data == null || data.byteLength === 0) return codec.encode(value)
      const head = codec.encode({ ...value, [key]: EMPTY })
      return appendBytesField(head instanceof Uint8Array ? head : head.subarray(), field, data)
    },
    decode: (bytes) => codec.decode(bytes)
  }
}

/** A frame as handed to FrameWriter: the body may be a list, sent without being joined. */
type OutFrame = Omit<Frame, 'body'> & { body: Uint8Array | Uint8ArrayList }

export interface MethodDef<Req, Res> {
  request: Codec<Req>
  response: Codec<Res>
}

export type Methods = Record<string, MethodDef<any, any>>

export interface ServiceDef<M extends Methods> {
  /** Becomes the protocol id `/meshos/<name>/<version>.0.0`. */
  name: string
  version: number
  methods: M
  /** Largest frame accepted in either direction. @default 4 MiB */
  maxMessageSize?: number
  /** Requests one stream may have in flight at the server before it stops reading. @default 64 */
  maxInFlight?: number
  /** Requests per second one peer may make of this service, over all its streams. @default 20000 */
  ratePerPeer?: number
  /**
   * How long frames to one stream wait to leave together. `tick`: until the current microtasks have run, which costs
   * a lone call nothing. `turn`: until the end of the event loop's poll phase, so calls started by different
   * sockets' events (many clients' requests to one coordinator) share a write; costs a lone call a few microseconds.
   * @default 'tick'
   */
  coalesce?: 'tick' | 'turn'
}

// Inferred from decode, since protons' encode accepts a Partial of the message.
export type RequestOf<D> = D extends { request: { decode: (...args: any[]) => infer Req } } ? Req : never
export type ResponseOf<D> = D extends { response: { decode: (...args: any[]) => infer Res } } ? Res : never

export interface CallContext {
  /** The remote peer making the call. */
  peer: PeerId
  connection: Connection
  /** Aborted when the stream closes or the server's deadline passes. */
  signal: AbortSignal
}

export type Handlers<M extends Methods> = {
  [K in keyof M]: (request: RequestOf<M[K]>, context: CallContext) => Promise<ResponseOf<M[K]>>
}

export interface CallOptions {
  signal?: AbortSignal
  /** @default 10 seconds */
  timeout?: number
}

export function protocolId (service: { name: string, version: number }): string {
  return `/meshos/${service.name}/${service.version}.0.0`
}

/** The narrow part of libp2p the RPC layer needs. */
export interface RpcComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  logger?: Logger
  registry?: Registry
}

export interface RpcInit {
  /** Deadline of a call that names none. @default 10 seconds */
  defaultTimeout?: number
  /** Deadline a server gives a handler. @default 30 seconds */
  handlerTimeout?: number
}

interface Pending {
  resolve: (body: Uint8Array) => void
  reject: (err: Error) => void
}

/**
 * One persistent outbound stream per (peer, service), carrying many concurrent calls matched by id. A new stream per
 * call costs about 1.2 ms here against 0.15 ms on a stream that is already open.
 */
class Channel {
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  private readonly decoder: FrameDecoder
  private readonly writer: FrameWriter
  closed = false

  constructor (readonly stream: Stream, maxMessageSize: number, private readonly onClose: () => void, private readonly onMalformed: () => void, coalesce: 'tick' | 'turn' = 'tick') {
    this.decoder = new FrameDecoder(maxMessageSize + C.frameOverhead)
    this.writer = new FrameWriter(stream, coalesce)
    stream.addEventListener('message', (evt) => { this.onData(evt.data) })
    stream.addEventListener('close', () => { this.fail(new UnavailableError('rpc stream closed')) })
    stream.addEventListener('remoteCloseWrite', () => { this.fail(new UnavailableError('rpc stream closed by remote')) })
  }

  get inFlight (): number { return this.pending.size }

  /**
   * The stream can still carry calls. Its `close` event is what fails a channel, but a stream that closed before the
   * channel listened (the remote answered the protocol and reset the stream, or the connection went, while libp2p
   * finished opening it) fires none: such a channel must not be kept, or every later call to the peer fails with
   * "not writable" until the process restarts. One whose remote closed its end would take calls and answer none.
   */
  get usable (): boolean {
    const s = this.stream
    return !this.closed && s.status === 'open' && s.writeStatus === 'writable' && s.readStatus !== 'closing' && s.readStatus !== 'closed'
  }

  /**
   * One timer per call and no AbortController unless the caller passed a signal: on loopback, allocating signals cost
   * a measurable share of the round trip.
   */
  async call (method: string, body: Uint8Array | Uint8ArrayList, timeoutMs: number, label: string, outer?: AbortSignal): Promise<Uint8Array> {
    return await new Promise<Uint8Array>((resolve, reject) => {
      const id = this.nextId
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1
      let onAbort: (() => void) | undefined
      const cleanup = (): void => {
        clearTimeout(timer)
        if (onAbort != null) outer?.removeEventListener('abort', onAbort)
      }
      const timer = setTimeout(() => {
        this.pending.delete(id)
        cleanup()
        reject(new TimeoutError(`rpc ${label} timed out after ${timeoutMs} ms`))
      }, timeoutMs)
      if (outer != null) {
        onAbort = () => {
          this.pending.delete(id)
          cleanup()
          reject(toMeshError(outer.reason))
        }
        if (outer.aborted) { onAbort(); return }
        outer.addEventListener('abort', onAbort, { once: true })
      }
      const entry: Pending = {
        resolve: (b) => { cleanup(); resolve(b) },
        reject: (e) => { cleanup(); reject(e) }
      }
      this.pending.set(id, entry)
      const frame: OutFrame = { id, kind: Frame.Kind.REQUEST, method, body, code: '', message: '' }
      this.writer.write(frame, outer, false, performance.now() + timeoutMs).catch((err) => {
        if (this.pending.get(id) === entry) {
          this.pending.delete(id)
          entry.reject(toMeshError(err))
        }
      })
    })
  }

  private onData (data: Uint8Array | Uint8ArrayList): void {
    let frames: Uint8Array[]
    try {
      frames = this.decoder.push(data)
    } catch (err) {
      this.onMalformed()
      this.fail(toMeshError(err))
      return
    }
    for (const bytes of frames) {
      let frame: Frame
      try {
        frame = Frame.decode(bytes)
      } catch {
        this.onMalformed()
        this.fail(new MalformedMessageError('malformed rpc response frame'))
        return
      }
      if (frame.id === 0 && frame.kind === Frame.Kind.ERROR) {
        // The server lost framing on this stream and is closing it: every call on it fails with the server's reason.
        this.fail(new MeshError(isErrorCode(frame.code) ? frame.code : 'INTERNAL', frame.message))
        return
      }
      const p = this.pending.get(frame.id)
      if (p == null) continue
      this.pending.delete(frame.id)
      if (frame.kind === Frame.Kind.ERROR) p.reject(new MeshError(isErrorCode(frame.code) ? frame.code : 'INTERNAL', frame.message))
      else p.resolve(frame.body)
    }
  }

  fail (err: Error): void {
    if (!this.closed) {
      this.closed = true
      this.onClose()
      if (this.stream.status === 'open') this.stream.abort(err)
    }
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
  }
}

/**
 * Every frame written to one stream in the same turn of the event loop leaves in one stream write. Each write costs a
 * yamux frame, a noise message and a syscall, so under concurrency (many calls to one replica, many replies finishing
 * together after one group commit) batching cuts the transport's share per call by the batch size. The flush is a
 * `process.nextTick`, which runs once the microtask queue has drained: after every reply that this turn's work
 * resolves, and before any I/O, so a lone call waits for nothing. A service may ask for a longer window (`coalesce`).
 * Exported for its tests only; rpc/index.ts does not.
 */
export class FrameWriter {
  private queued: Array<Uint8Array | Uint8ArrayList> = []
  private bytes = 0
  private scheduled = false
  /** Writes held back until the stream drains; one that gives up (its signal aborts) takes itself out. */
  private readonly drainWaiters = new Set<() => void>()
  private listening = false

  constructor (private readonly stream: Stream, private readonly window: 'tick' | 'turn' = 'tick') {}

  /**
   * One `drain` (and `close`) listener shared by every write held back. Listeners of their own per waiting write made
   * each drain wake all of them, and a peer that sent thousands of requests without reading the replies had the
   * server spend a minute adding and removing listeners. A waiter whose signal aborts leaves the set at once, so a
   * stream that stays blocked (a frozen peer) does not gather the callbacks of every call that timed out on it.
   */
  private drained (signal?: AbortSignal, deadlineAt?: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const woken = (): void => { clearTimeout(timer); signal?.removeEventListener('abort', aborted); resolve() }
      const aborted = (): void => { clearTimeout(timer); this.drainWaiters.delete(woken); reject(signal?.reason) }
      // A call's own deadline, which no signal carries (callers rarely pass one): a call that timed out waiting here
      // was otherwise still sent once the peer read again, after its caller had given up, and held its frame till then.
      if (deadlineAt != null) {
        timer = setTimeout(() => {
          signal?.removeEventListener('abort', aborted)
          this.drainWaiters.delete(woken)
          reject(new TimeoutError('rpc write timed out waiting for the peer to read'))
        }, Math.max(0, deadlineAt - performance.now()))
      }
      this.drainWaiters.add(woken)
      signal?.addEventListener('abort', aborted, { once: true })
      if (!this.listening) {
        this.listening = true
        this.stream.addEventListener('drain', this.onDrain)
        this.stream.addEventListener('close', this.onDrain)
      }
    })
  }

  private readonly onDrain = (): void => {
    this.stream.removeEventListener('drain', this.onDrain)
    this.stream.removeEventListener('close', this.onDrain)
    this.listening = false
    const waiters = [...this.drainWaiters]
    this.drainWaiters.clear()
    for (const w of waiters) w()
  }

  /**
   * Queues a frame. `flush` sends it (and anything queued before it) now, as before a close. `deadlineAt`
   * (performance.now() time) bounds the wait for a stream that does not drain.
   */
  async write (frame: OutFrame, signal?: AbortSignal, flush = false, deadlineAt?: number): Promise<void> {
    // Waiting for `drain` rather than stream.onDrain(): the latter stops applying backpressure after its first use.
    while (this.stream.writableNeedsDrain) {
      if (this.stream.status !== 'open') throw new UnavailableError('rpc stream closed')
      signal?.throwIfAborted()
      await this.drained(signal, deadlineAt)
    }
    if (this.stream.writeStatus !== 'writable') throw new UnavailableError('rpc stream is not writable')
    // The body is appended by reference rather than copied into the frame (field 4 of Frame).
    const bytes = encodeFrameWithBody(Frame.encode({ ...frame, body: EMPTY }), 4, frame.body)
    this.queued.push(bytes)
    this.bytes += bytes.byteLength
    if (flush || this.bytes >= C.flushBytes) {
      this.flush()
    } else if (!this.scheduled) {
      this.scheduled = true
      if (this.window === 'turn') setImmediate(this.onTick)
      else process.nextTick(this.onTick)
    }
  }

  private readonly onTick = (): void => {
    this.scheduled = false
    this.flush()
  }

  flush (): void {
    if (this.queued.length === 0) return
    const data = this.queued.length === 1 ? this.queued[0] : new Uint8ArrayList(...this.queued)
    this.queued = []
    this.bytes = 0
    // A stream that closed meanwhile fails its calls through its close event; nothing more to tell anyone here.
    if (this.stream.writeStatus !== 'writable') return
    try {
      this.stream.send(data)
    } catch (err) {
      this.stream.abort(toMeshError(err))
    }
  }
}

interface Registered {
  service: ServiceDef<any>
  handlers: Handlers<any>
}

/**
 * Typed request/response between peers over libp2p streams. Frames are length-prefixed protobuf; each call has a
 * deadline and each service a maximum message size. A peer's malformed or oversized frame fails only its own stream.
 */
export class Rpc {
  private readonly log: Logger
  /** Streams being opened, so concurrent first calls to a peer share one. */
  private readonly channels = new Map<string, Promise<Channel>>()
  private readonly buckets = new TokenBuckets(C.maxRateBuckets)
  /** Open streams, looked up synchronously on every call. */
  private readonly open = new Map<string, Channel>()
  private readonly services = new Map<string, Registered>()
  private readonly inbound = new Set<Stream>()
  private readonly defaultTimeout: number
  private readonly handlerTimeout: number
  private readonly metrics?: { calls: Counter, malformed: Counter, latency: Histogram, served: Counter }
  private started = false

  constructor (private readonly components: RpcComponents, init: RpcInit = {}) {
    this.log = (components.logger ?? silentLogger).child({ component: 'rpc' })
    this.defaultTimeout = init.defaultTimeout ?? C.defaultTimeout
    this.handlerTimeout = init.handlerTimeout ?? C.handlerTimeout
    if (components.registry != null) {
      const registers = [components.registry]
      this.metrics = {
        calls: new Counter({ name: 'meshos_rpc_calls_total', help: 'Outbound RPC calls by service, method and outcome', labelNames: ['service', 'method', 'outcome'], registers }),
        served: new Counter({ name: 'meshos_rpc_served_total', help: 'Inbound RPC requests by service, method and outcome', labelNames: ['service', 'method', 'outcome'], registers }),
        malformed: new Counter({ name: 'meshos_rpc_malformed_total', help: 'Malformed or oversized RPC frames received, by service and reason', labelNames: ['service', 'reason'], registers }),
        latency: new Histogram({ name: 'meshos_rpc_call_seconds', help: 'Outbound RPC call latency', labelNames: ['service'], buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5], registers })
      }
    }
  }

  async start (): Promise<void> {
    this.started = true
    for (const r of this.services.values()) await this.register(r)
  }

  async stop (): Promise<void> {
    this.started = false
    await this.components.libp2p.unhandle([...this.services.keys()]).catch(() => {})
    for (const ch of this.channels.values()) ch.then(c => { c.fail(new UnavailableError('rpc stopped')) }, () => {})
    for (const c of this.open.values()) c.fail(new UnavailableError('rpc stopped'))
    this.channels.clear()
    this.open.clear()
    for (const s of this.inbound) s.abort(new UnavailableError('rpc stopped'))
    this.inbound.clear()
  }

  /** Serves a service. Handlers may throw MeshErrors; their codes reach the caller. */
  async handle<M extends Methods>(service: ServiceDef<M>, handlers: Handlers<M>): Promise<void> {
    const r: Registered = { service, handlers }
    this.services.set(protocolId(service), r)
    if (this.started) await this.register(r)
  }

  async call<M extends Methods, K extends keyof M & string>(peer: PeerId | string, service: ServiceDef<M>, method: K, request: RequestOf<M[K]>, options: CallOptions = {}): Promise<ResponseOf<M[K]>> {
    const def = service.methods[method]
    const body = def.request.encode(request)
    const max = service.maxMessageSize ?? C.maxMessageSize
    if (body.byteLength > max) throw new MessageTooLargeError(`request of ${body.byteLength} bytes exceeds ${service.name}'s limit of ${max}`)
    const timeoutMs = options.timeout ?? this.defaultTimeout
    const started = this.metrics == null ? 0 : performance.now()
    try {
      const peerKey = typeof peer === 'string' ? peer : peer.toString()
      const key = peerKey + ' ' + protocolId(service)
      let channel = this.open.get(key)
      if (channel != null && !channel.usable) {
        this.open.delete(key)
        // Calls in flight on a stream that is closing gracefully (its connection pruned) may still get their answers,
        // and keep their own deadlines; a channel with none is let go now.
        if (channel.inFlight === 0) channel.fail(new UnavailableError('rpc stream closed'))
        channel = undefined
      }
      let timeLeft = timeoutMs
      if (channel == null) {
        // Calls to a peer with no stream yet share one opening, which runs on its own deadline: each waits for it only
        // as long as its own signal and deadline allow, so one caller's cancel fails no other, and a short deadline
        // does not wait on a long one. The call then has what is left of its deadline, not a new one.
        const opening = performance.now()
        const deadline = options.signal == null ? AbortSignal.timeout(timeoutMs) : AbortSignal.any([options.signal, AbortSignal.timeout(timeoutMs)])
        try {
          channel = await raceSignal(this.channel(key, peer, service, timeoutMs), deadline)
        } catch (err) {
          if (!deadline.aborted) throw err
          throw options.signal?.aborted === true ? toMeshError(options.signal.reason) : new TimeoutError(`rpc ${service.name}.${method} timed out after ${timeoutMs} ms opening a stream to ${peerKey}`)
        }
        timeLeft = Math.max(1, timeoutMs - (performance.now() - opening))
      }
      const res = await channel.call(method, body, timeLeft, `${service.name}.${method}`, options.signal)
      let decoded: ResponseOf<M[K]>
      try {
        decoded = def.response.decode(res)
      } catch (err) {
        throw new MalformedMessageError(`malformed ${service.name}.${method} response: ${(err as Error).message}`)
      }
      if (this.metrics != null) {
        this.metrics.calls.inc({ service: service.name, method, outcome: 'ok' })
        this.metrics.latency.observe({ service: service.name }, (performance.now() - started) / 1000)
      }
      return decoded
    } catch (err) {
      const e = toMeshError(err)
      this.metrics?.calls.inc({ service: service.name, method, outcome: e.code })
      throw e
    }
  }

  private async channel (key: string, peer: PeerId | string, service: ServiceDef<any>, timeoutMs: number): Promise<Channel> {
    let ch = this.channels.get(key)
    if (ch == null) {
      ch = (async () => {
        // As long as the caller that started it would wait, and never less than the default: later callers wait for it
        // only as long as their own deadlines allow.
        const signal = AbortSignal.timeout(Math.max(this.defaultTimeout, timeoutMs))
        try {
          const stream = await this.components.libp2p.dialProtocol(typeof peer === 'string' ? peerIdFromString(peer) : peer, protocolId(service), { signal })
          const channel = new Channel(stream, service.maxMessageSize ?? C.maxMessageSize, () => {
            if (this.open.get(key) === channel) this.open.delete(key)
          }, () => { this.metrics?.malformed.inc({ service: service.name, reason: 'response' }) }, service.coalesce)
          if (!channel.usable) {
            channel.fail(new UnavailableError('rpc stream closed while it was being opened'))
            throw new UnavailableError(`cannot reach ${peer.toString()} for ${service.name}: the stream closed while it was being opened`)
          }
          this.open.set(key, channel)
          return channel
        } catch (err) {
          const e = toMeshError(err)
          throw e.code === 'INTERNAL' ? new UnavailableError(`cannot reach ${peer.toString()} for ${service.name}: ${e.message}`) : e
        } finally {
          this.channels.delete(key)
        }
      })()
      this.channels.set(key, ch)
    }
    return await ch
  }

  private async register (r: Registered): Promise<void> {
    await this.components.libp2p.handle(protocolId(r.service), (stream, connection) => { this.serve(r, stream, connection) }, {
      maxInboundStreams: C.maxInboundStreams,
      maxOutboundStreams: C.maxOutboundStreams,
      force: true
    })
  }

  /**
   * A token bucket per (peer, service), refilled continuously and allowing a one-second burst. A flooding peer gets
   * RATE_LIMITED replies, which cost a frame each, instead of handler work.
   */
  private admit (bucket: string, service: ServiceDef<any>): boolean {
    return this.buckets.take(bucket, service.ratePerPeer ?? C.ratePerPeer)
  }

  private serve (r: Registered, stream: Stream, connection: Connection): void {
    const { service, handlers } = r
    const max = service.maxMessageSize ?? C.maxMessageSize
    const maxInFlight = service.maxInFlight ?? C.maxInFlight
    const decoder = new FrameDecoder(max + C.frameOverhead)
    const writer = new FrameWriter(stream, service.coalesce)
    const closed = new AbortController()
    // The bucket's key, made once per stream: a peer id's string form and the key built from it per request cost a
    // rate-limited request more than the bucket itself.
    const bucket = connection.remotePeer.toString() + ' ' + service.name
    let inFlight = 0
    let remoteDone = false
    // A caller that closes its side has sent its last request: answer what is in flight, then close ours, so a
    // stream per request does not leave half-open streams counting against the limit.
    const maybeClose = (): void => {
      if (remoteDone && inFlight === 0 && stream.writeStatus === 'writable') {
        writer.flush()
        stream.close().catch(() => { stream.abort(new Error('close failed')) })
      }
    }
    stream.addEventListener('remoteCloseWrite', () => { remoteDone = true; maybeClose() })
    this.inbound.add(stream)
    let broken = false
    stream.addEventListener('close', () => {
      this.inbound.delete(stream)
      // Requests still waiting in the decoder have no one left to answer: they are dropped, not run.
      broken = true
      decoder.clear()
      closed.abort(new UnavailableError('stream closed'))
    })

    const reject = (reason: 'malformed' | 'oversized', err: MeshError): void => {
      // Framing is lost, so the stream cannot carry further calls: nothing more is read or buffered from it, the peer
      // is told why if that can be said at once, and only this stream closes. A peer that does not read its replies
      // is not waited for: the stream is aborted after a short grace.
      if (broken) return
      broken = true
      decoder.clear()
      this.metrics?.malformed.inc({ service: service.name, reason })
      this.log.debug({ peer: connection.remotePeer.toString(), service: service.name, err: err.message }, 'closing rpc stream after bad frame')
      if (stream.writeStatus !== 'writable' || stream.writableNeedsDrain) { stream.abort(err); return }
      const grace = AbortSignal.timeout(C.errorCloseGrace)
      writer.write({ id: 0, kind: Frame.Kind.ERROR, method: '', body: new Uint8Array(), code: err.code, message: err.message }, grace, true)
        .then(async () => { await stream.close({ signal: grace }) })
        .catch(() => {})
        .finally(() => { stream.abort(err) })
    }

    const dispatch = async (frame: Frame): Promise<void> => {
      const reply = async (f: Partial<OutFrame>): Promise<void> => {
        if (stream.writeStatus !== 'writable') return
        await writer.write({ id: frame.id, kind: Frame.Kind.RESPONSE, method: '', body: new Uint8Array(), code: '', message: '', ...f }).catch(() => {})
      }
      if (!this.admit(bucket, service)) {
        // Only a known method names a label: a peer's own strings would each add a series that is never freed.
        this.metrics?.served.inc({ service: service.name, method: Object.hasOwn(service.methods, frame.method) ? frame.method : 'unknown', outcome: 'RATE_LIMITED' })
        await reply({ kind: Frame.Kind.ERROR, code: 'RATE_LIMITED', message: `more than ${service.ratePerPeer ?? C.ratePerPeer} ${service.name} requests per second from this peer` })
        return
      }
      const def = Object.hasOwn(service.methods, frame.method) ? service.methods[frame.method] : undefined
      if (frame.kind !== Frame.Kind.REQUEST || def == null) {
        this.metrics?.served.inc({ service: service.name, method: 'unknown', outcome: 'UNKNOWN_METHOD' })
        await reply({ kind: Frame.Kind.ERROR, code: 'UNKNOWN_METHOD', message: `unknown method ${service.name}.${frame.method}` })
        return
      }
      let request: unknown
      try {
        request = def.request.decode(frame.body)
      } catch (err) {
        this.metrics?.malformed.inc({ service: service.name, reason: 'request' })
        await reply({ kind: Frame.Kind.ERROR, code: 'MALFORMED_MESSAGE', message: `malformed ${service.name}.${frame.method} request: ${(err as Error).message}` })
        return
      }
      if (closed.signal.aborted) return
      const controller = new AbortController()
      const timer = setTimeout(() => { controller.abort(new TimeoutError(`handler ${service.name}.${frame.method} timed out`)) }, this.handlerTimeout)
      const onClosed = (): void => { controller.abort(closed.signal.reason) }
      closed.signal.addEventListener('abort', onClosed, { once: true })
      const signal = controller.signal
      let work: Promise<unknown> | undefined
      try {
        work = handlers[frame.method](request, { peer: connection.remotePeer, connection, signal })
        // The deadline answers the caller even if the handler does not heed its signal (its place is held until it
        // really ends, below, so such handlers cannot pile up).
        const response = await raceSignal(work, signal)
        const body = def.response.encode(response)
        if (body.byteLength > max) throw new MessageTooLargeError(`response of ${body.byteLength} bytes exceeds ${service.name}'s limit of ${max}`)
        this.metrics?.served.inc({ service: service.name, method: frame.method, outcome: 'ok' })
        await reply({ body })
      } catch (err) {
        const e = toMeshError(err)
        if (e.code === 'INTERNAL') this.log.warn({ err, service: service.name, method: frame.method }, 'rpc handler failed')
        this.metrics?.served.inc({ service: service.name, method: frame.method, outcome: e.code })
        await reply({ kind: Frame.Kind.ERROR, code: e.code, message: e.message })
      } finally {
        clearTimeout(timer)
        closed.signal.removeEventListener('abort', onClosed)
      }
      await work?.catch(() => {})
    }

    // Frames are taken from the decoder only while fewer than `maxInFlight` requests are in flight; the rest wait there,
    // and the stream stops reading, so a peer cannot start more work than that however many requests one chunk holds.
    // A peer that goes on sending past the 4 MiB a paused stream may hold unread has that stream reset by libp2p (its
    // yamux window can be larger). The mesh's own callers stay far below: one write batch in flight per replica, a
    // few chunks per transfer.
    // (A 4 MiB yamux window would avoid the reset, but it would also cap a put's six 1 MiB chunks in flight per replica.)
    const pauseIfFull = (): void => { if (inFlight >= maxInFlight && stream.readStatus === 'readable') stream.pause() }
    const pump = (): void => {
      while (!broken && inFlight < maxInFlight) {
        let bytes: Uint8Array | undefined
        try {
          bytes = decoder.next()
        } catch (err) {
          const e = toMeshError(err)
          reject(e.code === 'MESSAGE_TOO_LARGE' ? 'oversized' : 'malformed', e)
          return
        }
        if (bytes == null) return
        let frame: Frame
        try {
          frame = Frame.decode(bytes)
        } catch (err) {
          reject('malformed', new MalformedMessageError(`malformed rpc frame: ${(err as Error).message}`))
          return
        }
        inFlight++
        // Paused after this turn, not now: this may run inside the delivery that `resume()` makes of what was
        // buffered, and a pause there is undone when `resume()` goes on to reopen the peer's send window.
        if (inFlight >= maxInFlight) queueMicrotask(pauseIfFull)
        void dispatch(frame).finally(() => {
          inFlight--
          pump()
          if (inFlight < maxInFlight && stream.readStatus === 'paused') stream.resume()
          maybeClose()
        })
      }
    }
    stream.addEventListener('message', (evt) => {
      if (broken) return
      decoder.append(evt.data)
      pump()
    })
  }
}
