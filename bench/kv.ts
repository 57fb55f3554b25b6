// `npm run bench -- kv [seconds-per-cell]`: YCSB-A-like (50% read, 50% update, zipfian keys, 1 KiB values) against
// local 3- and 5-node testnets at one/quorum/all, a single-node RF=1 baseline through the same API, and a local
// redis-server driven by the same load generator over a minimal RESP client. The mesh is driven over a lean HTTP/1.1
// client (bench/http-client.ts); `KV_BENCH_CLIENT=node` drives it with Node's http.request instead. Next to each
// n-node mesh, n independent single-node meshes under the same load show what n daemons make here with nothing to
// replicate: the ceiling for its writes/s/core, and the latency of its half-peak rate without replication.
import { createConnection, createServer, type Socket } from 'node:net'
import { readFile } from 'node:fs/promises'
import { spawn, execSync, type ChildProcess } from 'node:child_process'
import { Agent, request } from 'node:http'
import { createTestnet, type Testnet } from '../testnet/index.js'
import { machine, summarize, table, writeResult } from './util.js'
import { HttpPool } from './http-client.js'
import { seededRandom } from '../lib/clock.js'

const KEYS = 10_000
/** Which client drives the mesh: Node's `http.request` (sessions 1-17) when `KV_BENCH_CLIENT=node`, else the lean one. */
const CLIENT = process.env.KV_BENCH_CLIENT === 'node' ? 'node:http' : 'lean'
const VALUE = Buffer.alloc(1024, 'x')
const CONCURRENCY = [1, 16, 64]
const LEVELS = ['one', 'quorum', 'all'] as const

interface Cell {
  system: string, level: string, concurrency: number, ops: number, opsPerSec: number, writesPerSec: number, p50: number, p99: number, p999: number, errors: number
  /** CPU the server processes used during the cell (user+sys seconds per second: 1 = one core busy). */
  cores?: number
  /** Writes per second per core used: the RF=3 target is counted this way, so other tenants of a shared machine affect it less. */
  writesPerCore?: number
}

/** user+sys CPU seconds of the given processes so far (Linux /proc); undefined where it cannot be read. */
async function cpuSeconds (pids: number[]): Promise<number | undefined> {
  let total = 0
  for (const pid of pids) {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      total += (Number(f[11]) + Number(f[12])) / CLOCK_TICKS
    } catch { return undefined }
  }
  return total
}
const CLOCK_TICKS = 100

/** Zipfian(0.99) over [0, n), by inverse CDF over precomputed cumulative weights. */
function zipf (n: number, rand: () => number): () => number {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let i = 0; i < n; i++) { sum += 1 / Math.pow(i + 1, 0.99); cdf[i] = sum }
  return () => {
    const x = rand() * sum
    let lo = 0
    let hi = n - 1
    while (lo < hi) { const mid = (lo + hi) >> 1; if (cdf[mid] < x) lo = mid + 1; else hi = mid }
    return lo
  }
}

type Driver = (op: 'get' | 'put', key: string) => Promise<void>

async function run (system: string, level: string, concurrency: number, seconds: number, driver: Driver, pids: number[] = [], writeFraction = 0.5): Promise<Cell> {
  const rand = seededRandom(42 + concurrency)
  const key = zipf(KEYS, rand)
  const lat: number[] = []
  let writes = 0
  let errors = 0
  const cpu0 = await cpuSeconds(pids)
  const end = performance.now() + seconds * 1000
  await Promise.all(Array.from({ length: concurrency }, async (): Promise<void> => {
    while (performance.now() < end) {
      const op = rand() < writeFraction ? 'put' : 'get'
      const t0 = performance.now()
      try { await driver(op, `user${key()}`) } catch { errors++; continue }
      lat.push(performance.now() - t0)
      if (op === 'put') writes++
    }
  }))
  const cpu1 = await cpuSeconds(pids)
  const s = summarize(lat)
  const cell: Cell = { system, level, concurrency, ops: s.n, opsPerSec: s.n / seconds, writesPerSec: writes / seconds, p50: s.p50, p99: s.p99, p999: s.p999, errors }
  if (cpu0 != null && cpu1 != null && cpu1 > cpu0) {
    cell.cores = (cpu1 - cpu0) / seconds
    cell.writesPerCore = writes / (cpu1 - cpu0)
  }
  return cell
}

/**
 * Open loop at a fixed rate (the p99 target is stated at half the peak): requests start on schedule whether or not
 * earlier ones finished, and latency counts from the scheduled start, so a stall is not hidden by fewer requests.
 */
