import type { Clock, TimerHandle } from '../lib/clock.js'
import type { Logger } from '../lib/log.js'
import { MeshError } from '../lib/errors.js'
import { delay } from '../lib/abort.js'
import { second, minute } from '../lib/units.js'
import type { ReplicaService } from './service.js'
import type { MembershipView, ReplicaTransport } from './types.js'

/** Peers a check takes from one member's report of its ring, and callers it keeps: a bound on what a peer can add. */
const MAX_REPORTED_MEMBERS = 4096
/** Longer than any peer id; a longer entry in a member's report is not one. */
const MAX_MEMBER_ID_LENGTH = 256

/** The part of anti-entropy the guard drives. */
export interface Rebuilder {
  rebuild(): void
}

export interface AbsenceGuardComponents {
  service: ReplicaService
  transport: ReplicaTransport
  /** The view as membership gives it: its readiness, not the store's (which waits for this guard). */
  membership: MembershipView
  antiEntropy: Rebuilder
  /**
   * A member answering the check said its ring let go of this replica while it was away (MembershipView.letGo): the
   * writes its ranges took meanwhile went to other members, so it joins again before it serves (Storage's rejoin). Not
   * on an absence alone: the survivors of a mesh that lost most of its members, or the last node of two, were out of
   * touch with most of the ring but let go of by no live member, and hold what the others lack. @default none
   */
  onLetGo?: () => void | Promise<void>
  clock: Clock
  logger: Logger
}

export interface AbsenceGuardInit {
  /** @default true */
  enabled?: boolean
  /** How long the ring keeps a member that is down; a longer absence may have had this replica dropped (ms). @default 45 seconds */
  ringGrace?: number
  /** How often the replica records that it is in service (ms). @default 5 seconds */
  aliveInterval?: number
  /** How far apart two members' clocks may be (ms): a record that died this long before the absence began counts. @default 10 minutes */
  clockSlack?: number
  /** Between rounds of asking the members, and between looks at a membership view that is not ready (ms). @default 1 second */
  retryInterval?: number
  /** Deadline of one member's answer (ms). @default 5 seconds */
  timeout?: number
  /**
   * This replica left the ring gracefully when it last stopped: however soon it is back, the members may have let go of
   * it, and it is checked as after an absence (which asks them). @default false
   */
  left?: boolean
}

/**
 * Keeps a replica that was away long enough for the ring to drop it from bringing deleted data back. While it was out
 * of the ring, the others' tombstone GC did not count it as a replica, so a delete it missed may have been purged
 * everywhere else; its old value of the key would then be the only version left, and anti-entropy would copy it back
 * (Cassandra's zombie data, which it leaves to the operator: a node down past `gc_grace_seconds` must be wiped by hand).
 *
 * The replica records every few seconds that it is in service. At start, if that record is older than the ring's grace,
 * it serves no data (see ReplicaService.quarantined) and asks every ring member for the latest moment a record it
 * purged had died. If one died after the absence began, the replica may have missed its delete: it drops what it held
 * from before this start and rebuilds from its co-replicas (AntiEntropy.rebuild), keeping the writes taken since.
 * Otherwise, as after a restart shorter than the tombstone minimum age or an outage of the whole mesh, it keeps its
 * data. A member that does not answer is waited for, not guessed at: it answers, or the ring drops it. A member of a
 * version without the question cannot say, and is taken to have purged nothing (as before this guard existed).
 * Where it is (checking, rebuilding) is kept on disk with a record of running, so a short restart resumes it and a
 * longer one, an absence again, starts a new check. An absence noticed without a restart (see noticeAbsence) is
 * dealt with the same way, its line drawn when it is noticed.
 */
