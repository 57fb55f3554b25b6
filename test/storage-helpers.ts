import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ExecutionContext } from 'ava'
import { systemClock, type Clock } from '../lib/clock.js'
import { silentLogger } from '../lib/log.js'
import { createStorage, LevelEngine, LocalMembership, LocalNetwork, type ReplicaService, type Storage, type StorageInit } from '../storage/index.js'

export async function tempDir (t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'meshos-storage-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

/** Polls until cond() is true; no fixed sleeps. */
export async function waitFor (cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000, intervalMs = 20): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await cond()) return
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}

/** Fast settings so background work shows up in milliseconds. Operations keep a deadline a loaded machine meets. */
export const fastInit: StorageInit = {
  vnodes: 16,
  timeout: 5000,
  merkleDepth: 6,
  hints: { sweepInterval: 50, replayRate: 100_000 },
  // Tombstones go as soon as every replica holds them, so that tests see purges; the two tests of the minimum age set it.
  antiEntropy: { interval: 10, segments: 4, timeout: 2000, tombstoneMinAge: 0 }
}

export interface Node { id: string, dir: string, storage: Storage }

export class Cluster {
  readonly network = new LocalNetwork()
  readonly membership: LocalMembership
  readonly nodes = new Map<string, Node>()
  /** Nodes that began to join again (StorageComponents.onRejoining), in order. */
  readonly rejoined: string[] = []
  /** The next onRejoining calls that fail (see startNode). */
  failRejoins = 0
  /** `views`: nodes that see the mesh through a membership of their own instead of the shared one (a one-sided partition). */
  constructor (readonly t: ExecutionContext, readonly root: string, readonly ids: string[], readonly init: StorageInit, readonly clocks: { [id: string]: Clock } = {}, readonly views: { [id: string]: LocalMembership } = {}) {
    this.membership = new LocalMembership(ids)
  }

  static async create (t: ExecutionContext, n = 5, init: StorageInit = fastInit, clocks: { [id: string]: Clock } = {}, views: { [id: string]: LocalMembership } = {}): Promise<Cluster> {
    const root = await tempDir(t)
    const ids = Array.from({ length: n }, (_, i) => `node-${i + 1}`)
    const c = new Cluster(t, root, ids, init, clocks, views)
    t.teardown(async () => { await c.stopAll() })
    for (const id of ids) await c.startNode(id)
    return c
  }

  /** `beforeStart`: given the replica service before the store starts (to wrap its methods). */
  async startNode (id: string, init: Partial<StorageInit> = {}, beforeStart?: (service: ReplicaService) => void): Promise<Node> {
    const dir = join(this.root, id)
    const storage = createStorage({
      engine: new LevelEngine({ path: dir }),
      membership: (this.views[id] ?? this.membership).view(id),
      transport: this.network.transport(id),
      clock: this.clocks[id] ?? systemClock,
      logger: silentLogger,
      // As a daemon stops announcing itself as joining.
      onJoined: () => { this.membership.setJoining(id, false) },
      onRejoining: () => {
        this.rejoined.push(id)
        this.membership.setJoining(id, true)
        // As a daemon whose marker write failed after its tag went out (the members then no longer say they let go).
        if (this.failRejoins > 0) { this.failRejoins--; throw new Error('could not write the joining marker (for the test)') }
      }
      // A node still announced as joining starts joining, as a daemon does from its marker.
    }, { ...this.init, joining: this.membership.isJoining(id), ...init })
    beforeStart?.(storage.service)
    await storage.start()
    this.network.register(id, storage.service)
    const node = { id, dir, storage }
    this.nodes.set(id, node)
    return node
  }

  async stopNode (id: string): Promise<void> {
    const node = this.nodes.get(id)
    if (node == null) return
    this.nodes.delete(id)
    this.network.unregister(id)
    await node.storage.stop()
  }

  async stopAll (): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stopNode(id)
  }

  node (id: string): Storage {
    const n = this.nodes.get(id)
    if (n == null) throw new Error(`no node ${id}`)
    return n.storage
  }

  /** Unreachable both in membership and on the network. */
  down (id: string): void {
    this.network.setDown(id, 'throw')
    this.membership.setAlive(id, false)
  }

  up (id: string): void {
    this.network.setDown(id, false)
    this.membership.setAlive(id, true)
  }

  /** A node that is neither of the given ones. */
  other (...not: string[]): string {
    const id = this.ids.find(i => !not.includes(i) && this.nodes.has(i))
    if (id == null) throw new Error('no other node')
    return id
  }
}

export const text = (b: Uint8Array): string => new TextDecoder().decode(b)
