import type { Logger } from '../lib/log.js'
import type { Clock, TimerHandle } from '../lib/clock.js'
import { deadline, withDeadline } from '../lib/abort.js'
import { MalformedMessageError, MeshError, NodeUnreachableError, TimeoutError, UnavailableError } from '../lib/errors.js'
import type { Record as KvRecord, Timestamp, ReadRequest, ReadResponse } from './storage.js'
import { PeerBatches } from './peer-batches.js'
import type { ConsistencyLevel, MembershipView, ReplicaTransport } from './types.js'
import type { ReplicaService } from './service.js'
import type { HintStore } from './hints.js'
import type { StorageMetrics } from './metrics.js'
import { Ring, Placement } from './placement.js'
import { HybridClock, compareTimestamps } from './hlc.js'
import { validateKey, validateValue, isDead, recordBytes } from './record.js'
import { compareKeys } from './engine.js'
import { FULL_RANGE } from './tokens.js'
import {
  ConsistencyUnavailableError, ConsistencyTimeoutError, InvalidOptionError, KeyNotFoundError, ViewNotReadyError, type ConsistencyShortfall,
  ClockSkewError
} from './errors.js'
import {
  DEFAULT_REPLICATION_FACTOR, DEFAULT_REQUEST_TIMEOUT, MAX_KEY_BYTES, MAX_VALUE_BYTES, MAX_TTL, DEFAULT_SCAN_LIMIT, MAX_SCAN_LIMIT, MAX_SCAN_BYTES,
  DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_CLOCK_DRIFT, DEFAULT_ROUND_TIMEOUT, SELF_SKEW_HOLD, HANDOFF_BATCH_TIMEOUT, MAX_WRITE_BATCH, MAX_READ_BATCH, MAX_BATCHES_IN_FLIGHT, READ_OVERHEAD_BYTES, SINGLE_READER_RECHECK
} from './constants.js'

export interface CoordinatorComponents {
  service: ReplicaService
  hints: HintStore
  membership: MembershipView
  transport: ReplicaTransport
  clock: Clock
  hlc: HybridClock
  logger: Logger
  metrics: StorageMetrics
  /** The current ring (recomputed by the caller when membership changes): where writes go. */
  ring: () => Ring
  /** Where keys live while members join: reads go to `read`, writes to the natural and pending replicas. @default ring alone */
  placement?: () => Placement
}

export interface CoordinatorInit {
  /** @default 3 */
  replicationFactor?: number
  /** @default 'quorum' */
  defaultConsistency?: ConsistencyLevel
  /** Per-request deadline when the caller gives none (ms). @default 2 s */
  timeout?: number
  /** @default 1 KiB */
  maxKeyBytes?: number
  /** @default 1 MiB */
  maxValueBytes?: number
  /** @default 4 MiB */
  maxBatchBytes?: number
  /** A read asks one more replica each time this fraction of its timeout passes without enough answers. @default 0.2 */
  speculativeRetry?: number
  /**
   * Writes to one replica that start in the same turn of the event loop (concurrent clients' requests) travel as one
   * request, so the RPC, its framing and the replica's dispatch are paid once per batch. @default true
   */
  batchWrites?: boolean
  /**
   * A version read back stamped more than this ahead of this node's clock is not taken as the newest (ms).
   * @default `DEFAULT_MAX_CLOCK_DRIFT` (1 hour)
   */
  maxClockDrift?: number
  /**
   * Write batches one remote replica may have unanswered before the next waits for one to end. Under load the
   * records that arrive meanwhile then share one request, where each turn's few records went alone. One measured
   * 3-15 % more writes per core than two on 3 and 5 nodes, with the same latency at half load (BENCHMARKS.md, kv).
   * @default 1
   */
  maxBatchesInFlight?: number
}

export interface OperationOptions {
  /** @default the store's defaultConsistency ('quorum') */
  consistency?: ConsistencyLevel
  signal?: AbortSignal
  /** Deadline for this call (ms). @default the store's timeout (2 s) */
  timeoutMs?: number
}

/** A write forwarded from a hint: the hints it leaves keep that hint's time. */
interface WriteOptions extends OperationOptions {
  hintedAt?: number
}

export interface PutOptions extends OperationOptions {
  /** Time to live in ms; afterwards the key reads as not found. @default none */
  ttl?: number
}

export interface GetOptions extends OperationOptions {
  /** Read only this replica (consistency must be `one`); for tests and debugging. */
  replica?: string
}

export interface WriteResult {
  key: string
  timestamp: Timestamp
  /** Replicas that acknowledged before the call returned. */
  acks: number
  /** Hints stored for replicas that were down or failed before the call returned. */
  hinted: number
}

export interface GetResult {
  key: string
  value: Uint8Array
  timestamp: Timestamp
  /** Wall-clock ms at which the value expires, if it has a TTL. */
  expiresAt?: number
}

