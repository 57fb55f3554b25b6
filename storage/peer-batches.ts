import { withDeadline } from '../lib/abort.js'
import { systemClock, type Clock } from '../lib/clock.js'
import { InvalidOptionError } from './errors.js'

export interface PeerBatchesInit<I, R> {
  /** Sends one peer's batch; resolves with one result per item, in order: an Error fails that item alone. */
  send: (peer: string, items: I[], signal: AbortSignal) => Promise<Array<R | Error>>
  /** Bytes an item adds to its batch. */
  size: (item: I) => number
  /** A batch leaves at once when it holds this many items. */
  maxItems: number
  /** A batch leaves at once when it holds this many bytes. */
  maxBytes: number
  /** Batches a peer may have unanswered before the next waits for one to end; Infinity for no cap. */
  maxInFlight: number
  /** Deadline of one batch's send (ms), unless its items ask for longer (see `add`). */
  timeout: number
  /** Peers whose batches are never held back (the local replica). @default none */
  uncapped?: (peer: string) => boolean
  /** Called with the size of each batch as it leaves (metrics). @default none */
  onSend?: (items: number) => void
  /** @default systemClock */
  clock?: Clock
}

interface Batch<I, R> {
  items: I[]
  bytes: number
  /** The latest deadline any item asked for (clock ms). */
  until: number
  waiters: Array<{ resolve: (result: R) => void, reject: (err: unknown) => void }>
  /** A flush is scheduled (setImmediate); otherwise the batch waits for one of the peer's batches in flight to end. */
  scheduled: boolean
}

/**
 * Per-peer batching of a coordinator's requests to replicas. Items for one peer that come in the same turn of the event
 * loop (concurrent clients' requests) leave as one request, so the RPC, its framing and the replica's dispatch are paid
 * once per batch. While `maxInFlight` batches to a peer are unanswered, the items that come meanwhile wait and leave
 * together once one is answered: under load a batch then holds what arrived during a round trip, not one turn's few.
 * A lone item leaves at once. A caller whose signal aborts stops waiting; its item may still be sent, as a request that
 * times out may still land.
 */
export class PeerBatches<I, R> {
  private readonly open = new Map<string, Batch<I, R>>()
  private readonly inFlight = new Map<string, number>()
  private readonly clock: Clock

  constructor (private readonly init: PeerBatchesInit<I, R>) {
    this.clock = init.clock ?? systemClock
    // Below one, no batch would ever leave before it filled up.
    const cap = init.maxInFlight
    if (!(cap === Infinity || (Number.isInteger(cap) && cap >= 1))) {
      throw new InvalidOptionError(`maxBatchesInFlight must be an integer of at least 1, got ${cap}`)
    }
  }

  /** `timeout`: how long this item's caller will wait (ms); its batch's send gets at least that. */
  async add (peer: string, item: I, signal: AbortSignal, timeout = this.init.timeout): Promise<R> {
    signal.throwIfAborted()
    return await new Promise<R>((resolve, reject) => {
      let batch = this.open.get(peer)
      if (batch == null) {
        const b: Batch<I, R> = { items: [], bytes: 0, until: 0, waiters: [], scheduled: false }
        this.open.set(peer, b)
        if (this.init.uncapped?.(peer) === true || (this.inFlight.get(peer) ?? 0) < this.init.maxInFlight) {
          b.scheduled = true
          setImmediate(() => { this.flush(peer, b) })
        }
        batch = b
      }
      const onAbort = (): void => { reject(signal.reason) }
      signal.addEventListener('abort', onAbort, { once: true })
      batch.items.push(item)
      batch.bytes += this.init.size(item)
      batch.until = Math.max(batch.until, this.clock.now() + timeout)
      batch.waiters.push({
        resolve: (result) => { signal.removeEventListener('abort', onAbort); resolve(result) },
        reject: (err) => { signal.removeEventListener('abort', onAbort); reject(err) }
      })
      if (batch.bytes >= this.init.maxBytes || batch.items.length >= this.init.maxItems) this.flush(peer, batch)
    })
  }

  private flush (peer: string, batch: Batch<I, R>): void {
    if (this.open.get(peer) !== batch) return
    this.open.delete(peer)
    this.inFlight.set(peer, (this.inFlight.get(peer) ?? 0) + 1)
    this.init.onSend?.(batch.items.length)
    const timeout = Math.max(this.init.timeout, batch.until - this.clock.now())
    withDeadline(timeout, undefined, async signal => await this.init.send(peer, batch.items, signal), this.clock)
      .finally(() => {
        const left = (this.inFlight.get(peer) ?? 1) - 1
        if (left > 0) this.inFlight.set(peer, left)
        else this.inFlight.delete(peer)
        const waiting = this.open.get(peer)
        if (waiting != null && !waiting.scheduled) this.flush(peer, waiting)
      })
      .then(results => {
        batch.waiters.forEach((w, i) => {
          const r = results[i]
          if (r instanceof Error) w.reject(r)
          else w.resolve(r)
        })
      }, err => {
        for (const w of batch.waiters) w.reject(err)
      })
  }
}
