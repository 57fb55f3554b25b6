import { existsSync, readFileSync } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { removeDurable, removeStaleTemps, syncDir, writeFileDurable } from '../lib/durable.js'
import { silentLogger, type Logger } from '../lib/log.js'
import * as C from './constants.js'
import { CorruptChunkError } from './errors.js'
import { verifyBlock } from './manifest.js'

export interface ChunkStoreInit {
  /** Directory the store owns; chunks go to `<dir>/chunks`, pins to `<dir>/pins`. */
  dir: string
  /**
   * fsync each block, and the directory it is renamed into, before it counts as stored: a crash never leaves a torn
   * block under its id, and a power loss does not take back a stored one. @default true
   */
  fsync?: boolean
  /** @default silentLogger */
  logger?: Logger
  /** Called when a stored block fails verification (it has already been removed). @default none */
  onCorrupt?: (cid: string) => void
  /**
   * Files of deleted blocks kept to write new blocks into (see `put`); they hold at most this many chunks' worth of
   * disk until reused or the node restarts. 0 deletes every file at once. @default `SPARE_BLOCK_FILES` (32)
   */
  spares?: number
}

/**
 * Blocks (chunks and manifests) as one file each, named by CID and fanned out over 256 directories by the CID's last
 * two characters (the first ones are the same for every id). A block is written to a temp file, fsynced and renamed,
 * so a reader sees a whole block or none; then its directory is fsynced, so that the rename survives a power loss.
 * Every read is verified against the CID: a corrupt block is deleted, so it reads as missing and the owner's repair
 * fetches a good copy.
 */
export class ChunkStore {
  private readonly blocks: string
  private readonly tmp: string
  private readonly spareDir: string
  private readonly maxSpares: number
  /** Names of the files in `spareDir`, each a deleted block's file waiting to be overwritten. */
  private readonly spares: string[] = []
  private readonly fsync: boolean
  private readonly log: Logger
  private counted = { blocks: 0, bytes: 0 }
  /** Fan-out directories known to exist: the store only ever deletes files, so a block put needs no mkdir after the first. */
  private readonly fanDirs = new Set<string>()

  constructor (private readonly init: ChunkStoreInit) {
    this.blocks = join(init.dir, 'chunks')
    this.tmp = join(init.dir, 'tmp')
    this.spareDir = join(init.dir, 'spare')
    this.maxSpares = init.spares ?? C.SPARE_BLOCK_FILES
    this.fsync = init.fsync ?? true
    this.log = init.logger ?? silentLogger
  }

  get stats (): { blocks: number, bytes: number } { return { ...this.counted } }

  /** Files of deleted blocks waiting to be reused. */
  get spareFiles (): number { return this.spares.length }

  async start (): Promise<void> {
    await mkdir(this.blocks, { recursive: true })
    // Leftovers of writes a crash interrupted; never visible under a block id.
    await rm(this.tmp, { recursive: true, force: true })
    await mkdir(this.tmp, { recursive: true })
    await rm(this.spareDir, { recursive: true, force: true })
    await mkdir(this.spareDir, { recursive: true })
    this.spares.length = 0
    let blocks = 0
    let bytes = 0
    for await (const { size } of this.entries()) { blocks++; bytes += size }
    this.counted = { blocks, bytes }
  }

  async stop (): Promise<void> {}

  path (cid: CID | string): string {
    const s = cid.toString()
    return join(this.blocks, s.slice(-2), s)
  }

  /**
   * `has` without the thread pool: one stat on the event loop, a few microseconds, where the asynchronous one can wait
   * behind queued hashing and file writes.
   */
  hasNow (cid: CID | string): boolean {
    return existsSync(this.path(cid))
  }

  async has (cid: CID | string): Promise<boolean> {
    try {
      await stat(this.path(cid))
      return true
    } catch {
      return false
    }
  }

