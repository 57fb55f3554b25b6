import { createHash } from 'node:crypto'
import type { Logger } from '../lib/log.js'
import type { Clock } from '../lib/clock.js'
import { BadRequestError, UnavailableError } from '../lib/errors.js'
import { compareKeys, type StorageEngine, type EngineOp } from './engine.js'
import type { HybridClock } from './hlc.js'
import { compareTimestamps } from './hlc.js'
import {
  StoredRecord, type Record as KvRecord, type TokenRange, type Version,
  type WriteRequest, type WriteResponse, type ReadRequest, type ReadResponse, type ReadManyRequest, type ReadManyResponse, type FetchRequest, type FetchResponse,
  type MerkleRequest, type MerkleResponse, type FetchRangeRequest, type FetchRangeResponse, type ScanRequest, type ScanResponse,
  type PurgesRequest, type PurgesResponse
} from './storage.js'
import { tokenOf, tokenHex, MAX_TOKEN, normalize, intersect, FULL_RANGE } from './tokens.js'
import { validateKey, isDead, recordBytes } from './record.js'
import { DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_CLOCK_DRIFT, DEFAULT_MERKLE_DEPTH, DEFAULT_VERSION_CACHE_SIZE, MAX_INTERNED_NODE_IDS, MAX_KEY_BYTES, MAX_VALUE_BYTES, DEFAULT_SCAN_LIMIT, MAX_SCAN_LIMIT, MAX_READ_BATCH, MAX_FETCH_KEYS, MAX_REQUEST_RANGES } from './constants.js'
import { ValueTooLargeError } from './errors.js'

/** Engine key layout. Data is ordered by ring token so a token range is one ordered scan. */
export const DATA_PREFIX = 'd/'
const DATA_END = 'd0'
/** Secondary index ordered by key, for prefix scans. */
export const KEY_PREFIX = 'k/'
/** Hints, see hints.ts. */
export const HINT_PREFIX = 'h/'
/** When this replica was last known to be in service (wall ms): see markAlive. */
const ALIVE_KEY = 'm/alive'
/** The ring's members when this replica was last in service, newline-separated: see markAlive. */
const RING_KEY = 'm/ring'
/** The latest moment a record this replica purged had died (wall ms): see notePurging. */
const PURGED_KEY = 'm/purged'
/** An absence check or the rebuild it decided, not yet finished: see AbsenceState. */
const ABSENCE_KEY = 'm/absence'
/** The last moment this replica was running with ABSENCE_KEY set (wall ms): see markAbsenceAlive. */
const ABSENCE_ALIVE_KEY = 'm/absence-alive'

/**
 * Where a replica is in dealing with an absence (AbsenceGuard), kept across restarts. `checking`: asking the members
 * whether a record that died after `awayFrom` (its last record of being in service before the absence) was purged.
 * `rebuilding`: one was (or `rebuild` said so), and the records stored before `before` are being dropped and the rest
 * refilled from co-replicas (also after a wiped data dir, with nothing to drop). Both are times in this replica's
 * clock: records stored since `before` were taken after the absence was noticed, and are kept. A restart within the
 * ring's grace of its last moment in touch with the ring (ALIVE_KEY, or ABSENCE_ALIVE_KEY during a check) resumes it;
 * a later one draws a new line.
 */
export interface AbsenceState {
  phase: 'checking' | 'rebuilding'
  before: number
  awayFrom: number
  /** The rebuild was decided by a check that found the replica back in touch (not one made inside a cut). */
  back?: boolean
  /** The check ends in a rebuild whatever the members say: one was under way when the replica was away again. */
  rebuild?: boolean
  /**
   * A rebuild keeps the records stamped after this (clock ms): the latest moment a record the members purged had died.
   * No purged tombstone can have deleted a write stamped later. Unset: it keeps none (a rebuild decided before this
   * was known).
   */
  keepAfter?: number
}

export function dataKey (key: string, token = tokenOf(key)): string {
  return DATA_PREFIX + tokenHex(token) + key
}

export function tokenOfDataKey (engineKey: string): bigint {
  return BigInt('0x' + engineKey.slice(DATA_PREFIX.length, DATA_PREFIX.length + 16))
}

const EMPTY = new Uint8Array(0)

function encodeTime (at: number): Uint8Array {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setFloat64(0, at)
  return b
}

function decodeAbsence (raw: Uint8Array | undefined): AbsenceState | undefined {
  if (raw == null) return undefined
  try {
    const v = JSON.parse(new TextDecoder().decode(raw)) as Partial<AbsenceState>
    if ((v.phase === 'checking' || v.phase === 'rebuilding') && Number.isFinite(v.before) && Number.isFinite(v.awayFrom)) return { phase: v.phase, before: v.before as number, awayFrom: v.awayFrom as number, back: v.back === true, rebuild: v.rebuild === true, ...(Number.isFinite(v.keepAfter) ? { keepAfter: v.keepAfter } : {}) }
  } catch {}
  // Unreadable: the safe reading is that a check was under way since ever, with everything held from before it. Any
  // member's answer then counts as a purge (even "never", 0), so it always ends in a rebuild.
  return { phase: 'checking', before: Number.MAX_SAFE_INTEGER, awayFrom: 0 }
}

function decodeTime (raw: Uint8Array | undefined): number | undefined {
  if (raw == null || raw.byteLength !== 8) return undefined
  const at = new DataView(raw.buffer, raw.byteOffset, 8).getFloat64(0)
  return Number.isFinite(at) ? at : undefined
}
/** A Merkle tree's leaves, packed (about 17 KiB at depth 10), with the writes into its span when it was built. */
interface KeptTree { writes: number, leaves: Uint8Array<ArrayBuffer>, present: Uint8Array, count: number }
/** Token buckets for telling which trees a write touches: 256, by a token's top byte. */
const TREE_BUCKET_SHIFT = 56n
const TREE_BUCKETS = 256
/**
 * Trees kept (about 17 KiB each): one per segment and peer a node compares with, which is every one up to about 17
 * members (16 segments); in a larger mesh a share of them.
 */