async function runAtRate (system: string, level: string, rate: number, seconds: number, driver: Driver, pids: number[]): Promise<Cell> {
  const rand = seededRandom(7)
  const key = zipf(KEYS, rand)
  const lat: number[] = []
  let writes = 0
  let errors = 0
  const total = Math.floor(rate * seconds)
  const t0 = performance.now()
  const cpu0 = await cpuSeconds(pids)
  const inflight = new Set<Promise<void>>()
  for (let i = 0; i < total; i++) {
    const at = t0 + i * 1000 / rate
    const wait = at - performance.now()
    if (wait > 1) await new Promise(resolve => setTimeout(resolve, wait))
    const op = rand() < 0.5 ? 'get' : 'put'
    const p: Promise<void> = driver(op, `user${key()}`).then(() => { lat.push(performance.now() - at); if (op === 'put') writes++ }, () => { errors++ })
      .finally(() => { inflight.delete(p) })
    inflight.add(p)
  }
  await Promise.all(inflight)
  const elapsed = (performance.now() - t0) / 1000
  const cpu1 = await cpuSeconds(pids)
  const s = summarize(lat)
  const cell: Cell = { system, level: `${level} @${Math.round(rate)}/s`, concurrency: 0, ops: s.n, opsPerSec: s.n / elapsed, writesPerSec: writes / elapsed, p50: s.p50, p99: s.p99, p999: s.p999, errors }
  if (cpu0 != null && cpu1 != null && cpu1 > cpu0) { cell.cores = (cpu1 - cpu0) / elapsed; cell.writesPerCore = writes / (cpu1 - cpu0) }
  return cell
}

/**
 * Drives the HTTP API with the lean client (bench/http-client.ts), or with Node's `http.request` when
 * `KV_BENCH_CLIENT=node`, the driver of sessions 1-17, for comparing figures across that change.
 */
function httpDriver (apis: string[], level: string): { driver: Driver, close: () => void } {
  let next = 0
  if (CLIENT === 'node:http') {
    const agent = new Agent({ keepAlive: true, maxSockets: 256 })
    const driver: Driver = async (op, key) => {
      const u = new URL(apis[next++ % apis.length])
      await new Promise<void>((resolve, reject) => {
        const req = request({ host: u.hostname, port: u.port, agent, method: op === 'get' ? 'GET' : 'PUT', path: `/v1/kv/${key}?consistency=${level}`, headers: op === 'put' ? { 'content-type': 'application/octet-stream', 'content-length': VALUE.byteLength } : {} }, (res) => {
          res.on('data', () => {})
          res.on('end', () => { (res.statusCode === 200 || res.statusCode === 404) ? resolve() : reject(new Error(`HTTP ${res.statusCode}`)) })
        })
        req.on('error', reject)
        req.end(op === 'put' ? VALUE : undefined)
      })
    }
    return { driver, close: () => { agent.destroy() } }
  }
  const pools = apis.map(a => { const u = new URL(a); return new HttpPool(u.hostname, Number(u.port)) })
  const driver: Driver = async (op, key) => {
    const status = await pools[next++ % pools.length].request(op === 'get' ? 'GET' : 'PUT', `/v1/kv/${key}?consistency=${level}`, op === 'put' ? VALUE : undefined)
    if (status !== 200 && status !== 404) throw new Error(`HTTP ${status}`)
  }
  return { driver, close: () => { for (const p of pools) p.close() } }
}

async function load (apis: string[]): Promise<void> {
  const { driver, close } = httpDriver(apis, 'quorum')
  const keys = Array.from({ length: 2000 }, (_, i) => `user${i}`)
  for (let i = 0; i < keys.length; i += 64) await Promise.all(keys.slice(i, i + 64).map(async k => { await driver('put', k).catch(() => {}) }))
  close()
}

async function freePort (): Promise<number> {
  return await new Promise(resolve => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => { resolve(p) }) }) })
}

/** A pipelined RESP client: one socket, replies matched in order. */
class Resp {
  private readonly pending: Array<() => void> = []
  private buf = Buffer.alloc(0)
  constructor (private readonly sock: Socket) {
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.parse() })
  }

  private parse (): void {
    for (;;) {
      const nl = this.buf.indexOf('\r\n')
      if (nl < 0) return
      const t = this.buf[0]
      let len = nl + 2
      if (t === 0x24) { // $
        const n = Number(this.buf.subarray(1, nl).toString())
        if (n >= 0) { len = nl + 2 + n + 2; if (this.buf.length < len) return }
      }
      this.buf = this.buf.subarray(len)
      this.pending.shift()?.()
    }
  }

  async cmd (...args: Array<string | Buffer>): Promise<void> {
    const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)]
    for (const a of args) { const b = Buffer.isBuffer(a) ? a : Buffer.from(a); parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n')) }
    await new Promise<void>(resolve => { this.pending.push(resolve); this.sock.write(Buffer.concat(parts)) })
  }
}

