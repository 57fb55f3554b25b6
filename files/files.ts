import { randomBytes } from 'node:crypto'
import { statfsSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { CID } from 'multiformats/cid'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { BadRequestError, MeshError, UnavailableError, toMeshError } from '../lib/errors.js'
import { silentLogger, type Logger } from '../lib/log.js'
import { delay } from '../lib/abort.js'
import { releaseBuffer } from '../lib/release.js'
import { placement as ringPlacement } from '../storage/placement.js'
import * as C from './constants.js'
import { chunker } from './chunker.js'
import { CorruptChunkError, FileNotFoundError, RemovalConflictError } from './errors.js'
import {
  chunkCid, chunkLength, cidFromBytes, decodeManifest, encodeManifest, parseChunkCid, parseFileCid, verifyBlock,
  MANIFEST_CODEC, type Manifest
} from './manifest.js'
import { filesService } from './service.js'
import { ChunkStore, PinStore, type Pin } from './store.js'
import { ordered, parallel } from './window.js'
import type * as M from './messages.js'
import type { Handlers, Rpc } from '../rpc/index.js'

/** Finds and announces the holders of a CID (the DHT, in a node). */
export interface ContentRouting {
  provide: (cid: CID, options: { signal?: AbortSignal }) => Promise<void>
  /** Peer ids of providers; may be incomplete or stale. */
  findProviders: (cid: CID, options: { signal?: AbortSignal }) => Promise<string[]>
  /** Stops announcing `cid`. */
  unprovide?: (cid: CID) => Promise<void>
}

export type FilesMembershipEvent = 'join' | 'alive' | 'dead' | 'left'

/** The part of membership files/ reads: who is alive, and when that changes. */
export interface FilesMembership {
  readonly peerId: string
  /** Alive members; may or may not include this node. */
  aliveMembers: () => Array<{ peerId: string }>
  /** Members suspected of having failed, not yet declared dead: most are alive. @default none */
  suspectMembers?: () => Array<{ peerId: string }>
  /** Returns an unsubscribe function. */
  on: (event: FilesMembershipEvent, fn: (peerId: string) => void) => () => void
}

/** Chooses `rf` distinct members for `key`, deterministically. */
export type Placement = (key: string, members: string[], rf: number) => string[]

export interface FilesComponents {
  rpc: Pick<Rpc, 'handle' | 'call'>
  membership: FilesMembership
  /** @default none: providers are found by asking alive members directly */
  contentRouting?: ContentRouting
  /** @default the storage ring's `placement` (consistent hashing, 256 vnodes per member) */
  placement?: Placement
  /** @default silentLogger */
  logger?: Logger
  /** @default none: no metrics */
  registry?: Registry
}

export interface FilesInit {
  /** Directory files/ owns (chunks, pins, tombstones). */
  dir: string
  /** @default `CHUNK_SIZE` (1 MiB) */
  chunkSize?: number
  /** @default `REPLICAS` (3) */
  replicas?: number
  /** Pins per `pins` message, asked or answered. @default `PINS_PAGE` (512) */
  pinsPage?: number
  /** Bytes free for `dir` on its disk, or undefined when unknown. @default from `statfs` */
  freeBytes?: (dir: string) => number | undefined
  /** Chunk transfers in flight per pull, and chunk writes in flight to the local store during a put. @default `WINDOW` (4) */
  window?: number
  /** Chunks in flight down a put's pipeline of replicas. @default `PIPELINE_WINDOW` (6) */
  pipelineWindow?: number
  /**
   * A put of a file known to be at most this size sends each chunk to every replica itself, instead of down the
   * pipeline. @default `DIRECT_PUT_LIMIT` (16 MiB)
   */
  directPutLimit?: number
  /** Chunks in flight during a read. @default `READ_WINDOW` (8) */
  readWindow?: number
  /** Chunks in flight at the start of a read, growing by one per chunk delivered. @default `READ_FIRST_WINDOW` (2) */
  readFirstWindow?: number
  /** @default `CHUNK_TIMEOUT` (15 s) */
  chunkTimeout?: number
  /** @default `CONTROL_TIMEOUT` (5 s) */
  controlTimeout?: number
  /** A chunk not received after this long is asked of a second provider too. @default `HEDGE_AFTER` (2 s) */
  hedgeAfter?: number
  /** @default `FIND_TIMEOUT` (5 s) */
  findTimeout?: number
  /** @default `REPAIR_INTERVAL` (30 s) */
  repairInterval?: number
  /** @default `REPAIR_DEBOUNCE` (1 s) */
  repairDebounce?: number
  /** @default `REPROVIDE_INTERVAL` (20 min) */
  reprovideInterval?: number
  /** @default `ORPHAN_GRACE` (1 h) */
  orphanGrace?: number
  /** @default `SWEEP_INTERVAL` (1 h) */
  sweepInterval?: number
  /** @default `TOMBSTONE_TTL` (7 days) */
  tombstoneTtl?: number
  /** fsync every stored block. @default true */
  fsync?: boolean
  /** How long a put waits for members to say when they saw its file removed. @default `REMOVALS_TIMEOUT` (2 s) */
  removalsTimeout?: number
  /** The wall clock that pin and removal times are read from (a test gives each node its own). @default Date.now */
  wallClock?: () => number
}

export interface OpOptions {
  /** @default a deadline of `OPERATION_TIMEOUT` (1 h) */
  signal?: AbortSignal
}

export interface ImportOptions extends OpOptions {
  /** @default '' */
  name?: string
  /** @default the store's replicas (3) */
  replicas?: number
  /** @default the store's chunk size (1 MiB) */
  chunkSize?: number
  /** Called with the bytes read so far. @default none */
  onProgress?: (bytes: number) => void
  /**
   * The file's size, when the caller knows it ahead (an HTTP Content-Length). A file of at most `directPutLimit` goes
   * to each replica directly rather than down the pipeline. @default unknown: the pipeline
   */
  size?: number
}

export interface ImportResult {
  cid: string
  size: number
  chunks: number
  name: string
  /** Nodes holding every chunk when the put returned. */
  replicas: number
  /** The copies this put could make: its replication factor, or every alive member when there are fewer. */
  wanted: number
}

export interface ReadOptions extends OpOptions {
  /** @default 0 */
  offset?: number
  /** @default to the end of the file */
  length?: number
}

export interface ReadResult {
  cid: string
  /** Size of the whole file. */
  size: number
  /** First byte and length of what `body` yields. */
  offset: number
  length: number
  /**
   * The bytes, in order. Each buffer it yields is the consumer's alone: nothing else in the node keeps it (a chunk is
   * read from disk or received for this read only, never shared between positions of the file, even when two hold
   * the same chunk), so the consumer may free it once done with it (lib/release.ts).
   */
  body: AsyncGenerator<Uint8Array>
}

export interface ChunkStat { index: number, cid: string, size: number, replicas: number, holders: string[] }

export interface FileStat {
  cid: string
  name: string
  size: number
  chunkSize: number
  chunks: number
  /** Replication factor the file should have. */
  replicas: number
  /** Nodes that pin the file (answering within the control deadline). */
  holders: string[]
  chunkReplicas: ChunkStat[]
  underReplicated: number
}

export interface FileEntry { cid: string, name: string, size: number, chunks: number, replicas: number, holders: number }

export interface RemoveResult { cid: string, removed: number, collected: number }

interface Metrics {
  fetched: Counter<'source'>
  bytes: Counter<'direction'>
  corrupt: Counter
  malformed: Counter
  repaired: Counter
  collected: Counter
  rounds: Counter
  underReplicated: Gauge
  lookup: Histogram
}

function diskFree (dir: string): number | undefined {
  try {
    const fs = statfsSync(dir)
    return fs.bavail * fs.bsize
  } catch {
    return undefined
  }
}

const notFound = (err: unknown): boolean => err instanceof MeshError && err.code === 'NOT_FOUND'

/**
 * The distributed file system of one node: import (chunk, address, replicate), read (find providers, fetch in
 * parallel, verify, retry), stat, list, remove, and the repair loop that keeps each file at its replication factor.
 *
 * ## Placement
 * All chunks of a file live on the same replica set, so every provider of a file id can serve every chunk and a
 * reader needs one provider lookup, not one per chunk. As in HDFS, the first replica is the node the file is put
 * through; the others are the storage ring's `placement` of a random upload key over the other alive members, which
 * spreads files evenly. Repair adds replicas by `placement(fileCid, non-holders)`. Deletion is by pin: a node stores
 * a chunk once however many of its files reference it, and collects it when the last one is unpinned.
 *
 * ## Put pipeline
 * Also as in HDFS, a put sends each chunk only to the first remote replica, which stores it and passes it to the next
 * (`putChunk`'s `forward` list) and answers once the rest of the pipeline has (see `relay`). The exception is a
 * file declared at most `directPutLimit` (16 MiB; an HTTP put with a Content-Length): its node sends each chunk to
 * every replica itself (`relayDirect`), as a primary-copy store does, since a few chunks' put waits out the pipeline's
 * second hop in full, and its uplink carries little either way.
 */
export class Files {
  readonly store: ChunkStore
  readonly pins: PinStore
  private readonly log: Logger
  private readonly placement: Placement
  private readonly chunkSize: number
  private readonly replicas: number
  private readonly window: number
  private readonly now: () => number
  private readonly pipelineWindow: number
  private readonly directPutLimit: number
  private readonly pinsPage: number
  private readonly readWindow: number
  private readonly readFirstWindow: number
  private readonly chunkTimeout: number
  private readonly controlTimeout: number
  /** The latest removals that unpinned a copy here, newest last: a remover that lost the answer asks again. */
  private readonly unpinned = new Map<string, { removedAt: number, collected: number }>()
  private readonly findTimeout: number
  readonly hedgeAfter: number
  private readonly metrics?: Metrics
  /** Pins referencing each block held here (manifests count as their own reference). */
  private readonly refs = new Map<string, number>()
  private readonly counted = new Set<string>()
  private readonly pulling = new Map<string, Promise<void>>()
  /** Blocks whose store by `putChunk` is under way (a pin that rides with a manifest waits for its chunks). */
  private readonly storing = new Map<string, Promise<boolean>>()
  /** Recently read manifests: a ranged or resumed read, and the size probe before it, need not fetch them again. */
  private readonly manifests = new Map<string, { manifest: Manifest, at: number }>()
  private readonly providerCache = new Map<string, { at: number, peers: string[] }>()
  private readonly timers: NodeJS.Timeout[] = []
  private readonly unsubscribe: Array<() => void> = []
  /** Blocks on their way to each member, so that membership declaring it dead ends them at once. */
  private readonly blockSends = new Map<string, Set<AbortController>>()
  /** Members declared dead or left since they last joined: a block for one fails at once. */
  private readonly gone = new Set<string>()
  /** Bytes of the copies being pulled here, by file: room promised, not yet on the disk. */
  private readonly due = new Map<string, number>()
  /** Blocks puts here count on, with how many puts and until when (`hold`). */
  private readonly holds = new Map<string, { n: number, until: number }>()
  /** When a block write last failed for lack of room, and what it said (checkRoom). */
  private noRoom?: { at: number, message: string }
  /** When a member's pin of a file (`cid peer`) last timed out: it may have taken, so the next rounds ask others. */
  private readonly pinTimeouts = new Map<string, number>()
  private abort = new AbortController()
  private repairTimer?: NodeJS.Timeout
  private repairing?: Promise<void>
  private repairAgain = false
  private recheck = false
  private running = false

  constructor (private readonly components: FilesComponents, private readonly init: FilesInit) {
    this.log = (components.logger ?? silentLogger).child({ component: 'files' })
    this.placement = components.placement ?? ((key, members, rf) => ringPlacement(key, members, rf))
    this.chunkSize = init.chunkSize ?? C.CHUNK_SIZE
    checkChunkSize(this.chunkSize)
    this.replicas = init.replicas ?? C.REPLICAS
    this.window = init.window ?? C.WINDOW
    this.now = init.wallClock ?? Date.now
    this.pipelineWindow = init.pipelineWindow ?? C.PIPELINE_WINDOW
    this.directPutLimit = init.directPutLimit ?? C.DIRECT_PUT_LIMIT
    this.pinsPage = init.pinsPage ?? C.PINS_PAGE
    this.readWindow = init.readWindow ?? C.READ_WINDOW
    this.readFirstWindow = init.readFirstWindow ?? C.READ_FIRST_WINDOW
    this.chunkTimeout = init.chunkTimeout ?? C.CHUNK_TIMEOUT
    this.controlTimeout = init.controlTimeout ?? C.CONTROL_TIMEOUT
    this.findTimeout = init.findTimeout ?? C.FIND_TIMEOUT
    this.hedgeAfter = init.hedgeAfter ?? C.HEDGE_AFTER
    this.store = new ChunkStore({ dir: init.dir, fsync: init.fsync, logger: this.log, onCorrupt: () => { this.metrics?.corrupt.inc() } })
    this.pins = new PinStore(init.dir, this.log)
    const registry = components.registry
    if (registry != null) {
      const registers = [registry]
      const store = this.store
      const pins = this.pins
      this.metrics = {
        fetched: new Counter({ name: 'meshos_files_chunks_fetched_total', help: 'Blocks read for gets and pulls, by source (local store or a remote provider)', labelNames: ['source'], registers }),
        bytes: new Counter({ name: 'meshos_files_transfer_bytes_total', help: 'Block bytes sent to and received from peers', labelNames: ['direction'], registers }),
        corrupt: new Counter({ name: 'meshos_files_corrupt_chunks_total', help: 'Blocks that failed verification (on disk or received)', registers }),
        malformed: new Counter({ name: 'meshos_files_malformed_entries_total', help: 'Entries of members\' answers dropped as malformed (a file id that does not decode)', registers }),
        repaired: new Counter({ name: 'meshos_files_repaired_chunks_total', help: 'Missing or corrupt local blocks restored from a replica', registers }),
        collected: new Counter({ name: 'meshos_files_collected_chunks_total', help: 'Blocks deleted because no pin referenced them', registers }),
        rounds: new Counter({ name: 'meshos_files_repair_rounds_total', help: 'Replication checks run', registers }),
        lookup: new Histogram({ name: 'meshos_files_provider_lookup_seconds', help: 'Time to find the providers of a file', buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers }),
        underReplicated: new Gauge({ name: 'meshos_files_under_replicated_chunks', help: 'Chunks of files this node leads with fewer replicas than their factor, at the last check', registers })
      }
      new Gauge({ name: 'meshos_files_stored_blocks', help: 'Blocks in the local chunk store', registers, collect () { this.set(store.stats.blocks) } }) // eslint-disable-line no-new
      new Gauge({ name: 'meshos_files_stored_bytes', help: 'Bytes in the local chunk store', registers, collect () { this.set(store.stats.bytes) } }) // eslint-disable-line no-new
      new Gauge({ name: 'meshos_files_pins', help: 'Files pinned on this node', registers, collect () { this.set(pins.pins.size) } }) // eslint-disable-line no-new
    }
  }

  get self (): string { return this.components.membership.peerId }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.abort = new AbortController()
    await this.store.start()
    for (const key of await this.pins.start()) await this.rebuildPin(key)
    for (const pin of this.pins.pins.values()) await this.countRefs(pin.cid).catch(() => {})
    await this.components.rpc.handle(filesService, this.handlers())
    const m = this.components.membership
    for (const ev of ['dead', 'left', 'join'] as const) this.unsubscribe.push(m.on(ev, () => { this.scheduleRepair() }))
    for (const ev of ['dead', 'left'] as const) {
      this.unsubscribe.push(m.on(ev, peer => {
        // Bounded: members that never come back (a machine retired, a new identity) are forgotten oldest first.
        if (this.gone.size >= C.MAX_GONE) this.gone.delete(this.gone.values().next().value as string)
        this.gone.add(peer)
        for (const c of this.blockSends.get(peer) ?? []) c.abort(new UnavailableError(`${peer} is no longer a member (${ev})`))
      }))
    }
    for (const ev of ['join', 'alive'] as const) this.unsubscribe.push(m.on(ev, peer => { this.gone.delete(peer) }))
    const every = (ms: number, fn: () => Promise<unknown>): void => {
      const t = setInterval(() => { fn().catch(err => { this.log.warn({ err }, 'background files task failed') }) }, ms)
      t.unref()
      this.timers.push(t)
    }
    every(this.init.repairInterval ?? C.REPAIR_INTERVAL, async () => { this.scheduleRepair(0) })
    every(this.init.reprovideInterval ?? C.REPROVIDE_INTERVAL, async () => { await this.reprovide() })
    every(this.init.sweepInterval ?? C.SWEEP_INTERVAL, async () => { await this.sweep() })
    // Pins from before a restart: announce them again and finish any pull a stop interrupted.
    void this.reprovide()
    this.scheduleRepair()
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.abort.abort(new UnavailableError('files stopped'))
    for (const u of this.unsubscribe.splice(0)) u()
    for (const t of this.timers.splice(0)) clearInterval(t)
    clearTimeout(this.repairTimer)
    await Promise.allSettled([...this.pulling.values(), this.repairing])
    await this.store.stop()
  }

  // ------------------------------------------------------------------------------------------------ import

  /** Splits `source` into chunks, stores them on the replica set as they arrive, and pins the file there. */
  async importFile (source: AsyncIterable<Uint8Array>, options: ImportOptions = {}): Promise<ImportResult> {
    // The blocks this put stores here are held until its pin is made (see `hold`).
    const held: string[] = []
    try {
      return await this.importBlocks(source, options, held)
    } finally {
      this.release(held)
    }
  }

  private async importBlocks (source: AsyncIterable<Uint8Array>, options: ImportOptions, held: string[]): Promise<ImportResult> {
    const signal = this.opSignal(options.signal)
    const name = options.name ?? ''
    const replicas = options.replicas ?? this.replicas
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > C.MAX_REPLICAS) throw new BadRequestError(`replicas must be an integer from 1 to ${C.MAX_REPLICAS}`)
    const chunkSize = options.chunkSize ?? this.chunkSize
    checkChunkSize(chunkSize)
    if (name.length > C.MAX_NAME_LENGTH) throw new BadRequestError(`name is at most ${C.MAX_NAME_LENGTH} characters`)

    const others = this.alive().filter(p => p !== this.self)
    const targets = this.placement(`upload:${randomBytes(16).toString('hex')}`, others, replicas - 1)
    // A chunk is the chunker's own buffer; once every destination has taken it without error, it is freed at once
    // rather than left for a full collection (lib/release.ts). After an error it is left alone: a request that timed
    // out may still hold it in a stream's send queue.
    const uses = new Map<Uint8Array, number>()
    const taken = (data: Uint8Array): void => {
      // Chunks only: the manifest's bytes are not counted, and may still be on their way to the other destination.
      const count = uses.get(data)
      if (count == null) return
      const left = count - 1
      if (left > 0) { uses.set(data, left); return }
      uses.delete(data)
      releaseBuffer(data)
    }
    const local = new Sink(this.window, async (cid, data) => {
      if (this.hold(cid.toString())) held.push(cid.toString())
      await this.store.put(cid, data)
      taken(data)
    })
    const chain = new Chain(targets)
    // A small file goes to each replica from here: one hop per chunk instead of two, which a put of a few chunks
    // waits for in full. A large one goes down the pipeline, so that this node's uplink carries it once, not once per
    // replica.
    const direct = options.size != null && options.size <= this.directPutLimit
    // The replicas' pins ride with the manifest, the put's last block (see PutChunkRequest.pin).
    let pin: M.PinRequest | undefined
    const pinned = new Map<string, boolean>()
    const remote = new Sink(this.pipelineWindow, async (cid, data, s) => {
      const peers = chain.live()
      if (peers.length === 0) return
      const withPin = pin != null && uint8ArrayEquals(pin.cid, cid.bytes) ? pin : undefined
      const { failed, pins } = direct ? await this.relayDirect(cid, data, peers, s, withPin) : await this.relay(cid, data, peers, s, withPin)
      for (const f of failed) chain.fail(f.peer, f.message)
      for (const p of pins) pinned.set(p.peer, p.complete)
      if (failed.length === 0) taken(data)
    })
    const sinks = [local, remote]

    const chunks: string[] = []
    let size = 0
    for await (const data of chunker(source, chunkSize)) {
      signal.throwIfAborted()
      // Hashed in place: 0.54 ms per MiB with the CPU's SHA extensions, less CPU in all than WebCrypto's thread-pool job.
      const cid = chunkCid(data)
      chunks.push(cid.toString())
      size += data.byteLength
      options.onProgress?.(size)
      uses.set(data, sinks.length)
      for (const s of sinks) await s.send(cid, data, signal)
      if (local.error != null) throw local.error
    }
    const manifest: Manifest = { version: 1, size, chunkSize, chunks }
    const { cid, bytes } = encodeManifest(manifest)
    // One time for every copy, so that a removal later than the copies it finds is later than those it does not (a
    // holder away during it); and past every removal of the file this node or a member remembers, whatever the clocks
    // say: a put after an rm wins. Asked while the last chunks are still on their way; a member silent for
    // REMOVALS_TIMEOUT is not waited for.
    const pinnedAt = await this.putTime(cid, signal)
    const pinRequest = { cid: cid.bytes, name, replicas, sources: [this.self], size: BigInt(size), pinnedAt: BigInt(pinnedAt), put: true }
    pin = pinRequest
    for (const s of sinks) await s.send(cid, bytes, signal)
    // The local pin as soon as the local blocks are stored, while the replicas finish theirs.
    const pinnedHere = local.drain().then(async () => {
      if (local.error != null) throw local.error
      // A removal that reached this node while the put ran (an rm at the same time) is passed too, as replicas do.
      const removed = this.pins.tombstones.get(cid.toString())
      await this.pinLocal(cid, { name, replicas, complete: true, pinnedAt: removed != null && removed >= pinnedAt ? removed + 1 : pinnedAt, announce: false }, manifest)
      // Referenced by the pin now: an rm from here on collects them.
      this.release(held.splice(0))
    })
    await Promise.all([pinnedHere, remote.drain()])
    if (remote.error != null) for (const peer of chain.live()) chain.fail(peer, remote.error.message)

    const holders = [this.self, ...chain.live().filter(p => pinned.get(p) === true)]
    // A replica that did not report a pin with the manifest (an older version) is pinned the old way.
    await Promise.all(chain.live().filter(p => !pinned.has(p)).map(async peer => {
      try {
        const res = await this.components.rpc.call(peer, filesService, 'pin', pinRequest, { signal, timeout: this.controlTimeout })
        if (res.complete) holders.push(peer)
      } catch (err) {
        this.log.debug({ err, peer }, 'replica refused pin')
      }
    }))
    // Announced once the put has answered (see pinLocal): the provide's messages to every member, and the replicas'
    // own, otherwise ran on this node while it waited for the replicas' answers.
    this.provideIfPinned(cid)
    for (const [peer, err] of chain.failed) this.log.warn({ peer, err, cid: cid.toString() }, 'replica failed during put; repair will replace it')
    if (holders.length < replicas) this.scheduleRepair(0)
    this.log.info({ cid: cid.toString(), size, chunks: chunks.length, replicas: holders.length }, 'file imported')
    return { cid: cid.toString(), size, chunks: chunks.length, name, replicas: holders.length, wanted: 1 + targets.length }
  }

  /**
   * Stores `block` on `peers` as a pipeline (as HDFS writes): the first gets it with the rest as its `forward` list,
   * stores it and passes it on the same way, so each hop sends the bytes once. Ciphering is the costly part of a
   * transfer here, and fanning out from the node taking a put had it encrypt every byte once per replica. A peer that
   * fails is reported and skipped: the block goes to the next one. A peer that does not forward (an older version)
   * names none of its list in its answer, and the rest get the block from here.
   */
  /** Sends a block to each of `peers` itself, in parallel; the answer is `relay`'s. */
  private async relayDirect (cid: CID, data: Uint8Array, peers: string[], signal: AbortSignal, pin?: M.PinRequest): Promise<{ forwarded: string[], failed: M.ForwardFailure[], pins: M.PinOutcome[] }> {
    const each = await Promise.all(peers.map(async peer => await this.relay(cid, data, [peer], signal, pin)))
    return { forwarded: each.flatMap(r => r.forwarded), failed: each.flatMap(r => r.failed), pins: each.flatMap(r => r.pins) }
  }

  private async relay (cid: CID, data: Uint8Array, peers: string[], signal: AbortSignal, pin?: M.PinRequest): Promise<{ forwarded: string[], failed: M.ForwardFailure[], pins: M.PinOutcome[] }> {
    const forwarded: string[] = []
    const failed: M.ForwardFailure[] = []
    const pins: M.PinOutcome[] = []
    let pending = peers
    while (pending.length > 0) {
      const [next, ...rest] = pending
      const send = this.blockSend(next, signal)
      try {
        // Each hop's deadline exceeds the one it gives its own forward by one chunk timeout, so that a dead peer
        // further down times out there, and is reported, before the hop before it gives up on the whole chain.
        const res = await this.components.rpc.call(next, filesService, 'putChunk', { cid: cid.bytes as Uint8Array<ArrayBuffer>, data: data as Uint8Array<ArrayBuffer>, forward: rest, pin }, { signal: send.signal, timeout: this.chunkTimeout * (1 + rest.length) })
        this.metrics?.bytes.inc({ direction: 'out' }, data.byteLength)
        forwarded.push(next)
        if (pin != null) for (const p of res.pins) if (p.peer === next || rest.includes(p.peer)) pins.push(p)
        const done = new Set(res.forwarded)
        for (const f of res.failed) if (rest.includes(f.peer) && !done.has(f.peer)) { failed.push(f); done.add(f.peer) }
        for (const p of res.forwarded) if (rest.includes(p)) forwarded.push(p)
        pending = rest.filter(p => !done.has(p))
      } catch (err) {
        signal.throwIfAborted()
        failed.push({ peer: next, message: toMeshError(err).message })
        pending = rest
      } finally {
        send.done()
      }
    }
    return { forwarded, failed, pins }
  }

  /**
   * A signal for one block sent to `peer`: `signal`, and also aborted when membership declares the peer dead or left.
   * A frozen replica otherwise held every put that named it for a whole chunk timeout (12-15 s), where failure
   * detection takes about 3 s; the put goes on with the other replicas, and repair adds one.
   */
  private blockSend (peer: string, signal: AbortSignal): { signal: AbortSignal, done: () => void } {
    const c = new AbortController()
    const onAbort = (): void => { c.abort(signal.reason) }
    if (this.gone.has(peer)) c.abort(new UnavailableError(`${peer} is no longer a member`))
    else if (signal.aborted) c.abort(signal.reason)
    else signal.addEventListener('abort', onAbort, { once: true })
    let sends = this.blockSends.get(peer)
    if (sends == null) this.blockSends.set(peer, sends = new Set())
    sends.add(c)
    return {
      signal: c.signal,
      done: () => {
        signal.removeEventListener('abort', onAbort)
        sends.delete(c)
        if (sends.size === 0 && this.blockSends.get(peer) === sends) this.blockSends.delete(peer)
      }
    }
  }

  // ------------------------------------------------------------------------------------------------ read

  /**
   * Resolves the manifest (so a missing file fails before any byte is promised), then returns a body that fetches the
   * chunks covering [offset, offset+length) with a bounded window, verified, in order.
   */
  async read (cidText: string, options: ReadOptions = {}): Promise<ReadResult> {
    const signal = this.opSignal(options.signal)
    const cid = parseFileCid(cidText)
    const transfer = new Transfer(this, cid, signal)
    const manifest = await this.manifest(cid, transfer, signal)
    const offset = options.offset ?? 0
    if (!Number.isInteger(offset) || offset < 0) throw new BadRequestError('offset must be a non-negative integer')
    if (offset > manifest.size) throw new BadRequestError(`offset ${offset} is past the end of the file (${manifest.size} bytes)`)
    const length = options.length ?? manifest.size - offset
    if (!Number.isInteger(length) || length < 0) throw new BadRequestError('length must be a non-negative integer')
    const end = Math.min(manifest.size, offset + length)
    const first = Math.floor(offset / manifest.chunkSize)
    const count = end > offset ? Math.floor((end - 1) / manifest.chunkSize) - first + 1 : 0
    const pinned = this.pins.pins.has(cid.toString())
    const self = this
    async function * body (): AsyncGenerator<Uint8Array> {
      const blocks = ordered(count, self.readWindow, async (k, s) => await self.chunkFor(manifest, first + k, transfer, pinned, s), signal, self.readFirstWindow)
      let k = 0
      for await (const data of blocks) {
        const start = (first + k) * manifest.chunkSize
        const from = Math.max(0, offset - start)
        const to = Math.min(data.byteLength, end - start)
        k++
        yield from === 0 && to === data.byteLength ? data : data.subarray(from, to)
      }
    }
    return { cid: cid.toString(), size: manifest.size, offset, length: end - offset, body: body() }
  }

  /** One chunk: from the local store when it is here and sound, else from a provider (and kept, if this node pins it). */
  private async chunkFor (manifest: Manifest, i: number, transfer: Transfer, pinned: boolean, signal: AbortSignal): Promise<Uint8Array> {
    const cid = parseChunkCid(manifest.chunks[i])
    let corrupt = false
    try {
      // A reader that does not hold the file rarely has its chunks, and an asynchronous miss waited in the thread
      // pool's queue behind the hashing of received chunks (up to hundreds of ms) before the fetch could start.
      const data = pinned || this.store.hasNow(cid) ? await this.store.get(cid) : undefined
      if (data != null) {
        this.metrics?.fetched.inc({ source: 'local' })
        return data
      }
    } catch (err) {
      if (!(err instanceof CorruptChunkError)) throw err
      corrupt = true
    }
    const data = await transfer.fetch(cid, signal)
    if (data.byteLength !== chunkLength(manifest, i)) throw new UnavailableError(`chunk ${i} of ${transfer.cid.toString()} has the wrong size`)
    if (pinned || corrupt) {
      await this.store.put(cid, data)
      this.metrics?.repaired.inc()
      this.log.info({ cid: cid.toString(), corrupt }, 'restored a local chunk from a replica')
    }
    return data
  }

  /** The manifest of a file: local, or fetched from a provider and verified. */
  private async manifest (cid: CID, transfer: Transfer, signal: AbortSignal): Promise<Manifest> {
    // The content never changes, but whether the file exists does: a file removed since is found removed once the
    // entry is older than a read and its size probe need (a reader that is not a holder hears of no removal), and at
    // once where this node held it (unpinLocal drops the entry).
    const cached = this.manifests.get(cid.toString())
    if (cached != null && (this.pins.pins.has(cid.toString()) || performance.now() - cached.at < C.MANIFEST_CACHE_TTL)) return cached.manifest
    let bytes: Uint8Array | undefined
    try {
      bytes = await this.store.get(cid)
    } catch (err) {
      if (!(err instanceof CorruptChunkError)) throw err
    }
    if (bytes == null) {
      bytes = await transfer.fetch(cid, signal)
      if (this.pins.pins.has(cid.toString())) await this.store.put(cid, bytes)
    }
    const manifest = decodeManifest(cid, bytes)
    this.manifests.delete(cid.toString())
    if (this.manifests.size >= 32) this.manifests.delete(this.manifests.keys().next().value as string)
    this.manifests.set(cid.toString(), { manifest, at: performance.now() })
    return manifest
  }

  // ------------------------------------------------------------------------------------------------ providers

  /**
   * Holders of `cid` other than this node: the content routing's answer, plus every alive member that has it when that
   * gives fewer than two. Remembered for a short while (`fresh` skips that), so the size probe of a ranged read and
   * the read itself, or a resumed get, do not pay for two lookups.
   */
  async providers (cid: CID, signal: AbortSignal, exclude: Set<string> = new Set(), fresh = false): Promise<string[]> {
    const key = cid.toString()
    const cached = this.providerCache.get(key)
    const alive = new Set(this.alive())
    if (!fresh && cached != null && Date.now() - cached.at < C.PROVIDER_CACHE_TTL) {
      const peers = cached.peers.filter(p => alive.has(p) && !exclude.has(p))
      if (peers.length > 0) return shuffle(peers)
    }
    const started = performance.now()
    const peers = await this.lookup(cid, signal, exclude, alive)
    this.metrics?.lookup.observe((performance.now() - started) / 1000)
    if (this.providerCache.size >= 64) this.providerCache.delete(this.providerCache.keys().next().value as string)
    if (peers.length > 0) this.providerCache.set(key, { at: Date.now(), peers })
    return shuffle([...peers])
  }

  private async lookup (cid: CID, signal: AbortSignal, exclude: Set<string>, alive: Set<string>): Promise<string[]> {
    const found = new Set<string>()
    const cr = this.components.contentRouting
    // Only file ids are announced; a chunk id goes straight to asking members.
    if (cr != null && cid.code === MANIFEST_CODEC) {
      try {
        for (const p of await cr.findProviders(cid, { signal: AbortSignal.any([signal, AbortSignal.timeout(this.findTimeout)]) })) found.add(p)
      } catch (err) {
        signal.throwIfAborted()
        this.log.debug({ err, cid: cid.toString() }, 'provider lookup failed; asking members')
      }
    }
    let out = [...found].filter(p => p !== this.self && !exclude.has(p) && alive.has(p))
    // Too few to spread a transfer over (records not yet provided, or stale): ask the members as well.
    if (out.length < 2) {
      const answers = await this.askAll('has', { cids: [cid.bytes] }, signal, exclude)
      out = [...new Set([...out, ...answers.filter(a => a.res.present[0]).map(a => a.peer)])]
    }
    return out
  }

  /** Calls `method` on every alive member but this node (and `exclude`), in parallel; members that fail are left out. */
  private async askAll<K extends 'has' | 'pins' | 'unpin'>(method: K, req: K extends 'has' ? M.HasRequest : K extends 'pins' ? M.PinsRequest : M.UnpinRequest, signal: AbortSignal, exclude: Set<string> = new Set(), silent?: string[], among: string[] = this.alive()): Promise<Array<{ peer: string, res: K extends 'has' ? M.HasResponse : K extends 'pins' ? M.PinsResponse : M.UnpinResponse }>> {
    const peers = [...new Set(among)].filter(p => p !== this.self && !exclude.has(p))
    const out: Array<{ peer: string, res: any }> = []
    await Promise.all(peers.map(async peer => {
      try {
        const res = await this.components.rpc.call(peer, filesService, method, req as any, { signal, timeout: this.controlTimeout })
        // One member's bad entry must not fail a listing or every repair round: it is dropped and counted.
        if (method === 'pins') {
          const r = res as M.PinsResponse
          const pins = r.pins.filter(p => decodes(p.cid))
          const removed = r.removed.filter(x => decodes(x.cid))
          const bad = r.pins.length - pins.length + r.removed.length - removed.length
          if (bad > 0) {
            this.metrics?.malformed.inc(bad)
            this.log.debug({ peer, bad }, 'dropped malformed entries of a pins answer')
            r.pins = pins
            r.removed = removed
          }
        }
        out.push({ peer, res })
      } catch (err) {
        silent?.push(peer)
        this.log.debug({ err, peer, method }, 'member did not answer')
      }
    }))
    return out
  }

  /**
   * Every alive member's pins: all of them (`cids` undefined), page by page, or those of `cids`, in batches. One answer
   * held every pin in one message, and a member with tens of thousands of files (or long names) answered past the
   * message limit, so listings left it out and repair rounds counted it silent.
   */
  private async askPins (cids: CID[] | undefined, signal: AbortSignal, silent?: string[], among?: string[]): Promise<Array<{ peer: string, res: M.PinsResponse }>> {
    const merged = new Map<string, M.PinsResponse>()
    const quiet = new Set<string>()
    const take = (answers: Array<{ peer: string, res: M.PinsResponse }>): void => {
      for (const { peer, res } of answers) {
        const m = merged.get(peer)
        if (m == null) merged.set(peer, { pins: [...res.pins], removed: [...res.removed], more: false })
        else { m.pins.push(...res.pins); m.removed.push(...res.removed) }
      }
    }
    if (cids != null) {
      for (let i = 0; i < cids.length || i === 0; i += this.pinsPage) {
        const lost: string[] = []
        // A member silent once is not asked again this round: each batch would wait out its deadline once more.
        take(await this.askAll('pins', { cids: cids.slice(i, i + this.pinsPage).map(c => c.bytes), after: '', limit: 0 }, signal, quiet, lost, among))
        for (const p of lost) quiet.add(p)
      }
    } else {
      const lost: string[] = []
      const first = await this.askAll('pins', { cids: [], after: '', limit: this.pinsPage }, signal, new Set(), lost)
      for (const p of lost) quiet.add(p)
      take(first)
      await Promise.all(first.filter(a => a.res.more && a.res.pins.length > 0).map(async ({ peer, res }) => {
        let after = CID.decode(res.pins[res.pins.length - 1].cid).toString()
        for (;;) {
          try {
            const page = await this.components.rpc.call(peer, filesService, 'pins', { cids: [], after, limit: this.pinsPage }, { signal, timeout: this.controlTimeout })
            const pins = page.pins.filter(p => decodes(p.cid))
            take([{ peer, res: { pins, removed: [], more: false } }])
            if (!page.more || pins.length === 0) return
            const last = CID.decode(pins[pins.length - 1].cid).toString()
            // A cursor that does not move on would page until the operation's deadline.
            if (last <= after) return
            after = last
          } catch (err) {
            quiet.add(peer)
            this.log.debug({ err, peer }, 'member did not answer a page of pins')
            return
          }
        }
      }))
    }
    silent?.push(...quiet)
    return [...merged].map(([peer, res]) => ({ peer, res }))
  }

  alive (): string[] {
    const ids = new Set(this.components.membership.aliveMembers().map(m => m.peerId))
    ids.add(this.self)
    return [...ids].sort()
  }

  /** Fetches one block from a provider, verified. Used by Transfer. */
  async fetchFrom (peer: string, cid: CID, signal: AbortSignal): Promise<Uint8Array> {
    const res = await this.components.rpc.call(peer, filesService, 'getChunk', { cid: cid.bytes, verify: false }, { signal, timeout: this.chunkTimeout })
    this.metrics?.bytes.inc({ direction: 'in' }, res.data.byteLength)
    if (!verifyBlock(cid, res.data)) {
      this.metrics?.corrupt.inc()
      // Served unhashed: have the provider check its copy, and mend it if it is the one at fault.
      void this.components.rpc.call(peer, filesService, 'getChunk', { cid: cid.bytes, verify: true }, { timeout: this.chunkTimeout })
        .catch(err => { this.log.debug({ err, peer, cid: cid.toString() }, 'provider could not mend a chunk it served corrupt') })
      throw new CorruptChunkError(cid.toString(), `received from ${peer}`)
    }
    if (cid.code !== MANIFEST_CODEC) this.metrics?.fetched.inc({ source: 'remote' })
    return res.data
  }

  // ------------------------------------------------------------------------------------------------ stat, ls, rm

  async stat (cidText: string, options: OpOptions = {}): Promise<FileStat> {
    const signal = this.opSignal(options.signal)
    const cid = parseFileCid(cidText)
    const manifest = await this.manifest(cid, new Transfer(this, cid, signal), signal)
    const cids = [cid, ...manifest.chunks.map(c => parseChunkCid(c))]
    const [has, pins] = await Promise.all([
      this.askAll('has', { cids: cids.map(c => c.bytes) }, signal),
      this.askPins([cid], signal)
    ])
    const local = await Promise.all(cids.map(async c => await this.store.has(c)))
    const answers = [{ peer: this.self, present: local }, ...has.map(a => ({ peer: a.peer, present: a.res.present }))]
    const mine = this.pins.pins.get(cid.toString())
    const pinInfos = [...(mine != null ? [{ peer: this.self, name: mine.name, replicas: mine.replicas }] : []), ...pins.flatMap(a => a.res.pins.map(p => ({ peer: a.peer, name: p.name, replicas: p.replicas })))]
    const chunkReplicas = manifest.chunks.map((c, i) => {
      const holders = answers.filter(a => a.present[i + 1] === true).map(a => a.peer)
      return { index: i, cid: c, size: chunkLength(manifest, i), replicas: holders.length, holders }
    })
    if (pinInfos.length === 0 && !answers.some(a => a.present[0] === true)) throw new FileNotFoundError(`no member holds ${cid.toString()}`)
    // The largest factor asked for, which repairs bring every holder to (see adoptLargestFactor).
    const replicas = Math.max(0, ...pinInfos.map(p => p.replicas))
    return {
      cid: cid.toString(),
      name: pinInfos.find(p => p.name !== '')?.name ?? '',
      size: manifest.size,
      chunkSize: manifest.chunkSize,
      chunks: manifest.chunks.length,
      replicas,
      holders: pinInfos.map(p => p.peer).sort(),
      chunkReplicas,
      underReplicated: chunkReplicas.filter(c => c.replicas < replicas).length
    }
  }

  /** Files pinned anywhere in the mesh (among members that answer). */
  async list (options: OpOptions = {}): Promise<FileEntry[]> {
    const signal = this.opSignal(options.signal)
    const answers = await this.askPins(undefined, signal)
    const all = [...[...this.pins.pins.values()].map(p => ({ ...p })), ...answers.flatMap(a => a.res.pins.map(fromPinInfo))]
    const byCid = new Map<string, FileEntry>()
    for (const p of all) {
      // A member that was away when the file was removed still holds its pin until a repair round tells it: the
      // removal this node remembers outranks a pin made before it.
      const removedAt = this.pins.tombstones.get(p.cid)
      if (removedAt != null && removedAt > p.pinnedAt) continue
      const e = byCid.get(p.cid)
      if (e == null) byCid.set(p.cid, { cid: p.cid, name: p.name, size: p.size, chunks: p.chunks, replicas: p.replicas, holders: 1 })
      else {
        e.holders++
        if (e.name === '') e.name = p.name
        e.replicas = Math.max(e.replicas, p.replicas)
      }
    }
    return [...byCid.values()].sort((a, b) => a.name.localeCompare(b.name) || a.cid.localeCompare(b.cid))
  }

  /**
   * Holds a block a put is storing here against an unpin's collection until the put's pin is made: the block may be
   * one an older pin of the same content referenced (its store is then a no-op), and an rm at that moment deleted it
   * from under the put, which was acknowledged with chunks missing. A put that never pins lets its holds lapse.
   */
  private hold (cid: string): boolean {
    const now = Date.now()
    const h = this.holds.get(cid)
    // Deleted and set again, so that the map's order is the order holds lapse in.
    this.holds.delete(cid)
    for (const [c, old] of this.holds) {
      if (this.holds.size < C.MAX_BLOCK_HOLDS || old.until > now) break
      this.holds.delete(c)
    }
    // Full of live holds (a member flooding blocks without pins): this one goes without, rather than evict another.
    if (this.holds.size >= C.MAX_BLOCK_HOLDS) return false
    this.holds.set(cid, { n: (h?.n ?? 0) + 1, until: now + C.BLOCK_HOLD })
    return true
  }

  private release (cids: string[]): void {
    for (const c of cids) {
      const h = this.holds.get(c)
      if (h == null) continue
      if (h.n > 1) h.n--
      else this.holds.delete(c)
    }
  }

  /** Whether a put going on here counts on the block (`hold`). */
  private arriving (cid: string): boolean {
    const h = this.holds.get(cid)
    if (h == null) return false
    if (h.until > Date.now()) return true
    this.holds.delete(cid)
    return false
  }

  /**
   * A put's pin time: now, or later than every removal of `cid` that this node or an answering member remembers; and at
   * least the latest time of a copy already held, so that every copy of the content has one time and a removal later
   * than the copies it finds is later than one held by a member away during it.
   */
  private async putTime (cid: CID, signal: AbortSignal): Promise<number> {
    const answers = await this.askPins([cid], AbortSignal.any([signal, AbortSignal.timeout(this.init.removalsTimeout ?? C.REMOVALS_TIMEOUT)]))
    const now = this.now()
    const local = this.pins.tombstones.get(cid.toString())
    const removals = [...this.removalsOf(cid, answers), ...(local != null ? [local] : [])]
    return Math.max(now, ...removals.map(t => t + 1), ...this.pinTimesOf(cid, answers).filter(t => t <= now + C.MAX_TIME_AHEAD))
  }

  /** The pin times of `cid`'s copies: this node's and the answering members'. */
  private pinTimesOf (cid: CID, answers: Array<{ res: M.PinsResponse }>): number[] {
    const times = answers.flatMap(a => a.res.pins.filter(p => CID.decode(p.cid).equals(cid)).map(p => Number(p.pinnedAt)))
    const own = this.pins.pins.get(cid.toString())
    if (own != null) times.push(own.pinnedAt)
    return times
  }

  /**
   * Members' removal times of `cid`, less any implausibly far ahead of this node's clock: one member's clock hours
   * fast would otherwise remove every copy of the file put for hours after.
   */
  private removalsOf (cid: CID, answers: Array<{ res: M.PinsResponse }>): number[] {
    const limit = this.now() + C.MAX_TIME_AHEAD
    return answers.flatMap(a => a.res.removed.filter(t => CID.decode(t.cid).equals(cid)).map(t => Number(t.removedAt))).filter(t => t <= limit)
  }

  /** Unpins the file on every alive member; each collects the chunks no other file of its own references. */
  async remove (cidText: string, options: OpOptions = {}): Promise<RemoveResult> {
    const signal = this.opSignal(options.signal)
    const cid = parseFileCid(cidText)
    // Later than every copy's pin time (as far as this node's clock allows): a holder away during the removal, pinned
    // by a clock ahead of this one, must still lose to it when it is back. Every member records this one time.
    const now = this.now()
    // Suspects too (most are alive): a holder's copy must be counted, and unpinned.
    const reachable = (): string[] => [...this.alive(), ...(this.components.membership.suspectMembers?.() ?? []).map(m => m.peerId)]
    const pinTimes = this.pinTimesOf(cid, await this.askPins([cid], signal, undefined, reachable()))
    const removedAt = Math.max(now, ...pinTimes.filter(t => t <= now + C.MAX_TIME_AHEAD).map(t => t + 1))
    const seenPinnedAt = Math.max(0, ...pinTimes)
    // Cached, a removed file's manifest would still answer reads and stats here.
    this.manifests.delete(cid.toString())
    this.providerCache.delete(cid.toString())
    const local = await this.unpinLocal(cid, removedAt, seenPinnedAt)
    const req = { cid: cid.bytes, trim: false, removedAt: BigInt(removedAt), seenPinnedAt: BigInt(seenPinnedAt) }
    // A member that did not answer (a stream to it that failed just after it was frozen, say) is asked again while it
    // is alive or suspect: the same removal, which it answers as it did the first time (see unpinLocal). Left to repair
    // rounds, a holder kept its copy for up to a round, and the caller was told fewer copies went than did.
    let silent: string[] = []
    const answers = await this.askAll('unpin', req, signal, new Set(), silent, reachable())
    for (let attempt = 1; attempt < C.UNPIN_ATTEMPTS && silent.length > 0; attempt++) {
      try {
        await delay(attempt * C.UNPIN_RETRY_DELAY, signal)
      } catch {
        // Out of time: what was removed is reported; the rest learn of the removal in their repair rounds.
        break
      }
      const again = silent
      silent = []
      answers.push(...await this.askAll('unpin', req, signal, new Set(), silent, reachable().filter(p => again.includes(p))))
    }
    const removed = (local.removed ? 1 : 0) + answers.filter(a => a.res.removed).length
    if (removed === 0) {
      const kept = (local.kept ? 1 : 0) + answers.filter(a => a.res.kept).length
      // The file is there, put again during the removal: "not found" would send the caller looking for a mistake.
      if (kept > 0) throw new RemovalConflictError(`${cid.toString()} was put again while it was being removed; ${kept} holder${kept === 1 ? '' : 's'} kept the newer copy`)
      throw new FileNotFoundError(`no member holds ${cid.toString()}`)
    }
    const collected = local.collected + answers.reduce((n, a) => n + a.res.collected, 0)
    return { cid: cid.toString(), removed, collected }
  }

  // ------------------------------------------------------------------------------------------------ pins and refs

  /** `manifest`, when the caller has it in hand, saves reading, hashing and decoding it again. */
  /**
   * Records a pin here. A complete one is provided in the DHT after the current turn of the event loop, so that a
   * replica's answer to the put that pinned it leaves first; `announce: false` leaves the provide to the caller.
   */
  private async pinLocal (cid: CID, p: { name: string, replicas: number, complete: boolean, pinnedAt?: number, taken?: boolean, announce?: boolean }, manifest?: Manifest): Promise<void> {
    const key = cid.toString()
    manifest ??= await this.localManifest(cid)
    await this.pins.clearTombstone(key)
    const prev = this.pins.pins.get(key)
    // Counted in the same turn as the pin appears (set() updates the map before it writes the file): an unpin that
    // came while the file was written found a complete pin whose references were not counted yet, collected only the
    // manifest, and the references counted after it kept the chunks on disk for good.
    if (manifest != null) this.addRefs(key, manifest)
    await this.pins.set({
      cid: key,
      name: p.name !== '' ? p.name : prev?.name ?? '',
      size: manifest?.size ?? prev?.size ?? 0,
      chunks: manifest?.chunks.length ?? prev?.chunks ?? 0,
      replicas: p.replicas,
      // The latest time anyone pinned it: a put after a removal renews a copy that missed the removal.
      pinnedAt: prev != null ? Math.max(prev.pinnedAt, p.pinnedAt ?? 0) : p.pinnedAt ?? this.now(),
      complete: p.complete,
      ...(!p.complete && (p.taken ?? prev?.taken) === true ? { taken: true } : {})
    })
    await this.countRefs(key, manifest)
    if (p.complete && p.announce !== false) this.provideIfPinned(cid)
  }

  /** Provides `cid` after this turn of the event loop, if it is still pinned here then (an rm may have come between). */
  private provideIfPinned (cid: CID): void {
    setImmediate(() => { if (this.pins.pins.get(cid.toString())?.complete === true) void this.provide(cid) })
  }

  /**
   * A pin whose file could not be read, made again from the local manifest: its name is lost, but the file is kept
   * (and repair checks its chunks), where dropping the pin let the sweep delete the blocks.
   */
  private async rebuildPin (key: string): Promise<void> {
    let cid: CID
    try {
      cid = parseFileCid(key)
    } catch {
      this.log.warn({ cid: key }, 'unreadable pin file does not name a file; ignored')
      return
    }
    if (this.pins.tombstones.has(key)) {
      this.log.warn({ cid: key }, 'unreadable pin file of a removed file; ignored')
      return
    }
    const manifest = await this.localManifest(cid)
    if (manifest == null) {
      this.log.warn({ cid: key }, 'unreadable pin file and no local manifest; the pin is lost here')
      return
    }
    // Pinned when its manifest was stored here, as far as this node can tell: a removal the other members remember
    // from while this node was away still wins over the rebuilt pin. replicas 0: unknown until a repair round learns
    // it from the other holders (repairRound).
    const storedAt = (await stat(this.store.path(cid)).catch(() => undefined))?.mtimeMs ?? 0
    await this.pins.set({ cid: key, name: '', size: manifest.size, chunks: manifest.chunks.length, replicas: 0, pinnedAt: Math.floor(storedAt), complete: false })
      .then(() => { this.log.warn({ cid: key }, 'rebuilt an unreadable pin from the local manifest; its name is lost') },
        err => { this.log.warn({ err, cid: key }, 'could not rebuild an unreadable pin') })
  }

  private async localManifest (cid: CID): Promise<Manifest | undefined> {
    try {
      const bytes = await this.store.get(cid)
      return bytes == null ? undefined : decodeManifest(cid, bytes)
    } catch {
      return undefined
    }
  }

  /** Adds a pin's references once its manifest is here, while the pin is (an unpin may have come meanwhile). */
  private async countRefs (key: string, known?: Manifest): Promise<void> {
    if (this.counted.has(key)) return
    const manifest = known ?? await this.localManifest(CID.parse(key))
    if (manifest == null || !this.pins.pins.has(key)) return
    this.addRefs(key, manifest)
  }

  private addRefs (key: string, manifest: Manifest): void {
    if (this.counted.has(key)) return
    this.counted.add(key)
    for (const c of [key, ...manifest.chunks]) this.refs.set(c, (this.refs.get(c) ?? 0) + 1)
  }

  /** Drops the pin and collects unreferenced blocks; `removedAt` undefined is a trim (a surplus copy), not a removal. */
  private async unpinLocal (cid: CID, removedAt: number | undefined, seenPinnedAt?: number): Promise<{ removed: boolean, collected: number, kept: boolean }> {
    const key = cid.toString()
    // The same removal asked again, by a remover that lost this member's answer: answered as the first time was, or
    // the remover would count a copy removed as none.
    this.manifests.delete(key)
    const prior = removedAt != null ? this.unpinned.get(key) : undefined
    if (prior != null && prior.removedAt === removedAt && !this.pins.pins.has(key)) return { removed: true, collected: prior.collected, kept: false }
    if (removedAt != null) await this.pins.tombstone(key, removedAt)
    // A copy pinned after the removal and after every copy the remover saw (a put that came between the rm's look at
    // the pins and its unpin here) stays.
    const keep = (): boolean => {
      const at = this.pins.pins.get(key)?.pinnedAt
      return removedAt != null && seenPinnedAt != null && at != null && at >= removedAt && at > seenPinnedAt
    }
    if (keep()) return { removed: false, collected: 0, kept: true }
    if (!this.pins.pins.has(key)) return { removed: false, collected: 0, kept: false }
    // The manifest is read first; then the pin, its count and its references go in one step, with no wait between:
    // a put's pin made during a wait found its references counted, added none, and then had them taken away.
    const manifest = await this.localManifest(cid)
    if (keep()) return { removed: false, collected: 0, kept: true }
    if (!this.pins.pins.has(key)) return { removed: false, collected: 0, kept: false }
    const deleting = this.pins.delete(key)
    const unreferenced: string[] = []
    if (this.counted.delete(key) && manifest != null) {
      for (const c of [key, ...manifest.chunks]) {
        const n = (this.refs.get(c) ?? 1) - 1
        if (n > 0) { this.refs.set(c, n); continue }
        this.refs.delete(c)
        unreferenced.push(c)
      }
    } else unreferenced.push(key)
    await deleting
    let collected = 0
    // Still unreferenced when its turn comes (a put's pin may have counted it meanwhile), and no put going on here
    // counts on it.
    for (const c of unreferenced) if (!this.refs.has(c) && !this.arriving(c) && await this.store.delete(c)) collected++
    this.metrics?.collected.inc(collected)
    this.providerCache.delete(key)
    void this.components.contentRouting?.unprovide?.(cid).catch(() => {})
    this.log.info({ cid: key, collected, trim: removedAt == null }, removedAt == null ? 'surplus replica dropped' : 'file unpinned')
    if (removedAt != null) {
      this.unpinned.delete(key)
      this.unpinned.set(key, { removedAt, collected })
      for (const oldest of this.unpinned.keys()) {
        if (this.unpinned.size <= C.UNPINNED_REMEMBERED) break
        this.unpinned.delete(oldest)
      }
    }
    return { removed: true, collected, kept: false }
  }

  private async provide (cid: CID): Promise<void> {
    const cr = this.components.contentRouting
    if (cr == null || !this.running) return
    try {
      await cr.provide(cid, { signal: this.abort.signal })
    } catch (err) {
      this.log.debug({ err, cid: cid.toString() }, 'provide failed; the next reprovide retries')
    }
  }

  private async reprovide (): Promise<void> {
    for (const p of this.pins.pins.values()) if (p.complete && this.running) await this.provide(CID.parse(p.cid))
  }

  /** Deletes blocks no pin references that are older than the grace (leftovers of failed puts and pulls). */
  private async sweep (): Promise<void> {
    const before = Date.now() - (this.init.orphanGrace ?? C.ORPHAN_GRACE)
    await this.pins.expireTombstones(this.now() - (this.init.tombstoneTtl ?? C.TOMBSTONE_TTL))
    if ([...this.pins.pins.keys()].some(k => !this.counted.has(k))) return
    let collected = 0
    for await (const e of this.store.entries()) {
      if (!this.running) return
      if (e.mtimeMs < before && !this.refs.has(e.cid) && !this.pins.pins.has(e.cid) && !this.arriving(e.cid) && await this.store.delete(e.cid)) collected++
    }
    if (collected > 0) this.log.info({ collected }, 'swept unreferenced blocks')
    this.metrics?.collected.inc(collected)
  }

  // ------------------------------------------------------------------------------------------------ pull and repair

  /** Makes the local pin complete: fetches the manifest and every missing chunk from the sources or providers. */
  private pull (cid: CID, sources: string[]): Promise<void> {
    const key = cid.toString()
    let p = this.pulling.get(key)
    if (p == null) {
      p = (async () => {
        const signal = this.abort.signal
        const transfer = new Transfer(this, cid, signal, sources)
        const manifest = await this.manifest(cid, transfer, signal)
        if (!this.pins.pins.has(key)) return
        await this.store.put(cid, encodeManifest(manifest).bytes)
        await parallel(manifest.chunks.length, this.window, async (i, s) => {
          const c = parseChunkCid(manifest.chunks[i])
          if (await this.store.has(c)) return
          const data = await transfer.fetch(c, s)
          await this.store.put(c, data)
          this.metrics?.repaired.inc()
        }, signal)
        const pin = this.pins.pins.get(key)
        if (pin == null) return
        await this.pinLocal(cid, { name: pin.name, replicas: pin.replicas, complete: true }, manifest)
        this.log.info({ cid: key }, 'replica complete')
      })().catch(async err => {
        if (!this.running) return
        const e = toMeshError(err)
        // A disk that is full stays full: a copy this node took and never completed would count it as a replica it
        // cannot become, so it is dropped, and the file's leader places the copy on a member with room. A copy that was
        // complete here (and lost a chunk) stays: its other chunks may be the ones the other holders lack.
        this.noteNoRoom(e)
        if (e.code !== 'INSUFFICIENT_STORAGE' || this.pins.pins.get(key)?.taken !== true) {
          this.log.warn({ err: e.message, cid: key }, 'pull failed; the next repair round retries')
          return
        }
        this.log.warn({ err: e.message, cid: key }, 'no room for this replica; dropped it')
        await this.unpinLocal(cid, undefined).catch(() => {})
      }).finally(() => {
        this.pulling.delete(key)
        this.due.delete(key)
      })
      this.pulling.set(key, p)
    }
    return p
  }

  private scheduleRepair (delay = this.init.repairDebounce ?? C.REPAIR_DEBOUNCE): void {
    if (!this.running) return
    if (this.repairing != null) { this.repairAgain = true; return }
    clearTimeout(this.repairTimer)
    this.repairTimer = setTimeout(() => {
      this.repairing = this.repairRound().catch(err => { this.log.warn({ err }, 'repair round failed') }).finally(() => {
        this.repairing = undefined
        if (this.repairAgain) { this.repairAgain = false; this.scheduleRepair() } else if (this.recheck) { this.recheck = false; this.scheduleRepair(3 * (this.init.repairDebounce ?? C.REPAIR_DEBOUNCE)) }
      })
    }, delay)
    this.repairTimer.unref()
  }

  /** Runs a repair round now and waits for it (tests, and `stat` right after an event). */
  async repairNow (): Promise<void> {
    while (this.repairing != null) await this.repairing
    clearTimeout(this.repairTimer)
    const p = this.repairRound()
    // Its caller gets the error through `p`; the shared promise only says when the round is over.
    this.repairing = p.then(() => {}, () => {}).finally(() => { this.repairing = undefined })
    await p
  }

  /**
   * For each pinned file: finish the local copy if chunks are missing; drop the pin if another member remembers a
   * later removal; and, if this node leads the file (lowest peer id among its holders), bring it back to its
   * replication factor by asking `placement(fileCid, non-holders)` to pin it, pulling from the holders.
   */
  private async repairRound (): Promise<void> {
    this.metrics?.rounds.inc()
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.chunkTimeout * 4)])
    const pins = [...this.pins.pins.values()]
    if (pins.length === 0) { this.metrics?.underReplicated.set(0); return }
    const silent: string[] = []
    const answers = await this.askPins(pins.map(p => CID.parse(p.cid)), signal, silent)
    const alive = this.alive()
    let under = 0
    let again = false
    for (let pin of pins) {
      if (!this.running) return
      const cid = CID.parse(pin.cid)
      const removedAt = Math.max(0, ...this.removalsOf(cid, answers))
      if (removedAt > pin.pinnedAt) {
        await this.unpinLocal(cid, removedAt)
        continue
      }
      // Pins made before the latest removal are on their way out (a holder that was away during the rm): their factor
      // and name are not the file's any more.
      const others = answers.flatMap(a => a.res.pins.filter(p => CID.decode(p.cid).equals(cid)).map(fromPinInfo)).filter(p => p.pinnedAt >= removedAt)
      if (pin.replicas === 0) pin = await this.learnPin(pin, others)
      if (pin.replicas !== 0) pin = await this.adoptLargestFactor(pin, others)
      const holders = [this.self, ...answers.filter(a => a.res.pins.some(p => CID.decode(p.cid).equals(cid))).map(a => a.peer)].sort()
      if (!await this.locallyComplete(pin)) {
        void this.pull(cid, holders.filter(h => h !== this.self))
        continue
      }
      if (holders[0] !== this.self) continue
      // A member membership holds alive but that did not answer may be a holder: wait for it to answer or to be
      // declared dead rather than over-replicate on a pause.
      if (holders.length < pin.replicas && silent.length > 0) again = true
      else if (holders.length < pin.replicas) {
        again = true
        // A member whose pin timed out lately is not asked again for a while: it may hold the copy without having said
        // so, and one that always times out would otherwise be the only member ever asked.
        const now = Date.now()
        const candidates = alive.filter(p => !holders.includes(p) && !(now - (this.pinTimeouts.get(`${pin.cid} ${p}`) ?? -Infinity) < C.PIN_TIMEOUT_AVOID))
        // In placement order, past members that refuse (no room, an error): the first choices alone would ask a full
        // disk again every round.
        let needed = pin.replicas - holders.length
        for (const peer of this.placement(pin.cid, candidates, candidates.length)) {
          // Removed meanwhile (an rm reached this node during the round): no more copies of it.
          if (needed === 0 || !this.pins.pins.has(pin.cid)) break
          try {
            await this.components.rpc.call(peer, filesService, 'pin', { cid: cid.bytes, name: pin.name, replicas: pin.replicas, sources: holders, size: BigInt(pin.size), pinnedAt: BigInt(pin.pinnedAt), put: false }, { signal, timeout: this.controlTimeout })
            needed--
            this.log.info({ cid: pin.cid, peer, holders: holders.length, replicas: pin.replicas }, 'added a replica')
          } catch (err) {
            const e = toMeshError(err)
            this.log.warn({ err: e.message, cid: pin.cid, peer }, 'could not add a replica')
            if (signal.aborted) break
            // A pin that timed out may have taken: asking the next member too could make a surplus copy. The next
            // round's answers tell, and ask others if it did not.
            if (e.code === 'TIMEOUT') {
              if (this.pinTimeouts.size >= C.MAX_PIN_TIMEOUTS) this.pinTimeouts.clear()
              this.pinTimeouts.set(`${pin.cid} ${peer}`, Date.now())
              break
            }
          }
        }
      } else if (holders.length > pin.replicas && silent.length === 0) {
        // A holder that came back after its replacement was made: keep this node and `placement(fileCid, other
        // holders)`, drop the rest, and only once every holder is complete, so no copy goes for an unfinished one.
        const complete = answers.filter(a => a.res.pins.some(p => p.complete && CID.decode(p.cid).equals(cid))).map(a => a.peer)
        if (complete.length + 1 === holders.length) {
          const keep = new Set([this.self, ...this.placement(pin.cid, holders.filter(h => h !== this.self), pin.replicas - 1)])
          for (const peer of holders.filter(h => !keep.has(h))) {
            try {
              await this.components.rpc.call(peer, filesService, 'unpin', { cid: cid.bytes, trim: true, removedAt: 0n, seenPinnedAt: 0n }, { signal, timeout: this.controlTimeout })
              this.log.info({ cid: pin.cid, peer, holders: holders.length, replicas: pin.replicas }, 'dropped a surplus replica')
            } catch (err) {
              this.log.debug({ err: toMeshError(err).message, cid: pin.cid, peer }, 'could not drop a surplus replica')
            }
          }
        }
      }
      const u = await this.underReplicated(pin, signal)
      under += u
      if (u > 0) again = true
    }
    this.metrics?.underReplicated.set(under)
    // Until the factor is restored, check again soon: new replicas pull in the background and the metric should follow.
    if (again) this.recheck = true
  }

  /**
   * A rebuilt pin (see rebuildPin) takes the replication factor and name the other holders have, and keeps them; while
   * no other holder answers, a round uses the default factor without keeping it.
   */
  private async learnPin (pin: Pin, others: Pin[]): Promise<Pin> {
    const replicas = Math.min(C.MAX_REPLICAS, Math.max(0, ...others.map(p => p.replicas)))
    // No other holder answered this round: the default serves this round only, and a later round asks again.
    if (replicas === 0) return { ...pin, replicas: this.replicas }
    // The pin as it is now: the round's answers took a while, and a removal or a completed pull may have come meanwhile.
    const current = this.pins.pins.get(pin.cid)
    if (current == null || current.replicas !== 0) return current ?? pin
    const learned = { ...current, replicas, name: current.name !== '' ? current.name : others.find(p => p.name !== '')?.name ?? '' }
    await this.pins.set(learned)
    this.log.info({ cid: pin.cid, replicas, from: others.length }, 'a rebuilt pin took its replication factor from the other holders')
    return learned
  }

  /**
   * A file's replication factor is the largest any of its puts asked for. The same content put again (by another user,
   * say) with another factor is pinned on the members that put places, not on the first put's holders; the holders
   * then disagreed, and the file was kept at the factor of whichever of them led its repairs, while `stat` showed the
   * largest. The largest is the one that keeps every caller's copies; a lower one needs an `rm` and a new put.
   */
  private async adoptLargestFactor (pin: Pin, others: Pin[]): Promise<Pin> {
    const largest = Math.min(C.MAX_REPLICAS, Math.max(0, ...others.map(p => p.replicas)))
    if (largest <= pin.replicas) return pin
    // The pin as it is now: the round's answers took a while, and a removal may have come meanwhile.
    const current = this.pins.pins.get(pin.cid)
    if (current == null || current.replicas >= largest) return current ?? pin
    const adopted = { ...current, replicas: largest }
    await this.pins.set(adopted)
    this.log.info({ cid: pin.cid, replicas: largest, was: current.replicas }, 'took the largest replication factor another holder has for the file')
    return adopted
  }

  /** Checks that every block of a pin is here (by presence; content is verified on each read). */
  private async locallyComplete (pin: Pin): Promise<boolean> {
    const cid = CID.parse(pin.cid)
    const manifest = await this.localManifest(cid)
    if (manifest == null) return false
    for (const c of manifest.chunks) {
      if (!await this.store.has(c)) {
        if (pin.complete) await this.pins.set({ ...pin, complete: false })
        return false
      }
    }
    if (!pin.complete) await this.pinLocal(cid, { name: pin.name, replicas: pin.replicas, complete: true })
    return true
  }

  private async underReplicated (pin: Pin, signal: AbortSignal): Promise<number> {
    if (this.components.registry == null) return 0
    const manifest = await this.localManifest(CID.parse(pin.cid))
    if (manifest == null) return 0
    const has = await this.askAll('has', { cids: manifest.chunks.map(c => CID.parse(c).bytes) }, signal)
    let n = 0
    for (let i = 0; i < manifest.chunks.length; i++) {
      if (1 + has.filter(a => a.res.present[i]).length < pin.replicas) n++
    }
    return n
  }

  // ------------------------------------------------------------------------------------------------ RPC handlers

  private handlers (): Handlers<typeof filesService.methods> {
    return {
      getChunk: async (req, { signal }) => {
        const cid = cidFromBytes(req.cid)
        let data: Uint8Array | undefined
        try {
          // Every reader hashes what it receives, so hashing here too spent a core's worth of sha256 per transfer
          // twice. A reader that gets bad bytes asks again with `verify`, which finds and mends the bad copy.
          data = await this.store.get(cid, { verify: req.verify })
        } catch (err) {
          if (!(err instanceof CorruptChunkError)) throw err
          // Detected on read: mend it from another replica now, so this caller and later ones get good bytes.
          data = await new Transfer(this, cid, signal).fetch(cid, signal)
          await this.store.put(cid, data)
          this.metrics?.repaired.inc()
          this.log.info({ cid: cid.toString() }, 'repaired a corrupt chunk from a replica')
        }
        if (data == null) throw new FileNotFoundError(`${cid.toString()} is not stored here`)
        this.metrics?.bytes.inc({ direction: 'out' }, data.byteLength)
        return { data: data as Uint8Array<ArrayBuffer> }
      },
      putChunk: async (req, { signal }) => {
        const cid = cidFromBytes(req.cid)
        if (req.forward.length >= C.MAX_REPLICAS) throw new BadRequestError(`a block is forwarded to at most ${C.MAX_REPLICAS - 1} replicas`)
        // On the event loop (under 1 ms per MiB here), not the thread pool: a replica's pool is taken by the fsyncs of
        // the blocks before this one (50-300 ms each on a busy disk), and a hash queued behind them held up both the
        // answer and the pass to the next replica by 5-80 ms, which a put's last chunks wait for in full.
        if (!verifyBlock(cid, req.data)) {
          this.metrics?.corrupt.inc()
          throw new CorruptChunkError(cid.toString(), 'in a put', 'BAD_REQUEST')
        }
        const manifest = cid.code === MANIFEST_CODEC ? decodeManifest(cid, req.data) : undefined
        this.metrics?.bytes.inc({ direction: 'in' }, req.data.byteLength)
        // Only to members: a caller cannot make this node send data to peers outside the mesh.
        const members = new Set(this.alive())
        const listed = [...new Set(req.forward)].filter(p => p !== this.self)
        const forward = listed.filter(p => members.has(p))
        const pin = req.pin
        if (pin != null && (cid.code !== MANIFEST_CODEC || !uint8ArrayEquals(pin.cid, req.cid))) throw new BadRequestError('a pin rides only with its own file\'s manifest')
        this.hold(cid.toString())
        const storing = this.store.put(cid, req.data).catch((err: unknown) => { throw this.noteNoRoom(toMeshError(err)) })
        // Registered before the first await: the chunks of a put arrive on one stream ahead of its manifest, so a pin
        // that rides with the manifest finds each of them stored or here.
        this.storing.set(cid.toString(), storing)
        const [stored, relayed, pinnedHere] = await Promise.all([
          storing.finally(() => { if (this.storing.get(cid.toString()) === storing) this.storing.delete(cid.toString()) }),
          forward.length > 0 ? this.relay(cid, req.data, forward, signal, pin) : { forwarded: [], failed: [] as M.ForwardFailure[], pins: [] as M.PinOutcome[] },
          // The pin references the put's blocks (held since each arrived) once made: they no longer need holding.
          pin != null ? storing.then(async () => await this.pinHere(cid, pin, manifest)).then(r => { this.release([cid.toString(), ...manifest!.chunks]); return r }) : undefined
        ])
        for (const peer of listed) if (!members.has(peer)) relayed.failed.push({ peer, message: 'not an alive member' })
        if (pinnedHere != null) relayed.pins.unshift({ peer: this.self, complete: pinnedHere.complete })
        // Stored and passed on: the request's buffer (this chunk alone) is freed now (lib/release.ts). Not after a failed
        // forward, whose request may still sit in a stream's send queue, nor for a manifest, which the pin keeps views of.
        if (relayed.failed.length === 0 && manifest == null) releaseBuffer(req.data)
        return { stored, ...relayed }
      },
      has: async (req) => {
        const present = await Promise.all(req.cids.map(async b => { try { return await this.store.has(cidFromBytes(b)) } catch { return false } }))
        return { present }
      },
      pin: async (req) => {
        const cid = cidFromBytes(req.cid)
        if (cid.code !== MANIFEST_CODEC) throw new BadRequestError('only files can be pinned')
        return await this.pinHere(cid, req)
      },
      unpin: async (req) => await this.unpinLocal(cidFromBytes(req.cid), req.trim ? undefined : removalTime(req.removedAt, this.now()), req.removedAt > 0n ? Number(req.seenPinnedAt) : undefined),
      pins: async (req) => {
        const wanted = req.cids.length === 0 ? undefined : new Set(req.cids.map(b => cidFromBytes(b).toString()))
        // Named files by lookup: every put asks for its file's removals, and a scan of every pin cost each member
        // that put a pass over tens of thousands of them.
        const named = wanted == null ? undefined : [...wanted].flatMap(c => this.pins.pins.get(c) ?? [])
        let held: Pin[]
        let more = false
        if (req.limit > 0) {
          const limit = Math.min(req.limit, this.pinsPage)
          held = named == null
            ? this.pins.idsAfter(req.after, limit + 1).flatMap(c => this.pins.pins.get(c) ?? [])
            : named.filter(p => p.cid > req.after).sort((a, b) => a.cid < b.cid ? -1 : 1)
          more = held.length > limit
          held = held.slice(0, limit)
        } else {
          held = named ?? [...this.pins.pins.values()]
        }
        const pins = held.map(toPinInfo)
        // Removals only of named files: a listing (no names) has no use for them, and a week of removals (kept
        // that long) would have grown its answer past the message limit and failed every listing.
        const removed = wanted == null ? [] : [...wanted].flatMap(c => { const at = this.pins.tombstones.get(c); return at == null ? [] : [{ cid: CID.parse(c).bytes, removedAt: BigInt(at) }] })
        return { pins, removed, more }
      }
    }
  }

  /** Pins a file here for a put or a repair; pulls the chunks this node lacks in the background. */
  private async pinHere (cid: CID, req: M.PinRequest, manifest?: Manifest): Promise<{ complete: boolean }> {
    // From a peer: the same bound as a put's, or a pin record could carry megabytes of name.
    if (req.name.length > C.MAX_NAME_LENGTH) throw new BadRequestError(`name is at most ${C.MAX_NAME_LENGTH} characters`)
    const replicas = req.replicas === 0 ? this.replicas : Math.min(req.replicas, C.MAX_REPLICAS)
    const pin = this.pins.pins.get(cid.toString())
    manifest ??= await this.localManifest(cid)
    if (manifest != null) await Promise.all(manifest.chunks.map(async c => await this.storing.get(c)?.catch(() => {})))
    // Synchronous stats (a few µs each, 1,024 for a 1 GiB file): asynchronous ones queue in the thread pool behind
    // the fsyncs of the blocks just written, and the node taking the put waits for this answer.
    const complete = manifest != null && manifest.chunks.every(c => this.store.hasNow(c))
    // A replica that took a pin it has no room for would stay an incomplete holder, counted towards the file's
    // replicas, and the file would never get the copy it lacks.
    // An older leader sends no size: then the manifest's, when it is here, or at least the reserve must be free.
    // A repair that raced a removal (its leader chose this node before the removal reached it) must not bring the file
    // back: the copy it asks for dates from before the removal.
    // A time implausibly far ahead of this node's clock would make the copy outlast any removal: this clock's instead.
    let pinnedAt = req.pinnedAt > 0n ? Math.min(Number(req.pinnedAt), this.now() + C.MAX_TIME_AHEAD) : undefined
    const removedAt = this.pins.tombstones.get(cid.toString())
    // A put after a removal this node remembers (its node missed it, or its clock is behind) is still the newer word.
    if (req.put && pinnedAt != null && removedAt != null && removedAt >= pinnedAt) pinnedAt = removedAt + 1
    if (pin == null && pinnedAt != null && removedAt != null && removedAt > pinnedAt) throw new FileNotFoundError(`${cid.toString()} was removed`)
    // Checked and booked in one step, so that pins arriving together each see the room the others took.
    const need = req.size > 0n ? Number(req.size) : manifest?.size ?? 0
    if (!complete && pin == null && this.noRoom != null && Date.now() - this.noRoom.at < C.NO_ROOM_BACKOFF) {
      throw new MeshError('INSUFFICIENT_STORAGE', `a write here failed for lack of room ${Math.round((Date.now() - this.noRoom.at) / 1000)} s ago (${this.noRoom.message}); taking no copies for ${C.NO_ROOM_BACKOFF / 1000} s after that`)
    }
    const booked = !complete && pin == null && !this.due.has(cid.toString())
    if (booked) {
      this.checkRoom(need)
      this.due.set(cid.toString(), need)
    }
    try {
      await this.pinLocal(cid, { name: req.name, replicas, complete: complete || pin?.complete === true, pinnedAt, taken: pin == null && !complete }, manifest)
    } catch (err) {
      if (booked) this.due.delete(cid.toString())
      throw err
    }
    if (!complete) void this.pull(cid, req.sources.filter(s => s !== this.self))
    return { complete }
  }

  /** Remembers a block write that failed for lack of room (pinHere refuses copies for a while after); returns `e`. */
  private noteNoRoom (e: MeshError): MeshError {
    if (e.code === 'INSUFFICIENT_STORAGE') this.noRoom = { at: Date.now(), message: e.message }
    return e
  }

  /** Throws INSUFFICIENT_STORAGE unless `bytes` fit on this node's disk with the reserve to spare. */
  private checkRoom (bytes: number): void {
    const diskFreeNow = (this.init.freeBytes ?? diskFree)(this.init.dir)
    if (diskFreeNow == null) return
    // Copies accepted and still being pulled will take their room too.
    let free = diskFreeNow
    for (const b of this.due.values()) free -= b
    if (free < bytes + C.DISK_RESERVE) throw new MeshError('INSUFFICIENT_STORAGE', `no room for ${bytes} bytes here: ${diskFreeNow} bytes free, ${diskFreeNow - free} of them promised to copies in progress, ${C.DISK_RESERVE} kept in reserve`)
  }

  private opSignal (signal?: AbortSignal): AbortSignal {
    if (!this.running) throw new UnavailableError('files is not running')
    return AbortSignal.any([this.abort.signal, AbortSignal.timeout(C.OPERATION_TIMEOUT), ...(signal != null ? [signal] : [])])
  }
}