export interface ScanOptions {
  /** @default '' (all keys) */
  prefix?: string
  /** @default 1000 */
  limit?: number
  /** Only keys after this one (in key order), to page through more keys than one scan's limit. @default '' (from the start) */
  after?: string
  signal?: AbortSignal
  /** @default the store's timeout */
  timeoutMs?: number
  /** Bytes of keys and values in one answer, at most (at least one entry is returned). @default MAX_SCAN_BYTES (8 MiB) */
  maxBytes?: number
}

export interface ScanResult {
  entries: GetResult[]
  /** Nodes that did not answer; keys held only by them are missing. */
  unreachable: string[]
  /** Keys may follow the last entry: the scan stopped at its limit or its size bound. Page on with `after`. */
  more: boolean
}

export interface HandoffResult {
  records: number
  /** Records that could not be delivered to any new replica. */
  failed: number
}

/** A replica's answer to one record of a write. */
type WriteOutcome = 'applied' | 'superseded' | 'skewed' | 'refused'

export function requiredAnswers (level: ConsistencyLevel, replicas: number): number {
  switch (level) {
    case 'any': case 'one': return Math.min(1, replicas)
    case 'quorum': return Math.floor(replicas / 2) + 1
    case 'all': return replicas
  }
}

/**
 * Coordinates reads and writes for any key from any node: sends them to the key's replicas
 * and answers once the consistency level is met, or fails with counts saying why not.
 */
export class Coordinator {
  private readonly c: CoordinatorComponents
  private readonly log: Logger
  readonly rf: number
  private readonly defaultConsistency: ConsistencyLevel
  private readonly timeout: number
  readonly maxKeyBytes: number
  readonly maxValueBytes: number
  private readonly maxBatchBytes: number
  private readonly speculate: number
  private readonly background = new Set<Promise<unknown>>()
  private readonly batchWrites: boolean
  /** Writes of single records, per replica; each resolves to whether the replica held a newer version. */
  private readonly writes: PeerBatches<KvRecord, WriteOutcome>
  private readonly maxClockDrift: bigint
  /** Reads of remote replicas, per replica. */
  private readonly reads: PeerBatches<ReadRequest, ReadResponse>
  /**
   * Replicas that answered a batched read with UNKNOWN_METHOD (an older version), and until when (clock ms) they are
   * read one key at a time; after that they are asked again, in case they were upgraded.
   */
  private readonly singleReaders = new Map<string, number>()

  constructor (components: CoordinatorComponents, init: CoordinatorInit = {}) {
    this.c = components
    this.log = components.logger
    this.rf = init.replicationFactor ?? DEFAULT_REPLICATION_FACTOR
    this.defaultConsistency = init.defaultConsistency ?? 'quorum'
    this.timeout = init.timeout ?? DEFAULT_REQUEST_TIMEOUT
    this.maxKeyBytes = init.maxKeyBytes ?? MAX_KEY_BYTES
    this.maxValueBytes = init.maxValueBytes ?? MAX_VALUE_BYTES
    this.maxBatchBytes = init.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES
    this.speculate = init.speculativeRetry ?? 0.2
    this.batchWrites = init.batchWrites ?? true
    this.maxClockDrift = BigInt(Math.floor(init.maxClockDrift ?? DEFAULT_MAX_CLOCK_DRIFT))
    const batching = { maxInFlight: init.maxBatchesInFlight ?? MAX_BATCHES_IN_FLIGHT, timeout: this.timeout, clock: this.c.clock }
    this.writes = new PeerBatches<KvRecord, WriteOutcome>({
      ...batching,
      send: async (peer, records, signal) => await this.sendWrites(peer, records, signal),
      size: recordBytes,
      maxItems: MAX_WRITE_BATCH,
      maxBytes: this.maxBatchBytes / 2,
      // The local replica is not capped: its engine already gathers concurrent batches into one commit, and a local
      // write that stalls there must not hold up the ones behind it.
      uncapped: peer => peer === this.self,
      onSend: n => { this.c.metrics.writeBatch.observe(n) }
    })
    this.reads = new PeerBatches<ReadRequest, ReadResponse>({
      ...batching,
      send: async (peer, reads, signal) => await this.sendReads(peer, reads, signal),
      // Sized by the answer it may bring: a full read can return a value of the largest size, and the batch's answer
      // must stay under the RPC message limit.
      size: r => r.key.length + READ_OVERHEAD_BYTES + (r.digestOnly ? 0 : this.maxValueBytes),
      maxItems: MAX_READ_BATCH,
      maxBytes: this.maxBatchBytes / 2
    })
  }

  /** Waits for read repairs and late hint writes still running. */
  async stop (): Promise<void> {
    await Promise.allSettled([...this.background])
  }

