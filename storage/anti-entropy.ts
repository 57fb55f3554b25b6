import type { Logger } from '../lib/log.js'
import type { Clock, TimerHandle } from '../lib/clock.js'
import { withDeadline } from '../lib/abort.js'
import { UnavailableError } from '../lib/errors.js'
import type { Record as KvRecord, TokenRange, Version } from './storage.js'
import type { MembershipView, ReplicaTransport } from './types.js'
import type { ReplicaService, LocalEntry } from './service.js'
import type { StorageMetrics } from './metrics.js'
import { Placement, type Ring } from './placement.js'
import { compareTimestamps } from './hlc.js'
import { isDead, recordBytes } from './record.js'
import { segment, intersect, normalize, rangeSize } from './tokens.js'
import {
  DEFAULT_ANTI_ENTROPY_INTERVAL, DEFAULT_SEGMENTS, DEFAULT_MAX_RECORDS_PER_ROUND, DEFAULT_ROUND_TIMEOUT,
  DEFAULT_REPLICATION_FACTOR, DEFAULT_MAX_BATCH_BYTES, REBALANCE_GRACE, DEFAULT_MAX_HINT_AGE, TOMBSTONE_MIN_AGE_MARGIN, JOIN_DELAY
} from './constants.js'

export interface AntiEntropyComponents {
  service: ReplicaService
  transport: ReplicaTransport
  membership: MembershipView
  clock: Clock
  logger: Logger
  metrics: StorageMetrics
  /** The ring writes go to. */
  ring: () => Ring
  /** Where keys live while members join (see Placement). @default ring() alone */
  placement?: () => Placement
  /** The view a join waits for before it copies. @default membership.ready */
  viewReady?: () => boolean
  /** Called once when a join (AntiEntropyInit.join) has ended. */
  onJoined?: () => void
}

export interface AntiEntropyInit {
  /** @default true */
  enabled?: boolean
  /** One round (one peer, one segment) per interval (ms). @default 2 s */
  interval?: number
  /** Equal parts of the token space; a round compares one. @default 16 */
  segments?: number
  /** Records pulled + pushed per round; the rest is left to later rounds. @default 2000 */
  maxRecordsPerRound?: number
  /** Deadline of one round (ms). @default 10 s */
  timeout?: number
  /** @default 3 */
  replicationFactor?: number
  /** @default 4 MiB */
  maxBatchBytes?: number
  /**
   * This replica lost its data: before it serves reads again, compare every segment with every co-replica, one round
   * after another without waiting out the interval (see ReplicaService.rebuilding). Not kept on disk: the store
   * starts its rebuilds with rebuild() once it knows where the replica is (StorageInit.rebuild). @default false
   */
  rebuild?: boolean
  /** Pause between rebuild rounds (ms). @default 0 */
  rebuildInterval?: number
  /**
   * This node has just joined a mesh that may hold data: once its view is ready and `joinDelay` has passed, compare
   * every segment of the ranges it now holds with every member that holds them in the ring reads use, one round after
   * another, and then call `onJoined`. Until then the members read its ranges from that ring (MembershipView.joining),
   * and the normal rounds wait. @default false
   */
  join?: boolean
  /** See `join` and StorageInit.joinDelay (ms). @default `JOIN_DELAY` (5 s) */
  joinDelay?: number
  /**
   * A record that arrived after this replica's last ring change and is not its own in that ring is left where it is
   * this long before it is moved to its replicas (ms): the sender knows of a ring change this replica has yet to hear of.
   * @default `REBALANCE_GRACE` (30 s)
   */
  rebalanceGrace?: number
  /**
   * A dead record (tombstone or expired value) is purged only once it has been dead here this long (ms), besides being
   * held by every replica. A write carrying an older version can still arrive later: a hint replayed up to the hint
   * store's maximum age after its write, or a replica that was off the ring and comes back with its data. Within this
   * age the tombstone is still there to win over it; purged, the old value would come back. The wiring sets it to the
   * hint store's `maxAge` plus `TOMBSTONE_MIN_AGE_MARGIN`. @default `DEFAULT_MAX_HINT_AGE` + `TOMBSTONE_MIN_AGE_MARGIN`
   */
  tombstoneMinAge?: number
}

