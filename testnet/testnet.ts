import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, mkdir, readFile, rm, writeFile, open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MeshClient } from '../cli/client.js'
import { writeNetworkKey } from '../node/pnet.js'
import { DAEMON_NODE_FLAGS } from '../node/gc-tuning.js'
import { second } from '../lib/units.js'
import { reservePort, releasePort } from './ports.js'

export interface TestnetNodeInfo {
  index: number
  peerId: string
  pid: number
  api: string
  addrs: string[]
  dataDir: string
}

export interface TestnetOptions {
  /** Parent of the nodes' data dirs. @default a fresh temp dir, removed again by stop() */
  dir?: string
  /** Node i listens on basePort + 2i and serves its API on basePort + 2i + 1. @default free ports below the kernel's ephemeral range */
  basePort?: number
  /** Extra `mesh start` flags for node i. */
  args?: (index: number) => string[]
  /** Extra environment for every node. */
  env?: Record<string, string>
  /** @default 'info' */
  logLevel?: string
  /**
   * Run the mesh with a pre-shared network key (written to DIR/network.key), as a real deployment should. A client
   * that dials the nodes itself needs it too: `net.networkKeyFile`.
   * @default true
   */
  networkKey?: boolean
  /** Start the nodes with --allow-exec. @default true */
  allowExec?: boolean
  /** How long each node may take to come up. @default 60 seconds */
  startTimeout?: number
  /** Called when a node exits without stop()/kill() having asked it to. @default a line on stderr */
  onUnexpectedExit?: (index: number, code: number | null, signal: NodeJS.Signals | null) => void
}

const binPath = fileURLToPath(new URL('../cli/bin.js', import.meta.url))

interface NodeProcess {
  info: TestnetNodeInfo
  child?: ChildProcess
  exited?: Promise<void>
  expectExit: boolean
  frozen: boolean
}

/**
 * A local mesh of real `mesh start` processes on 127.0.0.1, each with its own data dir. Tests and `mesh testnet` both
 * use it. It never restarts a node by itself: chaos tests kill nodes on purpose.
 */
export class Testnet {
  readonly nodes: TestnetNodeInfo[] = []
  private readonly procs: NodeProcess[] = []
  private stopped = false
  private readonly ports: number[] = []
  /** The index addNode gives next (nodes added at once each take their own). */
  private nextIndex = 0
  /** Path of the mesh's network key, when it has one. */
  networkKeyFile?: string

  constructor (readonly dir: string, readonly size: number, private readonly opts: TestnetOptions, private readonly ownsDir: boolean) {}

  client (index: number, init: { timeout?: number, token?: string } = {}): MeshClient {
    return new MeshClient({ api: this.nodes[index].api, ...init })
  }

  /** Node 0's full address, which the others bootstrap from. */
  get bootstrapAddr (): string {
    return this.nodes[0].addrs[0]
  }

