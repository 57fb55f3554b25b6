import { pbStream, type ProtobufMessageStream } from '@libp2p/utils'
import { silentLogger, type Logger } from '../lib/log.js'
import * as C from './constants.js'
import { KadMessage, KadMessageType } from './kad.js'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'

export interface KadSenderInit {
  /** The node whose connections carry the streams. @default (required) */
  libp2p: Pick<Libp2p, 'dialProtocol'>
  /** Protocol id of the DHT. @default `PROTOCOL` (`/meshos/kad/1.0.0`) */
  protocol?: string
  /**
   * A stream unused this long is closed by us, before the remote's own idle timeout (kad-dht's
   * `incomingMessageTimeout`) resets it under a request. @default `KAD_STREAM_IDLE` (50 s)
   */
  idleTimeout?: number
  /** Deadline of one exchange (open, write, read) when the caller gives no signal. @default `KAD_REQUEST_TIMEOUT` (5 s) */
  requestTimeout?: number
  /** @default a silent logger */
  logger?: Logger
}

type Pb = ProtobufMessageStream<KadMessage, Stream>

interface Channel { stream: Stream, pb: Pb }

/** All exchanges with one peer go through one lane, in order: responses on a kad stream are matched by position. */
interface Lane {
  tail: Promise<unknown>
  channel?: Channel
  busy: number
  idle?: NodeJS.Timeout
}

/**
 * Sends Kademlia messages to peers over one persistent stream per peer, instead of kad-dht's stream per message.
 *
 * Why: opening a stream costs a multistream-select round trip to the remote process before the request can even be
 * written; on a loaded host that round trip is most of a lookup's latency. The standard kad-dht server reads messages
 * from a stream in a loop and answers each in order (go-libp2p-kad-dht's clients reuse streams the same way), so this
 * stays plain `/meshos/kad/1.0.0`: nothing changes on the wire but the number of streams.
 *
 * Exchanges with one peer are serialised, since a response carries no request id. A failure or an abort in the middle
 * of an exchange discards the stream (a late response would otherwise answer the next request); an exchange that
 * failed on a reused stream (the remote may have reset it while idle) is retried once on a fresh one: every message
 * meshos sends this way (ADD_PROVIDER, GET_PROVIDERS) is idempotent.
 */
export class KadSender {
  private readonly lanes = new Map<string, Lane>()
  private readonly protocol: string
  private readonly idleTimeout: number
  private readonly requestTimeout: number
  private readonly log: Logger
  private stopped = false

  constructor (private readonly init: KadSenderInit) {
    this.protocol = init.protocol ?? C.PROTOCOL
    this.idleTimeout = init.idleTimeout ?? C.KAD_STREAM_IDLE
    this.requestTimeout = init.requestTimeout ?? C.KAD_REQUEST_TIMEOUT
    this.log = (init.logger ?? silentLogger).child({ component: 'dht-sender' })
  }

  /** Writes a message that has no response (ADD_PROVIDER). Resolves once it is handed to the connection. */
  async send (peer: PeerId, msg: Partial<KadMessage>, options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.exchange(peer, options.signal, async (ch, signal) => { await ch.pb.write(msg as KadMessage, { signal }) })
  }

  /**
   * Writes `msg` (one without a response, such as ADD_PROVIDER) and then a PING on the same stream, and resolves once
   * the PING comes back. A kad-dht server handles a stream's messages one after another and aborts the stream when a
   * handler throws, so the echo proves that `msg` was handled without error.
   */
  async sendConfirmed (peer: PeerId, msg: Partial<KadMessage>, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    return await this.exchange(peer, options.signal, async (ch, signal) => {
      await ch.pb.write(msg as KadMessage, { signal })
      await ch.pb.write({ type: KadMessageType.PING } as KadMessage, { signal })
      const echo = await ch.pb.read({ signal })
      // Out of step with its answers: thrown, so that the stream is discarded rather than reused.
      if (echo.type !== KadMessageType.PING) throw new Error(`expected the PING echo, got ${echo.type}`)
      return true
    })
  }

  /** Writes a request and reads its response. */
  async request (peer: PeerId, msg: Partial<KadMessage>, options: { signal?: AbortSignal } = {}): Promise<KadMessage> {
    return await this.exchange(peer, options.signal, async (ch, signal) => {
      await ch.pb.write(msg as KadMessage, { signal })
      return await ch.pb.read({ signal })
    })
  }

  /** Closes every stream; later calls fail. */
  stop (): void {
    this.stopped = true
    for (const lane of this.lanes.values()) {
      clearTimeout(lane.idle)
      if (lane.channel != null) this.discard(lane, lane.channel)
    }
    this.lanes.clear()
  }

  private async exchange<T> (peer: PeerId, callerSignal: AbortSignal | undefined, fn: (ch: Channel, signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.stopped) throw new Error('the DHT sender is stopped')
    const signal = callerSignal ?? AbortSignal.timeout(this.requestTimeout)
    const key = peer.toString()
    let lane = this.lanes.get(key)
    if (lane == null) {
      lane = { tail: Promise.resolve(), busy: 0 }
      this.lanes.set(key, lane)
    }
    const l = lane
    l.busy++
    clearTimeout(l.idle)
    const previous = l.tail
    const run = (async (): Promise<T> => {
      await waitOrAbort(previous, signal)
      signal.throwIfAborted()
      for (let attempt = 0; ; attempt++) {
        const reused = l.channel != null && usable(l.channel.stream)
        if (!reused) {
          if (l.channel != null) this.discard(l, l.channel)
          const stream = await this.init.libp2p.dialProtocol(peer, this.protocol, { signal })
          l.channel = { stream, pb: pbStream(stream).pb<KadMessage>(KadMessage) }
        }
        const ch = l.channel!
        try {
          return await fn(ch, signal)
        } catch (err) {
          this.discard(l, ch)
          if (!reused || attempt > 0 || signal.aborted || this.stopped) throw err
          this.log.debug({ err, peer: key }, 'kad stream failed on reuse; retrying on a fresh stream')
        }
      }
    })()
    // The next exchange waits for this one and for everything before it, even if this one gave up while queued.
    l.tail = Promise.allSettled([previous, run]).then(() => {})
    try {
      return await run
    } finally {
      l.busy--
      if (l.busy === 0 && !this.stopped) {
        l.idle = setTimeout(() => {
          if (l.busy > 0) return
          if (l.channel != null) this.discard(l, l.channel, true)
          this.lanes.delete(key)
        }, this.idleTimeout)
        l.idle.unref()
      }
    }
  }

  private discard (lane: Lane, ch: Channel, graceful = false): void {
    if (lane.channel === ch) lane.channel = undefined
    if (graceful) {
      // close() can reject with an Event rather than an Error: either way the stream is gone.
      ch.stream.close().catch(() => { ch.stream.abort(new Error('close failed')) })
    } else {
      ch.stream.abort(new Error('kad exchange failed or was abandoned'))
    }
  }
}

function usable (stream: Stream): boolean {
  return stream.status === 'open' && stream.writeStatus === 'writable' && stream.readStatus !== 'closed' && stream.readStatus !== 'closing'
}

/** Waits for `p` (never rejects: lanes' tails swallow errors) unless `signal` aborts first. */
async function waitOrAbort (p: Promise<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return
  let onAbort: (() => void) | undefined
  await Promise.race([p, new Promise<void>(resolve => { onAbort = resolve; signal.addEventListener('abort', onAbort, { once: true }) })])
  if (onAbort != null) signal.removeEventListener('abort', onAbort)
}