export interface RoundResult {
  peer: string
  segment: number
  /** Merkle leaves that differed. */
  differingLeaves: number
  pulled: number
  pushed: number
  purged: number
  /** Every difference was repaired, so the round counts towards tombstone GC. */
  complete: boolean
}

export interface AntiEntropyStats {
  rounds: number
  completeRounds: number
  failedRounds: number
  pulled: number
  pushed: number
  purged: number
  handedOff: number
  /** Segments tombstone GC has read (it reads one only when something in it may be purged). */
  gcScans: number
}

/**
 * Background repair between replicas. Every interval it compares one segment of the ring with
 * one co-replica: Merkle roots first, then only the differing leaves' versions, then streams
 * the differing records both ways. The same ticks move data this node no longer replicates to
 * its current replicas (rebalancing after a join), and purge tombstones once every replica of
 * the key is known to hold them.
 *
 * Tombstone GC rule: a completed round with peer P over segment S, started when every record
 * stored here at or before t0 was visible, proves that for every such record P holds a version
 * at least as new, or no version of the key at all (then it has no older value a tombstone
 * would need to shadow, so dead records are never sent to a peer that lacks the key). A dead
 * record with storedAt <= t0 for every other replica of its key is purged. The proofs are
 * forgotten whenever the ring changes.
 *
 * Proof alone is not enough: a write carrying a version older than the tombstone can still arrive
 * after it, from a hint (kept up to the hint store's maximum age) or from a replica that dropped
 * off the ring (dead past the ring's grace) and comes back with its data. So a dead record is also
 * kept for `tombstoneMinAge`, the hint age plus a margin, as Cassandra keeps gc_grace above its hint
 * window. Never only the age: a tombstone a replica lacks is kept however old it is. A node away
 * longer than that age must rejoin with an empty data dir (docs/operations.md).
 */
export class AntiEntropy {
  private readonly c: AntiEntropyComponents
  private readonly log: Logger
  private readonly enabled: boolean
  private readonly interval: number
  readonly segments: number
  private readonly maxRecords: number
  private readonly timeout: number
  private readonly rf: number
  private readonly maxBatchBytes: number
  private timer: TimerHandle | undefined
  private controller = new AbortController()
  private current: Promise<void> | undefined
  private running = false
  private tick = 0
  private ringKey = ''
  /** `peer segment` pairs compared completely since the rebuild began; undefined once it has ended (or never began). */
  private rebuilt: Map<string, TokenRange[]> | undefined
  /**
   * `peer segment` -> the ranges a join has compared completely with that peer there; undefined once it has ended (or
   * never began). Ranges, not pairs: when the ring loses a member, a pair covers more than it did.
   */
  private joined: Map<string, TokenRange[]> | undefined
  /** Pairs of a rebuild or join whose last round failed: the next rounds take other pairs first. */
  private readonly failedPairs = new Set<string>()
  /** The join's pairs, for the placement they were computed for (at 100 members that takes tens of ms). */
  private joinPairs: { placement: Placement, pairs: Pair[] } | undefined
  private readonly joinDelay: number
  /** When the join's view was first ready. */
  private joinReadyAt: number | undefined
  private readonly rebuildInterval: number
  private readonly rebalanceGrace: number
  private readonly tombstoneMinAge: number
  /** No record moves away before this (see checkRing). */
  private rebalanceHeldUntil = 0
  /** The ring's member list as last seen by `rebalance`, and when it was first seen. */
  private ringSeen: { key: string, since: number, read: readonly string[] } = { key: '', since: 0, read: [] }
  /** segment -> engine key a rebalance stopped after, for the next round of that segment to go on from. */
  private readonly rebalanceFrom = new Map<number, string>()
  /**
   * segment -> when its next GC scan may purge something (the earliest a dead record there is old enough, or now for
   * one waiting only for proof), and the service's count of mortal writes over it when that was found. Without it,
   * every tick read the whole segment to find nothing, and a node at rest spent CPU in proportion to the keys it held.
   */
  private readonly collectDue = new Map<number, { due: number, mortal: number }>()
  /** peer -> segment -> stable time of the start of the last complete round. */
  private synced = new Map<string, Map<number, number>>()
  private readonly counters: AntiEntropyStats = { rounds: 0, completeRounds: 0, failedRounds: 0, pulled: 0, pushed: 0, purged: 0, handedOff: 0, gcScans: 0 }