  /** Until then (this node's clock) it coordinates no writes: see writeFresh. */
  private selfSkewedUntil = 0
  private selfSkewed (): void {
    const now = this.c.clock.now()
    if (now >= this.selfSkewedUntil) this.log.error({ holdMs: SELF_SKEW_HOLD }, 'replicas refuse this node\'s timestamps as over the clock drift bound ahead of their clocks: this node\'s clock is ahead; it coordinates no writes until it is fixed')
    this.selfSkewedUntil = now + SELF_SKEW_HOLD
  }

  private track (p: Promise<unknown>): void {
    const q = p.catch(err => { this.log.debug({ err }, 'background storage task failed') }).finally(() => { this.background.delete(q) })
    this.background.add(q)
  }

  private get self (): string { return this.c.membership.self() }

  private isAlive (peer: string): boolean { return peer === this.self || this.c.membership.isAlive(peer) }

  /** What the replica did with one record: the worst outcome of the records sent. */
  private async write (peer: string, records: KvRecord[], signal: AbortSignal, timeoutMs?: number): Promise<WriteOutcome> {
    // The local replica batches too: one engine read and one engine write for the turn's records (see applyMany).
    // The request's own deadline goes with the record: its batch's send would otherwise end at the default (5 s), and
    // a write given longer failed as UNAVAILABLE while its replicas were still answering.
    if (this.batchWrites && records.length === 1) return await this.writes.add(peer, records[0], signal, timeoutMs)
    const outcomes = await this.sendWrites(peer, records, signal)
    for (const o of ['refused', 'skewed', 'superseded'] as const) if (outcomes.includes(o)) return o
    return 'applied'
  }

  private async sendWrites (peer: string, records: KvRecord[], signal: AbortSignal): Promise<WriteOutcome[]> {
    const res = peer === this.self
      ? await this.c.service.write({ records }, signal)
      : await this.c.transport.write(peer, { records }, signal)
    this.c.hlc.update(res.clock)
    // A replica that predates per-record answers gives counts only: then every record of a batch with any
    // superseded one is re-stamped, which costs a rewrite and loses nothing.
    const perRecord = res.supersededRecords.length === records.length
    const skewed = res.skewedRecords.length === records.length
    // A replica whose own clock runs beyond the drift bound ahead keeps its own far-ahead versions, and answers a
    // right clock's writes as superseded: that is no copy, and no ack.
    const fastReplica = res.clock != null && res.clock.wall > BigInt(Math.floor(this.c.clock.now())) + this.maxClockDrift
    return records.map((_, i) => {
      if (skewed && res.skewedRecords[i]) return 'refused'
      const superseded = perRecord ? res.supersededRecords[i] : res.superseded > 0
      return superseded ? (fastReplica ? 'skewed' : 'superseded') : 'applied'
    })
  }

  private async sendReads (peer: string, reads: ReadRequest[], signal: AbortSignal): Promise<Array<ReadResponse | Error>> {
    if ((this.singleReaders.get(peer) ?? 0) <= this.c.clock.now()) {
      try {
        const res = await this.c.transport.readMany(peer, { reads }, signal)
        if (res.results.length !== reads.length) throw new MalformedMessageError(`${peer} answered ${res.results.length} of ${reads.length} reads`)
        return res.results
      } catch (err) {
        // An older replica lacks the method; an answer over the message limit (values larger than the batch's
        // estimate) is read again key by key. Anything else fails the batch, as it would each read.
        const code = err instanceof MeshError ? err.code : undefined
        if (code === 'UNKNOWN_METHOD') this.singleReaders.set(peer, this.c.clock.now() + SINGLE_READER_RECHECK)
        else if (code !== 'MESSAGE_TOO_LARGE' || reads.length === 1) throw err
      }
    }
    const each = await Promise.allSettled(reads.map(async r => await this.c.transport.read(peer, r, signal)))
    return each.map(e => e.status === 'fulfilled' ? e.value : toError(e.reason))
  }

  /**
   * A coordinator whose wall clock is behind (and which has not yet seen the key's newer timestamps) stamps a new
   * write older than what replicas hold, and last-writer-wins would silently drop it. A replica that supersedes it
   * answers with its clock, which has by then advanced our HLC past the stored version; so re-stamp and send again.
   */
  private async writeFresh (make: () => KvRecord, level: ConsistencyLevel, opts: OperationOptions): Promise<WriteResult> {
    // Most of a key's other replicas refused this node's stamps as too far ahead of their clocks: this node's clock is
    // the wrong one. Its own replica would still take its writes, and acknowledge them at ONE or ANY, with versions
    // that win over everyone's once real time comes within the bound; so it coordinates none for a while (as a
    // CockroachDB node past its maximum offset stops serving).
    if (this.c.clock.now() < this.selfSkewedUntil) throw new ClockSkewError(make().key, 'self')
    let result: WriteResult & { superseded?: boolean } = { key: '', timestamp: undefined as unknown as Timestamp, acks: 0, hinted: 0 }
    for (let attempt = 0; attempt < 3; attempt++) {
      result = await this.writeRecord(make(), level, opts)
      if (result.superseded !== true) break
      this.log.debug({ key: result.key, attempt }, 'write superseded by a newer version; re-stamping')
    }
    // Still superseded after three stamps: other writers of the key keep writing, each later than the last. A version
    // that wins from beyond the clock drift bound is not "superseded" but "skewed" (see writeRecord), and fails.
    delete result.superseded
    return result
  }

