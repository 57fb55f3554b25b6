import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { DataDirLockedError } from '../lib/errors.js'

export type EngineOp =
  | { type: 'put', key: string, value: Uint8Array }
  | { type: 'del', key: string }

/** Bounds of an ordered iteration; keys order by their UTF-8 bytes. */
export interface EngineRange {
  gt?: string
  gte?: string
  lt?: string
  lte?: string
  limit?: number
}

export interface EngineStats {
  /** Calls to batch(). */
  writes: number
  /** Batches issued to the underlying store; with group commit, far fewer than writes under load. */
  commits: number
  /** Of those, batches written with fsync. */
  syncedCommits: number
  /** Trips to the underlying store for get(): with read gathering, fewer than gets under load. @default absent */
  readTrips?: number
}

/**
 * The local, single-node store under a replica. Small on purpose so another engine can be slotted in.
 * A resolved batch() is durable according to the engine's durability setting; ops of one batch apply atomically.
 * Batches apply, and their promises settle, in the order batch() was called, whether or not the earlier ones have
 * resolved: of two puts of one key, the later call's stands. The replica relies on this to queue a key's next write
 * before the last one has committed.
 */
export interface StorageEngine {
  open(): Promise<void>
  get(key: string): Promise<Uint8Array | undefined>
  /** Several keys in one call (one trip to the engine's I/O thread instead of one per key). */
  getMany(keys: string[]): Promise<Array<Uint8Array | undefined>>
  batch(ops: EngineOp[]): Promise<void>
  /** Ordered iteration. Writes made during iteration may or may not be seen. */
  iterate(range: EngineRange): AsyncIterable<[string, Uint8Array]>
  /** Bytes on disk (or in memory) for keys in [gte, lt). */
  approximateSize(gte: string, lt: string): Promise<number>
  /** Bytes the whole store takes on disk (in memory for an in-memory engine), the latest writes included. */
  sizeOnDisk(): Promise<number>
  close(): Promise<void>
  stats(): EngineStats
}

/**
 * `strict`: a write is acknowledged only after fsync.
 * `relaxed`: no fsync. LevelDB still hands each batch to the OS (its log write) before
 * acknowledging, so a process crash loses nothing; a power loss or kernel crash loses the
 * writes acknowledged since the OS last flushed its page cache (typically up to ~30 s).
 */
export type Durability = 'strict' | 'relaxed'

export interface LevelEngineInit {
  /** Directory of the LevelDB database. */
  path: string
  /** @default 'strict' */
  durability?: Durability
}

/** Code-point (= UTF-8 byte) order for JS strings, which compare by UTF-16 code unit. */
export function compareKeys (a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i)
    let y = b.charCodeAt(i)
    if (x === y) continue
    // Surrogates (D800-DFFF) encode code points above FFFF, so they sort after E000-FFFF.
    if (x >= 0xd800) x += x >= 0xe000 ? -0x800 : 0x2000
    if (y >= 0xd800) y += y >= 0xe000 ? -0x800 : 0x2000
    return x - y
  }
  return a.length - b.length
}

function inRange (key: string, r: EngineRange): boolean {
  if (r.gt != null && compareKeys(key, r.gt) <= 0) return false
  if (r.gte != null && compareKeys(key, r.gte) < 0) return false
  if (r.lt != null && compareKeys(key, r.lt) >= 0) return false
  if (r.lte != null && compareKeys(key, r.lte) > 0) return false
  return true
}

/** classic-level hands out Buffers; callers get plain Uint8Array views so comparisons and cloning behave the same for every engine. */
function plain (v: Uint8Array): Uint8Array {
  return Buffer.isBuffer(v) ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : v
}

interface Pending { ops: EngineOp[], resolve: () => void, reject: (err: unknown) => void }

/**
 * LevelDB through classic-level, with group commit: a batch arriving while a synced batch is
 * in flight waits for it and then goes out together with every other waiting batch as one
 * synced batch, so N concurrent writes cost about two fsyncs instead of N.
 */
export class LevelEngine implements StorageEngine {
  private readonly db: ClassicLevel<string, Uint8Array>
  private readonly sync: boolean
  private queue: Pending[] = []
  private gets: Array<{ key: string, resolve: (v: Uint8Array | undefined) => void, reject: (err: unknown) => void }> = []
  private reading = false
  private flushing: Promise<void> | undefined
  private readonly counters: EngineStats = { writes: 0, commits: 0, syncedCommits: 0 }

  constructor (init: LevelEngineInit) {
    this.db = new ClassicLevel<string, Uint8Array>(init.path, { keyEncoding: 'utf8', valueEncoding: 'view' })
    this.sync = (init.durability ?? 'strict') === 'strict'
  }

  async open (): Promise<void> {
    try {
      await this.db.open()
    } catch (err: any) {
      if (err?.code === 'LEVEL_LOCKED' || err?.cause?.code === 'LEVEL_LOCKED') {
        throw new DataDirLockedError(`storage directory is in use by another process: ${this.db.location}`)
      }
      throw err
    }
  }

  /**
   * Reads go out as writes do: one at once when none is in flight, and the ones that come meanwhile together in one
   * `getMany`. Each trip to LevelDB's thread costs the event loop a thread-pool wake-up and a completion (30-60 µs
   * here, more on a busy machine), and a node under a read load made one per key.
   */
  async get (key: string): Promise<Uint8Array | undefined> {
    return await new Promise<Uint8Array | undefined>((resolve, reject) => {
      this.gets.push({ key, resolve, reject })
      if (!this.reading) this.readGets()
    })
  }