export class AbsenceGuard {
  private readonly c: AbsenceGuardComponents
  private readonly log: Logger
  private readonly enabled: boolean
  private readonly ringGrace: number
  private readonly aliveInterval: number
  private readonly clockSlack: number
  private readonly retryInterval: number
  private readonly timeout: number
  private readonly left: boolean
  /** A check heard that the ring let go of this replica, and the rejoin it asked for is not yet recorded. */
  private letGo = false
  private checking = false
  /** The check under way is the one m/absence holds (not one just begun, whose state is still being written). */
  private checkOnDisk = false
  private timer?: TimerHandle
  private controller = new AbortController()
  private work?: Promise<void>
  private marking: Promise<void> = Promise.resolve()
  /** The ring's members the last time this replica saw most of them alive (see inTouch). */
  private lastTouchRing: string[] = []
  /** When this replica last saw most of the ring alive (clock ms): what an absence is measured from while it runs. */
  private lastTouchAt = 0
  /**
   * The peers alive at the last touch and not lost since: those this replica stayed with while it was cut off (the
   * rest of a minority). Any other peer it hears from, or sees alive again, after an absence is proof of its return.
   */
  private companions = new Set<string>()
  /** Peers from beyond a cut that asked this replica for data while it was away or checking: asked in turn. */
  private readonly contacts = new Set<string>()
  private unsubscribe: Array<() => void> = []
  private running = false

  constructor (components: AbsenceGuardComponents, init: AbsenceGuardInit = {}) {
    this.c = components
    this.log = components.logger.child({ component: 'storage-absence' })
    this.enabled = init.enabled ?? true
    this.ringGrace = init.ringGrace ?? 45 * second
    this.aliveInterval = init.aliveInterval ?? 5 * second
    this.clockSlack = init.clockSlack ?? 10 * minute
    this.retryInterval = init.retryInterval ?? second
    this.timeout = init.timeout ?? 5 * second
    this.left = init.left ?? false
  }

  /** False while the replica does not yet know whether its data is stale: the store coordinates nothing meanwhile. */
  settled (): boolean {
    this.noticeAbsence()
    return !this.checking
  }

  /**
   * An absence without a restart: this process frozen (SIGSTOP, a paused VM) or its event loop stalled, or the
   * replica cut off from most of the ring, for longer than the grace, and back now. Looked for wherever the store's
   * readiness is asked and before the replica serves data (ReplicaService.beforeServing), so that nothing it holds
   * is served or sent between its return and the check. Cheap unless the last touch is that old.
   *
   * Back means in touch with most of the ring again, or in contact with a peer from beyond the cut: `caller` (a peer
   * asking for data) or a peer seen alive again that is not a companion. After a partition heals, the others often
   * reach this replica before it sees them alive (their failure detectors saw it first), and they must not be
   * served meanwhile. Companions are served on: the rest of a minority was cut off with this replica, and purged
   * nothing it did not see.
   */
  noticeAbsence (caller?: string): void {
    if (!this.enabled || !this.running) return
    if (!this.checking && this.c.clock.now() - this.lastTouchAt <= this.ringGrace) return
    // Still the absence a rebuild kept on disk is for, decided once back: what was held from before it is dropped
    // already. (One decided inside a cut is checked again on return: its companions must learn that it is back.)
    const state = this.c.service.absence
    if (!this.checking && state?.back === true && this.lastTouchAt <= state.awayFrom) return
    const stranger = caller != null && caller !== this.c.membership.self() && !this.companions.has(caller)
    if (stranger && this.contacts.size < MAX_REPORTED_MEMBERS) this.contacts.add(caller)
    if (this.checking) return
    if (this.inTouch() || stranger || this.seesStranger()) this.begin(this.lastTouchAt)
  }

  private seesStranger (): boolean {
    const self = this.c.membership.self()
    for (const p of this.c.membership.alive()) if (p !== self && !this.companions.has(p)) return true
    return false
  }

