import type { Registry } from 'prom-client'
import { systemClock, type Clock } from '../lib/clock.js'
import { silentLogger, componentLogger, type Logger } from '../lib/log.js'
import { sameItems } from '../lib/arrays.js'
import type { StorageEngine } from './engine.js'
import type { MembershipView, ReplicaTransport, ConsistencyLevel } from './types.js'
import { HybridClock } from './hlc.js'
import { ReplicaService } from './service.js'
import { HintStore, type HintsInit, type HintTargetStats } from './hints.js'
import { Coordinator, type PutOptions, type GetOptions, type OperationOptions, type WriteResult, type GetResult, type ScanOptions, type ScanResult, type HandoffResult } from './coordinator.js'
import { AntiEntropy, type AntiEntropyInit, type AntiEntropyStats } from './anti-entropy.js'
import { AbsenceGuard, type AbsenceGuardInit } from './absence.js'
import { StorageMetrics } from './metrics.js'
import { Ring, Placement } from './placement.js'
import { DEFAULT_REPLICATION_FACTOR, DEFAULT_VNODES, DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_CLOCK_DRIFT, DEFAULT_MAX_HINT_AGE, TOMBSTONE_MIN_AGE_MARGIN } from './constants.js'

export * from './types.js'
export * from './errors.js'
export * from './engine.js'
export * from './hlc.js'
export * from './placement.js'
export * from './tokens.js'
export * from './record.js'
export * from './constants.js'
export { ReplicaService, type ReplicaServiceInit, type ReplicaStats } from './service.js'
export { HintStore, type HintsInit, type HintStats, type HintTargetStats } from './hints.js'
export { Coordinator, requiredAnswers, type PutOptions, type GetOptions, type OperationOptions, type WriteResult, type GetResult, type ScanOptions, type ScanResult, type HandoffResult } from './coordinator.js'
export { AntiEntropy, type AntiEntropyInit, type AntiEntropyStats, type RoundResult } from './anti-entropy.js'
export { AbsenceGuard, type AbsenceGuardInit } from './absence.js'
export { StorageMetrics } from './metrics.js'
export { LocalNetwork, LocalReplicaTransport, LocalMembership, type FailureMode } from './local.js'
export { replicaMethods } from './methods.js'
export * as messages from './storage.js'

/** What the store needs from its host node. */
export interface StorageComponents {
  /** The local engine; the store opens it on start() and closes it on stop(). */
  engine: StorageEngine
  membership: MembershipView
  transport: ReplicaTransport
  /** @default systemClock */
  clock?: Clock
  /** @default silentLogger */
  logger?: Logger
  /** Metrics are registered here when given. */
  registry?: Registry
  /**
   * Called once when this node, started with `joining`, has copied its ranges: the host then stops announcing it as
   * joining (see MembershipView.joining). @default none
   */
  onJoined?: () => void
  /**
   * Called when this node, not joining, starts to join again: the ring let go of it (see AbsenceGuard) and it must copy
   * what its ranges took meanwhile before it is read from. The host announces it as joining until `onJoined`. @default none
   */
  onRejoining?: () => void | Promise<void>
}