  private readGets (): void {
    this.reading = true
    this.counters.readTrips = (this.counters.readTrips ?? 0) + 1
    const group = this.gets
    this.gets = []
    const values = group.length === 1
      ? this.db.get(group[0].key).then(v => [v])
      : this.db.getMany(group.map(g => g.key))
    values
      .then(vs => { group.forEach((g, i) => { const v = vs[i]; g.resolve(v == null ? undefined : plain(v)) }) },
        err => { for (const g of group) g.reject(err) })
      .finally(() => {
        this.reading = false
        if (this.gets.length > 0) this.readGets()
      })
  }

  async getMany (keys: string[]): Promise<Array<Uint8Array | undefined>> {
    if (keys.length === 0) return []
    if (keys.length === 1) return [await this.get(keys[0])]
    const values = await this.db.getMany(keys)
    return values.map(v => v == null ? undefined : plain(v))
  }

  async batch (ops: EngineOp[]): Promise<void> {
    this.counters.writes++
    if (ops.length === 0) return
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ ops, resolve, reject })
      this.flushing ??= this.flush()
    })
  }

  private async flush (): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const group = this.queue
        this.queue = []
        const ops = group.length === 1 ? group[0].ops : group.flatMap(g => g.ops)
        try {
          await this.db.batch(ops as any, { sync: this.sync })
          this.counters.commits++
          if (this.sync) this.counters.syncedCommits++
          for (const g of group) g.resolve()
        } catch (err) {
          for (const g of group) g.reject(err)
        }
      }
    } finally {
      this.flushing = undefined
    }
  }

  async * iterate (range: EngineRange): AsyncIterable<[string, Uint8Array]> {
    const opts: any = {}
    for (const k of ['gt', 'gte', 'lt', 'lte'] as const) if (range[k] != null) opts[k] = range[k]
    if (range.limit != null) opts.limit = range.limit
    const it = this.db.iterator(opts)
    try {
      for await (const [k, v] of it) yield [k, plain(v)]
    } finally {
      await it.close()
    }
  }

  async approximateSize (gte: string, lt: string): Promise<number> {
    return await this.db.approximateSize(gte, lt)
  }

  /**
   * The sizes of the store's files. LevelDB's own estimate covers only its sorted tables: the writes still in its log
   * and memtable (the first 4 MiB or so of any store) count nothing there, and a small node read as 0 bytes.
   */
  async sizeOnDisk (): Promise<number> {
    const dir = this.db.location
    let bytes = 0
    for (const name of await readdir(dir).catch(() => [] as string[])) bytes += (await stat(join(dir, name)).catch(() => undefined))?.size ?? 0
    return bytes
  }

  async close (): Promise<void> {
    while (this.flushing != null) await this.flushing
    if (this.db.status === 'open' || this.db.status === 'opening') await this.db.close()
  }

  stats (): EngineStats { return { ...this.counters } }
}

/** The same contract in memory, for tests and simulations. `close()` keeps the data so a reopen sees it. */
export class MemoryEngine implements StorageEngine {
  private readonly keys: string[] = []
  private readonly values = new Map<string, Uint8Array>()
  private readonly counters: EngineStats = { writes: 0, commits: 0, syncedCommits: 0 }

  async open (): Promise<void> {}

  async get (key: string): Promise<Uint8Array | undefined> { return this.values.get(key) }

  async getMany (keys: string[]): Promise<Array<Uint8Array | undefined>> { return keys.map(k => this.values.get(k)) }

  /** Index of the first key >= key. */
  private seek (key: string): number {
    let lo = 0
    let hi = this.keys.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (compareKeys(this.keys[mid], key) < 0) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  async batch (ops: EngineOp[]): Promise<void> {
    this.counters.writes++
    this.counters.commits++
    for (const op of ops) {
      const i = this.seek(op.key)
      const exists = i < this.keys.length && this.keys[i] === op.key
      if (op.type === 'put') {
        if (!exists) this.keys.splice(i, 0, op.key)
        this.values.set(op.key, op.value.slice())
      } else if (exists) {
        this.keys.splice(i, 1)
        this.values.delete(op.key)
      }
    }
  }

  async * iterate (range: EngineRange): AsyncIterable<[string, Uint8Array]> {
    let n = 0
    let i = range.gt != null ? this.seek(range.gt) : range.gte != null ? this.seek(range.gte) : 0
    let last: string | undefined
    while (range.limit == null || n < range.limit) {
      // Re-seek after each yield: the array may have changed while the consumer awaited.
      if (last != null) i = this.seek(last)
      while (i < this.keys.length && (last != null ? compareKeys(this.keys[i], last) <= 0 : !inRange(this.keys[i], { gt: range.gt, gte: range.gte }))) i++
      if (i >= this.keys.length) return
      const key = this.keys[i]
      if (!inRange(key, range)) return
      last = key
      n++
      yield [key, this.values.get(key) as Uint8Array]
    }
  }

  async sizeOnDisk (): Promise<number> {
    let size = 0
    for (const [k, v] of this.values) size += Buffer.byteLength(k) + v.byteLength
    return size
  }

  async approximateSize (gte: string, lt: string): Promise<number> {
    let size = 0
    for (let i = this.seek(gte); i < this.keys.length && compareKeys(this.keys[i], lt) < 0; i++) {
      size += Buffer.byteLength(this.keys[i]) + (this.values.get(this.keys[i])?.byteLength ?? 0)
    }
    return size
  }

  async close (): Promise<void> {}

  stats (): EngineStats { return { ...this.counters } }
}