/**
 * One file's transfer: the providers found for it, least busy first. A chunk that has not arrived after `hedgeAfter`
 * is asked of a second provider as well (first good answer wins), and the slow provider is avoided while others are
 * healthy, so a frozen replica costs a hedge delay rather than a full chunk timeout. A provider that times out or is
 * unreachable is dropped for the rest of the transfer; one that lacks a chunk or sends a bad one is skipped for that
 * chunk. When every provider has failed a chunk, providers are looked up once more.
 */
class Transfer {
  private providers?: Promise<string[]>
  private readonly dead = new Set<string>()
  private readonly slow = new Set<string>()
  private readonly busy = new Map<string, number>()
  private refreshed = false
  private next = 0

  constructor (private readonly files: Files, readonly cid: CID, private readonly signal: AbortSignal, private readonly hint: string[] = []) {}

  private async list (): Promise<string[]> {
    this.providers ??= (async () => {
      const alive = new Set(this.files.alive())
      const hinted = this.hint.filter(p => alive.has(p) && p !== this.files.self)
      return hinted.length > 0 ? hinted : await this.files.providers(this.cid, this.signal, this.dead)
    })()
    return await this.providers
  }

  private pick (candidates: string[]): string {
    const healthy = candidates.filter(p => !this.slow.has(p))
    const pool = healthy.length > 0 ? healthy : candidates
    // Least busy first, rotating among equals so chunks spread over every provider.
    const start = this.next++ % pool.length
    const rotated = [...pool.slice(start), ...pool.slice(0, start)]
    return rotated.reduce((a, b) => (this.busy.get(b) ?? 0) < (this.busy.get(a) ?? 0) ? b : a)
  }

