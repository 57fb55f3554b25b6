import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { EngineStats } from './engine.js'

/** Metrics of one store. Without a registry they are kept but not exported, so code never checks for null. */
export class StorageMetrics {
  readonly ops: Counter<'op' | 'consistency' | 'outcome'>
  readonly latency: Histogram<'op' | 'consistency'>
  readonly unavailable: Counter<'op' | 'consistency'>
  readonly readRepairs: Counter
  readonly hintsStored: Counter
  readonly hintsReplayed: Counter
  readonly hintsDropped: Counter<'reason'>
  readonly hintsPending: Gauge
  readonly aeRounds: Counter<'outcome'>
  readonly aeRangesRepaired: Counter
  readonly aeRecordsStreamed: Counter<'direction'>
  readonly tombstonesPurged: Counter
  readonly rebalanced: Counter
  readonly clockSkewRefused: Counter
  readonly writeBatch: Histogram

  private readonly registers: Registry[]

  constructor (registry?: Registry) {
    const registers = registry == null ? [] : [registry]
    this.registers = registers
    this.ops = new Counter({ name: 'meshos_kv_operations_total', help: 'Key-value operations coordinated by this node', labelNames: ['op', 'consistency', 'outcome'], registers })
    this.latency = new Histogram({
      name: 'meshos_kv_operation_seconds',
      help: 'Latency of coordinated key-value operations',
      labelNames: ['op', 'consistency'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers
    })
    this.unavailable = new Counter({ name: 'meshos_kv_unavailable_total', help: 'Operations failed because the consistency level could not be met', labelNames: ['op', 'consistency'], registers })
    this.clockSkewRefused = new Counter({ name: 'meshos_kv_clock_skew_refused_total', help: 'Records this replica refused because they were stamped beyond the clock drift bound ahead of its clock', registers })
    this.readRepairs = new Counter({ name: 'meshos_kv_read_repairs_total', help: 'Stale replicas written back during reads', registers })
    this.hintsStored = new Counter({ name: 'meshos_kv_hints_stored_total', help: 'Hints stored for unreachable replicas', registers })
    this.hintsReplayed = new Counter({ name: 'meshos_kv_hints_replayed_total', help: 'Hints delivered to their replica', registers })
    this.hintsDropped = new Counter({ name: 'meshos_kv_hints_dropped_total', help: 'Hints dropped (too many, too old, replica left)', labelNames: ['reason'], registers })
    this.hintsPending = new Gauge({ name: 'meshos_kv_hints_pending', help: 'Hints waiting for their replica', registers })
    this.aeRounds = new Counter({ name: 'meshos_kv_anti_entropy_rounds_total', help: 'Anti-entropy rounds', labelNames: ['outcome'], registers })
    this.aeRangesRepaired = new Counter({ name: 'meshos_kv_anti_entropy_ranges_repaired_total', help: 'Merkle leaves found different and repaired', registers })
    this.aeRecordsStreamed = new Counter({ name: 'meshos_kv_anti_entropy_records_streamed_total', help: 'Records sent or received by anti-entropy', labelNames: ['direction'], registers })
    this.tombstonesPurged = new Counter({ name: 'meshos_kv_tombstones_purged_total', help: 'Tombstones and expired values removed after every replica held them', registers })
    this.writeBatch = new Histogram({ name: 'meshos_kv_replica_write_batch_records', help: 'Records per write request this coordinator sent to a replica', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers })
    this.rebalanced = new Counter({ name: 'meshos_kv_records_handed_off_total', help: 'Records moved to their new replicas after a ring change or before leaving', registers })
  }

  /** Whether this node is still copying the ranges it took on joining, and how many members it sees joining. */
  watchJoins (self: () => boolean, members: () => number): void {
    const registers = this.registers
    new Gauge({ // eslint-disable-line no-new
      name: 'meshos_kv_joining',
      help: '1 while this node copies the KV ranges it took on joining the mesh (its ranges are read from other replicas meanwhile)',
      registers,
      collect () { this.set(self() ? 1 : 0) }
    })
    new Gauge({ // eslint-disable-line no-new
      name: 'meshos_kv_joining_members',
      help: 'Ring members this node sees joining (itself included), whose ranges it reads from the ring without them',
      registers,
      collect () { this.set(members()) }
    })
  }

  /** The local engine's write and commit counts, read at each scrape: group commit shows as commits well under writes. */
  watchEngine (stats: () => EngineStats): void {
    const registers = this.registers
    new Counter({ // eslint-disable-line no-new
      name: 'meshos_kv_engine_writes_total',
      help: 'Batches of records, hints and indexes handed to the local engine',
      registers,
      collect () { this.reset(); this.inc(stats().writes) }
    })
    new Counter({ // eslint-disable-line no-new
      name: 'meshos_kv_engine_commits_total',
      help: 'Batches the local engine wrote, by whether it fsynced them (several writes share one commit under load)',
      labelNames: ['synced'],
      registers,
      collect () {
        const s = stats()
        this.reset()
        this.inc({ synced: 'true' }, s.syncedCommits)
        this.inc({ synced: 'false' }, s.commits - s.syncedCommits)
      }
    })
  }
}