  /** After ReplicaService.start(), and after a wiped replica's rebuild has been recorded (ReplicaService.setAbsence). */
  async start (): Promise<void> {
    this.controller = new AbortController()
    this.running = true
    this.companions = new Set(this.c.membership.alive())
    const lost = (peer: string): void => { this.companions.delete(peer) }
    // A member that left gracefully is gone from the ring for good, not beyond a cut: being in touch is no longer
    // measured against it (or a node scaled down from a mesh of two would count itself away for ever).
    const left = (peer: string): void => {
      lost(peer)
      this.lastTouchRing = this.lastTouchRing.filter(p => p !== peer)
    }
    this.unsubscribe = [this.c.membership.on('dead', lost), this.c.membership.on('left', left)]
    this.c.service.beforeServing = (caller) => { this.noticeAbsence(caller) }
    this.c.service.ringMembers = () => this.c.membership.members()
    this.c.service.letGo = (peer) => this.c.membership.letGo?.(peer) === true
    // A peer checking itself asks every member, companions too. One that was cut off with this replica and is back
    // in touch with the ring is a companion no more: what this replica would serve it from now on may be stale for
    // the others it now reaches. (One checking itself inside the cut is not back, and stays one.)
    this.c.service.onPurges = (caller, back) => {
      if (caller == null || caller === this.c.membership.self()) return
      if (back) this.companions.delete(caller)
      this.noticeAbsence(caller)
    }
    const last = this.c.service.lastAliveBeforeStart
    const state = this.c.service.absence
    const now = this.c.clock.now()
    // Measured from the last record, and against its ring, not from this start: a check at this start that does not
    // bring the replica back in touch (one made inside a cut) leaves the absence to be checked again on return.
    this.lastTouchRing = this.c.service.ringBeforeStart
    // (A recent record after an absence's start means the replica was back in touch since it began.)
    // (A wiped replica's state says 0: it has nothing from before its wipe.)
    this.lastTouchAt = Math.min(now, last ?? (state != null && state.awayFrom > 0 ? state.awayFrom : now))
    // A clock behind the last record of being in service is taken as away too.
    const awayLongSince = (at: number | undefined): boolean => at == null || now - at > this.ringGrace || now < at
    if (state != null) {
      // A check or rebuild under way: resumed as it was after a short stop (a new line would count the writes taken
      // during it as held from before, to be dropped, and drop what a rebuild has fetched again). After a longer one,
      // an absence of its own: a new check, which ends in a rebuild if one was under way.
      const running = Math.max(last ?? -Infinity, this.c.service.absenceAliveAt ?? -Infinity)
      // (After a leave, a wiped replica's rebuild is resumed, not checked anew: it serves no reads until it has compared
      // its ranges with every co-replica in the ring as it is now, which holds every write acknowledged while it was out.)
      const wiped = state.phase === 'rebuilding' && state.before === 0
      if (this.enabled && ((this.left && !wiped) || awayLongSince(Number.isFinite(running) ? running : undefined))) this.begin(Math.min(state.awayFrom, last ?? state.awayFrom))
      else this.begin()
    } else if (this.enabled && last != null && (this.left || awayLongSince(last))) {
      this.begin(last)
    } else {
      // The first record of being in service is written in touch or not (an absence is measured from now, as
      // lastTouchAt says): a crash before it would leave data with no record of service, which a start without the
      // ring members file takes for a wiped replica's.
      if (last == null) await this.c.service.markAlive(now, this.lastTouchRing)
      this.markAlive()
    }
    this.tick()
    // On disk before the replica takes a write: a crash soon after must not leave data without a record of service
    // (taken for a wiped replica's, it would not be checked).
    await this.marking
  }