  async fetch (block: CID, signal: AbortSignal): Promise<Uint8Array> {
    const tried = new Set<string>()
    const running = new Map<string, { ctrl: AbortController, done: Promise<{ peer: string, data?: Uint8Array, err?: unknown }> }>()
    let lastErr: unknown
    try {
      for (;;) {
        signal.throwIfAborted()
        const candidates = (await this.list()).filter(p => !this.dead.has(p) && !tried.has(p))
        if (candidates.length === 0 && running.size === 0) {
          if (!this.refreshed) {
            this.refreshed = true
            this.providers = this.files.providers(this.cid, this.signal, this.dead)
            tried.clear()
            continue
          }
          if (lastErr == null || notFound(lastErr)) throw new FileNotFoundError(block.toString() === this.cid.toString() ? `no member holds ${this.cid.toString()}` : `no provider of ${this.cid.toString()} has its block ${block.toString()}`)
          throw new UnavailableError(`could not fetch ${block.toString()}: ${toMeshError(lastErr).message}`)
        }
        if (candidates.length > 0 && running.size < 2) {
          const peer = this.pick(candidates)
          tried.add(peer)
          this.busy.set(peer, (this.busy.get(peer) ?? 0) + 1)
          const ctrl = new AbortController()
          const done = this.files.fetchFrom(peer, block, AbortSignal.any([signal, ctrl.signal]))
            .then(data => ({ peer, data }), err => ({ peer, err }))
            .finally(() => { this.busy.set(peer, (this.busy.get(peer) ?? 1) - 1) })
          running.set(peer, { ctrl, done })
        }
        // Hedge only while another provider is left to ask.
        const canHedge = running.size < 2 && (await this.list()).some(p => !this.dead.has(p) && !tried.has(p))
        let timer: NodeJS.Timeout | undefined
        const hedge = canHedge ? new Promise<'hedge'>(resolve => { timer = setTimeout(() => { resolve('hedge') }, this.files.hedgeAfter) }) : undefined
        const first = await Promise.race([...[...running.values()].map(r => r.done), ...(hedge != null ? [hedge] : [])])
        clearTimeout(timer)
        if (first === 'hedge') {
          for (const peer of running.keys()) this.slow.add(peer)
          continue
        }
        running.delete(first.peer)
        if (first.data != null) {
          this.slow.delete(first.peer)
          return first.data
        }
        signal.throwIfAborted()
        lastErr = first.err
        const code = toMeshError(first.err).code
        if ((code === 'TIMEOUT' || code === 'UNAVAILABLE' || code === 'NODE_UNREACHABLE') && !(first.err instanceof CorruptChunkError)) this.dead.add(first.peer)
      }
    } finally {
      for (const r of running.values()) r.ctrl.abort()
    }
  }
}