  constructor (components: AntiEntropyComponents, init: AntiEntropyInit = {}) {
    this.c = components
    this.log = components.logger
    this.enabled = init.enabled ?? true
    this.interval = init.interval ?? DEFAULT_ANTI_ENTROPY_INTERVAL
    this.segments = init.segments ?? DEFAULT_SEGMENTS
    this.maxRecords = init.maxRecordsPerRound ?? DEFAULT_MAX_RECORDS_PER_ROUND
    this.timeout = init.timeout ?? DEFAULT_ROUND_TIMEOUT
    this.rf = init.replicationFactor ?? DEFAULT_REPLICATION_FACTOR
    this.maxBatchBytes = init.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES
    this.rebuildInterval = init.rebuildInterval ?? 0
    this.rebalanceGrace = init.rebalanceGrace ?? REBALANCE_GRACE
    this.tombstoneMinAge = init.tombstoneMinAge ?? DEFAULT_MAX_HINT_AGE + TOMBSTONE_MIN_AGE_MARGIN
    this.joinDelay = init.joinDelay ?? JOIN_DELAY
    if (init.join === true) this.joined = new Map()
    if (init.rebuild === true) this.rebuild()
  }

  /** True until a join (see AntiEntropyInit.join) has compared its ranges with every member holding them. */
  get joining (): boolean { return this.joined != null }

  private placement (): Placement { return this.c.placement?.() ?? Placement.of(this.c.ring()) }

  /** True until a rebuild (see AntiEntropyInit.rebuild) has compared every segment with every co-replica. */
  get rebuilding (): boolean { return this.rebuilt != null }

  /**
   * Starts a join now (see AntiEntropyInit.join): the ring let go of this node (it left, or was away past the ring's
   * grace) and takes it back, and what it holds lacks the writes its ranges took meanwhile.
   */
  rejoin (): void {
    if (!this.enabled) return
    // Also part way through a join: what it compared before it was let go of took writes elsewhere since.
    this.joined = new Map()
    this.joinPairs = undefined
    this.joinReadyAt = undefined
  }

  /** Starts a rebuild now (see AntiEntropyInit.rebuild): this replica's data was found stale and dropped. */
  rebuild (): void {
    if (this.rebuilt != null) return
    this.rebuilt = new Map()
    this.c.service.rebuilding = true
  }

  start (): void {
    if (!this.enabled || this.running) return
    this.running = true
    this.collectDue.clear()
    this.controller = new AbortController()
    this.schedule()
  }

  async stop (): Promise<void> {
    this.running = false
    if (this.timer != null) this.c.clock.clearTimeout(this.timer)
    this.timer = undefined
    this.controller.abort()
    await this.current?.catch(() => {})
  }

  stats (): AntiEntropyStats { return { ...this.counters } }

  private schedule (): void {
    if (!this.running) return
    this.timer = this.c.clock.setTimeout(() => {
      // A join in a placement where every member joins ends at once, and the store is not ready until it has: it goes
      // before a rebuild, which waits for the store to be ready.
      const joinFirst = this.joined != null && (this.rebuilt == null || this.placement().allJoining)
      const work = joinFirst ? this.joinStep() : this.rebuilt != null ? this.rebuildStep() : this.joined != null ? this.joinStep() : this.step()
      this.current = work.finally(() => { this.current = undefined; this.schedule() })
    }, this.rebuilt != null || this.joined != null ? this.rebuildInterval : this.interval)
  }

  /**
   * The (peer, segment) pairs a rebuild must still compare: every ring member that shares ranges of the segment with
   * this node, alive or not. A co-replica that is down holds up the end of the rebuild (reads are refused here
   * meanwhile, and go to the other replicas): it may be the only other holder of an acknowledged write.
   */
  private rebuildPending (ring: Ring): Pair[] {
    const out: Pair[] = []
    const p = this.placement()
    for (const peer of ring.members) {
      if (peer === this.self) continue
      const shared = p.sharedRanges(this.self, peer, this.rf)
      for (let seg = 0; seg < this.segments; seg++) {
        const ranges = intersect(shared, [segment(seg, this.segments)])
        if (ranges.length > 0 && !covers(this.rebuilt, peer, seg, ranges)) out.push({ peer, seg, ranges, placement: p })
      }
    }
    return out
  }