const MAX_KEPT_TREES = 256

function sumBuckets (counts: Float64Array, span: TokenRange): number {
  let n = 0
  for (let b = Number(span.start >> TREE_BUCKET_SHIFT); b <= Number(span.end >> TREE_BUCKET_SHIFT); b++) n += counts[b]
  return n
}
const HASH_BYTES = 16

export interface ReplicaServiceComponents {
  engine: StorageEngine
  clock: Clock
  hlc: HybridClock
  logger: Logger
  /** Told how many records a write refused for timestamps too far ahead. @default none */
  onClockSkew?: (records: number) => void
}

export interface ReplicaServiceInit {
  /** Leaves per Merkle tree are 2^depth. @default 10 */
  merkleDepth?: number
  /** Response batches stop growing at this many bytes. @default 4 MiB */
  maxBatchBytes?: number
  /** @default 1 KiB */
  maxKeyBytes?: number
  /** @default 1 MiB */
  maxValueBytes?: number
  /** Keys whose stored version is kept in memory (to skip the engine read before a write). @default 100,000 */
  versionCacheSize?: number
  /**
   * A record stamped more than this ahead of this replica's wall clock is refused (ms). The hybrid clock ignores such
   * timestamps, so a version from that far ahead would win every later write of its key until the clocks caught up:
   * a node whose clock ran 2 h fast made later acknowledged writes and deletes of its keys vanish, and a member could
   * pin a key for good with a wall time of 2^64-1. @default `DEFAULT_MAX_CLOCK_DRIFT` (1 hour)
   */
  maxClockDrift?: number
}

export interface LocalEntry {
  engineKey: string
  token: bigint
  stored: StoredRecord
  record: KvRecord
}

export interface ReplicaStats {
  /** Records held, including tombstones and expired values not yet purged. */
  records: number
  tombstones: number
  /** Bytes the store takes on disk: its files, the latest writes included (hints and the node's own records too). */
  bytes: number
}

/** The writes of one key queued in the engine and not yet committed (see ReplicaService.pending). */
interface PendingWrites {
  /** The newest of them, and the commit that carries it. */
  ts: KvRecord['ts']
  tombstone: boolean
  commit: Promise<void>
  /** How many there are. */
  writes: number
  /** What the engine holds for the key meanwhile (undefined: nothing, or not known), for the record counts. */
  stored: { tombstone: boolean } | undefined
}

/** A replica write decided under its keys' locks and finished after them (see ReplicaService.pending). */
interface QueuedWrite {
  /** Commits of pending writes that some record was refused for. */
  dependsOn: Array<Promise<void>>
  write?: {
    commit: Promise<void>
    /** Its entry in `inflight`. */
    id: number
    winners: Map<string, KvRecord>
    tokens: bigint[]
    mortal: bigint[]
  }
}

/**
 * The replica side: every operation a remote coordinator or anti-entropy peer performs on
 * this node's data, against the local engine. Put it behind the RPC layer one method per
 * {@link ReplicaTransport} method; the in-process transport calls it directly.
 */
export class ReplicaService {
  private readonly engine: StorageEngine
  private readonly clock: Clock
  private readonly hlc: HybridClock
  private readonly log: Logger
  readonly merkleDepth: number
  private readonly maxBatchBytes: number
  private readonly maxKeyBytes: number
  private readonly maxValueBytes: number
  private readonly versionCacheSize: number
  private readonly locks = new Map<string, Promise<void>>()
  /**
   * The committed version of keys: those loaded at start, then every key written since, the least recently written
   * dropped past `versionCacheSize`. apply() and purge() are the only writers of data keys; an entry is set once its
   * write has committed, so it is exact; it saves the LevelDB read before a replica write.
   */
  private readonly versions = new Map<string, { ts: KvRecord['ts'], tombstone: boolean }>()
  /**
   * Writes decided and handed to the engine but not yet committed, per key: the newest version among them, how many
   * there are, and the commit that carries the newest. A key's lock is held until its write is queued, not until it
   * commits: the engine applies batches in the order they are queued, so the next write of the key can be decided
   * against this version meanwhile and share the same group commit. Held through the commit, each write of a hot key
   * waited out the fsync of the one before (about 15 % more writes per core under zipfian keys; BENCHMARKS.md, kv).
   */
  private readonly pending = new Map<string, PendingWrites>()
  /**
   * `versions` holds every key stored here (loaded at start, and never yet over its bound), so a key it lacks is not
   * stored: the first write of a new key needs no engine read either. A miss read the engine before every such write,
   * a tenth of a replica's CPU under a write load over a fresh key set.
   */
  private versionsComplete = false
  /**
   * One string per coordinator id for the timestamps `versions` holds: each decoded record brings its own copy of the
   * id (a 52-character peer id), and a full cache held tens of thousands of copies of a few ids.
   */
  private readonly nodeIds = new Map<string, string>()
  /** Writes and purges ended, per bucket of the token space (see tree). */
  private readonly writes = new Float64Array(TREE_BUCKETS)
  /** Writes of tombstones and of values with a TTL so far, per token bucket: what tombstone GC must look at again. */
  private readonly mortalWrites = new Float64Array(TREE_BUCKETS)
  /** Merkle trees built, by span and ranges, with the writes into their span when they were built. */
  private readonly trees = new Map<string, KeptTree>()
  private readonly inflight = new Map<number, number>()
  private nextWriteId = 0
  private counts = { records: 0, tombstones: 0 }
  private stopped = false
  /**
   * This replica lost its data (a wiped data dir under an identity that has run before) and anti-entropy has not yet
   * compared it with every co-replica. It takes writes, but answers no reads: a quorum that counted its empty answer
   * could miss an acknowledged write held by a single surviving replica.
   */
  rebuilding = false
  /**
   * This replica came back from an absence long enough for the ring to have dropped it, and has not yet learnt whether
   * the others purged tombstones meanwhile (see AbsenceGuard): its data may hold values deleted since, which must not
   * reach a read or another replica. It takes writes, and answers no reads and no anti-entropy requests.
   */
  quarantined = false
  /**
   * This replica is joining (StorageInit.joining), or rejoining after the ring let go of it: the members read its ranges
   * from the ring without it until it has copied them (see Placement). A coordinator that has not yet heard so, and asks
   * it, is refused rather than answered from ranges it has not copied.
   */
  joining = false
  /** ALIVE_KEY as start() found it: when this replica was last in service before this start. */
  lastAliveBeforeStart: number | undefined
  /** RING_KEY as start() found it: the ring's members then (empty if none was recorded). */
  ringBeforeStart: string[] = []
  private ringWritten = ''
  /** ABSENCE_KEY: an absence check or rebuild that a previous run began and did not finish. */
  absence: AbsenceState | undefined
  /** ABSENCE_ALIVE_KEY: when this replica was last known running with `absence` set (found by start(), then as written). */
  absenceAliveAt: number | undefined
  /** The latest storedAt of the records start() found. */
  newestStoredAt = 0
  /**
   * Called before the replica serves data, so that an absence it has just come back from is noticed first
   * (AbsenceGuard). `caller`: the peer asking, when another node asks.
   */
  beforeServing?: (caller?: string) => void
  /** The ring's members as this node sees them, told to a replica checking itself after an absence (AbsenceGuard). */
  ringMembers?: () => string[]
  /** Whether this node's ring let go of `peer` since it was last there (MembershipView.letGo), told to it when it asks. */
  letGo?: (peer: string) => boolean
  /** Called when a peer asks what this replica purged: it is checking itself after an absence (AbsenceGuard). */
  onPurges?: (caller: string | undefined, back: boolean) => void
  private lastPurgeAt = 0
  private readonly active = new Set<Promise<unknown>>()
  private readonly maxClockDrift: bigint
  private readonly onClockSkew?: (records: number) => void
  private lastSkewLog = 0