  private placement (): Placement { return this.c.placement?.() ?? Placement.of(this.c.ring()) }

  private async read (peer: string, key: string, digestOnly: boolean, signal: AbortSignal, timeoutMs: number): Promise<ReadResponse> {
    if (peer === this.self) return await this.c.service.read({ key, digestOnly }, signal)
    return await this.reads.add(peer, { key, digestOnly }, signal, timeoutMs)
  }

  private async measure<T> (op: string, level: ConsistencyLevel, fn: () => Promise<T>): Promise<T> {
    const end = this.c.metrics.latency.startTimer({ op, consistency: level })
    let outcome = 'ok'
    try {
      return await fn()
    } catch (err) {
      outcome = err instanceof KeyNotFoundError ? 'not_found' : err instanceof MeshError ? err.code.toLowerCase() : 'error'
      if (err instanceof UnavailableError) this.c.metrics.unavailable.inc({ op, consistency: level })
      throw err
    } finally {
      end()
      this.c.metrics.ops.inc({ op, consistency: level, outcome })
    }
  }

  private level (opts: OperationOptions, op: 'read' | 'write'): ConsistencyLevel {
    if (this.c.membership.ready?.() === false) throw new ViewNotReadyError()
    const level = opts.consistency ?? this.defaultConsistency
    if (!['any', 'one', 'quorum', 'all'].includes(level)) throw new InvalidOptionError(`unknown consistency level ${String(level)}`)
    if (level === 'any' && op === 'read') throw new InvalidOptionError('consistency ANY applies to writes only')
    return level
  }

  private timeoutOf (opts: { timeoutMs?: number }): number {
    const t = opts.timeoutMs ?? this.timeout
    if (!(t > 0)) throw new InvalidOptionError(`timeoutMs must be positive, got ${t}`)
    return t
  }

  async put (key: string | Uint8Array, value: string | Uint8Array, opts: PutOptions = {}): Promise<WriteResult> {
    const k = validateKey(key, this.maxKeyBytes)
    const v = validateValue(value, this.maxValueBytes)
    const level = this.level(opts, 'write')
    if (opts.ttl != null && !(opts.ttl > 0 && opts.ttl <= MAX_TTL)) throw new InvalidOptionError(`ttl must be a positive number of ms up to ${MAX_TTL} (100 years), got ${opts.ttl}`)
    return await this.measure('put', level, async () => {
      return await this.writeFresh(() => {
        const ts = this.c.hlc.now()
        const expiresAt = opts.ttl != null ? ts.wall + BigInt(Math.ceil(opts.ttl)) : 0n
        return { key: k, value: v, ts, tombstone: false, expiresAt }
      }, level, opts)
    })
  }

  async delete (key: string | Uint8Array, opts: OperationOptions = {}): Promise<WriteResult> {
    const k = validateKey(key, this.maxKeyBytes)
    const level = this.level(opts, 'write')
    return await this.measure('delete', level, async () => {
      return await this.writeFresh(() => ({ key: k, value: new Uint8Array(0), ts: this.c.hlc.now(), tombstone: true, expiresAt: 0n }), level, opts)
    })
  }

