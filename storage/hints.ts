import type { Logger } from '../lib/log.js'
import type { Clock, TimerHandle } from '../lib/clock.js'
import { withDeadline } from '../lib/abort.js'
import type { StorageEngine } from './engine.js'
import { Hint, type Record as KvRecord } from './storage.js'
import type { MembershipView, ReplicaTransport } from './types.js'
import type { StorageMetrics } from './metrics.js'
import { HINT_PREFIX } from './service.js'
import { recordBytes } from './record.js'
import { sleep } from './util.js'
import {
  DEFAULT_MAX_HINTS, DEFAULT_MAX_HINT_AGE, DEFAULT_HINT_REPLAY_RATE, DEFAULT_HINT_SWEEP_INTERVAL,
  DEFAULT_MAX_BATCH_BYTES, DEFAULT_ROUND_TIMEOUT
} from './constants.js'

export interface HintsComponents {
  engine: StorageEngine
  clock: Clock
  logger: Logger
  membership: MembershipView
  transport: ReplicaTransport
  metrics: StorageMetrics
  /**
   * Delivers records whose target left the ring to the key's current replicas instead.
   * Without it such hints are dropped (anti-entropy among the remaining replicas still repairs
   * anything a quorum saw).
   */
  /** `hintedAt`: when each record was first hinted (clock ms), so that a hint made in forwarding keeps its age. */
  forward?: (records: KvRecord[], signal: AbortSignal, hintedAt: number[]) => Promise<void>
}

export interface HintsInit {
  /** Hints held at most; further hints are dropped and counted. @default 100000 */
  maxHints?: number
  /** Hints older than this are dropped instead of replayed (ms). @default 3 hours */
  maxAge?: number
  /** Records replayed per second per target. @default 1000 */
  replayRate?: number
  /**
   * Period of the sweep that replays to alive targets (ms). It is what delivers hints for a target that never changed
   * state (a write that timed out under load), and covers a missed alive event. @default 2 s
   */
  sweepInterval?: number
  /** Bytes per replay batch. @default 4 MiB */
  maxBatchBytes?: number
  /** Upper bound of one replay batch's deadline, which is otherwise 3 s plus 1 ms per KiB (ms). @default 10 s */
  timeout?: number
}

export interface HintStats {
  pending: number
  byTarget: { [target: string]: number }
}

export interface HintTargetStats {
  pending: number
  /** Age of the oldest hint held for the target (ms, by this node's clock), so a caller can tell a backlog that is draining from hints stored since. */
  oldestAgeMs: number
  /** A replay to the target is running. */
  replaying: boolean
  /** Replays to the target that failed since the last one that delivered. */
  failures: number
}

/** Replays failed in a row before a warning (then one every ten times as many). */
const FAILURES_BEFORE_WARNING = 5
/** Targets whose failures are counted at most (ids from the store, not the wire; a bound all the same). */
const MAX_FAILING_TARGETS = 1024

/**
 * Durable hints: a coordinator that could not reach a replica keeps the record locally under
 * `h/<target>/` and replays it, rate-limited, once the target is alive again.
 */
export class HintStore {
  private readonly c: HintsComponents
  private readonly log: Logger
  private readonly maxHints: number
  private readonly maxAge: number
  private readonly replayRate: number
  private readonly sweepInterval: number
  private readonly maxBatchBytes: number
  private readonly timeout: number
  private readonly pending = new Map<string, number>()
  private total = 0
  // From a random point, so that a forwarded hint, which keeps an earlier time, cannot take the key of a hint that an
  // earlier run of this node stored at that same millisecond.
  private seq = Math.floor(Math.random() * 0x100000000)
  private readonly replaying = new Map<string, Promise<void>>()
  private readonly again = new Set<string>()
  /** target -> replays failed in a row: a target alive in membership whose replays keep failing is worth a warning. */
  private readonly failures = new Map<string, number>()
  private readonly retryDelay: number
  private controller = new AbortController()
  private timer: TimerHandle | undefined
  private unsubscribe: Array<() => void> = []
  private running = false

  constructor (components: HintsComponents, init: HintsInit = {}) {
    this.c = components
    this.log = components.logger
    this.maxHints = init.maxHints ?? DEFAULT_MAX_HINTS
    this.maxAge = init.maxAge ?? DEFAULT_MAX_HINT_AGE
    this.replayRate = init.replayRate ?? DEFAULT_HINT_REPLAY_RATE
    this.sweepInterval = init.sweepInterval ?? DEFAULT_HINT_SWEEP_INTERVAL
    this.maxBatchBytes = init.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES
    this.timeout = init.timeout ?? DEFAULT_ROUND_TIMEOUT
    this.retryDelay = Math.min(1000, this.sweepInterval)
  }