async function redis (seconds: number): Promise<Cell[]> {
  try { execSync('command -v redis-server', { stdio: 'ignore' }) } catch {
    process.stderr.write('installing redis-server with apt-get\n')
    execSync('apt-get install -y redis-server', { stdio: 'inherit' })
  }
  const port = await freePort()
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  try {
    const socks: Socket[] = []
    const connect = async (): Promise<Resp> => {
      for (let i = 0; i < 100; i++) {
        try {
          const s = await new Promise<Socket>((resolve, reject) => { const c = createConnection(port, '127.0.0.1', () => { resolve(c) }); c.once('error', reject) })
          socks.push(s)
          return new Resp(s)
        } catch { await new Promise(resolve => setTimeout(resolve, 50)) }
      }
      throw new Error('redis-server did not start')
    }
    const cells: Cell[] = []
    for (const c of CONCURRENCY) {
      const conns = await Promise.all(Array.from({ length: c }, connect))
      let i = 0
      cells.push(await run('redis', '-', c, seconds, async (op, key) => {
        const r = conns[i++ % conns.length]
        await (op === 'get' ? r.cmd('GET', key) : r.cmd('SET', key, VALUE))
      }))
    }
    for (const s of socks) s.destroy()
    return cells
  } finally { child.kill('SIGTERM') }
}

async function mesh (n: number, seconds: number, env: Record<string, string> = {}, concurrency = CONCURRENCY): Promise<Cell[]> {
  // Task execution off, as in the default config: its idle work-stealing polls otherwise take about a core of a
  // 3-node testnet and would be counted against the store.
  const net: Testnet = await createTestnet(n, { logLevel: 'warn', env, allowExec: false })
  try {
    const apis = net.nodes.map(x => x.api)
    // A node coordinates only once its membership view is complete (ViewNotReadyError before).
    await net.waitFor('every node ready to coordinate', async () => {
      const s = await Promise.all(net.nodes.map(async (_, i) => await net.client(i, { timeout: 5000 }).json('GET', '/v1/storage/stats')))
      return s.every((x: { ready?: boolean }) => x.ready !== false)
    }, 60_000, 100)
    await load(apis)
    const pids = net.nodes.map(x => x.pid).filter((p): p is number => p != null)
    const cells: Cell[] = []
    const levels = n === 1 ? ['one'] as const : LEVELS
    for (const level of levels) {
      for (const c of concurrency) {
        const { driver, close } = httpDriver(apis, level)
        cells.push(await run(n === 1 ? 'single node RF=1' : `${n} nodes RF=3`, level, c, seconds, driver, pids))
        close()
      }
    }
    {
      // The per-core write target is about writes, so one cell is updates only, at the highest concurrency.
      const level = n === 1 ? 'one' : 'quorum'
      const c = concurrency[concurrency.length - 1]
      const { driver, close } = httpDriver(apis, level)
      cells.push(await run(n === 1 ? 'single node RF=1' : `${n} nodes RF=3`, `${level}, updates only`, c, seconds, driver, pids, 1))
      close()
    }
    if (n > 1) {
      const peak = Math.max(...cells.filter(c => c.level === 'quorum').map(c => c.opsPerSec))
      const { driver, close } = httpDriver(apis, 'quorum')
      cells.push(await runAtRate(`${n} nodes RF=3`, 'quorum', peak / 2, seconds, driver, pids))
      close()
    }
    return cells
  } finally { await net.stop() }
}

/**
 * What n daemons on this machine make with nothing to replicate: n independent one-node meshes (RF=1) under the same
 * updates-only load, round-robin. The per-core write target is counted over the node processes, and n daemons sharing
 * the cores cost more per request than one (more processes than cores: switches, caches, n event loops and GCs), so
 * this is the ceiling an n-node RF=3 mesh's writes/s/core is measured against, in the same run. With `rate`, also the
 * open-loop mixed load at that rate (the RF=3 mesh's half-peak rate): the latency the machine gives that load with
 * nothing to replicate.
 */