  /**
   * Sends the record to every alive replica and stores hints for the others; resolves when
   * the level is met. Sends that are still outstanding continue; failures become hints.
   */
  private async writeRecord (record: KvRecord, level: ConsistencyLevel, opts: WriteOptions): Promise<WriteResult & { superseded?: boolean }> {
    const timeoutMs = this.timeoutOf(opts)
    // Each pending replica (a member joining) adds one to the answers the level needs: see Placement.
    const { replicas, pending } = this.placement().targets(record.key, this.rf)
    const required = requiredAnswers(level, replicas.length - pending) + (level === 'any' ? 0 : pending)
    const alive = replicas.filter(p => this.isAlive(p))
    const down = replicas.filter(p => !this.isAlive(p))
    const shortfall = (answered: number): ConsistencyShortfall => ({ op: 'write', level, answered, replicas: replicas.length, required })
    if (level !== 'any' && alive.length < required) throw new ConsistencyUnavailableError(shortfall(alive.length), 'alive')
    opts.signal?.throwIfAborted()
    // The caller's signal ends the wait, never the sends: an HTTP caller's signal aborts as soon as the response has
    // gone out, and tying the sends to it aborted the slowest replica's write after every quorum reply, turning it
    // into a hint (constant hint churn on a healthy mesh, drained only by the sweep). Sends get the deadline alone.
    // One controller and one timer, cleared once every send has settled: AbortSignal.timeout/any per request left
    // a timer behind that fired seconds later into listeners of finished requests (about 5% of a node's CPU).
    const sends = new AbortController()
    const sendSignal = sends.signal

    return await new Promise<WriteResult & { superseded?: boolean }>((resolve, reject) => {
      let superseded = false
      let skewed = false
      let acks = 0
      let failed = 0
      let hinted = 0
      let hintsInFlight = 0
      let settled = false
      let doomed = false
      let pendingSends = alive.length
      const finish = (err?: Error): void => {
        if (settled) return
        settled = true
        // The level was missed because replicas refused the record for a clock problem: say so.
        if (skewed && err instanceof ConsistencyUnavailableError) err = new ClockSkewError(record.key)
        opts.signal?.removeEventListener('abort', onCallerAbort)
        if (pendingSends === 0) this.c.clock.clearTimeout(timer)
        if (err != null) reject(err)
        else resolve({ key: record.key, timestamp: record.ts as Timestamp, acks, hinted, ...(superseded ? { superseded } : {}) })
      }
      const met = (): boolean => level === 'any' ? acks + hinted >= 1 : acks >= required
      const check = (): void => {
        if (settled) return
        // A hint being stored is a local write: waiting for it lets the result say truly how many were left.
        if (met() && hintsInFlight === 0) { finish(); return }
        const outstanding = alive.length - acks - failed
        // Once the level is out of reach, wait only for the sends still in flight (bounded by the
        // deadline) so the error reports how many replicas really answered.
        const impossible = level === 'any' ? outstanding === 0 && hintsInFlight === 0 : acks + outstanding < required
        if (impossible && outstanding === 0) finish(new ConsistencyUnavailableError(shortfall(acks)))
        else if (impossible) doomed = true
      }
      // Met, and only a hint still being stored held the answer back: the write stands.
      const onCallerAbort = (): void => { if (met()) finish(); else finish(opts.signal?.reason) }
      const timer = this.c.clock.setTimeout(() => {
        sends.abort(new ConsistencyTimeoutError(shortfall(acks), timeoutMs))
        if (met()) finish()
        else if (doomed) finish(new ConsistencyUnavailableError(shortfall(acks)))
        else finish(new ConsistencyTimeoutError(shortfall(acks), timeoutMs))
      }, timeoutMs)
      const sent = (): void => { if (--pendingSends === 0 && settled) this.c.clock.clearTimeout(timer) }
      const remotes = alive.filter(p => p !== this.self).length
      let refusedRemote = 0
      opts.signal?.addEventListener('abort', onCallerAbort, { once: true })
      const hint = (peer: string): void => {
        hintsInFlight++
        const p = this.c.hints.store(peer, record, opts.hintedAt)
          .then(ok => { if (ok) hinted++ })
          .finally(() => { hintsInFlight--; check() })
        this.track(p)
      }
      for (const peer of down) hint(peer)
      for (const peer of alive) {
        this.track(this.write(peer, [record], sendSignal, timeoutMs).then(
          (outcome) => {
            sent()
            if (outcome === 'skewed' || outcome === 'refused') {
              // Not stored, for a clock problem: no ack, and nothing a hint could fix. Readers with a right clock
              // ignore the far-ahead version it lost to (readFrom), so the acks of the others stand.
              skewed = true
              failed++
              // One replica whose clock is far behind refuses a right clock's stamps too; most of them, a wrong one.
              if (outcome === 'refused' && peer !== this.self && record.ts?.node === this.self && ++refusedRemote * 2 > remotes) this.selfSkewed()
            } else {
              if (outcome === 'superseded') superseded = true
              acks++
            }
            check()
          },
          (err) => {
            sent()
            failed++
            this.log.debug({ err, peer, key: record.key }, 'replica write failed, storing a hint')
            if (peer !== this.self) hint(peer)
            check()
          }
        ))
      }
      check()
    })
  }

  async get (key: string | Uint8Array, opts: GetOptions = {}): Promise<GetResult> {
    const k = validateKey(key, this.maxKeyBytes)
    const level = this.level(opts, 'read')
    if (opts.replica != null && level !== 'one') throw new InvalidOptionError('a pinned replica read needs consistency ONE')
    return await this.measure('get', level, async () => await this.readKey(k, level, opts))
  }