  /**
   * Quarantines the replica at once, records where it is, and goes on with the check or the rebuild. `awayFrom`: the
   * last moment in service before an absence just found; without it, a check or rebuild kept on disk resumes.
   */
  private begin (awayFrom?: number): void {
    const { service, clock } = this.c
    let state = service.absence
    // A wiped replica's rebuild resumed: there is nothing from before to drop, and it takes writes and coordinates at
    // once (its reads are refused while anti-entropy rebuilds it).
    const wiped = awayFrom == null && state?.phase === 'rebuilding' && state.before === 0
    this.checking = !wiped
    this.c.service.quarantined = !wiped
    // Its reads refused from now, not once the work below gets to it.
    if (wiped) this.c.antiEntropy.rebuild()
    if (awayFrom != null) {
      // Away again, even in the middle of an earlier check or rebuild: everything held until now may be stale, and
      // only what is stored from now on was taken after the absence (past every record held, should the clock have
      // stepped back). A check asks about deaths since the earliest absence, and tells the members it is back; a
      // rebuild already decided is made whatever they say. Kept on disk, so that a restart keeps the line.
      const now = clock.now()
      const rebuild = state?.phase === 'rebuilding' || state?.rebuild === true
      state = {
        phase: 'checking',
        before: Math.max(now, service.newestStoredAt + 1),
        awayFrom: Math.min(state?.awayFrom ?? awayFrom, awayFrom),
        rebuild,
        // What the rebuild under way would have kept (none if that is not known).
        ...(rebuild && state?.keepAfter != null ? { keepAfter: state.keepAfter } : {})
      }
      this.log.warn({ awayMs: Math.round(now - awayFrom), phase: state.phase }, 'back after an absence the ring may have dropped this replica for: serving no data until the members say whether they purged deletes it may have missed')
    }
    if (state == null) return
    const found = state
    const signal = this.controller.signal
    this.checkOnDisk = awayFrom == null
    this.work = this.retrying(signal, async () => {
      if (!this.checkOnDisk) {
        await service.setAbsence(found, clock.now())
        this.checkOnDisk = true
      }
      // Tried again after a failure, from where the disk says it is: a rebuild decided, and its drop begun, must not
      // be taken back by a second check that hears of no purge.
      const current = service.absence ?? found
      if (current.phase === 'checking') await this.decide(current.awayFrom, current.before, signal, current.rebuild === true, current.keepAfter)
      else await this.rebuild(current.before, signal, undefined, current.keepAfter)
    })
  }

  async stop (): Promise<void> {
    this.running = false
    for (const off of this.unsubscribe.splice(0)) off()
    this.controller.abort()
    if (this.timer != null) this.c.clock.clearTimeout(this.timer)
    this.timer = undefined
    await this.work
    // The last moment in service: a graceful stop is an absence like any other once the ring lets go of this node.
    // Not after an absence not yet noticed (a stop right after a freeze), which the next start must find.
    if (this.c.clock.now() - this.lastTouchAt <= this.ringGrace) this.markAlive()
    await this.marking
  }

  private tick (): void {
    this.timer = this.c.clock.setTimeout(() => {
      this.markAlive()
      // Running with the check on disk and in touch with the ring: a restart soon after may resume it. Not out of
      // touch: a crash then must find an absence at the next start, as markAlive's record does. (Once the check is
      // over, markAlive's own record says as much.)
      if (this.checking && this.checkOnDisk && this.inTouch()) {
        const at = this.c.clock.now()
        this.marking = this.marking.then(async () => { await this.c.service.markAbsenceAlive(at) })
          .catch(err => { this.log.warn({ err }, 'could not record that this replica is running') })
      }
      this.tick()
    }, this.aliveInterval)
  }

  /**
   * Only while this replica sees most of the ring alive: cut off from it (a partition, its peers declared dead), it is
   * out of their rings as surely as if it were down, and a crash then must find the absence at the next start.
   * (So in a 2-node mesh with one node down, the other checks itself once it returns: briefly not ready.)
   */
  private markAlive (): void {
    // First: a timer firing late after a freeze must not pass the return off as no absence. (Also looked for while out
    // of touch: a stranger seen alive again is a return even to a replica that nothing asks for data.)
    this.noticeAbsence()
    // Not while checking either: until the check's state is on disk, the record of the absence is this one.
    if (this.checking || !this.inTouch()) return
    const at = this.c.clock.now()
    this.lastTouchAt = at
    this.companions = new Set(this.c.membership.alive())
    const ring = this.lastTouchRing
    this.marking = this.marking.then(async () => { await this.c.service.markAlive(at, ring) })
      .catch(err => { this.log.warn({ err }, 'could not record that this replica is in service') })
  }