  async start (): Promise<void> {
    this.controller = new AbortController()
    this.pending.clear()
    this.total = 0
    for await (const [k] of this.c.engine.iterate({ gte: HINT_PREFIX, lt: 'h0' })) {
      const target = k.slice(HINT_PREFIX.length, k.indexOf('/', HINT_PREFIX.length))
      this.pending.set(target, (this.pending.get(target) ?? 0) + 1)
      this.total++
    }
    this.c.metrics.hintsPending.set(this.total)
    this.running = true
    this.unsubscribe = [
      this.c.membership.on('alive', peer => { this.kick(peer) }),
      this.c.membership.on('left', peer => { this.kick(peer) })
    ]
    this.schedule()
  }

  async stop (): Promise<void> {
    this.running = false
    for (const u of this.unsubscribe) u()
    this.unsubscribe = []
    if (this.timer != null) this.c.clock.clearTimeout(this.timer)
    this.timer = undefined
    this.controller.abort()
    await Promise.allSettled([...this.replaying.values()])
  }

  private schedule (): void {
    if (!this.running) return
    this.timer = this.c.clock.setTimeout(() => {
      this.sweep()
      this.schedule()
    }, this.sweepInterval)
  }

  /** Starts a replay to every target that has hints and is reachable. */
  sweep (): void {
    for (const target of [...this.pending.keys()]) this.kick(target)
  }

  stats (): HintStats {
    return { pending: this.total, byTarget: Object.fromEntries(this.pending) }
  }

  /** Per target: count, age of the oldest hint (one seek each), whether a replay runs. */
  async targets (): Promise<{ [target: string]: HintTargetStats }> {
    const out: { [target: string]: HintTargetStats } = {}
    const now = this.c.clock.now()
    for (const [target, pending] of this.pending) {
      const prefix = `${HINT_PREFIX}${target}/`
      let oldest = now
      for await (const [k] of this.c.engine.iterate({ gte: prefix, lt: prefix + '\uffff', limit: 1 })) {
        const t = parseInt(k.slice(prefix.length, prefix.length + 12), 16)
        if (Number.isFinite(t)) oldest = t
      }
      out[target] = { pending, oldestAgeMs: Math.max(0, Math.round(now - oldest)), replaying: this.replaying.has(target), failures: this.failures.get(target) ?? 0 }
    }
    return out
  }

  /**
   * Stores a hint durably. False when the hint store is full (the hint is dropped and counted). `createdAt`: for a
   * record forwarded from an older hint, that hint's time: a hint's age bounds how late a write can arrive, which
   * tombstone GC counts on, so forwarding must not make it young again.
   */
  async store (target: string, record: KvRecord, createdAt?: number): Promise<boolean> {
    if (this.total >= this.maxHints) {
      this.c.metrics.hintsDropped.inc({ reason: 'full' })
      return false
    }
    const now = Math.floor(createdAt ?? this.c.clock.now())
    const key = `${HINT_PREFIX}${target}/${now.toString(16).padStart(12, '0')}${(this.seq++ % 0x100000000).toString(16).padStart(8, '0')}`
    this.total++
    this.pending.set(target, (this.pending.get(target) ?? 0) + 1)
    try {
      await this.c.engine.batch([{ type: 'put', key, value: Hint.encode({ target, record, createdAt: BigInt(now) }) }])
    } catch (err) {
      this.forget(target, 1)
      throw err
    }
    this.c.metrics.hintsStored.inc()
    this.c.metrics.hintsPending.set(this.total)
    return true
  }

  private forget (target: string, n: number): void {
    this.total -= n
    const left = (this.pending.get(target) ?? 0) - n
    if (left > 0) this.pending.set(target, left)
    else { this.pending.delete(target); this.failures.delete(target) }
    this.c.metrics.hintsPending.set(this.total)
  }

