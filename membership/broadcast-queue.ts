import type { Update } from './swim.js'

interface Entry {
  update: Update
  member: string
  size: number
  transmits: number
  /** Set once the entry was replaced, dropped or retired; buckets drop such entries lazily. */
  gone: boolean
}

export interface BroadcastQueueInit {
  /**
   * The most entries the queue holds; beyond it, the most transmitted (then oldest) entry is dropped.
   * @default 2048
   */
  maxEntries?: number
}

export interface TakeOptions {
  /** At most this many updates. */
  maxCount: number
  /** Stop adding updates once their encoded sizes would exceed this. An update larger than this is taken alone. */
  maxBytes: number
  /** An update is retired once it has been taken this many times (λ·log N). */
  retransmitLimit: number
  /** Only take updates transmitted fewer than this many times (a burst sends only fresh news). */
  belowTransmits?: number
  /** Skip updates about this member (it is already in the message). */
  skipMember?: string
}

/**
 * The bounded queue of updates waiting to be piggybacked (infection-style dissemination).
 *
 * One entry per member: a newer update about a member replaces the older one, so the queue is
 * bounded by the membership and by `maxEntries`. Updates go out least-transmitted first and, among
 * equals, newest first (news about a change spreads before old news is repeated). Entries sit in one
 * bucket per transmit count, newest at the end, so taking is O(taken + stale), never a sort.
 */
export class BroadcastQueue {
  private readonly maxEntries: number
  private readonly byMember = new Map<string, Entry>()
  private readonly buckets: Entry[][] = []
  private readonly live: number[] = []
  /** Entries dropped because the queue was full. */
  dropped = 0

  constructor (init: BroadcastQueueInit = {}) {
    this.maxEntries = init.maxEntries ?? 2048
  }

  get size (): number { return this.byMember.size }

  has (member: string): boolean { return this.byMember.has(member) }

  /** How often the queued update about `member` has been sent, or undefined when none is queued. */
  transmitsOf (member: string): number | undefined { return this.byMember.get(member)?.transmits }

  enqueue (update: Update, size: number): void {
    const old = this.byMember.get(update.member)
    if (old !== undefined) this.retire(old)
    const entry: Entry = { update, member: update.member, size, transmits: 0, gone: false }
    this.byMember.set(update.member, entry)
    this.bucket(0).push(entry)
    this.live[0]++
    while (this.byMember.size > this.maxEntries) this.evictOne()
  }

  clear (): void {
    for (const e of this.byMember.values()) e.gone = true
    this.byMember.clear()
    this.buckets.length = 0
    this.live.length = 0
  }

  take (opts: TakeOptions): Update[] {
    const out: Update[] = []
    const taken: Entry[] = []
    let bytes = 0
    const top = Math.min(this.buckets.length, opts.belowTransmits ?? Infinity)
    outer:
    for (let t = 0; t < top; t++) {
      const b = this.buckets[t]
      for (let i = b.length - 1; i >= 0; i--) {
        const e = b[i]
        if (e.gone || e.transmits !== t) continue
        if (e.member === opts.skipMember) continue
        if (bytes + e.size > opts.maxBytes) {
          // An update larger than the whole budget would be passed over by every message for ever: it goes in a
          // message of its own.
          if (out.length > 0 || e.size <= opts.maxBytes) continue
          out.push(e.update)
          taken.push(e)
          break outer
        }
        out.push(e.update)
        taken.push(e)
        bytes += e.size
        if (out.length >= opts.maxCount) break outer
      }
    }
    // Moved only after the scan, so one message never carries the same update twice.
    for (const e of taken) {
      this.live[e.transmits]--
      e.transmits++
      if (e.transmits >= opts.retransmitLimit) {
        e.gone = true
        this.byMember.delete(e.member)
      } else {
        this.bucket(e.transmits).push(e)
        this.live[e.transmits]++
      }
    }
    for (let t = 0; t < this.buckets.length; t++) this.compact(t)
    return out
  }

  private bucket (t: number): Entry[] {
    while (this.buckets.length <= t) {
      this.buckets.push([])
      this.live.push(0)
    }
    return this.buckets[t]
  }

  private retire (e: Entry): void {
    e.gone = true
    this.live[e.transmits]--
    this.byMember.delete(e.member)
  }

  /** Drops the oldest entry among the most transmitted: it has done the most of its work already. */
  private evictOne (): void {
    for (let t = this.buckets.length - 1; t >= 0; t--) {
      if (this.live[t] === 0) continue
      for (const e of this.buckets[t]) {
        if (!e.gone && e.transmits === t) {
          this.retire(e)
          this.dropped++
          this.compact(t)
          return
        }
      }
    }
  }

  private compact (t: number): void {
    const b = this.buckets[t]
    if (b.length > 16 && b.length > 2 * this.live[t]) {
      this.buckets[t] = b.filter(e => !e.gone && e.transmits === t)
    }
  }
}