  constructor (components: ReplicaServiceComponents, init: ReplicaServiceInit = {}) {
    this.engine = components.engine
    this.clock = components.clock
    this.hlc = components.hlc
    this.log = components.logger
    this.merkleDepth = init.merkleDepth ?? DEFAULT_MERKLE_DEPTH
    this.maxBatchBytes = init.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES
    this.maxKeyBytes = init.maxKeyBytes ?? MAX_KEY_BYTES
    this.maxValueBytes = init.maxValueBytes ?? MAX_VALUE_BYTES
    this.versionCacheSize = init.versionCacheSize ?? DEFAULT_VERSION_CACHE_SIZE
    this.maxClockDrift = BigInt(Math.floor(init.maxClockDrift ?? DEFAULT_MAX_CLOCK_DRIFT))
    this.onClockSkew = components.onClockSkew
  }

  /** Counts what is stored; the engine must be open. */
  async start (): Promise<void> {
    const counts = { records: 0, tombstones: 0 }
    this.versions.clear()
    this.trees.clear()
    // The clock starts past every version stored here (those within the drift bound), as it was before a restart.
    // Otherwise a replica answered a write superseded by a version stamped ahead (by a coordinator whose clock ran
    // fast) with a clock still behind it, the coordinator's re-stamp lost again, and the write was lost while the
    // answer said it was taken.
    const horizon = BigInt(Math.floor(this.clock.now())) + this.maxClockDrift
    let newestStoredAt = 0
    for await (const e of this.entries([FULL_RANGE])) {
      newestStoredAt = Math.max(newestStoredAt, Number(e.stored.storedAt))
      if (e.record.ts != null && e.record.ts.wall <= horizon) this.hlc.update(e.record.ts)
      counts.records++
      if (e.record.tombstone) counts.tombstones++
      if (counts.records <= this.versionCacheSize) this.versions.set(e.record.key, { ts: this.cachedTs(e.record.ts), tombstone: e.record.tombstone })
    }
    this.counts = counts
    this.versionsComplete = counts.records <= this.versionCacheSize
    // None in a data dir of a version before the record existed. (Its newest record would stand in badly: a replica
    // that ran idle for an hour looked an hour away, and dropped its data at the upgrade.)
    this.lastAliveBeforeStart = decodeTime(await this.engine.get(ALIVE_KEY))
    this.ringWritten = new TextDecoder().decode(await this.engine.get(RING_KEY) ?? EMPTY)
    this.ringBeforeStart = this.ringWritten === '' ? [] : this.ringWritten.split('\n')
    this.newestStoredAt = newestStoredAt
    this.lastPurgeAt = decodeTime(await this.engine.get(PURGED_KEY)) ?? 0
    this.absence = decodeAbsence(await this.engine.get(ABSENCE_KEY))
    this.absenceAliveAt = decodeTime(await this.engine.get(ABSENCE_ALIVE_KEY))
    this.stopped = false
  }

  /**
   * Records that this replica is in service now, and the ring it is in touch with (written only when it changed): see
   * AbsenceGuard. Durable when it resolves.
   */
  async markAlive (at: number, ring?: string[]): Promise<void> {
    const ops: Array<{ type: 'put', key: string, value: Uint8Array }> = [{ type: 'put', key: ALIVE_KEY, value: encodeTime(at) }]
    const joined = ring == null ? this.ringWritten : [...ring].sort().join('\n')
    if (joined !== this.ringWritten) ops.push({ type: 'put', key: RING_KEY, value: new TextEncoder().encode(joined) })
    await this.engine.batch(ops)
    this.ringWritten = joined
  }