  /**
   * The verified block, or undefined when it is not here. Throws CorruptChunkError (after deleting it) on mismatch.
   * `verify: false` skips the hash, for a caller that verifies what it receives anyway (a remote reader).
   *
   * The read is synchronous. A block is at most 1 MiB and was written recently or is read often, so it is nearly always
   * in the page cache: 0.35-0.45 ms here, against 0.5 ms for the asynchronous read, which also takes five trips through
   * the thread pool and the event loop (open, stat, two reads, close). On a provider busy ciphering other chunks each
   * trip waited for the loop, and a 1 MiB read took 20-30 ms, which is what a reader waited for its first bytes.
   */
  async get (cid: CID, options: { verify?: boolean } = {}): Promise<Uint8Array | undefined> {
    let data: Uint8Array
    try {
      data = readFileSync(this.path(cid))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    if (options.verify !== false && !verifyBlock(cid, data)) {
      this.log.warn({ cid: cid.toString() }, 'stored block failed verification; removing it')
      await this.delete(cid)
      this.init.onCorrupt?.(cid.toString())
      throw new CorruptChunkError(cid.toString(), 'on disk')
    }
    return data
  }

  /**
   * Stores a block the caller has verified. Returns false when it was already here.
   *
   * The block goes into the file of a deleted block when one is spare, overwritten and cut to size, rather than into
   * a new file. Overwriting reuses the inode and, while the old pages are cached, the pages: writing 1 MiB into a new
   * file cost 0.89 ms of CPU here against 0.33 for an overwrite. In a `perf` of 20 puts of 10 MiB, each deleted
   * after it, ext4 and page-cache work went from 7.2 % to 5.1 % of the mesh's CPU (BENCHMARKS.md, files, session 7).
   */
  async put (cid: CID, data: Uint8Array): Promise<boolean> {
    const final = this.path(cid)
    if (await this.has(cid)) return false
    const tmp = join(this.tmp, `${cid.toString()}.${randomBytes(4).toString('hex')}`)
    const spare = this.spares.pop()
    let reused = false
    if (spare != null) {
      try {
        await rename(join(this.spareDir, spare), tmp)
        reused = true
      } catch {}
    }
    const fan = cid.toString().slice(-2)
    const fanDir = join(this.blocks, fan)
    try {
      const fh = await open(tmp, reused ? 'r+' : 'w')
      try {
        await fh.writeFile(data)
        if (reused) await fh.truncate(data.byteLength)
        if (this.fsync) await fh.sync()
      } finally {
        await fh.close()
      }
      if (!this.fanDirs.has(fan)) {
        await mkdir(fanDir, { recursive: true })
        if (this.fsync) await syncDir(this.blocks)
        this.fanDirs.add(fan)
      }
      try {
        await rename(tmp, final)
      } catch (err) {
        // Removed behind the store's back (an operator clearing a directory): make it again.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        await mkdir(fanDir, { recursive: true })
        if (this.fsync) await syncDir(this.blocks)
        await rename(tmp, final)
      }
    } catch (err) {
      // A write that failed (a full disk, most often) leaves no partial block behind to hold the space until a restart.
      await rm(tmp, { force: true }).catch(() => {})
      throw err
    }
    // A rename is on disk only once its directory is: without this, a power loss could take back a block whose put
    // was answered, on every replica at once if they share the outage.
    if (this.fsync) await syncDir(fanDir)
    this.counted.blocks++
    this.counted.bytes += data.byteLength
    return true
  }

  async delete (cid: CID | string): Promise<boolean> {
    const p = this.path(cid)
    let size = 0
    try {
      size = (await stat(p)).size
      if (this.spares.length < this.maxSpares) {
        const spare = randomBytes(8).toString('hex')
        await rename(p, join(this.spareDir, spare))
        this.spares.push(spare)
      } else {
        await rm(p)
      }
    } catch {
      return false
    }
    this.counted.blocks = Math.max(0, this.counted.blocks - 1)
    this.counted.bytes = Math.max(0, this.counted.bytes - size)
    return true
  }

  /** Every stored block, with its size and modification time. */
  async * entries (): AsyncGenerator<{ cid: string, size: number, mtimeMs: number }> {
    let dirs: string[]
    try { dirs = await readdir(this.blocks) } catch { return }
    for (const d of dirs) {
      let names: string[]
      try { names = await readdir(join(this.blocks, d)) } catch { continue }
      for (const name of names) {
        try {
          const s = await stat(join(this.blocks, d, name))
          yield { cid: name, size: s.size, mtimeMs: s.mtimeMs }
        } catch {}
      }
    }
  }
}

/** What a node records about a file it holds. */
export interface Pin {
  cid: string
  /** Name given at put time; informational. */
  name: string
  size: number
  chunks: number
  /** Replication factor the file should have. */
  replicas: number
  pinnedAt: number
  /** True once every chunk is stored here. */
  complete: boolean
  /**
   * Taken to make a copy (a repair, or a put's replica that missed chunks) and not yet complete: on a full disk such a
   * pin is dropped, where a copy that was complete here is kept. Stored, so that it holds across a restart.
   */
  taken?: boolean
}

/** Pins and removal tombstones, one small JSON file each, written atomically and durably (lib/durable.ts). */
export class PinStore {
  private readonly dir: string
  private readonly tombDir: string
  readonly pins = new Map<string, Pin>()
  readonly tombstones = new Map<string, number>()

