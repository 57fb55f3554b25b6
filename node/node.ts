import { Counter, Registry, collectDefaultMetrics } from 'prom-client'
import { ListenFailedError, MeshError, listenReason } from '../lib/errors.js'
import { silentLogger, type Logger } from '../lib/log.js'
import { Rpc } from '../rpc/index.js'
import { createMembership, type Libp2pMembership } from '../membership/index.js'
import { ApiServer, type ApiTokens } from './api.js'
import { Bootstrapper } from './bootstrap.js'
import { parseHostPort, type MeshConfig } from './config.js'
import { diagHandlers, diagService } from './diagnostics.js'
import type { NodeInfo } from './diag.js'
import { createMeshLibp2p, type BaseServices } from './libp2p.js'
import { pubsubRoutes } from './pubsub.js'
import { exposition } from './metrics.js'
import { dashboardRoutes } from './dashboard.js'
import { version } from './version.js'
import * as C from './constants.js'
import { createNodeDht, dhtLibp2pServices } from './dht.js'
import { createNodeStorage, prepareJoin, KV_META_KEY, KV_JOINING } from './storage.js'
import { createNodeFiles } from './files.js'
import { createNodeTasks } from './tasks.js'
import type { Subsystem } from './subsystem.js'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

export interface MeshNodeComponents {
  config: MeshConfig
  privateKey: PrivateKey
  /**
   * The identity was made by this start, so the node is new to any mesh: its storage joins as a new member. Otherwise
   * a node with no record of its ring peers is taken to have lost its store, and rebuilds it before serving reads.
   * @default false
   */
  newIdentity?: boolean
  logger?: Logger
  tokens?: ApiTokens
}

export interface ClusterMember {
  peerId: string
  addrs: string[]
  state: string
  self: boolean
  version?: string
  uptimeMs?: number
  stats?: Record<string, number>
  /** Why the member's figures are missing, when it did not answer. */
  error?: string
}

export interface NodeStatus {
  peerId: string
  addrs: string[]
  version: string
  uptimeMs: number
  connections: number
}

/**
 * The composition root: it builds libp2p and every subsystem from the config, hands each the narrow components it
 * needs, and starts and stops them in dependency order.
 */
export class MeshNode {
  readonly registry = new Registry()
  readonly log: Logger
  libp2p!: Libp2p<BaseServices & Record<string, any>>
  rpc!: Rpc
  api!: ApiServer
  membership!: Libp2pMembership
  /** Subsystems in start order; stopped in reverse. */
  readonly subsystems: Subsystem[] = []
  private bootstrapper?: Bootstrapper
  private startedAt = 0
  /** This node announces itself as a joiner of the KV store (see prepareJoin); read by the storage subsystem. */
  kvJoining = false
  /** Stopping with a graceful leave (see stop): the ring lets go of this node at once. */
  leaving = false
  /** Set by the daemon: a graceful stop and exit, as on SIGTERM. */
  onLeave?: () => void
  private state: 'new' | 'starting' | 'started' | 'stopping' | 'stopped' = 'new'

  constructor (private readonly components: MeshNodeComponents) {
    this.log = components.logger ?? silentLogger
  }

  get config (): MeshConfig { return this.components.config }
  get newIdentity (): boolean { return this.components.newIdentity ?? false }
  get started (): boolean { return this.state === 'started' }

  async start (): Promise<void> {
    if (this.state !== 'new') throw new Error(`cannot start a node that is ${this.state}`)
    this.state = 'starting'
    this.starting = this.startAll()
    await this.starting
  }

  private starting?: Promise<void>
  private stopping?: Promise<void>