  /**
   * Records, before dead records are purged, the latest moment any of them died (a tombstone's stamp, a value's
   * expiry): a replica back from a long absence asks for it, and one recorded only after the purge could be lost to a
   * crash in between. A record that died before the replica left, it held dead; one that died since may be a delete
   * it missed.
   */
  async notePurging (diedAt: number): Promise<void> {
    if (diedAt <= this.lastPurgeAt) return
    await this.engine.batch([{ type: 'put', key: PURGED_KEY, value: encodeTime(diedAt) }])
    this.lastPurgeAt = Math.max(this.lastPurgeAt, diedAt)
  }

  /**
   * Records where this replica is in dealing with an absence (undefined: done), and that it is running with it now.
   * Durable when it resolves.
   */
  async setAbsence (state: AbsenceState | undefined, at?: number): Promise<void> {
    await this.engine.batch(state == null
      ? [{ type: 'del', key: ABSENCE_KEY }, { type: 'del', key: ABSENCE_ALIVE_KEY }]
      : [{ type: 'put', key: ABSENCE_KEY, value: new TextEncoder().encode(JSON.stringify(state)) }, ...(at == null ? [] : [{ type: 'put' as const, key: ABSENCE_ALIVE_KEY, value: encodeTime(at) }])])
    this.absence = state
    this.absenceAliveAt = state == null ? undefined : at ?? this.absenceAliveAt
  }

  /**
   * Records that this replica is checking itself, in touch with the ring (ALIVE_KEY is not written during a check). A
   * restart soon after resumes the check where it was; one after longer than the ring's grace is an absence of its own.
   */
  async markAbsenceAlive (at: number): Promise<void> {
    if (this.absence == null) return
    await this.engine.batch([{ type: 'put', key: ABSENCE_ALIVE_KEY, value: encodeTime(at) }])
    this.absenceAliveAt = at
  }

  /** A rebuild has compared every segment with every co-replica. */
  async endRebuild (): Promise<void> {
    if (this.absence?.phase === 'rebuilding') await this.setAbsence(undefined)
  }

  async purges (req: PurgesRequest, signal?: AbortSignal, caller?: string): Promise<PurgesResponse> {
    this.onPurges?.(caller, req.back === true)
    return await this.run(signal, async () => ({
      lastPurgeAt: BigInt(Math.floor(this.lastPurgeAt)),
      members: this.ringMembers?.() ?? [],
      letGo: caller != null && this.letGo?.(caller) === true
    }))
  }

  /**
   * Deletes every record stored here before `before` (clock ms), unless a write has replaced it since or it is stamped
   * after `keepAfter`: what a replica held before an absence in which the others may have purged the tombstones that
   * deleted some of it (AbsenceGuard). Returns how many.
   */
  async forgetRecordsFromBefore (before: number, signal?: AbortSignal, keepAfter?: number): Promise<number> {
    let forgotten = 0
    let group: KvRecord[] = []
    // A key with a write still committing is looked at again once it has: should that write fail, the old record stays.
    let again: KvRecord[] = []
    // Many at once, so that their deletes share group commits rather than take an fsync each.
    const settle = async (): Promise<void> => {
      const outcomes = await Promise.all(group.map(async r => await this.purgeIfUnchanged(r.key, r.ts)))
      outcomes.forEach((o, i) => { if (o === 'purged') forgotten++; else if (o === 'pending') again.push(group[i]) })
      group = []
    }
    for await (const e of this.entries([FULL_RANGE])) {
      signal?.throwIfAborted()
      if (Number(e.stored.storedAt) >= before) continue
      if (keepAfter != null && e.record.ts != null && Number(e.record.ts.wall) > keepAfter) continue
      group.push(e.record)
      if (group.length >= 256) await settle()
    }
    await settle()
    while (again.length > 0) {
      signal?.throwIfAborted()
      const waiting = again
      again = []
      await Promise.all(waiting.map(async r => await this.pending.get(r.key)?.commit.catch(() => {})))
      group = waiting
      await settle()
    }
    return forgotten
  }

  /** Refuses new requests and waits for those in progress, so the engine can be closed under none. */
  async stop (): Promise<void> {
    this.stopped = true
    await Promise.allSettled([...this.active])
    await Promise.allSettled([...this.locks.values()])
  }

  private async run<T> (signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    if (this.stopped) throw new UnavailableError('storage is stopped on this node')
    signal?.throwIfAborted()
    const p = fn()
    this.active.add(p)
    try {
      return await p
    } finally {
      this.active.delete(p)
    }
  }

  private refuseIfRebuilding (caller?: string): void {
    this.refuseIfQuarantined(caller)
    if (this.rebuilding) throw new UnavailableError('this replica is rebuilding its data after losing it and serves no reads yet')
    if (this.joining) throw new UnavailableError('this replica is joining and serves no reads until it has copied its ranges')
  }

  private refuseIfQuarantined (caller?: string): void {
    this.beforeServing?.(caller)
    if (this.quarantined) throw new UnavailableError('this replica is back from a long absence and serves no data until it knows whether its data is stale')
  }

  // --- RPC surface -------------------------------------------------------------------------