  /**
   * Starts replaying to target. A kick that arrives while a replay runs is remembered and honoured when that replay
   * ends: the replay may be one that started while the target was suspect and is about to fail, and dropping the kick
   * (an `alive` event, say) left the hints waiting for the next sweep.
   */
  kick (target: string): void {
    if (!this.running || !this.pending.has(target)) return
    if (this.replaying.has(target)) { this.again.add(target); return }
    // A target missing from a partial view would look orphaned and its hints be forwarded by a wrong ring.
    if (this.c.membership.ready?.() === false) return
    const members = this.c.membership.members()
    if (members.includes(target) && !this.c.membership.isAlive(target)) return
    this.again.delete(target)
    let failed = false
    const p = this.replay(target, !members.includes(target))
      .then(() => { this.failures.delete(target) }, err => {
        failed = true
        const n = (this.failures.get(target) ?? 0) + 1
        if (this.failures.size < MAX_FAILING_TARGETS || this.failures.has(target)) this.failures.set(target, n)
        // One failure is routine (the replica is still starting); a run of them, to a member held alive, is not.
        if (n === FAILURES_BEFORE_WARNING || n % (10 * FAILURES_BEFORE_WARNING) === 0) this.log.warn({ err, target, failures: n, pending: this.pending.get(target) }, 'hint replay to a live replica keeps failing')
        else this.log.debug({ err, target }, 'hint replay interrupted')
      })
      .finally(() => {
        this.replaying.delete(target)
        if (!this.again.delete(target) || !this.running) return
        // After a failure, pause before retrying so a target that fails fast does not spin.
        if (failed) this.c.clock.setTimeout(() => { this.kick(target) }, this.retryDelay)
        else this.kick(target)
      })
    this.replaying.set(target, p)
  }

  /**
   * Replays target's hints now, whatever membership says of it (a graceful leave's last delivery), and rejects on the
   * first failure. It waits for a replay already running to the target and is registered as one itself: two replays
   * of the same hints sent them twice and took them off the pending counts twice.
   */
  async flush (target: string): Promise<void> {
    for (let running = this.replaying.get(target); running != null; running = this.replaying.get(target)) await running
    if (!this.pending.has(target)) return
    const p = this.replay(target, !this.c.membership.members().includes(target))
    const settled: Promise<void> = p.then(() => {}, () => {}).finally(() => {
      if (this.replaying.get(target) === settled) this.replaying.delete(target)
      if (this.again.delete(target)) this.kick(target)
    })
    this.replaying.set(target, settled)
    await p
  }

  /** Replays every hint for target; resolves when done or on the first failure (the rest wait for the next kick). */
  async replay (target: string, orphaned = false): Promise<void> {
    const signal = this.controller.signal
    const prefix = `${HINT_PREFIX}${target}/`
    while (this.running) {
      const batch: Array<{ key: string, record: KvRecord, createdAt: number }> = []
      const expired: string[] = []
      let bytes = 0
      const now = this.c.clock.now()
      for await (const [k, v] of this.c.engine.iterate({ gte: prefix, lt: prefix + '\uffff' })) {
        const hint = Hint.decode(v)
        if (hint.record == null || now - Number(hint.createdAt) > this.maxAge) { expired.push(k); continue }
        if (batch.length > 0 && bytes + recordBytes(hint.record) > this.maxBatchBytes) break
        bytes += recordBytes(hint.record)
        batch.push({ key: k, record: hint.record, createdAt: Number(hint.createdAt) })
        if (batch.length >= Math.max(1, this.replayRate)) break
      }
      if (expired.length > 0) {
        await this.c.engine.batch(expired.map(key => ({ type: 'del' as const, key })))
        this.forget(target, expired.length)
        this.c.metrics.hintsDropped.inc({ reason: 'expired' }, expired.length)
      }
      if (batch.length === 0) return
      const records = batch.map(b => b.record)
      // Sized to the batch rather than the full round timeout: a dial to a node that is still starting can hang
      // (seen: a noise handshake stalled until its deadline), and the next sweep retries sooner than 10 s would.
      const budget = Math.min(this.timeout, 3000 + Math.ceil(bytes / 1024))
      if (orphaned) {
        if (this.c.forward == null) {
          this.c.metrics.hintsDropped.inc({ reason: 'left' }, batch.length)
        } else {
          await withDeadline(budget, signal, async sig => { await this.c.forward?.(records, sig, batch.map(b => b.createdAt)) })
        }
      } else {
        await withDeadline(budget, signal, async sig => await this.c.transport.write(target, { records }, sig))
        this.c.metrics.hintsReplayed.inc(batch.length)
      }
      await this.c.engine.batch(batch.map(b => ({ type: 'del' as const, key: b.key })))
      this.forget(target, batch.length)
      this.log.debug({ target, records: batch.length }, 'hints replayed')
      // Rate limit: this batch's share of a second before the next.
      await sleep(this.c.clock, Math.ceil(batch.length / this.replayRate * 1000), signal)
    }
  }
}