  private async readKey (key: string, level: ConsistencyLevel, opts: GetOptions): Promise<GetResult> {
    const timeoutMs = this.timeoutOf(opts)
    const replicas = opts.replica != null ? [opts.replica] : this.placement().read.replicas(key, this.rf)
    const required = requiredAnswers(level, replicas.length)
    const shortfall = (answered: number): ConsistencyShortfall => ({ op: 'read', level, answered, replicas: replicas.length, required })
    // Local first: it saves a network round trip for the full read.
    const candidates = replicas.filter(p => this.isAlive(p)).sort((a, b) => (b === this.self ? 1 : 0) - (a === this.self ? 1 : 0))
    if (candidates.length < required) throw new ConsistencyUnavailableError(shortfall(candidates.length), 'alive')
    opts.signal?.throwIfAborted()
    return await withDeadline(timeoutMs, opts.signal, async signal => await this.readFrom(key, candidates, required, shortfall, timeoutMs, signal, opts), this.c.clock)
  }

  private async readFrom (key: string, candidates: string[], required: number, shortfall: (answered: number) => ConsistencyShortfall,
    timeoutMs: number, signal: AbortSignal, opts: GetOptions, again = true): Promise<GetResult> {
    const onTimeout = (answered: number): Error => opts.signal?.aborted === true ? opts.signal.reason : new ConsistencyTimeoutError(shortfall(answered), timeoutMs)

    // One full read, digests (versions) from the rest; replacements for failures are digests too.
    const answers = await gather(candidates, required, async (peer, i) => await this.read(peer, key, i > 0, signal, timeoutMs), signal,
      (n) => new ConsistencyUnavailableError(shortfall(n)), onTimeout, this.c.clock, Math.max(1, Math.floor(timeoutMs * this.speculate)))

    // A version stamped beyond the clock drift bound ahead of this node's clock (written by a node whose clock runs
    // fast; replicas refuse such records now, but older ones may hold one) is not taken as the newest: it would hide
    // every write acknowledged since, and nothing could replace it until the clocks caught up.
    const horizon = BigInt(Math.floor(this.c.clock.now())) + this.maxClockDrift
    const valid = (a: ReadResponse): boolean => a.found && (a.version == null || a.version.wall <= horizon)
    let best: Timestamp | undefined
    for (const a of answers.values()) if (valid(a) && compareTimestamps(a.version, best) > 0) best = a.version
    if (best == null) throw new KeyNotFoundError(key)
    this.c.hlc.update(best)
    let record = [...answers.values()].find(a => a.record != null && compareTimestamps(a.record.ts, best) === 0)?.record
    if (record == null) {
      // The full read was stale (or failed): fetch the newest from a replica that has it.
      let vanished = false
      for (const [peer, a] of answers) {
        if (!valid(a) || compareTimestamps(a.version, best) !== 0) continue
        try {
          const full = await this.read(peer, key, false, signal, timeoutMs)
          if (full.record != null && compareTimestamps(full.record.ts, best) >= 0) { record = full.record; break }
          vanished = true
        } catch (err) {
          if (signal.aborted) throw onTimeout(answers.size - 1)
        }
      }
      // A replica answered without the version its digest named: it was purged (a tombstone past its age) or replaced
      // in between. A fresh read sees what is there now, where this one could only say UNAVAILABLE.
      if (record == null && vanished && again) return await this.readFrom(key, candidates, required, shortfall, timeoutMs, signal, opts, false)
      if (record == null) throw new ConsistencyUnavailableError(shortfall(answers.size - 1))
    }
    const stale = [...answers].filter(([, a]) => a.found ? valid(a) && compareTimestamps(a.version, record.ts) < 0 : true).map(([p]) => p)
    if (stale.length > 0 && opts.replica == null) this.repair(record, stale)
    if (isDead(record, this.c.clock.now())) throw new KeyNotFoundError(key)
    return toResult(record)
  }

  /** Read repair: write the newest version back to stale replicas without delaying the reply. */
  private repair (record: KvRecord, peers: string[]): void {
    const signal = AbortSignal.timeout(this.timeout)
    for (const peer of peers) {
      this.c.metrics.readRepairs.inc()
      this.track(this.write(peer, [record], signal))
    }
  }