  /** Stores every record that is newer than what this replica has (last writer wins). */
  async write (req: WriteRequest, signal?: AbortSignal): Promise<WriteResponse> {
    return await this.run(signal, async () => {
      signal?.throwIfAborted()
      for (const r of req.records) this.check(r)
      // Refused records are answered record by record, as not applied and skewed: a batch of anti-entropy or hints
      // that carries one (stored before this check existed) still delivers the rest. A coordinator of this version
      // counts a skewed answer as no ack (Coordinator.writeRecord); one of an older version reads it as superseded.
      const limit = BigInt(Math.floor(this.clock.now())) + this.maxClockDrift
      const refused = req.records.map(r => r.ts != null && r.ts.wall > limit)
      const skewed = refused.filter(Boolean).length
      if (skewed > 0) this.refuseSkewed(req.records.find((_, i) => refused[i])!, skewed)
      const taken = skewed > 0 ? req.records.filter((_, i) => !refused[i]) : req.records
      const applied = await this.applyMany(taken)
      let next = 0
      const skewedRecords = refused
      const results = refused.map(no => no ? false : applied[next++])
      const n = results.filter(Boolean).length
      return {
        applied: n,
        superseded: results.length - n,
        clock: this.hlc.peek(),
        supersededRecords: results.map(ok => !ok),
        skewedRecords: skewedRecords.some(Boolean) ? skewedRecords : []
      }
    })
  }

  async read (req: ReadRequest, signal?: AbortSignal, caller?: string): Promise<ReadResponse> {
    return await this.run(signal, async () => {
      signal?.throwIfAborted()
      this.refuseIfRebuilding(caller)
      return await this.readOne(req)
    })
  }

  /**
   * Several reads from one coordinator (its clients' concurrent reads of this replica), answered in order. They fail
   * together: the coordinator has validated every key, so what fails one (the engine, a rebuild) fails the rest.
   */
  async readMany (req: ReadManyRequest, signal?: AbortSignal, caller?: string): Promise<ReadManyResponse> {
    if (req.reads.length > MAX_READ_BATCH) throw new BadRequestError(`at most ${MAX_READ_BATCH} reads in one request, got ${req.reads.length}`)
    return await this.run(signal, async () => {
      signal?.throwIfAborted()
      this.refuseIfRebuilding(caller)
      return { results: await Promise.all(req.reads.map(async r => await this.readOne(r))) }
    })
  }

  private async readOne (req: ReadRequest): Promise<ReadResponse> {
    const key = validateKey(req.key, this.maxKeyBytes)
    if (req.digestOnly) {
      // The cache is exact for the keys it holds (see versions), so a digest read of a hot key costs no engine read.
      const v = this.versions.get(key)
      if (v != null) return { found: true, version: v.ts }
      if (this.versionsComplete) return { found: false }
    }
    const stored = await this.getStored(key)
    const record = stored?.record
    if (record == null) return { found: false }
    return req.digestOnly ? { found: true, version: record.ts } : { found: true, record, version: record.ts }
  }

  async fetch (req: FetchRequest, signal?: AbortSignal, caller?: string): Promise<FetchResponse> {
    if (req.keys.length > MAX_FETCH_KEYS) throw new BadRequestError(`at most ${MAX_FETCH_KEYS} keys in one fetch, got ${req.keys.length}`)
    return await this.run(signal, async () => {
      this.refuseIfQuarantined(caller)
      const records: KvRecord[] = []
      let bytes = 0
      for (const key of req.keys) {
        signal?.throwIfAborted()
        const r = (await this.getStored(validateKey(key, this.maxKeyBytes)))?.record
        if (r == null) continue
        // Always return at least one record so a caller makes progress.
        if (records.length > 0 && bytes + recordBytes(r) > this.maxBatchBytes) break
        bytes += recordBytes(r)
        records.push(r)
      }
      return { records }
    })
  }

  async merkle (req: MerkleRequest, signal?: AbortSignal, caller?: string): Promise<MerkleResponse> {
    checkRanges(req.ranges)
    return await this.run(signal, async () => {
      this.refuseIfQuarantined(caller)
      const span = req.span ?? FULL_RANGE
      const levels = await this.tree(span, req.ranges, signal)
      const depth = Math.min(req.depth, this.merkleDepth)
      return { depth, hashes: levels[depth].hashes, count: BigInt(levels[depth].count) }
    })
  }

  async fetchRange (req: FetchRangeRequest, signal?: AbortSignal, caller?: string): Promise<FetchRangeResponse> {
    checkRanges(req.ranges)
    return await this.run(signal, async () => {
      this.refuseIfQuarantined(caller)
      const limit = req.limit > 0 ? req.limit : 1000
      const records: KvRecord[] = []
      const versions: Version[] = []
      let bytes = 0
      let cursor = ''
      let more = false
      const now = this.clock.now()
      for await (const e of this.entries(req.ranges, req.after !== '' ? req.after : undefined)) {
        signal?.throwIfAborted()
        const size = req.digestsOnly ? e.record.key.length + 32 : recordBytes(e.record)
        if (records.length + versions.length >= limit || (bytes > 0 && bytes + size > this.maxBatchBytes)) { more = true; break }
        bytes += size
        cursor = e.engineKey
        if (req.digestsOnly) versions.push({ key: e.record.key, ts: e.record.ts, dead: isDead(e.record, now) })
        else records.push(e.record)
      }
      return { records, versions, cursor, more }
    })
  }

  async scan (req: ScanRequest, signal?: AbortSignal, caller?: string): Promise<ScanResponse> {
    return await this.run(signal, async () => {
      this.refuseIfRebuilding(caller)
      const limit = Math.min(req.limit > 0 ? req.limit : DEFAULT_SCAN_LIMIT, MAX_SCAN_LIMIT)
      const start = KEY_PREFIX + req.prefix
      const records: KvRecord[] = []
      let bytes = 0
      let more = false
      const range = req.after !== '' && compareKeys(req.after, req.prefix) > 0 ? { gt: KEY_PREFIX + req.after } : { gte: start }
      for await (const [k] of this.engine.iterate(range)) {
        signal?.throwIfAborted()
        if (!k.startsWith(start)) break
        const r = (await this.getStored(k.slice(KEY_PREFIX.length)))?.record
        if (r == null) continue
        if (records.length >= limit || (bytes > 0 && bytes + recordBytes(r) > this.maxBatchBytes)) { more = true; break }
        bytes += recordBytes(r)
        records.push(r)
      }
      return { records, more }
    })
  }