/** One destination of a put, with at most `window` blocks in flight; its first error stops it. */
class Sink {
  private readonly inFlight = new Set<Promise<void>>()
  error?: MeshError

  constructor (private readonly window: number, private readonly write: (cid: CID, data: Uint8Array, signal: AbortSignal) => Promise<void>) {}

  async send (cid: CID, data: Uint8Array, signal: AbortSignal): Promise<void> {
    if (this.error != null) return
    while (this.inFlight.size >= this.window) await Promise.race(this.inFlight)
    if (this.error != null) return
    const p: Promise<void> = this.write(cid, data, signal).catch((err) => { this.error ??= toMeshError(err) }).finally(() => { this.inFlight.delete(p) })
    this.inFlight.add(p)
  }

  async drain (): Promise<void> {
    await Promise.all(this.inFlight)
  }
}

/** The remote replicas of a put, in pipeline order; one that fails a block gets no further blocks (repair replaces it). */
class Chain {
  readonly failed = new Map<string, string>()

  constructor (private readonly peers: string[]) {}

  live (): string[] { return this.peers.filter(p => !this.failed.has(p)) }

  fail (peer: string, message: string): void {
    if (!this.failed.has(peer)) this.failed.set(peer, message)
  }
}

function checkChunkSize (n: number): void {
  if (!Number.isInteger(n) || n < C.MIN_CHUNK_SIZE || n > C.MAX_CHUNK_SIZE) throw new BadRequestError(`chunk size must be an integer from ${C.MIN_CHUNK_SIZE} to ${C.MAX_CHUNK_SIZE} bytes`)
}

function toPinInfo (p: Pin): M.PinInfo {
  return { cid: CID.parse(p.cid).bytes, name: p.name, size: BigInt(p.size), chunks: p.chunks, replicas: p.replicas, pinnedAt: BigInt(p.pinnedAt), complete: p.complete }
}

function decodes (cid: Uint8Array): boolean {
  try {
    cidFromBytes(cid)
    return true
  } catch {
    return false
  }
}

/** A remover's removal time, unless it is missing (an older node) or implausibly far ahead of this node's clock. */
function removalTime (sent: bigint, now: number): number {
  const at = Number(sent)
  return at > 0 && at <= now + C.MAX_TIME_AHEAD ? at : now
}

function fromPinInfo (p: M.PinInfo): Pin {
  return { cid: CID.decode(p.cid).toString(), name: p.name, size: Number(p.size), chunks: p.chunks, replicas: p.replicas, pinnedAt: Number(p.pinnedAt), complete: p.complete }
}

function shuffle<T> (a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a
}