  /**
   * Compares the first pair with a live peer whose last round did not fail (so that one peer this node cannot reach
   * holds up no other), and records what it covered in `done`. False when no such pair is left.
   */
  private async comparePair (pending: Pair[], done: Map<string, TokenRange[]> | undefined, what: string): Promise<boolean> {
    const alive = pending.filter(x => this.c.membership.isAlive(x.peer))
    const next = alive.find(x => !this.failedPairs.has(`${x.peer} ${x.seg}`))
    if (next == null) {
      this.failedPairs.clear()
      return false
    }
    const key = `${next.peer} ${next.seg}`
    try {
      const result = await withDeadline(this.timeout, this.controller.signal, async signal => await this.round(next.peer, next.seg, signal, next.ranges, next.placement))
      // A round cut short at its record limit that moved records made progress: the pair is taken again next. One that
      // moved none (records the peer refuses) is held back, or it would be taken again and again before the others.
      if (result.complete) done?.set(key, normalize([...(done.get(key) ?? []), ...next.ranges]))
      else if (result.pulled + result.pushed === 0) this.failedPairs.add(key)
    } catch (err) {
      if (!this.controller.signal.aborted) this.log.debug({ err, peer: next.peer, seg: next.seg }, `${what} round failed`)
      this.failedPairs.add(key)
    }
    return true
  }

  /** One round of a rebuild: the next pending pair with an alive peer; ends the rebuild when none is pending. */
  private async rebuildStep (): Promise<void> {
    // Not at once again (the rebuild's rounds follow one another with no pause): the view may take seconds.
    if (this.c.membership.ready?.() === false) { await this.pause(); return }
    const ring = this.c.ring()
    const pending = this.rebuildPending(ring)
    if (pending.length === 0) {
      try {
        await this.c.service.endRebuild()
      } catch (err) {
        // Kept on disk, the rebuild runs again after a restart: more work, never less safety.
        this.log.warn({ err }, 'could not record the end of the rebuild')
      }
      this.rebuilt = undefined
      this.failedPairs.clear()
      this.c.service.rebuilding = false
      this.log.info('rebuild complete: every segment compared with every co-replica; serving reads again')
      return
    }
    // Every pair left is with a member that is down (or failed just now): wait for it, or for the ring to drop it.
    if (!await this.comparePair(pending, this.rebuilt, 'rebuild')) await this.pause()
  }

  /**
   * The (peer, segment, ranges) a join must still compare: each member of the ring reads use with the ranges it holds
   * that this node is pending for, alive or not (as in a rebuild, a member that is down may be the only other holder of
   * an acknowledged write, so it holds up the end until it is back or leaves the ring). Those members hold every write
   * acknowledged there: each write counted the level's answers among them (see Placement).
   */
  private joinPending (p: Placement): Pair[] {
    if (this.joinPairs?.placement !== p) {
      const mine = p.rangesOf(this.self, this.rf)
      const pairs: Pair[] = []
      for (const peer of p.read.members) {
        if (peer === this.self) continue
        const shared = intersect(mine, p.rangesOf(peer, this.rf))
        for (let seg = 0; seg < this.segments; seg++) {
          const ranges = intersect(shared, [segment(seg, this.segments)])
          if (ranges.length > 0) pairs.push({ peer, seg, ranges, placement: p })
        }
      }
      this.joinPairs = { placement: p, pairs }
    }
    return this.joinPairs.pairs.filter(x => !covers(this.joined, x.peer, x.seg, x.ranges))
  }