  /**
   * Prefix scan across the mesh: pages from every alive node, merged by key with the newest
   * version winning; tombstones and expired values are dropped. Best effort: nodes that fail are
   * listed in `unreachable`, and with RF > 1 their keys usually come from other replicas.
   */
  async scan (opts: ScanOptions = {}): Promise<ScanResult> {
    const prefix = opts.prefix ?? ''
    const limit = opts.limit ?? DEFAULT_SCAN_LIMIT
    if (!(limit > 0) || limit > MAX_SCAN_LIMIT) throw new InvalidOptionError(`limit must be 1..${MAX_SCAN_LIMIT}, got ${limit}`)
    if (this.c.membership.ready?.() === false) throw new ViewNotReadyError()
    const maxBytes = opts.maxBytes ?? MAX_SCAN_BYTES
    return await this.measure('scan', 'one', async () => {
      const timeoutMs = this.timeoutOf(opts)
      const signal = deadline(timeoutMs, opts.signal)
      const members = new Set(this.c.membership.members())
      let nodes = [...new Set([this.self, ...this.c.membership.alive()])].filter(p => members.has(p))
      const unreachable = this.c.membership.members().filter(p => !nodes.includes(p))
      const entries: GetResult[] = []
      let bytes = 0
      let more = false
      const pageSize = Math.min(MAX_SCAN_LIMIT, limit + 16)
      let after = opts.after ?? ''
      // A member that freezes mid-scan would hold the whole scan until the deadline: its page is given up as soon as
      // it is declared dead or leaves. (Task sweeps run one after another, and one stuck here delayed the adoption
      // of a frozen node's tasks by the full request timeout.)
      const gone = new Map<string, AbortController>()
      const onGone = (peer: string): void => { gone.get(peer)?.abort(new NodeUnreachableError(`${peer} was declared dead or left during a scan`)) }
      const offs = [this.c.membership.on('dead', onGone), this.c.membership.on('left', onGone)]
      try {
        while (entries.length < limit) {
          const pages = await Promise.all(nodes.map(async peer => {
            try {
              const req = { prefix, limit: pageSize, after }
              if (peer === this.self) return { peer, res: await this.c.service.scan(req, signal) }
              const ctrl = new AbortController()
              gone.set(peer, ctrl)
              try {
                return { peer, res: await this.c.transport.scan(peer, req, AbortSignal.any([signal, ctrl.signal])) }
              } finally {
                gone.delete(peer)
              }
            } catch (err) {
              if (opts.signal?.aborted === true) throw opts.signal.reason
              return { peer, res: undefined }
            }
          }))
          for (const p of pages) if (p.res == null) unreachable.push(p.peer)
          nodes = pages.filter(p => p.res != null).map(p => p.peer)
          if (nodes.length === 0) {
            if (signal.aborted && opts.signal?.aborted !== true) throw new TimeoutError(`scan: no node answered within ${timeoutMs} ms`)
            throw new UnavailableError(`scan: no node answered (${unreachable.length} unreachable)`)
          }
          // Keys past the smallest "last key" of a node that has more are not final yet.
          let horizon: string | undefined
          const merged = new Map<string, KvRecord>()
          for (const { res } of pages) {
            if (res == null) continue
            const last = res.records[res.records.length - 1]?.key
            if (res.more && last != null && (horizon == null || compareKeys(last, horizon) < 0)) horizon = last
            const ahead = BigInt(Math.floor(this.c.clock.now())) + this.maxClockDrift
            for (const r of res.records) {
              // As in readFrom: a version from beyond the drift bound is not the newest.
              if (r.ts != null && r.ts.wall > ahead) continue
              const cur = merged.get(r.key)
              if (cur == null || compareTimestamps(r.ts, cur.ts) > 0) merged.set(r.key, r)
            }
          }
          const keys = [...merged.keys()].filter(k => horizon == null || compareKeys(k, horizon) <= 0).sort(compareKeys)
          const now = this.c.clock.now()
          let i = 0
          for (; i < keys.length && entries.length < limit; i++) {
            const r = merged.get(keys[i]) as KvRecord
            if (isDead(r, now)) continue
            const size = Buffer.byteLength(r.key) + r.value.byteLength
            if (entries.length > 0 && bytes + size > maxBytes) break
            bytes += size
            entries.push(toResult(r))
          }
          // Cut short (by the limit or the size bound) with keys left here, or full with keys past the horizon.
          more = i < keys.length || (entries.length >= limit && horizon != null)
          // No key up to the horizon (every one there was from beyond the drift bound): go on past it all the same.
          if (more || horizon == null || (keys.length === 0 && compareKeys(horizon, after) <= 0)) break
          after = horizon
        }
      } finally {
        for (const off of offs) off()
      }
      return { entries, unreachable, more }
    })
  }