export interface StorageInit {
  /** Copies of each key. @default 3 */
  replicationFactor?: number
  /** Virtual nodes per member on the ring; must be equal on every node. @default 256 */
  vnodes?: number
  /** @default 'quorum' */
  defaultConsistency?: ConsistencyLevel
  /** Per-request deadline (ms). @default 2 s */
  timeout?: number
  /** @default 1 KiB */
  maxKeyBytes?: number
  /** @default 1 MiB */
  maxValueBytes?: number
  /**
   * The largest value this replica takes from its peers, which may be configured for more than this node's own
   * writes (maxValueBytes). @default maxValueBytes
   */
  maxReplicaValueBytes?: number
  /** Largest batch of records per request/response (keep below the RPC message limit). @default 4 MiB */
  maxBatchBytes?: number
  /** Merkle leaves per segment are 2^depth; must be equal on every node. @default 10 */
  merkleDepth?: number
  /** Remote timestamps further ahead than this do not advance the HLC (ms). @default 1 hour */
  maxClockDrift?: number
  /** @default see HintsInit */
  hints?: HintsInit
  /** @default see AntiEntropyInit */
  antiEntropy?: Omit<AntiEntropyInit, 'replicationFactor' | 'maxBatchBytes' | 'rebuild' | 'join' | 'joinDelay'>
  /**
   * This replica may have lost its data (its data dir was wiped but its identity, and so its place on the ring, is
   * old). Taken as lost if the engine holds no record of having been in service: it then takes writes at once but
   * serves reads only after anti-entropy has compared it with every co-replica. @default false
   */
  rebuild?: boolean
  /** Write batches a coordinator may have unanswered at one remote replica (see CoordinatorInit). @default 1 */
  maxBatchesInFlight?: number
  /** @default see AbsenceGuardInit */
  absence?: AbsenceGuardInit
  /**
   * This node is new to a mesh that may hold data, and the host announces it as joining (MembershipView.joining):
   * it takes writes for its ranges at once, and is read from once anti-entropy has compared those ranges with every
   * member that holds them now (see AntiEntropyInit.join). @default false
   */
  joining?: boolean
  /**
   * How long a joining node waits, once its view is ready, before it copies its ranges: the time for every member to
   * hear that it is joining, so that no write acknowledged without it lands after the copy (Cassandra's ring delay).
   * @default `JOIN_DELAY` (5 s)
   */
  joinDelay?: number
}

export interface StorageStats {
  self: string
  /** Records held locally, including tombstones not yet purged. */
  records: number
  tombstones: number
  /** Approximate bytes of data on disk. */
  bytes: number
  hintsPending: number
  /** The membership view is complete enough to coordinate requests (see MembershipView.ready). */
  ready: boolean
  /** This replica lost its data and refuses reads until anti-entropy has compared it with every co-replica. */
  rebuilding: boolean
  /** This node joined the mesh and is still copying its ranges; members read its ranges from their other replicas. */
  joining: boolean
  /** Members this node sees as joining (itself included), whose ranges it reads from the ring without them. */
  joiningMembers: string[]
  /**
   * This replica is back from an absence long enough for the ring to have dropped it, and serves no data until the
   * members say whether they purged deleted records meanwhile (see AbsenceGuard).
   */
  quarantined: boolean
  /** Hints held here, per target node. */
  hints: { [target: string]: HintTargetStats }
  /** The ring's members as this node sees them now, sorted (nodes that disagree here place keys differently). */
  ring: string[]
  /** Fraction of the token space this node is primary for. */
  ringShare: number
  /** Fraction of all data this node holds a replica of (sums to RF over members). */
  replicaShare: number
  antiEntropy: AntiEntropyStats
}

export interface Storage {
  start(): Promise<void>
  /** Stops background work, waits for in-flight operations, closes the engine. */
  stop(): Promise<void>
  put(key: string | Uint8Array, value: string | Uint8Array, opts?: PutOptions): Promise<WriteResult>
  /** Throws KeyNotFoundError (code NOT_FOUND) for a missing, deleted or expired key. */
  get(key: string | Uint8Array, opts?: GetOptions): Promise<GetResult>
  delete(key: string | Uint8Array, opts?: OperationOptions): Promise<WriteResult>
  scan(opts?: ScanOptions): Promise<ScanResult>
  /** Before a graceful leave: sends every local record to its replicas in the ring without this node, and delivers hints. */
  handoff(signal?: AbortSignal): Promise<HandoffResult & { hintsPending: number }>
  /** The replica side, to serve behind the RPC layer. */
  readonly service: ReplicaService
  readonly antiEntropy: AntiEntropy
  readonly hints: HintStore
  /** The ring as this node sees it now: where writes go. */
  ring(): Ring
  /** Where keys live while members join: the ring reads use, and each key's pending replicas (see Placement). */
  placement(): Placement
  /** This node is still copying the ranges it took on joining (StorageInit.joining). */
  joining(): boolean
  /** The key's replicas in preference order. */
  replicasOf(key: string): string[]
  stats(): Promise<StorageStats>
}