  /** One round of a join: waits out the join delay, then compares the next pending pair; ends the join when none is left. */
  private async joinStep (): Promise<void> {
    const ready = this.c.viewReady != null ? this.c.viewReady() : this.c.membership.ready?.() !== false
    if (!ready) { await this.pause(); return }
    const p = this.placement()
    // Every member is joining: nobody holds more than this node, so there is nothing to wait for or copy; ended at once,
    // before this node coordinates (see Placement.allJoining).
    if (!p.allJoining) {
      const now = this.c.clock.now()
      this.joinReadyAt ??= now
      if (now < this.joinReadyAt + this.joinDelay) { await this.pause(Math.min(this.interval, this.joinReadyAt + this.joinDelay - now)); return }
    }
    const pending = p.allJoining || p.read === p.full ? [] : this.joinPending(p)
    if (pending.length === 0) {
      this.joined = undefined
      this.joinPairs = undefined
      this.failedPairs.clear()
      this.log.info('join complete: the ranges this node took are copied from every member holding them; serving reads')
      this.c.onJoined?.()
      return
    }
    if (!await this.comparePair(pending, this.joined, 'join')) await this.pause()
  }

  /** Waits one interval (or `ms`), or until stop(). */
  private async pause (ms = this.interval): Promise<void> {
    const signal = this.controller.signal
    if (signal.aborted) return
    await new Promise<void>(resolve => {
      let timer: TimerHandle | undefined
      const done = (): void => {
        if (timer != null) this.c.clock.clearTimeout(timer)
        signal.removeEventListener('abort', done)
        resolve()
      }
      signal.addEventListener('abort', done, { once: true })
      timer = this.c.clock.setTimeout(done, ms)
    })
  }

  private get self (): string { return this.c.membership.self() }

  /** Forgets GC proofs when the ring changed: they were about other replica sets. */
  private checkRing (): void {
    const p = this.placement()
    const key = p.key
    if (key !== this.ringKey) {
      this.ringKey = key
      this.synced = new Map()
      // Which records this node replicates, and so must collect, changed with the ring.
      this.collectDue.clear()
    }
    if (key !== this.ringSeen.key) {
      const now = this.c.clock.now()
      // A member that reads now go to (a join's end, or a new member this node never saw joining): members that have
      // yet to hear of it read the ranges that moved from the replicas they had, which keep them for the rebalance
      // grace. Seen whenever this node next looks, however short the join was and whatever else changed with it.
      const prev = this.ringSeen
      if (prev.key !== '' && p.read.members.some(m => !prev.read.includes(m))) this.rebalanceHeldUntil = now + this.rebalanceGrace
      this.ringSeen = { key, since: now, read: p.read.members }
      this.rebalanceFrom.clear()
    }
  }

  /** One background tick: the next (peer, segment) round, then rebalance and GC of that segment. */
  async step (): Promise<void> {
    // A partial view would make this node hand off and forget data it still replicates.
    if (this.c.membership.ready?.() === false) return
    const ring = this.c.ring()
    this.checkRing()
    const peers = ring.members.filter(p => p !== this.self && this.c.membership.isAlive(p))
    const seg = Math.floor(this.tick / Math.max(1, peers.length)) % this.segments
    const peer = peers.length > 0 ? peers[this.tick % peers.length] : undefined
    this.tick++
    try {
      await withDeadline(this.timeout, this.controller.signal, async signal => {
        if (peer != null) await this.round(peer, seg, signal)
        await this.rebalance(seg, signal)
        await this.collect(seg, signal)
      })
    } catch (err) {
      if (!this.controller.signal.aborted) this.log.debug({ err, peer, seg }, 'anti-entropy tick failed')
    }
  }