  async startNode (index: number): Promise<TestnetNodeInfo> {
    const dataDir = join(this.dir, `node-${index}`)
    await mkdir(dataDir, { recursive: true })
    await rm(join(dataDir, 'node.json'), { force: true })
    const base = this.opts.basePort
    // A restarted node keeps its ports, as a real one would: peers and bootstrap lists hold its address.
    const previous = this.nodes[index]
    const previousPort = (re: RegExp, s?: string): number | undefined => { const m = s == null ? null : re.exec(s); return m == null ? undefined : Number(m[1]) }
    const listenPort = previousPort(/\/tcp\/(\d+)/, previous?.addrs[0]) ?? (base == null ? await this.reserve() : base + 2 * index)
    const apiPort = previousPort(/:(\d+)$/, previous?.api) ?? (base == null ? await this.reserve() : base + 2 * index + 1)
    const args = [
      ...DAEMON_NODE_FLAGS,
      binPath, 'start',
      '--data-dir', dataDir,
      '--listen', `/ip4/127.0.0.1/tcp/${listenPort}`,
      '--api', `127.0.0.1:${apiPort}`,
      '--log-level', this.opts.logLevel ?? 'info',
      ...((this.opts.allowExec ?? true) ? ['--allow-exec'] : []),
      ...(this.networkKeyFile != null ? ['--network-key', this.networkKeyFile] : []),
      ...(index > 0 && this.nodes[0] != null ? ['--bootstrap', this.bootstrapAddr] : []),
      ...(this.opts.args?.(index) ?? [])
    ]
    const log = await open(join(dataDir, 'mesh.log'), 'a')
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', log.fd, log.fd],
      // A local mesh's gossip reaches every node well within a second: joiners need not wait the default 5 s.
      env: { MESH_KV_JOIN_DELAY_MS: '1000', ...process.env, ...this.opts.env, MESH_PARENT_PID: String(process.pid) },
      // A process group of its own: a terminal's Ctrl-C reaches the whole foreground group, so each node took it as a
      // first signal, then the testnet's own SIGTERM as the second, and forced its exit without a graceful stop. The
      // testnet stops its nodes itself, and a node whose testnet is gone stops by itself (MESH_PARENT_PID).
      detached: true
    })
    await log.close()
    const proc: NodeProcess = this.procs[index] ?? { info: undefined as unknown as TestnetNodeInfo, expectExit: false, frozen: false }
    proc.child = child
    proc.expectExit = false
    proc.frozen = false
    proc.exited = new Promise<void>(resolve => {
      child.once('exit', (code, signal) => {
        if (!proc.expectExit && !this.stopped) {
          (this.opts.onUnexpectedExit ?? ((i, c, s) => {
            // Code 0 is a graceful stop from outside the testnet (`mesh leave`, a signal sent by hand), not a failure.
            if (c === 0) process.stderr.write(`testnet: node ${i} (pid ${child.pid}) stopped (code 0)\n`)
            else process.stderr.write(`testnet: node ${i} (pid ${child.pid}) exited unexpectedly (${s ?? `code ${c}`}); see ${join(dataDir, 'mesh.log')}\n`)
          }))(index, code, signal)
        }
        resolve()
      })
    })
    this.procs[index] = proc

    const deadline = Date.now() + (this.opts.startTimeout ?? 60 * second)
    let info: { peerId: string, api: string, addrs: string[], pid: number } | undefined
    while (info == null) {
      if (child.exitCode != null || child.signalCode != null) {
        const tail = (await readFile(join(dataDir, 'mesh.log'), 'utf8').catch(() => '')).trim().split('\n').slice(-3).join('\n')
        throw new Error(`testnet node ${index} exited during start-up (${child.signalCode ?? `code ${child.exitCode}`}):\n${tail}`)
      }
      if (Date.now() > deadline) throw new Error(`testnet node ${index} did not start within ${this.opts.startTimeout ?? 60 * second} ms`)
      try {
        const parsed = JSON.parse(await readFile(join(dataDir, 'node.json'), 'utf8'))
        if (parsed.pid === child.pid) info = parsed
      } catch {}
      if (info == null) await new Promise(resolve => setTimeout(resolve, 50))
    }
    const nodeInfo: TestnetNodeInfo = { index, peerId: info.peerId, pid: info.pid, api: info.api, addrs: info.addrs, dataDir }
    proc.info = nodeInfo
    this.nodes[index] = nodeInfo
    return nodeInfo
  }

  /**
   * Starts one more node, bootstrapping from node 0: a new member of the running mesh (its KV store joins as a new
   * node's does; see waitForJoins). Several may be added at once.
   */
  async addNode (): Promise<TestnetNodeInfo> {
    const index = Math.max(this.nodes.length, this.nextIndex)
    this.nextIndex = index + 1
    const info = await this.startNode(index)
    await this.writeManifest()
    return info
  }

  /** Sends a signal to node i; SIGKILL and SIGTERM are expected exits, not reported as unexpected. */
  async kill (index: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.procs[index]
    if (p?.child == null || p.child.exitCode != null || p.child.signalCode != null) return
    p.expectExit = true
    if (p.frozen) p.child.kill('SIGCONT')
    p.child.kill(signal)
    await p.exited
  }

  /** Stops node i gracefully (SIGTERM), killing it if it has not exited within the deadline. */
  async stopNode (index: number, timeout = 20 * second): Promise<void> {
    const p = this.procs[index]
    if (p?.child == null || p.child.exitCode != null || p.child.signalCode != null) return
    p.expectExit = true
    if (p.frozen) { p.child.kill('SIGCONT'); p.frozen = false }
    p.child.kill('SIGTERM')
    const t = setTimeout(() => p.child?.kill('SIGKILL'), timeout)
    await p.exited
    clearTimeout(t)
  }

  /** Restarts node i on the same data dir (and so with the same peer id). */
  async restart (index: number): Promise<TestnetNodeInfo> {
    await this.stopNode(index)
    const info = await this.startNode(index)
    await this.writeManifest()
    return info
  }

  /** SIGSTOP: the process stays, silent, holding its connections open, as a hung machine would. */
  freeze (index: number): void {
    const p = this.procs[index]
    if (p?.child == null) return
    p.child.kill('SIGSTOP')
    p.frozen = true
  }

  resume (index: number): void {
    const p = this.procs[index]
    if (p?.child == null) return
    p.child.kill('SIGCONT')
    p.frozen = false
  }

  isRunning (index: number): boolean {
    const c = this.procs[index]?.child
    return c != null && c.exitCode == null && c.signalCode == null
  }

  async writeManifest (): Promise<void> {
    await writeFile(join(this.dir, 'testnet.json'), JSON.stringify({ nodes: this.nodes }, null, 2) + '\n')
  }

  /** Waits until each of `nodes` (default: all running) sees `expected` (default: those nodes) alive. */
  async waitForMembers (opts: { nodes?: number[], alive?: number, timeout?: number } = {}): Promise<void> {
    const nodes = opts.nodes ?? this.nodes.map((_, i) => i).filter(i => this.isRunning(i))
    const alive = opts.alive ?? nodes.length
    await this.waitFor(`every node to see ${alive} alive members`, async () => {
      const views = await Promise.all(nodes.map(async i => (await this.client(i, { timeout: 5000 }).members()).members))
      return views.every(v => v.filter(m => m.state === 'alive').length === alive)
    }, opts.timeout ?? 60 * second)
  }

  /** Waits until no node of `nodes` (default: all running) is still copying the ranges it took on joining the mesh. */
  async waitForJoins (opts: { nodes?: number[], timeout?: number } = {}): Promise<void> {
    const nodes = opts.nodes ?? this.nodes.map((_, i) => i).filter(i => this.isRunning(i))
    await this.waitFor('every node to have copied the ranges it joined with', async () => {
      const stats = await Promise.all(nodes.map(async i => await this.client(i, { timeout: 5000 }).json<{ joiningMembers?: string[] }>('GET', '/v1/storage/stats')))
      return stats.every(s => (s.joiningMembers ?? []).length === 0)
    }, opts.timeout ?? 60 * second)
  }

  /** Polls until `check` returns true, or throws after `timeout`. */
  async waitFor (what: string, check: () => Promise<boolean> | boolean, timeout = 60 * second, interval = 100): Promise<void> {
    const deadline = Date.now() + timeout
    let lastErr: unknown
    while (Date.now() < deadline) {
      try {
        if (await check()) return
      } catch (err) { lastErr = err }
      await new Promise(resolve => setTimeout(resolve, interval))
    }
    throw new Error(`testnet: timed out after ${timeout} ms waiting for ${what}${lastErr != null ? ` (last error: ${(lastErr as Error).message})` : ''}`)
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    await Promise.all(this.procs.map(async (_, i) => { await this.stopNode(i, 10 * second) }))
    if (this.ownsDir) await rm(this.dir, { recursive: true, force: true, maxRetries: 3 })
    for (const port of this.ports.splice(0)) releasePort(port)
  }

  /** Held until stop(), not just until the node binds it: a restarted node takes its ports again (see reservePort). */
  private async reserve (): Promise<number> {
    const port = await reservePort()
    this.ports.push(port)
    return port
  }
}

