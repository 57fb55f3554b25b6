import { constants, PerformanceObserver } from 'node:perf_hooks'
import { getHeapStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import * as C from './constants.js'

/**
 * Flags the daemon's Node process should start with; the testnet, the systemd unit, the container's `mesh` wrapper
 * and the `mesh` script's shebang pass them.
 *
 * `--max-semi-space-size=16`: Node 24 lets the young generation grow to 2 x 64 MiB: a node moving file chunks filled
 * it and held ~50 MiB more RSS than with 4 MiB semi-spaces, with no measured loss in speed, and that headroom is what
 * pays for `tuneGc` below within the 300 MiB a transfer may use. 4 MiB, the default until session 17, was too small
 * for a KV node: each scavenge copies the live objects of every request in flight, and it ran one every ~40 ms. 16 MiB
 * semi-spaces gave quorum writes ~20 % more per core than 4 (8: ~10 %), for 25-50 MiB more peak RSS on a file node:
 * 232-236 MiB against 187-208 over five back-to-back 200 MiB round trips (BENCHMARKS.md, kv, session 17).
 *
 * `--single-threaded-gc`: V8's collector otherwise hands parts of each scavenge to helper threads and waits for
 * them. When the machine's cores are all busy (several nodes, or a node and its load, on two cores) a helper may not
 * run for milliseconds, and the pause waits with it. Without helpers, quorum KV latency at a fixed 1,000 ops/s on a
 * 3-node testnet had a p99 of 31-33 ms against 35-46, daemon CPU per empty task fell 3-7 %, KV throughput did not
 * change, and file gets and large puts ran 5-15 % faster (BENCHMARKS.md, kv and files, session 8).
 */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=16', '--single-threaded-gc']

/**
 * Counts buffers outside the JS heap (every chunk, socket read and cipher output is one) towards V8's one global
 * limit, instead of starting a full mark-compact for each 64 MiB of them. Moving a file allocates several times its
 * size in such buffers along the way (socket reads, two cipher layers, framing), so a node moving 60 MiB/s ran 5-9 full
 * collections a second, 10-20 % of a core each; with this flag a 200 MiB get ran ~40 % faster and a put ~25 %
 * (BENCHMARKS.md, files). Set at run time, before the node allocates much: V8 reads it at each collection.
 */
export function tuneGc (): void {
  setFlagsFromString('--external-memory-accounted-in-global-limit')
}

export interface GcHeadroomInit {
  /**
   * Garbage (heap and buffers) that may pile up past what the last full collection left, before the next one.
   * @default `gcHeadroom` (64 MiB)
   */
  headroom?: number
  /** The most the heap may grow between full collections, in percent of what the last one left. @default `gcMaxGrowingPercent` (150) */
  maxPercent?: number
  /** Below this, V8 picks its own factor again (a large heap). @default `gcMinGrowingPercent` (50) */
  minPercent?: number
  /**
   * Resident memory past which the headroom shrinks, down to none at this limit itself (V8's own factor again): the
   * headroom is spent only while the process is well under it. Soft: past it V8 decides, as it did before; nothing
   * forces a collection. @default `gcSoftMemoryLimit` (280 MiB)
   */
  softLimit?: number
  /** Applies a V8 flag. @default `v8.setFlagsFromString` */
  setFlags?: (flags: string) => void
  /** Bytes alive now: the JS heap in use plus the buffers outside it. @default from `v8.getHeapStatistics()` */
  liveBytes?: () => number
  /** Resident set size of the process now. @default `process.memoryUsage.rss` */
  rss?: () => number
}

/**
 * The heap-growing percent that lets `headroom` bytes of garbage pile up on top of `live`, within [min, max]; 0 (V8's
 * own factor) when that is under `min`.
 */
export function growingPercent (live: number, headroom: number, min: number, max: number): number {
  const percent = Math.min(max, Math.floor(100 * headroom / Math.max(live, 1)))
  return percent < min ? 0 : percent
}

/**
 * Sets how far the heap may grow between full collections from a budget of garbage in bytes, recomputed after each
 * full collection from what it left alive; in the spirit of Go's GOMEMLIMIT rather than a fixed factor.
 *
 * Why: V8 picks its factor from how fast its collections run against how fast the program allocates on the JS heap.
 * Buffers are not heap allocations, so a node moving a file looked idle to it: it kept the factor near 1.1 and ran a
 * full collection every ~200 ms, whose marking and sweeping took a quarter of a put's CPU. A fixed factor would scale
 * the garbage with the heap, which is small (~30 MiB) on a file node but may be large on a busy KV node; a budget in
 * bytes bounds it either way, and the budget shrinks as the process nears a soft limit on its resident memory.
 *
 * A set percent replaces V8's factor both ways: on a heap of ~100 MiB that allocates fast on the JS heap, where V8
 * might grow it 2-4 x, the budget's ~1.6 x collects more often. The KV and task benchmarks (BENCHMARKS.md, session 6)
 * showed no change.
 *
 * Measured on a 5-node testnet (BENCHMARKS.md, files): 5 x 50 MiB put and get against V8's own factor, a 64 MiB budget
 * gave put +6 % and get +15 %, 96 MiB put +12 % and get +20 %; the 10 MiB put of `npm run bench -- files` went from
 * 26 to 43 MiB/s. A 96 MiB budget (or a fixed 2.5 x) raised a 200 MiB get's peak RSS on the reader by ~25 MiB, to
 * 279-289 MiB in some runs against the 300 MiB a transfer may use, so the default is 64.
 */
export class GcHeadroom {
  private readonly headroom: number
  private readonly maxPercent: number
  private readonly minPercent: number
  private readonly setFlags: (flags: string) => void
  private readonly liveBytes: () => number
  private readonly softLimit: number
  private readonly rss: () => number
  private observer?: PerformanceObserver
  private applied = -1

  constructor (init: GcHeadroomInit = {}) {
    this.headroom = init.headroom ?? C.gcHeadroom
    this.maxPercent = init.maxPercent ?? C.gcMaxGrowingPercent
    this.minPercent = init.minPercent ?? C.gcMinGrowingPercent
    this.setFlags = init.setFlags ?? setFlagsFromString
    this.liveBytes = init.liveBytes ?? (() => { const h = getHeapStatistics(); return h.used_heap_size + h.external_memory })
    this.softLimit = init.softLimit ?? C.gcSoftMemoryLimit
    this.rss = init.rss ?? (() => process.memoryUsage.rss())
  }

  /** The percent in force (0: V8's own factor). */
  get percent (): number { return this.applied }

  start (): void {
    if (this.observer != null) return
    this.update()
    this.observer = new PerformanceObserver(list => {
      if (list.getEntries().some(e => ((e as { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) this.update()
    })
    this.observer.observe({ entryTypes: ['gc'] })
  }

  stop (): void {
    this.observer?.disconnect()
    this.observer = undefined
  }

  /** Recomputes the percent from what is alive now; called after each full collection. */
  update (): void {
    const headroom = Math.min(this.headroom, Math.max(0, this.softLimit - this.rss()))
    const percent = growingPercent(this.liveBytes(), headroom, this.minPercent, this.maxPercent)
    if (percent === this.applied) return
    this.applied = percent
    this.setFlags(`--heap-growing-percent=${percent}`)
  }
}

export interface YoungBufferCollectorInit {
  /** Buffers allocated since the last young collection that start the next one. @default `youngBufferStep` (16 MiB) */
  step?: number
  /** How often it looks while buffers are being allocated. @default `youngBufferActiveInterval` (10 ms) */
  activeInterval?: number
  /** How often it looks otherwise. @default `youngBufferIdleInterval` (250 ms) */
  idleInterval?: number
  /** Bytes of buffers outside the JS heap now. @default `v8.getHeapStatistics().external_memory` */
  externalBytes?: () => number
  /** Runs a young-generation collection. @default V8's `gc({ type: 'minor' })`, exposed at start */
  collect?: () => void
  /**
   * Only growth within this long (ms) counts towards a step: slower growth runs no collection.
   * @default `youngBufferWindow` (500 ms)
   */
  window?: number
  /** Milliseconds on a monotonic clock. @default `performance.now` */
  now?: () => number
}

/**
 * Runs a young-generation collection (a scavenge) after each `step` of buffers allocated, so that buffers which died
 * young are freed by a scavenge instead of waiting for a full collection.
 *
 * Why: a node moving a file allocates buffers several times the size of what it moves (socket reads, cipher output,
 * chunk reads), and nearly all of them die within milliseconds. A scavenge frees a dead buffer for the price of the
 * few live young objects it copies, but V8 starts one only when the young JS heap fills, and a buffer puts ~100 bytes
 * there, so a node moving 100 MiB/s ran a scavenge every ~second. Meanwhile the buffers count towards the global
 * limit (tuneGc), and they started a full collection every 64 MiB (GcHeadroom), whose concurrent marking of the whole
 * ~30 MiB heap was a third of a file transfer's CPU in `perf`. With a scavenge every 16 MiB of buffers, a node serving
 * its share of a 200 MiB get ran 0-1 full collections instead of 2-3 and used a third less CPU (BENCHMARKS.md, files,
 * session 7).
 *
 * A node that moves no buffers pays one look every `idleInterval` (~2 µs each). Growth slower than a step per
 * `window` runs none: on a KV node its rare collections could each turn V8's incremental marking into a 46-66 ms pause
 * (BENCHMARKS.md, kv, session 17).
 */
export class YoungBufferCollector {
  private readonly step: number
  private readonly activeInterval: number
  private readonly idleInterval: number
  private readonly externalBytes: () => number
  private collect?: () => void
  private timer?: ReturnType<typeof setTimeout>
  private readonly window: number
  private readonly now: () => number
  /** What `externalBytes` read at each look within the last `window`, oldest first. */
  private samples: Array<{ bytes: number, at: number }> = []
  private readonly maxSamples: number
  private last = 0
  private quiet = C.youngBufferQuietChecks
  /** Young collections it has run. */
  collections = 0

  constructor (init: YoungBufferCollectorInit = {}) {
    this.step = init.step ?? C.youngBufferStep
    this.activeInterval = init.activeInterval ?? C.youngBufferActiveInterval
    this.idleInterval = init.idleInterval ?? C.youngBufferIdleInterval
    this.externalBytes = init.externalBytes ?? (() => getHeapStatistics().external_memory)
    this.collect = init.collect
    this.window = init.window ?? C.youngBufferWindow
    this.now = init.now ?? (() => performance.now())
    this.maxSamples = Math.ceil(this.window / Math.max(1, this.activeInterval)) + 2
  }

  start (): void {
    if (this.timer != null) return
    if (this.collect == null) {
      // The flag exposes `gc` only to contexts made after it is set; this context is the only user.
      setFlagsFromString('--expose-gc')
      const gc = runInNewContext('gc') as (options: { type: 'minor' | 'major' }) => void
      this.collect = () => { gc({ type: 'minor' }) }
    }
    this.last = this.externalBytes()
    this.samples = [{ bytes: this.last, at: this.now() }]
    this.schedule(this.idleInterval)
  }

  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  /**
   * Looks once: collects if buffers grew by `step` over the lowest reading of the last `window` (and since the last
   * collection). Returns whether buffers are being allocated, which sets how soon it looks again.
   */
  check (): boolean {
    const now = this.externalBytes()
    if (now - this.last >= this.step / 64) this.quiet = 0
    else this.quiet++
    this.last = now
    // Growth counts from the lowest reading within the window: freed buffers leave the count only once V8's sweeper
    // gets to them, after a collection returns, and slower growth than a step per window runs no collection at all.
    // Only a node moving bulk data allocates buffers that fast. A KV load's slow net growth would otherwise set one
    // off now and then, and one that lands while V8 is marking the old generation makes V8 finish that marking at
    // once: a 46-66 ms pause, several times the p99 the KV store aims for.
    const at = this.now()
    // Bounded by count as well, for a clock that stalls.
    while (this.samples.length > 0 && (at - this.samples[0].at > this.window || this.samples.length > this.maxSamples)) this.samples.shift()
    this.samples.push({ bytes: now, at })
    let low = now
    for (const sample of this.samples) if (sample.bytes < low) low = sample.bytes
    if (now - low >= this.step) {
      this.collect?.()
      this.collections++
      this.last = this.externalBytes()
      this.samples = [{ bytes: this.last, at }]
    }
    return this.quiet < C.youngBufferQuietChecks
  }

  private schedule (ms: number): void {
    this.timer = setTimeout(() => {
      if (this.timer == null) return
      this.schedule(this.check() ? this.activeInterval : this.idleInterval)
    }, ms)
    this.timer.unref()
  }
}