  /**
   * Compares and repairs one segment with one peer: the ranges both hold (see Placement), or `only`, the ranges both
   * hold in placement `of`. (A GC proof is recorded only when that is still the placement.)
   */
  async round (peer: string, seg: number, signal: AbortSignal, only?: TokenRange[], of?: Placement): Promise<RoundResult> {
    const p = this.placement()
    this.checkRing()
    const result: RoundResult = { peer, segment: seg, differingLeaves: 0, pulled: 0, pushed: 0, purged: 0, complete: false }
    const span = segment(seg, this.segments)
    // The placement changed since the pair was chosen (a dead member's grace ran out meanwhile): its ranges are stale.
    if (only != null && of !== p) return result
    const ranges = intersect(only ?? p.sharedRanges(this.self, peer, this.rf), [span])
    if (ranges.length === 0) return { ...result, complete: true }
    this.counters.rounds++
    try {
      const t0 = this.c.service.stableTime()
      const depth = this.c.service.merkleDepth
      const [local, remoteRoot] = await Promise.all([
        this.c.service.tree(span, ranges, signal),
        this.c.transport.merkle(peer, { span, ranges, depth: 0 }, signal)
      ])
      if (!equal(local[0].hashes[0], remoteRoot.hashes[0])) {
        const remote = await this.c.transport.merkle(peer, { span, ranges, depth }, signal)
        let diffRanges: TokenRange[]
        if (remote.depth !== depth || remote.hashes.length !== local[depth].hashes.length) {
          diffRanges = ranges
          result.differingLeaves = 1
        } else {
          const leaves: TokenRange[] = []
          local[depth].hashes.forEach((h, i) => { if (!equal(h, remote.hashes[i])) leaves.push(this.c.service.leafRange(span, i)) })
          result.differingLeaves = leaves.length
          diffRanges = intersect(normalize(leaves), ranges)
        }
        this.c.metrics.aeRangesRepaired.inc(result.differingLeaves)
        const truncated = await this.repair(peer, diffRanges, result, signal)
        result.complete = !truncated
      } else {
        result.complete = true
      }
      if (result.complete && this.placement() === p && p.key === this.ringKey) {
        let m = this.synced.get(peer)
        if (m == null) this.synced.set(peer, m = new Map())
        m.set(seg, t0)
        this.counters.completeRounds++
      }
      this.c.metrics.aeRounds.inc({ outcome: result.complete ? 'complete' : 'partial' })
      if (result.pulled + result.pushed > 0) this.log.debug(result, 'anti-entropy repaired differences')
      return result
    } catch (err) {
      this.counters.failedRounds++
      this.c.metrics.aeRounds.inc({ outcome: 'failed' })
      throw err
    }
  }

  private syncedAt (peer: string, seg: number): number {
    return this.synced.get(peer)?.get(seg) ?? -Infinity
  }

  /** Diffs versions in the given ranges and streams records both ways. Returns true if it stopped at the record limit. */
  private async repair (peer: string, ranges: TokenRange[], result: RoundResult, signal: AbortSignal): Promise<boolean> {
    const remote = new Map<string, Version>()
    let after = ''
    for (;;) {
      const page = await this.c.transport.fetchRange(peer, { ranges, digestsOnly: true, limit: 5000, after }, signal)
      for (const v of page.versions) remote.set(v.key, v)
      if (!page.more || page.cursor === '') break
      after = page.cursor
    }
    const now = this.c.clock.now()
    const pull: string[] = []
    const push: KvRecord[] = []
    for await (const e of this.c.service.entries(ranges)) {
      const r = remote.get(e.record.key)
      remote.delete(e.record.key)
      if (r == null) {
        // A peer with no version of the key has nothing a tombstone must shadow, so old dead records are
        // not sent to it: "holds it or holds nothing" is what GC needs, and not re-sending lets purges
        // on different replicas converge instead of bouncing the tombstone around. A young one (dead for
        // less than half the minimum age) is sent: the replicas then hold it alike and their trees agree
        // while it is kept, where the leaf had differed on every round for hours, until the purge.
        if (!isDead(e.record, now) || (this.tombstoneMinAge > 0 && now - deadSince(e.record) < this.tombstoneMinAge / 2)) push.push(e.record)
        continue
      }
      const cmp = compareTimestamps(e.record.ts, r.ts)
      if (cmp > 0) push.push(e.record)
      else if (cmp < 0) pull.push(r.key)
    }
    // A dead record we lack entirely cannot resurrect anything here; not pulling it lets purges converge.
    for (const r of remote.values()) if (!r.dead) pull.push(r.key)

    const budget = this.maxRecords
    const truncated = pull.length + push.length > budget
    const pullNow = pull.slice(0, Math.max(0, Math.min(pull.length, budget - Math.min(push.length, Math.floor(budget / 2)))))
    const pushNow = push.slice(0, budget - pullNow.length)

    for (let i = 0; i < pullNow.length;) {
      const res = await this.c.transport.fetch(peer, { keys: pullNow.slice(i, i + 500) }, signal)
      if (res.records.length === 0) break
      i += Math.min(500, res.records.length)
      await this.c.service.write({ records: res.records }, signal)
      result.pulled += res.records.length
    }
    for (const batch of batches(pushNow, this.maxBatchBytes)) {
      // A round under way when this replica came back from an absence (a freeze) sends nothing more until it is
      // checked, and does not count as complete.
      if (this.c.membership.ready?.() === false) throw new UnavailableError('this replica is not ready (back from an absence?): round abandoned')
      await this.c.transport.write(peer, { records: batch }, signal)
      result.pushed += batch.length
    }
    this.counters.pulled += result.pulled
    this.counters.pushed += result.pushed
    this.counters.purged += result.purged
    this.c.metrics.aeRecordsStreamed.inc({ direction: 'in' }, result.pulled)
    this.c.metrics.aeRecordsStreamed.inc({ direction: 'out' }, result.pushed)
    this.c.metrics.tombstonesPurged.inc(result.purged)
    return truncated
  }