  /**
   * Measured against the ring as it was when last in touch, as well as now: the view drops members dead past their
   * grace, and a replica cut off from everyone would otherwise soon count itself a majority of a ring of one.
   */
  private inTouch (): boolean {
    const self = this.c.membership.self()
    const ring = new Set(this.c.membership.members())
    for (const p of this.lastTouchRing) ring.add(p)
    ring.delete(self)
    let alive = 0
    for (const p of ring) if (this.c.membership.isAlive(p)) alive++
    const touching = (alive + 1) * 2 > ring.size + 1
    if (touching) this.lastTouchRing = this.c.membership.members()
    return touching
  }

  /** Sees most of the ring alive, or heard from most of it (`heard`: the members that answered a check). */
  private isBack (heard?: Set<string>): boolean {
    if (this.inTouch()) return true
    if (heard == null || heard.size === 0) return false
    const self = this.c.membership.self()
    const ring = new Set([...this.lastTouchRing, ...this.c.membership.members()])
    ring.delete(self)
    let answered = 0
    for (const p of ring) if (heard.has(p)) answered++
    return (answered + 1) * 2 > ring.size + 1
  }

  /** Runs fn until it succeeds or the guard stops; a failure (the engine, say) is logged and tried again later. */
  private async retrying (signal: AbortSignal, fn: () => Promise<void>): Promise<void> {
    for (let failures = 0; ; failures++) {
      try {
        await fn()
        return
      } catch (err) {
        if (signal.aborted) return
        this.log.error({ err, failures: failures + 1 }, 'dealing with this replica\'s absence failed; trying again')
        try {
          await delay(Math.min(30 * second, this.retryInterval * 2 ** Math.min(failures, 5)), signal, this.c.clock)
        } catch {
          return
        }
      }
    }
  }