  // --- local operations (coordinator, anti-entropy, hints on this node) -----------------------

  async getStored (key: string): Promise<StoredRecord | undefined> {
    const raw = await this.engine.get(dataKey(key))
    return raw == null ? undefined : StoredRecord.decode(raw)
  }

  /** Ordered by (token, key) over the given ranges; resumes strictly after `after` (an engine key). */
  async * entries (ranges: TokenRange[], after?: string): AsyncGenerator<LocalEntry> {
    for (const r of normalize(ranges)) {
      const lower = DATA_PREFIX + tokenHex(r.start)
      const upper = r.end === MAX_TOKEN ? DATA_END : DATA_PREFIX + tokenHex(r.end + 1n)
      if (after != null && after >= upper) continue
      const bounds = after != null && after >= lower ? { gt: after, lt: upper } : { gte: lower, lt: upper }
      for await (const [k, v] of this.engine.iterate(bounds)) {
        const stored = StoredRecord.decode(v)
        if (stored.record == null) continue
        yield { engineKey: k, token: tokenOfDataKey(k), stored, record: stored.record }
      }
    }
  }

  private refuseSkewed (example: KvRecord, records: number): void {
    this.onClockSkew?.(records)
    const now = this.clock.now()
    if (now - this.lastSkewLog < 10_000) return
    this.lastSkewLog = now
    this.log.warn({ records, key: example.key, wall: String(example.ts?.wall), node: example.ts?.node, now }, 'refused records stamped more than the clock drift bound ahead of this node\'s clock; check the clocks of the mesh\'s nodes')
  }

  private check (r: KvRecord): void {
    validateKey(r.key, this.maxKeyBytes)
    if (r.ts == null) throw new BadRequestError(`record ${r.key} has no timestamp`)
    if (r.value.byteLength > this.maxValueBytes) throw new ValueTooLargeError(r.value.byteLength, this.maxValueBytes)
  }

  private cachedTs (ts: KvRecord['ts']): KvRecord['ts'] {
    if (ts == null) return ts
    let node = this.nodeIds.get(ts.node)
    if (node == null) {
      // Ids come from the wire: past a mesh's worth, stop collecting rather than grow.
      if (this.nodeIds.size >= MAX_INTERNED_NODE_IDS) return { wall: ts.wall, logical: ts.logical, node: ts.node }
      node = ts.node
      this.nodeIds.set(node, node)
    }
    return { wall: ts.wall, logical: ts.logical, node }
  }

  /** Stores the record if it is newer than the local version; durable when it resolves. True if applied. */
  async apply (r: KvRecord): Promise<boolean> {
    return (await this.applyMany([r]))[0]
  }

  /**
   * apply() for a batch, as one engine read of the uncached versions and one engine write: a coordinator's batch of
   * records costs two trips to LevelDB's thread instead of two per record, which on a busy replica was a fifth of its
   * CPU. Records of one key apply in order, as they would one by one.
   */
  /**
   * Applies each record that is newer than what is stored. (A stored version that looks far ahead is not replaced by
   * an older record: this replica's own clock may be the one that stepped back, and the version a right one.)
   */
  async applyMany (records: KvRecord[]): Promise<boolean[]> {
    if (records.length === 0) return []
    for (const r of records) this.hlc.update(r.ts)
    const keys = [...new Set(records.map(r => r.key))]
    let queued: QueuedWrite | undefined
    const results = await this.withKeys(keys, async () => {
      // What the engine holds, where known; a key with writes pending is decided against the newest of them instead.
      const committed = new Map<string, { ts: KvRecord['ts'], tombstone: boolean }>()
      // Taken before the engine read below: a pending write that ends during it leaves `pending`, and its key, not read,
      // would then be decided against nothing. Under the locks no new one can start, so this stays the newest.
      const pendingAt = new Map<string, PendingWrites>()
      const misses: string[] = []
      for (const k of keys) {
        const p = this.pending.get(k)
        if (p != null) pendingAt.set(k, p)
        const v = this.versions.get(k)
        if (v != null) committed.set(k, v)
        else if (p == null) misses.push(k)
      }
      if (misses.length > 0 && !this.versionsComplete) {
        const raws = await this.engine.getMany(misses.map(k => dataKey(k)))
        raws.forEach((raw, i) => {
          const stored = raw == null ? undefined : StoredRecord.decode(raw).record
          if (stored != null) committed.set(misses[i], { ts: stored.ts, tombstone: stored.tombstone })
        })
      }
      const winners = new Map<string, KvRecord>()
      const dependsOn: Array<Promise<void>> = []
      const results = records.map(r => {
        const pending = pendingAt.get(r.key)
        const current = winners.get(r.key)?.ts ?? pending?.ts ?? committed.get(r.key)?.ts
        if (current != null && compareTimestamps(current, r.ts) >= 0) {
          // Refused for a version not yet durable: answered once it is, and as a failure if it never becomes so.
          if (!winners.has(r.key) && pending != null) dependsOn.push(pending.commit)
          return false
        }
        winners.set(r.key, r)
        return true
      })
      if (winners.size === 0) {
        queued = { dependsOn }
        return results
      }
      const storedAt = Math.floor(this.clock.now())
      const ops: EngineOp[] = []
      const tokens: bigint[] = []
      const mortal: bigint[] = []
      for (const r of winners.values()) {
        const token = tokenOf(r.key)
        tokens.push(token)
        if (r.tombstone || r.expiresAt !== 0n) mortal.push(token)
        ops.push({ type: 'put', key: dataKey(r.key, token), value: StoredRecord.encode({ record: r, storedAt: BigInt(storedAt) }) })
        // Also when only a pending write has it: that write may yet fail.
        if (!committed.has(r.key)) ops.push({ type: 'put', key: KEY_PREFIX + r.key, value: EMPTY })
      }
      const id = this.nextWriteId++
      this.inflight.set(id, storedAt)
      const commit = this.engine.batch(ops)
      for (const r of winners.values()) {
        const p = this.pending.get(r.key)
        if (p != null) {
          p.ts = r.ts
          p.tombstone = r.tombstone
          p.commit = commit
          p.writes++
        } else {
          // A write pending at the check above has ended since; its entry's `stored` is what the engine holds now, whether
          // it committed or failed (a pending key was not read from the engine).
          const ended = pendingAt.get(r.key)
          const stored = ended != null ? ended.stored : committed.get(r.key)
          this.pending.set(r.key, { ts: r.ts, tombstone: r.tombstone, commit, writes: 1, stored: stored == null ? undefined : { tombstone: stored.tombstone } })
        }
      }
      queued = { dependsOn, write: { commit, id, winners, tokens, mortal } }
      return results
    })
    const w = queued?.write
    if (w != null) {
      let committed = false
      try {
        await w.commit
        committed = true
      } finally {
        this.inflight.delete(w.id)
        for (const t of w.tokens) this.changed(t)
        // Counted once the write has ended, so that a count read before a scan began never covers a record the scan
        // could not see.
        for (const t of w.mortal) this.mortalWrites[Number(t >> TREE_BUCKET_SHIFT)]++
        for (const r of w.winners.values()) {
          const p = this.pending.get(r.key)
          if (p == null) continue
          // Commits of one key end in the order they were queued, so `stored` is what this one replaced.
          if (committed) {
            if (p.stored == null) this.counts.records++
            if (r.tombstone && p.stored?.tombstone !== true) this.counts.tombstones++
            if (!r.tombstone && p.stored?.tombstone === true) this.counts.tombstones--
            p.stored = { tombstone: r.tombstone }
          }
          if (--p.writes === 0) this.pending.delete(r.key)
        }
      }
      for (const r of w.winners.values()) {
        const current = this.versions.get(r.key)
        if (current == null || compareTimestamps(current.ts, r.ts) < 0) {
          this.versions.delete(r.key)
          this.versions.set(r.key, { ts: this.cachedTs(r.ts), tombstone: r.tombstone })
          if (this.versions.size > this.versionCacheSize) {
            this.versions.delete(this.versions.keys().next().value as string)
            this.versionsComplete = false
          }
        }
      }
    }
    if (queued != null && queued.dependsOn.length > 0) await Promise.all(queued.dependsOn)
    return results
  }