  /**
   * Moves records in this segment that this node no longer replicates (the ring changed) to
   * their replicas, and deletes them here once every replica acknowledged.
   */
  async rebalance (seg: number, signal: AbortSignal): Promise<number> {
    const p = this.placement()
    const span = segment(seg, this.segments)
    // While members join, the ranges this node is a natural replica of stay here (it serves their reads), though the
    // full ring has moved some of them away: the ring reads use decides what is foreign.
    const foreign = intersect(normalize(p.read.ranges(this.rf).filter(x => !x.replicas.includes(this.self)).flatMap(x => x.ranges)), [span])
    const now = this.c.clock.now()
    this.checkRing()
    if (foreign.length === 0 || now < this.rebalanceHeldUntil) return 0
    const entries: Array<{ e: LocalEntry, targets: string[] }> = []
    let examined = 0
    // Each round goes on where the last one stopped, so that records waiting out their grace at the start of a
    // segment do not keep the rest of it from moving.
    let last: string | undefined
    let stopped = false
    for await (const e of this.c.service.entries(foreign, this.rebalanceFrom.get(seg))) {
      // Records left for their grace count too, so that a segment full of them is not read whole every round.
      if (++examined > 4 * this.maxRecords) { stopped = true; break }
      signal.throwIfAborted()
      last = e.engineKey
      // Foreign because of a ring change this node has not heard of yet, not one it has: a leaving node hands its
      // records to their replicas in the ring without it, before the others learn that it left. Moved at once, they
      // went back to the leaving node, which then exited with them (seen: keys left with two copies after a leave).
      const storedAt = Number(e.stored.storedAt)
      if (storedAt > this.ringSeen.since && now - storedAt < this.rebalanceGrace) continue
      const targets = p.targetsForToken(e.token, this.rf).replicas
      if (targets.every(t => this.c.membership.isAlive(t))) entries.push({ e, targets })
      if (entries.length >= this.maxRecords) { stopped = true; break }
    }
    if (stopped && last != null) this.rebalanceFrom.set(seg, last)
    else this.rebalanceFrom.delete(seg)
    if (entries.length === 0) return 0
    const byTarget = new Map<string, KvRecord[]>()
    for (const { e, targets } of entries) {
      for (const t of targets) {
        const list = byTarget.get(t) ?? []
        byTarget.set(t, list)
        list.push(e.record)
      }
    }
    const failed = new Set<string>()
    // Records a target refused as stamped too far ahead of its clock: it does not hold them, so they stay here.
    const refused = new Set<KvRecord>()
    await Promise.all([...byTarget].map(async ([t, records]) => {
      try {
        for (const batch of batches(records, this.maxBatchBytes)) {
          const res = await this.c.transport.write(t, { records: batch }, signal)
          res.skewedRecords.forEach((no, i) => { if (no) refused.add(batch[i]) })
        }
      } catch (err) {
        failed.add(t)
        this.log.debug({ err, peer: t }, 'rebalance push failed')
      }
    }))
    let moved = 0
    for (const { e, targets } of entries) {
      if (targets.some(t => failed.has(t)) || refused.has(e.record)) continue
      if (await this.c.service.purge(e.record.key, e.record.ts)) moved++
    }
    this.counters.handedOff += moved
    this.c.metrics.rebalanced.inc(moved)
    return moved
  }