export function createStorage (components: StorageComponents, init: StorageInit = {}): Storage {
  const clock = components.clock ?? systemClock
  const root = components.logger ?? silentLogger
  const logger = componentLogger(root, 'storage')
  const { engine, transport } = components
  // The store is ready once membership is and the replica knows its data is not stale: see AbsenceGuard.
  let guard: AbsenceGuard | undefined
  const membership: MembershipView = {
    ...components.membership,
    ready: () => viewReady() && !(selfJoining && placement().allJoining)
  }
  const self = membership.self()
  const rf = init.replicationFactor ?? DEFAULT_REPLICATION_FACTOR
  const vnodes = init.vnodes ?? DEFAULT_VNODES
  const maxBatchBytes = init.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES
  const metrics = new StorageMetrics(components.registry)
  metrics.watchEngine(() => engine.stats())
  const hlc = new HybridClock(self, clock, { maxDrift: init.maxClockDrift ?? DEFAULT_MAX_CLOCK_DRIFT })
  // Asked for on every operation; Ring.of sorts and joins the member ids to find its cached ring, which cost a write
  // about 2 % of a coordinator's CPU. The view's list comes in a stable order, so an unchanged list is the same ring.
  let ringMembers: string[] = []
  let lastRing: Ring | undefined
  const ring = (): Ring => {
    const members = membership.members()
    if (lastRing == null || !sameItems(members, ringMembers)) {
      lastRing = Ring.of(members.concat(self), { vnodes })
      ringMembers = members.slice()
    }
    return lastRing
  }
  // A join ends by anti-entropy: without it, a node would never be read from (nor, every member joining, be ready).
  const joinable = init.antiEntropy?.enabled !== false
  let selfJoining = init.joining === true && joinable
  const joiningMembers = (): string[] => {
    const others = membership.joining?.() ?? []
    return selfJoining ? others.concat(self) : others
  }
  // Unlike Placement.joining, also when every member is joining.
  const joiningInRing = (): string[] => { const r = ring(); return joiningMembers().filter(m => r.members.includes(m)) }
  metrics.watchJoins(() => selfJoining, () => joiningInRing().length)
  let lastPlacement: Placement | undefined
  let placementJoining: string[] = []
  const placement = (): Placement => {
    const full = ring()
    const joining = joiningMembers()
    if (lastPlacement == null || lastPlacement.full !== full || !sameItems(joining, placementJoining)) {
      lastPlacement = new Placement(full, joining)
      placementJoining = joining.slice()
    }
    return lastPlacement
  }
  // The view the join waits for before it copies; the store's own readiness also waits for the join to end when every
  // member is joining (it then ends at once), so that nothing is coordinated on a ring that is about to shrink.
  const viewReady = (): boolean => components.membership.ready?.() !== false && guard?.settled() !== false

  const service = new ReplicaService({ engine, clock, hlc, logger, onClockSkew: (n) => { metrics.clockSkewRefused.inc(n) } }, {
    merkleDepth: init.merkleDepth, maxBatchBytes, maxKeyBytes: init.maxKeyBytes, maxValueBytes: init.maxReplicaValueBytes ?? init.maxValueBytes, maxClockDrift: init.maxClockDrift
  })
  let coordinator: Coordinator | undefined
  const hints = new HintStore({
    engine, clock, logger, membership, transport, metrics,
    forward: async (records, signal, hintedAt) => { await coordinator?.forward(records, signal, hintedAt) }
  }, { maxBatchBytes, ...init.hints })
  coordinator = new Coordinator({ service, hints, membership, transport, clock, hlc, logger, metrics, ring, placement }, {
    replicationFactor: rf,
    maxClockDrift: init.maxClockDrift,
    defaultConsistency: init.defaultConsistency,
    timeout: init.timeout,
    maxKeyBytes: init.maxKeyBytes,
    maxValueBytes: init.maxValueBytes,
    maxBatchBytes,
    maxBatchesInFlight: init.maxBatchesInFlight
  })
  const antiEntropy = new AntiEntropy({
    service, transport, membership, clock, logger, metrics, ring, placement, viewReady,
    onJoined: () => {
      selfJoining = false
      service.joining = false
      components.onJoined?.()
    }
  }, {
    ...init.antiEntropy,
    join: selfJoining,
    joinDelay: init.joinDelay,
    tombstoneMinAge: init.antiEntropy?.tombstoneMinAge ?? (init.hints?.maxAge ?? DEFAULT_MAX_HINT_AGE) + TOMBSTONE_MIN_AGE_MARGIN,
    replicationFactor: rf, maxBatchBytes
  })
  const co = coordinator
  service.joining = selfJoining
  // Back in a ring that let go of it, a replica lacks what its ranges took meanwhile, on members that may not be among
  // its co-replicas now (the one that stood in for it, with another that missed a write, makes a quorum): it is read
  // from again only once it has copied those ranges, as a new node is. Its absence check finds this out (onLetGo).
  const rejoin = async (): Promise<void> => {
    if (!joinable) return
    antiEntropy.rejoin()
    if (!selfJoining) {
      selfJoining = true
      service.joining = true
      logger.warn('the ring let go of this node while it was away: joining again, read from once it has copied its ranges')
    }
    // Again on a retry: the host makes it durable, and the check that asked does not end until it has.
    await components.onRejoining?.()
  }
  guard = new AbsenceGuard({ service, transport, membership: components.membership, antiEntropy, clock, logger, onLetGo: rejoin }, init.absence)
  const absence = guard

  return {
    service,
    antiEntropy,
    hints,
    ring,
    placement,
    joining: () => selfJoining,
    replicasOf: (key) => ring().replicas(key, rf),
    async start () {
      await engine.open()
      await service.start()
      // A wiped replica: its rebuild is kept on disk, so that a restart before it ends does not pass for a whole
      // replica. (What it purged before the wipe is forgotten: it answers a returning replica as having purged nothing,
      // as a member of an older version does. Answering "everything" made every replica back from an absence drop its
      // data, all of them at once after an outage of the whole mesh.)
      // Wiped only if the engine holds no record of having been in service: a daemon that crashed before it first
      // saved its ring members (init.rebuild's hint) still holds what it took, which may be stale, and must be checked
      // as any replica back from an absence is. Rebuilt on top of as if wiped, a delete it missed came back.
      if (init.rebuild === true && service.lastAliveBeforeStart == null && service.absence == null) {
        await service.setAbsence({ phase: 'rebuilding', before: 0, awayFrom: 0 }, clock.now())
      }
      await absence.start()
      await hints.start()
      antiEntropy.start()
      logger.info({ self, rf, vnodes }, 'storage started')
    },
    async stop () {
      await absence.stop()
      await antiEntropy.stop()
      await hints.stop()
      await co.stop()
      await service.stop()
      await engine.close()
    },
    put: async (key, value, opts) => await co.put(key, value, opts),
    get: async (key, opts) => await co.get(key, opts),
    delete: async (key, opts) => await co.delete(key, opts),
    scan: async (opts) => await co.scan(opts),
    async handoff (signal) {
      // Data that may be stale must not reach other replicas; its ranges' other replicas hold what is current.
      absence.noticeAbsence()
      if (service.quarantined) {
        logger.warn('leaving before knowing whether this replica\'s data is stale: no handoff')
        return { records: 0, failed: 0, hintsPending: hints.stats().pending }
      }
      const result = await co.handoff(signal)
      for (const target of Object.keys(hints.stats().byTarget)) {
        signal?.throwIfAborted()
        await hints.flush(target).catch(err => { logger.warn({ err, target }, 'hint delivery before leaving failed') })
      }
      return { ...result, hintsPending: hints.stats().pending }
    },
    async stats () {
      const s = await service.stats()
      const r = ring()
      return {
        self,
        ...s,
        hintsPending: hints.stats().pending,
        ready: membership.ready?.() ?? true,
        rebuilding: antiEntropy.rebuilding,
        joining: selfJoining,
        joiningMembers: joiningInRing(),
        quarantined: service.quarantined,
        hints: await hints.targets(),
        ring: [...r.members],
        ringShare: r.share(self),
        replicaShare: r.replicaShare(self, rf),
        antiEntropy: antiEntropy.stats()
      }
    }
  }
}