  /**
   * Graceful leave: sends every local record to the replicas it has once this node is out of
   * the ring. Call before announcing the leave; hints held here for other nodes are replayed
   * separately by the caller (see Storage.handoff).
   */
  async handoff (signal?: AbortSignal): Promise<HandoffResult> {
    const next = this.c.ring().members.filter(m => m !== this.self)
    const result: HandoffResult = { records: 0, failed: 0 }
    if (next.length === 0) return result
    // While members join, the records go to the natural and the pending replicas of the ring without this node.
    const after = new Placement(Ring.of(next, { vnodes: this.c.ring().vnodes }), this.placement().joining)
    const targetsOf = (token: bigint): string[] => after.targetsForToken(token, this.rf).replicas
    const queues = new Map<string, { records: KvRecord[], bytes: number }>()
    // One batch in flight per peer, the peers' batches side by side: sent one after another, a frozen peer's batch
    // held up every other peer's records until the leave's whole budget was spent (seen: a leave with one peer frozen
    // took its full 8 s and left keys with a single live copy).
    const inflight = new Map<string, Promise<void>>()
    // A peer that does not take a batch in time is left to anti-entropy for the rest of the handoff.
    const gaveUp = new Set<string>()
    const send = async (peer: string, records: KvRecord[]): Promise<void> => {
      try {
        await this.c.transport.write(peer, { records }, deadline(HANDOFF_BATCH_TIMEOUT, signal))
        this.c.metrics.rebalanced.inc(records.length)
      } catch (err) {
        if (signal?.aborted === true) throw err
        this.log.warn({ err, peer, records: records.length }, 'handoff batch failed; leaving that peer\'s records to anti-entropy')
        result.failed += records.length
        gaveUp.add(peer)
      }
    }
    const flush = async (peer: string): Promise<void> => {
      const q = queues.get(peer)
      if (q == null || q.records.length === 0) return
      queues.delete(peer)
      await inflight.get(peer)
      if (gaveUp.has(peer)) {
        result.failed += q.records.length
        return
      }
      const sending: Promise<void> = send(peer, q.records).finally(() => { if (inflight.get(peer) === sending) inflight.delete(peer) })
      // Rejects only when the whole handoff is aborted, which the loop or the final wait reports: never unhandled.
      sending.catch(() => {})
      inflight.set(peer, sending)
    }
    for await (const e of this.c.service.entries([FULL_RANGE])) {
      signal?.throwIfAborted()
      result.records++
      for (const peer of targetsOf(e.token)) {
        if (gaveUp.has(peer) || !this.c.membership.isAlive(peer)) { result.failed++; continue }
        const q = queues.get(peer) ?? { records: [], bytes: 0 }
        queues.set(peer, q)
        q.records.push(e.record)
        q.bytes += recordBytes(e.record)
        if (q.bytes >= this.maxBatchBytes / 2 || q.records.length >= 1000) await flush(peer)
      }
    }
    await Promise.all([...queues.keys()].map(async peer => { await flush(peer) }))
    await Promise.all(inflight.values())
    return result
  }

  /** Writes records to their current replicas with consistency ONE each (used to forward orphaned hints). */
  async forward (records: KvRecord[], signal: AbortSignal, hintedAt: number[] = []): Promise<void> {
    await Promise.all(records.map(async (r, i) => await this.writeRecord(r, 'one', { signal, timeoutMs: DEFAULT_ROUND_TIMEOUT, hintedAt: hintedAt[i] })))
  }
}

function toResult (r: KvRecord): GetResult {
  const out: GetResult = { key: r.key, value: r.value, timestamp: r.ts as Timestamp }
  if (r.expiresAt !== 0n) out.expiresAt = Number(r.expiresAt)
  return out
}

/**
 * Runs fn on candidates, at most `required` at a time, replacing each failure by the next
 * candidate, until `required` answers arrive. A replica that neither answers nor fails (hung) is
 * covered by speculation: every `speculateAfter` ms one more candidate is asked. Rejects as soon as that becomes impossible, or
 * when the signal aborts; never waits past either.
 */
export async function gather<T> (
  candidates: string[], required: number, fn: (peer: string, index: number) => Promise<T>, signal: AbortSignal,
  unavailable: (answered: number) => Error, timedOut: (answered: number) => Error,
  clock?: Clock, speculateAfter?: number
): Promise<Map<string, T>> {
  const results = new Map<string, T>()
  if (required === 0) return results
  return await new Promise((resolve, reject) => {
    let next = 0
    let inflight = 0
    let extra = 0
    let done = false
    let timer: TimerHandle | undefined
    const speculate = (): void => {
      if (done || clock == null || speculateAfter == null || next >= candidates.length) return
      timer = clock.setTimeout(() => { extra++; pump(); speculate() }, speculateAfter)
    }
    const finish = (err?: Error): void => {
      if (done) return
      done = true
      if (timer != null) clock?.clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      if (err != null) reject(err)
      else resolve(results)
    }
    const onAbort = (): void => { finish(timedOut(results.size)) }
    const pump = (): void => {
      if (done) return
      if (results.size >= required) { finish(); return }
      while (inflight + results.size < required + extra && next < candidates.length) {
        const i = next++
        const peer = candidates[i]
        inflight++
        fn(peer, i).then(
          r => { inflight--; if (!done) results.set(peer, r); pump() },
          () => { inflight--; pump() }
        )
      }
      if (inflight === 0 && results.size < required) finish(unavailable(results.size))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    if (signal.aborted) { onAbort(); return }
    pump()
    speculate()
  })
}

function toError (reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason))
}