  private async startAll (): Promise<void> {
    const { config, privateKey } = this.components
    collectDefaultMetrics({ register: this.registry, prefix: 'meshos_process_', eventLoopMonitoringPrecision: C.eventLoopMonitoringPrecision })
    const refused = new Counter({ name: 'meshos_connections_refused_total', help: 'Connections refused because the peer lacked the network key', registers: [this.registry] })

    this.libp2p = await createMeshLibp2p({
      privateKey,
      listen: config.listen,
      announce: config.announce,
      networkKey: config.networkKey,
      logger: this.log,
      registry: this.registry,
      onRefused: () => { refused.inc() },
      services: dhtLibp2pServices(config)
    })
    this.rpc = new Rpc({ libp2p: this.libp2p, logger: this.log, registry: this.registry })
    await this.rpc.handle(diagService, diagHandlers(async () => await this.info()))

    const api = parseHostPort(config.api)
    if (api == null) throw new Error(`bad api address ${config.api}`)
    this.api = new ApiServer({ host: api.host, port: api.port, tokens: this.components.tokens, logger: this.log, registry: this.registry })
    this.routes()

    try {
      await this.libp2p.start()
    } catch (err) {
      throw peerListenError(err)
    }
    await this.rpc.start()
    // Said in the first announcement: a member that heard of this node as a plain replica could read its ranges from it.
    this.kvJoining = await prepareJoin(config.dataDir, this.newIdentity, config.bootstrap.length > 0)
    this.membership = createMembership({
      libp2p: this.libp2p,
      privateKey,
      seeds: config.bootstrap,
      logger: this.log,
      registry: this.registry,
      ...(this.kvJoining ? { meta: { tags: { [KV_META_KEY]: KV_JOINING } } } : {})
    })
    await this.membership.start()
    for (const create of [createNodeDht, createNodeStorage, createNodeFiles, createNodeTasks]) {
      const sub = await create(this)
      if (sub == null) continue
      await sub.start()
      sub.routes(this.api)
      this.subsystems.push(sub)
    }
    await this.api.start()
    this.bootstrapper = new Bootstrapper(this.libp2p, { addrs: config.bootstrap, logger: this.log })
    this.bootstrapper.start()
    this.startedAt = Date.now()
    this.state = 'started'
    this.log.info({ peerId: this.libp2p.peerId.toString(), addrs: this.addrs(), api: this.api.url }, 'node started')
    // Noise authenticates peers but admits any: without a key, whoever reaches the port can join (SECURITY.md).
    if (config.networkKey == null && config.listen.some(a => !/^\/(ip4\/127\.|ip6\/::1\/|memory\/)/.test(a))) {
      this.log.warn({ listen: config.listen }, 'listening beyond loopback without a network key: any peer that reaches this port can join the mesh (see --network-key)')
    }
  }

  /**
   * Stops the node. A graceful stop first tells the mesh this node is leaving, so that others record it as `left`
   * rather than waiting to declare it dead.
   */
  async stop (options: { leave?: boolean } = {}): Promise<void> {
    if (this.state === 'stopped' || this.state === 'new') return
    // A second caller waits for the same stop: returning at once let it remove the data dir, or exit, under a store
    // still open and a handoff still running.
    this.stopping ??= this.stopAll(options)
    await this.stopping
  }

  private async stopAll (options: { leave?: boolean }): Promise<void> {
    // A stop that comes while the node is starting waits for the start to end, either way. Stopping only what existed
    // at that moment left the rest (storage with its LevelDB, tasks, the API server) running once the start went on.
    await this.starting?.catch(() => {})
    this.state = 'stopping'
    this.leaving = options.leave ?? true
    this.bootstrapper?.stop()
    await this.api?.stop().catch(err => { this.log.warn({ err }, 'api stop failed') })
    // Subsystems stop while membership and RPC still run, so that storage can hand its ranges off first.
    for (const sub of [...this.subsystems].reverse()) await sub.stop().catch(err => { this.log.warn({ err, subsystem: sub.name }, 'stop failed') })
    if (options.leave ?? true) await this.membership?.leave().catch(err => { this.log.warn({ err }, 'leave failed') })
    else await this.membership?.stop().catch(err => { this.log.warn({ err }, 'membership stop failed') })
    await this.rpc?.stop().catch(err => { this.log.warn({ err }, 'rpc stop failed') })
    await Promise.resolve(this.libp2p?.stop()).catch((err: unknown) => { this.log.warn({ err }, 'libp2p stop failed') })
    this.state = 'stopped'
    this.log.info('node stopped')
  }

  /** Full multiaddrs (with /p2p/<id>) that peers can dial. */
  addrs (): string[] {
    return this.libp2p.getMultiaddrs().map(a => a.toString())
  }

  status (): NodeStatus {
    return {
      peerId: this.libp2p.peerId.toString(),
      addrs: this.addrs(),
      version,
      uptimeMs: this.startedAt === 0 ? 0 : Date.now() - this.startedAt,
      connections: this.libp2p.getConnections().length
    }
  }