  /** `keptBefore`: with `mustRebuild`, what the rebuild under way kept (undefined: none). */
  private async decide (lastAlive: number, before: number, signal: AbortSignal, mustRebuild = false, keptBefore?: number): Promise<void> {
    const self = this.c.membership.self()
    // Whole milliseconds, as a record's stamp is: a delete in the same millisecond as the last record of being in
    // service may have come after it.
    const since = Math.floor(lastAlive) - this.clockSlack
    let answered = new Set<string>()
    const reports = new Map<string, string[]>()
    const seenInRing = new Set<string>()
    let inTouchSince: number | undefined
    let confirming = false
    let purger: string | undefined
    // The latest moment a record any member purged had died: a record stamped after it was deleted by none of them.
    let purgedUpTo = 0
    // A member that cannot say: when another did purge, a rebuild keeps nothing (its purges may be later).
    let unknownPurges = false
    let purgerAt: number | undefined
    // Every member named by this ring or by a member that answered was heard in the last round.
    let heardAll = false
    // Every member that answered, in any round (`answered` starts again for the confirming round).
    const heardEver = new Set<string>()
    let cutShort = false
    // A member whose ring let go of this replica while it was away (see onLetGo).
    let letGoBy: string | undefined
    // The members asked once this replica was back: a companion still cut off learns from that question that it must
    // check itself before serving this replica again (see ReplicaService.onPurges).
    const toldBack = new Set<string>()
    const ask = async (peer: string, round: number): Promise<void> => {
      try {
        const back = this.isBack(new Set([...answered, ...heardEver]))
        const res = await this.c.transport.purges(peer, { back }, AbortSignal.any([signal, AbortSignal.timeout(this.timeout)]))
        answered.add(peer)
        heardEver.add(peer)
        if (back) toldBack.add(peer)
        reports.set(peer, res.members.slice(0, MAX_REPORTED_MEMBERS).filter(m => m.length > 0 && m.length <= MAX_MEMBER_ID_LENGTH))
        if (Number(res.lastPurgeAt) >= since) {
          purger ??= peer
          purgerAt ??= this.c.clock.now()
        }
        purgedUpTo = Math.max(purgedUpTo, Number(res.lastPurgeAt))
        if (res.letGo) letGoBy ??= peer
      } catch (err) {
        if (err instanceof MeshError && err.code === 'UNKNOWN_METHOD') {
          answered.add(peer)
          heardEver.add(peer)
          toldBack.add(peer)
          unknownPurges = true
          this.log.warn({ peer }, 'member runs a version that cannot say what it purged; taken to have purged nothing')
        } else if (round % 10 === 9) {
          this.log.warn({ err, peer }, 'member has not said what it purged; waiting for it, or for the ring to drop it')
        }
      }
    }
    for (let round = 0; ; round++) {
      if (round > 0) await delay(this.retryInterval, signal, this.c.clock)
      if (this.c.membership.ready?.() === false) continue
      const members = new Set(this.c.membership.members())
      members.delete(self)
      for (const p of members) seenInRing.add(p)
      // Asked: this replica's ring, and the peers that asked it for data since it was back, and every member of the
      // rings those asked report. Back from a cut, its own ring may lack the members beyond it (it dropped them as
      // they dropped it). Waited for until they answer or this ring drops them (a member that stays down leaves it
      // after its grace); one it has not yet had in its ring is waited for until it has.
      const wanted = new Set<string>(members)
      for (const p of this.contacts) wanted.add(p)
      for (const r of reports.values()) for (const p of r) wanted.add(p)
      wanted.delete(self)
      for (const p of wanted) if (!members.has(p) && seenInRing.has(p)) wanted.delete(p)
      // A peer this ring still lacks once this replica has seen most of the ring alive for the ring's grace is down past
      // its grace, or gone: the ring would have taken it in otherwise. (Out of touch, it may be beyond a cut, and is
      // waited for.)
      if (this.inTouch()) inTouchSince ??= this.c.clock.now()
      else inTouchSince = undefined
      if (inTouchSince != null && this.c.clock.now() - inTouchSince > this.ringGrace) {
        for (const p of wanted) if (!members.has(p)) wanted.delete(p)
      }
      // Decided once this replica's ring holds every member that answered (and has not dropped since), and not
      // before: a rebuild compares with the co-replicas of this ring, and serving resumes on it.
      const ringHoldsAnswered = [...answered].every(p => members.has(p) || !wanted.has(p))
      // But a rebuild that keeps nothing is safe as soon as a member has said it purged: a member that does not answer
      // (down, or unreachable while membership holds it alive) holds the decision only so long. (Measured against
      // every member heard in any round: `answered` may have just started again for the confirming round.)
      if (purgerAt != null && this.c.clock.now() - purgerAt > 2 * this.timeout && [...heardEver].every(p => members.has(p) || !wanted.has(p))) {
        // Told first, once, that this replica is back: a companion asked before, and still cut off, must not go on
        // serving it unchecked data during its rebuild.
        const untold = this.isBack(heardEver) ? [...heardEver].filter(p => wanted.has(p) && !toldBack.has(p)) : []
        await Promise.all(untold.map(async peer => { await ask(peer, round) }))
        signal.throwIfAborted()
        cutShort = true
        break
      }
      // Back by now, the members asked before it was are asked again, and so told.
      const untold = ringHoldsAnswered && this.isBack(answered) ? [...answered].filter(p => wanted.has(p) && !toldBack.has(p)) : []
      if (untold.length > 0) {
        await Promise.all(untold.map(async peer => { await ask(peer, round) }))
        signal.throwIfAborted()
        continue
      }
      // Every member is heard, and confirmed, even once one has said it purged: what the rebuild keeps is measured
      // against the latest purge of them all.
      const waiting = [...wanted].filter(p => !answered.has(p))
      if (waiting.length > 0) {
        // Now and then the members that answered too, for their rings as they are now: one may have dropped a member
        // it reported that is down, and which would otherwise be waited for.
        await Promise.all((round % 10 === 9 ? [...wanted] : waiting).map(async peer => { await ask(peer, round) }))
        signal.throwIfAborted()
        continue
      }
      if (!confirming) {
        // Once more, every member: one that answered just before a purge it had already begun has recorded it since.
        confirming = true
        answered = new Set()
        continue
      }
      if (ringHoldsAnswered) {
        // Not only those still waited for: one this ring has dropped may be alive beyond it (back from a cut, this
        // replica has not yet seen it again), and what it purged is not known; nor is what a member that answered
        // only before the confirming round purged since. (Only the reports of members that answered the last round
        // name others: a dead member's ring is not waited for.)
        const named = new Set([...members, ...heardEver, ...[...answered].flatMap(p => reports.get(p) ?? [])])
        named.delete(self)
        heardAll = [...named].every(p => answered.has(p))
        break
      }
    }
    // Cut short (see above), the last round's answers may be few: what was heard in any round says whether it is back.
    const heard = cutShort ? new Set([...answered, ...heardEver]) : answered
    // Before it serves again: reads of its ranges go elsewhere until it has copied them.
    if (letGoBy != null) {
      this.log.warn({ letGoBy }, 'the ring let go of this replica while it was away: joining again')
      this.letGo = true
    }
    // Kept across a retry of the check: the members that said so may not say it again.
    if (this.letGo) {
      await this.c.onLetGo?.()
      this.letGo = false
    }
    if (purger != null || mustRebuild) {
      if (purger != null) this.log.warn({ purgedBy: purger }, 'a member purged a record that died while this replica was away: dropping what it held from before, and rebuilding from its co-replicas')
      else this.log.warn('away again before a rebuild ended: dropping what it held from before, and rebuilding from its co-replicas')
      // Writes taken after every purge (on the minority side of a cut, say) are kept: only what a purged tombstone
      // may have deleted must go. (A rebuild decided before, of which it is not known, keeps nothing; nor does one
      // decided with a member that cannot say what it purged.)
      // Nor when a member was not heard (see heardAll): its purges are not known.
      const keepAfter = !heardAll || unknownPurges || (mustRebuild && keptBefore == null) ? undefined : Math.max(keptBefore ?? 0, purgedUpTo)
      await this.c.service.setAbsence({ phase: 'rebuilding', before, awayFrom: lastAlive, back: this.isBack(heard), ...(keepAfter != null ? { keepAfter } : {}) }, this.c.clock.now())
      await this.rebuild(before, signal, heard, keepAfter)
    } else {
      this.log.info('no member purged a record that died while this replica was away: keeping its data')
      await this.c.service.setAbsence(undefined)
      this.settle(heard)
    }
  }