async function floor (n: number, seconds: number, rate?: number, concurrency = CONCURRENCY[CONCURRENCY.length - 1]): Promise<Cell[]> {
  const nets: Testnet[] = []
  try {
    const started = await Promise.allSettled(Array.from({ length: n }, async () => await createTestnet(1, { logLevel: 'warn', env: { MESH_REPLICATION_FACTOR: '1' }, allowExec: false })))
    for (const net of started) if (net.status === 'fulfilled') nets.push(net.value)
    for (const net of started) if (net.status === 'rejected') throw net.reason
    await Promise.all(nets.map(async net => {
      await net.waitFor('the node ready to coordinate', async () => (await net.client(0, { timeout: 5000 }).json('GET', '/v1/storage/stats') as { ready?: boolean }).ready !== false, 60_000, 100)
    }))
    const apis = nets.map(x => x.nodes[0].api)
    await load(apis)
    const pids = nets.map(x => x.nodes[0].pid).filter((p): p is number => p != null)
    const { driver, close } = httpDriver(apis, 'one')
    const cells = [await run(`${n} independent nodes RF=1`, 'one, updates only', concurrency, seconds, driver, pids, 1)]
    if (rate != null && rate > 0) cells.push(await runAtRate(`${n} independent nodes RF=1`, 'one', rate, seconds, driver, pids))
    close()
    return cells
  } finally {
    await Promise.all(nets.map(async net => { await net.stop() }))
  }
}

export async function main (args: string[]): Promise<void> {
  const seconds = Number(args[0] ?? 3)
  const cells: Cell[] = []
  const print = (cs: Cell[]): void => {
    process.stdout.write(table(['system', 'level', 'conc', 'ops/s', 'writes/s', 'p50 ms', 'p99 ms', 'p999 ms', 'errors', 'cores used', 'writes/s/core'],
      cs.map(c => [c.system, c.level, c.concurrency, c.opsPerSec, c.writesPerSec, c.p50, c.p99, c.p999, c.errors, c.cores ?? '-', c.writesPerCore ?? '-'])) + '\n\n')
  }
  for (const [n, env] of [[1, { MESH_REPLICATION_FACTOR: '1' }], [3, {}], [5, {}]] as const) {
    const cs = await mesh(n, seconds, env)
    print(cs)
    cells.push(...cs)
    if (n > 1) {
      const peak = Math.max(...cs.filter(c => c.level === 'quorum').map(c => c.opsPerSec))
      const fs = await floor(n, seconds, peak / 2)
      print(fs)
      cells.push(...fs)
    }
  }
  const rc = await redis(seconds)
  print(rc)
  cells.push(...rc)
  const ratios = cells.filter(c => c.concurrency > 0 && c.system !== 'redis' && c.system !== 'single node RF=1').map(c => {
    const base = cells.find(b => b.system === 'single node RF=1' && b.concurrency === c.concurrency && b.level.includes('updates') === c.level.includes('updates'))
    const red = rc.find(b => b.concurrency === c.concurrency)
    return [c.system, c.level, c.concurrency, c.opsPerSec / (base?.opsPerSec ?? NaN), c.opsPerSec / (red?.opsPerSec ?? NaN), c.p99 / (base?.p99 ?? NaN)]
  })
  process.stdout.write(table(['system', 'level', 'conc', 'ops/s ÷ single node', 'ops/s ÷ redis', 'p99 ÷ single node'], ratios) + '\n')
  // The per-core target against what the same number of daemons make here with nothing to replicate.
  const perCore = [3, 5].map(n => {
    const rf3 = cells.find(c => c.system === `${n} nodes RF=3` && c.level === 'quorum, updates only')
    const fl = cells.find(c => c.system === `${n} independent nodes RF=1`)
    const half = cells.find(c => c.system === `${n} nodes RF=3` && c.level.startsWith('quorum @'))
    const flHalf = cells.find(c => c.system === `${n} independent nodes RF=1` && c.level.startsWith('one @'))
    return [`${n} nodes`, rf3?.writesPerCore ?? NaN, fl?.writesPerCore ?? NaN, (rf3?.writesPerCore ?? NaN) / (fl?.writesPerCore ?? NaN), 3000 / (fl?.writesPerCore ?? NaN), half?.p99 ?? NaN, flHalf?.p99 ?? NaN]
  })
  process.stdout.write('\n' + table(['nodes', 'RF=3 quorum writes/s/core', 'no replication (independent RF=1) writes/s/core', 'RF=3 ÷ no replication', 'target 3,000 ÷ no replication', 'RF=3 p99 at half peak, ms', 'no replication p99 at that rate, ms'], perCore) + '\n')
  const m = machine()
  process.stdout.write(`\ncores ${m.cores}, commit ${m.commit}, mesh driven by the ${CLIENT} HTTP client\n`)
  process.stdout.write(`written to ${await writeResult('kv', { seconds, client: CLIENT, cells })}\n`)
}