  /** Deletes the key if it still holds exactly this version. Returns true if deleted. */
  async purge (key: string, ts: KvRecord['ts']): Promise<boolean> {
    return await this.purgeIfUnchanged(key, ts) === 'purged'
  }

  /**
   * purge(), saying why not: `changed` when the key no longer holds this version, `pending` when a write of it is
   * queued and not yet committed (it would be deleted with the version; the write may yet fail and leave the version
   * dead, so the caller should look again).
   */
  async purgeIfUnchanged (key: string, ts: KvRecord['ts']): Promise<'purged' | 'changed' | 'pending'> {
    return await this.withKey(key, async () => {
      if (this.pending.has(key)) return 'pending'
      const existing = (await this.getStored(key))?.record
      if (existing == null || compareTimestamps(existing.ts, ts) !== 0) return 'changed'
      const token = tokenOf(key)
      try {
        await this.engine.batch([{ type: 'del', key: dataKey(key, token) }, { type: 'del', key: KEY_PREFIX + key }])
      } finally {
        this.changed(token)
      }
      // Only now: were the delete to fail while the cache is complete, the key would read as absent, and an older
      // write win over the version still stored.
      this.versions.delete(key)
      this.counts.records--
      if (existing.tombstone) this.counts.tombstones--
      return 'purged'
    })
  }

  /**
   * Every record this replica stored at or before the returned time is visible to iteration
   * now. A write in flight has its storedAt assigned but may not be committed yet; anti-entropy
   * stamps completed rounds with this, so tombstone GC never counts an uncommitted write as synced.
   */
  stableTime (): number {
    // Less one: a write that starts later in this same millisecond gets storedAt equal to it, and a round's scan may
    // not see that write.
    let t = Math.floor(this.clock.now()) - 1
    for (const s of this.inflight.values()) if (s - 1 < t) t = s - 1
    return t
  }

  async stats (): Promise<ReplicaStats> {
    return { ...this.counts, bytes: await this.engine.sizeOnDisk() }
  }

  /** A write or purge of a record with this token has ended (committed or not): trees over it must be built again. */
  private changed (token: bigint): void {
    this.writes[Number(token >> TREE_BUCKET_SHIFT)]++
  }

  /** Writes so far into the token buckets span covers: unchanged since a tree was built, the tree still holds. */
  private writesIn (span: TokenRange): number {
    return sumBuckets(this.writes, span)
  }

  /**
   * Writes of tombstones and of values with a TTL so far into the token buckets span covers, counted once each write
   * has ended. Unchanged since a scan began, the span holds no dead or mortal record that scan did not see.
   */
  mortalWritesIn (span: TokenRange): number {
    return sumBuckets(this.mortalWrites, span)
  }