  /**
   * Tombstone (and expired value) GC for one segment. The segment is read only when something in it may be purged:
   * a dead record old enough (or soon to be), or a tombstone or TTL value written since the last read.
   */
  async collect (seg: number, signal: AbortSignal): Promise<number> {
    const p = this.placement()
    if (p.key !== this.ringKey) return 0
    const now = this.c.clock.now()
    const span = segment(seg, this.segments)
    const mortal = this.c.service.mortalWritesIn(span)
    const known = this.collectDue.get(seg)
    if (known != null && known.mortal === mortal && now < known.due) return 0
    this.collectDue.delete(seg)
    this.counters.gcScans++
    let due = Infinity
    let purged = 0
    const dead: LocalEntry[] = []
    for await (const e of this.c.service.entries([span])) {
      signal.throwIfAborted()
      const r = e.record
      if (!r.tombstone && r.expiresAt === 0n) continue
      // While members join, the pending replicas hold the key too, and must be proven to hold the tombstone.
      const replicas = p.targetsForToken(e.token, this.rf).replicas
      if (!replicas.includes(this.self)) continue
      const storedAt = Number(e.stored.storedAt)
      // Dead since it was stored here (a tombstone) or since it expired, whichever is later.
      const diedHere = Math.max(storedAt, r.tombstone ? 0 : Number(r.expiresAt))
      if (!isDead(r, now) || now - diedHere < this.tombstoneMinAge) {
        due = Math.min(due, diedHere + this.tombstoneMinAge)
        continue
      }
      if (replicas.every(r => r === this.self || storedAt <= this.syncedAt(r, seg))) dead.push(e)
      // Old enough but not yet proven held by every replica: look again on the segment's next visit.
      else due = now
    }
    // Recorded first: a replica back from a long absence asks whether a record that died while it was away was purged.
    if (dead.length > 0) await this.c.service.notePurging(dead.reduce((latest, e) => Math.max(latest, deadSince(e.record)), 0))
    for (const e of dead) {
      const outcome = await this.c.service.purgeIfUnchanged(e.record.key, e.record.ts)
      if (outcome === 'purged') purged++
      // A live write of the key is committing; should it fail, the record is still dead, and no mortal write says so.
      else if (outcome === 'pending') due = now
    }
    this.collectDue.set(seg, { due, mortal })
    this.counters.purged += purged
    this.c.metrics.tombstonesPurged.inc(purged)
    return purged
  }
}

/** A peer and segment a rebuild or join compares, and the ranges of it they hold in common. */
interface Pair { peer: string, seg: number, ranges: TokenRange[], placement: Placement }

/** The pair's ranges were all compared completely (ranges, not pairs: when the ring loses a member, a pair covers more). */
function covers (done: Map<string, TokenRange[]> | undefined, peer: string, seg: number, ranges: TokenRange[]): boolean {
  const d = done?.get(`${peer} ${seg}`)
  return d != null && rangeSize(intersect(ranges, d)) === rangeSize(ranges)
}

/** When a dead record died: its delete's time, or its expiry. The same on every replica, unlike storedAt. */
function deadSince (r: KvRecord): number {
  return r.tombstone ? Number(r.ts?.wall ?? 0) : Number(r.expiresAt)
}

function equal (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a == null || b == null) return (a?.byteLength ?? 0) === 0 && (b?.byteLength ?? 0) === 0
  return Buffer.compare(a, b) === 0
}

function batches (records: KvRecord[], maxBytes: number): KvRecord[][] {
  const out: KvRecord[][] = []
  let cur: KvRecord[] = []
  let bytes = 0
  for (const r of records) {
    const size = recordBytes(r)
    if (cur.length > 0 && (bytes + size > maxBytes || cur.length >= 1000)) { out.push(cur); cur = []; bytes = 0 }
    cur.push(r)
    bytes += size
  }
  if (cur.length > 0) out.push(cur)
  return out
}