  /** This node's line in `mesh status`: version, uptime and every subsystem's figures. */
  async info (): Promise<NodeInfo> {
    const stats = new Map<string, number>()
    for (const sub of this.subsystems) {
      try {
        for (const [k, v] of Object.entries(await sub.stats?.() ?? {})) if (Number.isFinite(v)) stats.set(k, v)
      } catch (err) {
        this.log.debug({ err, subsystem: sub.name }, 'stats failed')
      }
    }
    return { version, uptimeMs: BigInt(this.startedAt === 0 ? 0 : Date.now() - this.startedAt), stats }
  }

  /** Every member as this node sees it, with the figures each live member reports about itself. */
  async cluster (signal?: AbortSignal): Promise<ClusterMember[]> {
    const self = this.libp2p.peerId.toString()
    return await Promise.all(this.membership.members().map(async (m): Promise<ClusterMember> => {
      const row: ClusterMember = { peerId: m.peerId, addrs: m.addrs, state: m.state, self: m.peerId === self }
      if (m.state === 'dead' || m.state === 'left') return row
      try {
        const info = m.peerId === self ? await this.info() : await this.rpc.call(m.peerId, diagService, 'info', {}, { timeout: 2000, signal })
        row.version = info.version
        row.uptimeMs = Number(info.uptimeMs)
        row.stats = Object.fromEntries(info.stats)
      } catch (err) {
        row.error = (err as Error).message
      }
      return row
    }))
  }

  private routes (): void {
    const api = this.api
    // Public so that a load balancer or supervisor can probe it without a token; it reveals nothing else.
    api.route({ method: 'GET', path: '/v1/health', access: 'public', handler: () => ({ ok: this.started, state: this.state }) })
    api.route({ method: 'GET', path: '/v1/status', handler: () => this.status() })
    api.route({
      method: 'POST',
      path: '/v1/leave',
      handler: ({ res }) => {
        if (this.onLeave == null) throw new MeshError('NOT_IMPLEMENTED', 'this node cannot leave through the API')
        // Answer first: the leave stops the API.
        res.once('finish', () => { setImmediate(() => this.onLeave?.()) })
        res.statusCode = 202
        return { peerId: this.libp2p.peerId.toString(), leaving: true }
      }
    })
    api.route({ method: 'GET', path: '/v1/routes', handler: () => ({ routes: api.list() }) })
    // Only exists when the daemon runs with --expose-gc (tests measure heap growth with it).
    const gc = (globalThis as { gc?: () => void }).gc
    if (gc != null) {
      api.route({ method: 'POST', path: '/v1/debug/gc', handler: () => { gc(); gc(); return process.memoryUsage() } })
    }
    api.route({ method: 'GET', path: '/v1/cluster', handler: async ({ signal }) => ({ members: await this.cluster(signal) }) })
    api.route({
      method: 'GET',
      path: '/metrics',
      handler: async ({ res }) => {
        const text = await exposition(this.registry)
        res.writeHead(200, { 'content-type': this.registry.contentType })
        res.end(text)
        return undefined
      }
    })
    pubsubRoutes(api, this.libp2p.services.pubsub, this.registry)
    dashboardRoutes(api)
    api.route({
      method: 'GET',
      path: '/v1/members',
      handler: () => ({
        members: this.membership.members().map(m => ({
          peerId: m.peerId,
          addrs: m.addrs,
          state: m.state,
          incarnation: m.incarnation,
          meta: m.meta,
          stateSince: new Date(m.stateSince).toISOString(),
          self: m.peerId === this.membership.peerId
        }))
      })
    })
  }
}

/**
 * libp2p reports listen addresses it could not bind in one message, with advice about its own options that means
 * nothing to a user of `mesh`; this names each address and why.
 */
function peerListenError (err: unknown): unknown {
  if ((err as Error)?.name !== 'UnsupportedListenAddressesError') return err
  const failures = [...(err as Error).message.matchAll(/^\s+(\/\S+?): (?:Error: )?(.+)$/gm)].map(([, addr, why]) => {
    const code = /\b(E[A-Z]{3,})\b/.exec(why)?.[1]
    return `${addr}: ${listenReason({ code, message: why })}`
  })
  if (failures.length === 0) return err
  return new ListenFailedError(`cannot listen on ${failures.join('; ')}`, { cause: err })
}