  /**
   * Merkle levels over span; leaves split span evenly, hashing (key, timestamp) of entries in `ranges`. A tree is
   * kept and served again while no write or purge has touched its span: each anti-entropy round builds one on both
   * sides, and on a mesh at rest rebuilding it every round (a scan of every record of the segment) was most of an idle
   * node's CPU once it held tens of thousands of keys.
   */
  async tree (span: TokenRange, ranges: TokenRange[], signal?: AbortSignal): Promise<Array<{ hashes: Uint8Array<ArrayBuffer>[], count: number }>> {
    // A digest, not the ranges' text: a peer's request may name tens of thousands of ranges.
    const key = createHash('sha256').update(`${span.start}-${span.end}|${intersect(normalize(ranges), [span]).map(r => `${r.start}-${r.end}`).join(',')}`).digest('base64')
    // Read before the scan: a write that ends during the scan moves it on, so this tree is not kept past that write.
    const writes = this.writesIn(span)
    const kept = this.trees.get(key)
    this.trees.delete(key)
    if (kept != null && kept.writes === writes) {
      this.trees.set(key, kept)
      return this.levelsOf(kept)
    }
    const built = { ...await this.scanLeaves(span, ranges, signal), writes }
    // Anti-entropy visits (peer, segment) pairs in a fixed cycle: past the cap, dropping the oldest would always drop
    // the next one needed, where dropping one at random keeps a share of them.
    if (this.trees.size >= MAX_KEPT_TREES) {
      const victim = [...this.trees.keys()][Math.floor(Math.random() * this.trees.size)]
      this.trees.delete(victim)
    }
    this.trees.set(key, built)
    return this.levelsOf(built)
  }

  /** Leaf hashes of a tree, packed (HASH_BYTES each; `present` marks the leaves that have any entry), and its count. */
  private async scanLeaves (span: TokenRange, ranges: TokenRange[], signal?: AbortSignal): Promise<KeptTree> {
    const leafCount = 1 << this.merkleDepth
    const width = (span.end - span.start) / BigInt(leafCount) + 1n
    const hashers: Array<ReturnType<typeof createHash> | undefined> = new Array(leafCount)
    let n = 0
    for await (const e of this.entries(intersect(normalize(ranges), [span]))) {
      if ((++n & 1023) === 0) signal?.throwIfAborted()
      const leaf = Number((e.token - span.start) / width)
      const h = hashers[leaf] ??= createHash('sha256')
      const ts = e.record.ts
      h.update(e.record.key).update(`\0${ts?.wall ?? 0n}.${ts?.logical ?? 0}.${ts?.node ?? ''}\0`)
    }
    const leaves = new Uint8Array(leafCount * HASH_BYTES)
    const present = new Uint8Array(leafCount)
    for (let i = 0; i < leafCount; i++) {
      const h = hashers[i]
      if (h == null) continue
      leaves.set(h.digest().subarray(0, HASH_BYTES), i * HASH_BYTES)
      present[i] = 1
    }
    return { writes: 0, leaves, present, count: n }
  }

  /** The levels of a tree from its leaves: level d has 2^d hashes, each over its two children. */
  private levelsOf (t: KeptTree): Array<{ hashes: Uint8Array<ArrayBuffer>[], count: number }> {
    const depth = this.merkleDepth
    let level = Array.from({ length: 1 << depth }, (_, i) => t.present[i] === 1 ? t.leaves.slice(i * HASH_BYTES, (i + 1) * HASH_BYTES) : EMPTY as Uint8Array<ArrayBuffer>)
    const levels = new Array<{ hashes: Uint8Array<ArrayBuffer>[], count: number }>(depth + 1)
    levels[depth] = { hashes: level, count: t.count }
    for (let d = depth - 1; d >= 0; d--) {
      const next: Uint8Array<ArrayBuffer>[] = []
      for (let i = 0; i < level.length; i += 2) {
        const a = level[i]
        const b = level[i + 1]
        if (a.byteLength === 0 && b.byteLength === 0) { next.push(EMPTY as Uint8Array<ArrayBuffer>); continue }
        next.push(new Uint8Array(createHash('sha256').update(a).update(b).update(`${a.byteLength},${b.byteLength}`).digest().subarray(0, HASH_BYTES)))
      }
      level = next
      levels[d] = { hashes: level, count: t.count }
    }
    return levels
  }

  /** The leaf interval i of a tree over span (for fetching what a differing leaf covers). */
  leafRange (span: TokenRange, leaf: number): TokenRange {
    const width = (span.end - span.start) / BigInt(1 << this.merkleDepth) + 1n
    const start = span.start + width * BigInt(leaf)
    const end = start + width - 1n
    return { start, end: end > span.end ? span.end : end }
  }

  /**
   * Holds the locks of several keys at once. Every lock is taken in one synchronous step, behind whatever already
   * holds or waits for each key, so two callers always queue in the same order on every key they share: no deadlock.
   */
  private async withKeys<T> (keys: string[], fn: () => Promise<T>): Promise<T> {
    if (keys.length === 1) return await this.withKey(keys[0], fn)
    let release!: () => void
    const mine = new Promise<void>(resolve => { release = resolve })
    const prevs: Array<Promise<void>> = []
    const tails = keys.map(key => {
      const prev = this.locks.get(key)
      if (prev != null) prevs.push(prev)
      const tail = prev == null ? mine : prev.then(async () => await mine)
      this.locks.set(key, tail)
      return tail
    })
    try {
      if (prevs.length > 0) await Promise.all(prevs)
      return await fn()
    } finally {
      release()
      keys.forEach((key, i) => { if (this.locks.get(key) === tails[i]) this.locks.delete(key) })
    }
  }

  private async withKey<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key)
    let release!: () => void
    const mine = new Promise<void>(resolve => { release = resolve })
    const tail = prev == null ? mine : prev.then(async () => await mine)
    this.locks.set(key, tail)
    try {
      if (prev != null) await prev
      return await fn()
    } finally {
      release()
      if (this.locks.get(key) === tail) this.locks.delete(key)
    }
  }
}

function checkRanges (ranges: TokenRange[]): void {
  if (ranges.length > MAX_REQUEST_RANGES) throw new BadRequestError(`at most ${MAX_REQUEST_RANGES} token ranges in one request, got ${ranges.length}`)
}