  private async rebuild (before: number, signal: AbortSignal, heard?: Set<string>, keepAfter?: number): Promise<void> {
    const forgotten = await this.c.service.forgetRecordsFromBefore(before, signal, keepAfter)
    this.log.info({ forgotten, keptStampedAfter: keepAfter }, 'dropped the records held from before the absence that a purged delete may have deleted; rebuilding')
    // Reads stay refused until the rebuild has compared every segment with every co-replica (it then clears the state).
    this.c.antiEntropy.rebuild()
    this.settle(heard)
  }

  /**
   * Serving again. Back in touch only if it sees most of the ring alive, or heard from most of it (`heard`: the members
   * that answered the check): a check made inside a cut heard only the others cut off, and is no proof that the
   * absence is over. The absence is then still measured from where it began, and checked again on return.
   */
  private settle (heard?: Set<string>): void {
    const back = this.isBack(heard)
    this.c.service.quarantined = false
    this.checking = false
    this.companions = new Set(this.c.membership.alive())
    this.contacts.clear()
    if (back) {
      this.lastTouchAt = this.c.clock.now()
      // The ring as the members that answered have it, and this one holds every one of them: what being in touch is
      // measured against from now on, rather than a ring of members lost for good before the check.
      this.lastTouchRing = this.c.membership.members()
    }
    this.markAlive()
  }
}