  private readonly log: Logger

  constructor (dir: string, logger: Logger = silentLogger) {
    this.dir = join(dir, 'pins')
    this.tombDir = join(dir, 'removed')
    this.log = logger
  }

  /**
   * Loads the pins and tombstones. Returns the ids of pin files that could not be read, for the caller to rebuild:
   * dropping one silently let the sweep delete the file's blocks an hour later.
   */
  async start (): Promise<string[]> {
    await mkdir(this.dir, { recursive: true })
    await mkdir(this.tombDir, { recursive: true })
    for (const d of [this.dir, this.tombDir]) {
      // Also those of the writes before durable ones ("<cid>.json.<hex>.tmp").
      await removeStaleTemps(d, { legacy: name => name.endsWith('.tmp') })
    }
    const unreadable: string[] = []
    for (const name of await readdir(this.dir)) {
      if (!name.endsWith('.json')) continue
      const cid = name.slice(0, -'.json'.length)
      try {
        const p = JSON.parse(await readFile(join(this.dir, name), 'utf8')) as Pin
        if (p?.cid !== cid) throw new Error(`names ${String(p?.cid)}`)
        this.pins.set(p.cid, p)
      } catch (err) {
        this.log.warn({ err, cid }, 'pin file unreadable')
        unreadable.push(cid)
      }
    }
    for (const name of await readdir(this.tombDir)) {
      if (!name.endsWith('.json')) continue
      try {
        const t = JSON.parse(await readFile(join(this.tombDir, name), 'utf8')) as { cid: string, removedAt: number }
        this.tombstones.set(t.cid, t.removedAt)
      } catch (err) {
        this.log.warn({ err, file: name }, 'removal record unreadable; ignored')
      }
    }
    return unreadable
  }

  /** Pin ids in ascending order, for paged listings; dropped whenever a pin is added or removed. */
  private sorted?: string[]

  /**
   * Up to `count` pin ids after `after`, in ascending order. A listing of n pins is n / page requests, and sorting every
   * pin for each of them made a listing cost O(n² log n): about 200 sorts of 100,000 ids for one member's pins at a
   * page of 512. The order is now kept until the set of pins changes.
   */
  idsAfter (after: string, count: number): string[] {
    const ids = this.sorted ??= [...this.pins.keys()].sort()
    let lo = 0
    let hi = ids.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (ids[mid] <= after) lo = mid + 1
      else hi = mid
    }
    return ids.slice(lo, lo + count)
  }

  async set (pin: Pin): Promise<void> {
    if (!this.pins.has(pin.cid)) this.sorted = undefined
    this.pins.set(pin.cid, pin)
    await this.inOrder(pin.cid, async () => { await writeFileDurable(join(this.dir, `${pin.cid}.json`), JSON.stringify(pin)) })
  }

  async delete (cid: string): Promise<Pin | undefined> {
    const p = this.pins.get(cid)
    if (this.pins.delete(cid)) this.sorted = undefined
    await this.inOrder(cid, async () => { await removeDurable(join(this.dir, `${cid}.json`)) })
    return p
  }

  /** Disk writes of one pin, one after another in call order, so that the file ends as the map does. */
  private readonly writing = new Map<string, Promise<void>>()
  private async inOrder (cid: string, write: () => Promise<void>): Promise<void> {
    const next = (this.writing.get(cid) ?? Promise.resolve()).catch(() => {}).then(write)
    this.writing.set(cid, next)
    try {
      await next
    } finally {
      if (this.writing.get(cid) === next) this.writing.delete(cid)
    }
  }

  async tombstone (cid: string, removedAt: number): Promise<void> {
    const prev = this.tombstones.get(cid) ?? 0
    if (removedAt <= prev) return
    this.tombstones.set(cid, removedAt)
    await writeFileDurable(join(this.tombDir, `${cid}.json`), JSON.stringify({ cid, removedAt }))
  }

  async clearTombstone (cid: string): Promise<void> {
    if (!this.tombstones.delete(cid)) return
    await removeDurable(join(this.tombDir, `${cid}.json`))
  }

  async expireTombstones (before: number): Promise<void> {
    for (const [cid, at] of this.tombstones) if (at < before) await this.clearTombstone(cid)
  }
}