/**
 * Starts an n-node local mesh: node 0 first, then the rest bootstrapping from it, and waits until every node is
 * connected before writing `DIR/testnet.json`.
 */
export async function createTestnet (n: number, opts: TestnetOptions = {}): Promise<Testnet> {
  if (!Number.isInteger(n) || n < 1) throw new Error('a testnet needs at least one node')
  const ownsDir = opts.dir == null
  const dir = opts.dir ?? await mkdtemp(join(tmpdir(), 'meshos-testnet-'))
  await mkdir(dir, { recursive: true })
  const net = new Testnet(dir, n, opts, ownsDir)
  try {
    if (opts.networkKey ?? true) {
      net.networkKeyFile = join(dir, 'network.key')
      await rm(net.networkKeyFile, { force: true })
      await writeNetworkKey(net.networkKeyFile)
    }
    await net.startNode(0)
    await Promise.all(Array.from({ length: n - 1 }, async (_, i) => await net.startNode(i + 1)))
    if (n > 1) {
      await net.waitFor('every node to be connected', async () => {
        const statuses = await Promise.all(net.nodes.map(async (_, i) => await net.client(i, { timeout: 5000 }).status()))
        return statuses.every(s => s.connections >= 1)
      })
      await net.waitForMembers()
      // Until then the joiners' ranges are read from the first node alone: a test that stopped it would find no data.
      await net.waitForJoins()
    }
    await net.writeManifest()
    return net
  } catch (err) {
    await net.stop()
    throw err
  }
}
