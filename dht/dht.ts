import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MessageType, type KadDHT, type QueryEvent } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { BadRequestError, MeshError, NotFoundError } from '../lib/errors.js'
import { silentLogger, type Logger } from '../lib/log.js'
import * as C from './constants.js'
import { resourceKey, validateResourceName } from './keys.js'
import type { Libp2p, PeerId } from '@libp2p/interface'

/** The part of membership the DHT reads: who is alive, and when that changes. */
export interface DhtMembership {
  aliveMembers: () => Array<{ peerId: string, addrs: string[] }>
  member: (peerId: string) => { state: string } | undefined
  events: { on: (name: 'join' | 'alive' | 'update' | 'dead' | 'left', fn: (e: { member: { peerId: string, addrs: string[] } }) => void) => () => void }
}

/** The part of a pubsub service the DHT uses for advertise/withdraw notices. */
export interface DhtPubsub {
  subscribe: (topic: string) => void
  unsubscribe: (topic: string) => void
  publish: (topic: string, data: Uint8Array) => Promise<unknown>
  addEventListener: (type: 'message', fn: (evt: CustomEvent<any>) => void) => void
  removeEventListener: (type: 'message', fn: (evt: CustomEvent<any>) => void) => void
}

export interface MeshDhtInit {
  /** A started or not-yet-started libp2p node. @default (required) */
  libp2p: Libp2p
  /** Its kad-dht service, built with `kadDhtOptions()` / `meshKadDht()`. @default (required) */
  dht: KadDHT
  /** Seeds the routing table and filters results. @default none: the routing table fills only from connections, and results are not filtered by membership */
  membership?: DhtMembership
  /** Carries advertise/withdraw notices. @default none: withdrawn records disappear only when they expire (`RECORD_TTL`) */
  pubsub?: DhtPubsub
  /** Where advertised names are kept across restarts. @default none: advertisements are not persisted */
  dataDir?: string
  /** @default a silent logger */
  logger?: Logger
  /** Metrics go here. @default none */
  registry?: Registry
  /** Replication factor: a provide sends the record to this many closest peers. @default `K_BUCKET_SIZE` (20) */
  k?: number
  /** Deadline of findProviders. @default `FIND_TIMEOUT` (5 s) */
  findTimeout?: number
  /** Deadline of findPeer. @default `FIND_PEER_TIMEOUT` (5 s) */
  findPeerTimeout?: number
  /** Deadline of one provide. @default `PROVIDE_TIMEOUT` (10 s) */
  provideTimeout?: number
  /** How often advertised names are re-provided. @default `REPROVIDE_INTERVAL` (20 min) */
  reprovideInterval?: number
  /** How long a withdraw notice hides a provider without a newer advertise notice. @default `TOMBSTONE_TTL` (1 h) */
  tombstoneTtl?: number
}

export interface Provider { peerId: string, addrs: string[] }

export interface FindProvidersResult {
  providers: Provider[]
  /** True when the deadline ran out before the lookup finished: `providers` is what was found until then. */
  timedOut: boolean
  /** Remote peers queried (the lookup's hops). */
  queried: number
}

export interface ProvideResult {
  /** Remote peers the provider record was sent to. */
  storedOn: number
}

export interface Advert {
  name: string
  key: string
  since: string
  /** When the node stops advertising the name by itself; absent = until withdrawn. */
  expiresAt?: string
}

export interface FindOptions { signal?: AbortSignal, timeout?: number }

interface KadInternals {
  providers: { addProvider: (cid: CID, p: PeerId) => Promise<void>, removeProvider: (cid: CID, p: PeerId) => Promise<void>, getProviders: (cid: CID) => Promise<PeerId[]> }
  network: {
    sendMessage: (to: PeerId, msg: unknown, opts: { signal?: AbortSignal }) => AsyncIterable<QueryEvent>
    sendRequest: (to: PeerId, msg: unknown, opts: { signal?: AbortSignal }) => AsyncIterable<QueryEvent>
  }
  routingTable: { add: (p: PeerId, o?: { signal?: AbortSignal }) => Promise<void>, remove: (p: PeerId) => Promise<void>, size: number, closestPeers: (kadId: Uint8Array, o: { count: number }) => PeerId[] }
}

interface Notice { v: 1, op: 'advertise' | 'withdraw', key: string, seq: number }

const kadId = (bytes: Uint8Array): Buffer => createHash('sha256').update(bytes).digest()

function xorCompare (a: Buffer, b: Buffer, target: Buffer): number {
  for (let i = 0; i < target.length; i++) {
    const da = a[i] ^ target[i]
    const db = b[i] ^ target[i]
    if (da !== db) return da - db
  }
  return 0
}

interface Metrics {
  queries: Counter<'kind' | 'outcome'>
  latency: Histogram<'kind'>
  hops: Histogram<'kind'>
  routingTable: Gauge
  adverts: Gauge
}

function createMetrics (registry: Registry): Metrics {
  return {
    queries: new Counter({ name: 'meshos_dht_queries_total', help: 'DHT operations by kind (provide, find_providers, find_peer) and outcome (ok, timeout, not_found, error)', labelNames: ['kind', 'outcome'] as const, registers: [registry] }),
    latency: new Histogram({ name: 'meshos_dht_query_seconds', help: 'DHT operation latency by kind', labelNames: ['kind'] as const, buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] }),
    hops: new Histogram({ name: 'meshos_dht_query_peers', help: 'Remote peers contacted per DHT operation, by kind', labelNames: ['kind'] as const, buckets: [0, 1, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50], registers: [registry] }),
    routingTable: new Gauge({ name: 'meshos_dht_routing_table_size', help: 'Peers in the DHT routing table', registers: [registry] }),
    adverts: new Gauge({ name: 'meshos_dht_adverts', help: 'Resource names this node advertises', registers: [registry] })
  }
}

/**
 * The mesh's lookup service over a stock kad-dht. See dht/index.ts for the rules (keys, replication, withdrawal).
 */
export class MeshDht {
  private readonly libp2p: Libp2p
  readonly kad: KadDHT
  private readonly internals: KadInternals
  private readonly log: Logger
  private readonly metrics?: Metrics
  private readonly k: number
  private readonly adverts = new Map<string, Advert>()
  /** Keys this node provides (adverts' keys and keys given to provide()). */
  private readonly provided = new Set<string>()
  private saving: Promise<void> = Promise.resolve()
  /** `${peerId}/${key}` → the latest notice seen from that provider about that key. */
  private readonly notices = new Map<string, { op: Notice['op'], seq: number, at: number }>()
  private readonly unsubscribe: Array<() => void> = []
  private reprovideTimer?: NodeJS.Timeout
  private readonly abort = new AbortController()
  private lastSeq = 0
  private running = false
  private readonly onMessage = (evt: CustomEvent<any>): void => { this.handleNotice(evt.detail) }

  constructor (private readonly init: MeshDhtInit) {
    this.libp2p = init.libp2p
    this.kad = init.dht
    this.internals = init.dht as unknown as KadInternals
    this.log = (init.logger ?? silentLogger).child({ component: 'dht' })
    this.metrics = init.registry != null ? createMetrics(init.registry) : undefined
    this.k = init.k ?? C.K_BUCKET_SIZE
  }

  get peerId (): string { return this.libp2p.peerId.toString() }
  get routingTableSize (): number { return this.internals.routingTable?.size ?? 0 }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    const m = this.init.membership
    if (m != null) {
      const seed = ({ member }: { member: { peerId: string, addrs: string[] } }): void => { void this.seed(member) }
      const drop = ({ member }: { member: { peerId: string } }): void => { void this.unseed(member.peerId) }
      this.unsubscribe.push(m.events.on('join', seed), m.events.on('alive', seed), m.events.on('update', seed), m.events.on('dead', drop), m.events.on('left', drop))
      for (const member of m.aliveMembers()) void this.seed(member)
    }
    const ps = this.init.pubsub
    if (ps != null) {
      ps.subscribe(C.NOTICE_TOPIC)
      ps.addEventListener('message', this.onMessage)
      this.unsubscribe.push(() => { ps.removeEventListener('message', this.onMessage); ps.unsubscribe(C.NOTICE_TOPIC) })
    }
    await this.loadAdverts()
    if (this.adverts.size > 0) void this.reprovideAll('restart')
    this.reprovideTimer = setInterval(() => { void this.reprovideAll('interval') }, this.init.reprovideInterval ?? C.REPROVIDE_INTERVAL)
    this.reprovideTimer.unref()
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.abort.abort()
    clearInterval(this.reprovideTimer)
    for (const u of this.unsubscribe.splice(0)) u()
  }

  // ---------------------------------------------------------------- seeding from membership

  private async seed (member: { peerId: string, addrs: string[] }): Promise<void> {
    if (member.peerId === this.peerId || !this.running) return
    try {
      const id = peerIdFromString(member.peerId)
      const multiaddrs = member.addrs.flatMap(a => { try { return [multiaddr(a)] } catch { return [] } })
      if (multiaddrs.length > 0) await this.libp2p.peerStore.merge(id, { multiaddrs })
      await this.internals.routingTable.add(id, { signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(C.SEED_TIMEOUT)]) })
      this.metrics?.routingTable.set(this.routingTableSize)
      // A member that is among the k closest to something we advertise gets the record now, not at the next reprovide.
      for (const advert of this.adverts.values()) {
        const key = CID.parse(advert.key)
        if (this.closestMembers(key).some(p => p.equals(id))) void this.sendProvide(id, key)
      }
    } catch (err) {
      this.log.debug({ err, peer: member.peerId }, 'could not add member to the routing table')
    }
  }

  private async unseed (peerId: string): Promise<void> {
    try {
      await this.internals.routingTable.remove(peerIdFromString(peerId))
      this.metrics?.routingTable.set(this.routingTableSize)
    } catch {}
  }

  // ---------------------------------------------------------------- the internal API

  /** The k peers closest to `key` by XOR distance, among alive members (or the routing table without membership). */
  private closestMembers (key: CID): PeerId[] {
    const target = kadId(key.multihash.bytes)
    const m = this.init.membership
    if (m == null) return this.internals.routingTable.closestPeers(target, { count: this.k })
    const candidates: Array<{ id: PeerId, kid: Buffer }> = []
    for (const member of m.aliveMembers()) {
      if (member.peerId === this.peerId) continue
      try {
        const id = peerIdFromString(member.peerId)
        candidates.push({ id, kid: kadId(id.toMultihash().bytes) })
      } catch {}
    }
    candidates.sort((a, b) => xorCompare(a.kid, b.kid, target))
    return candidates.slice(0, this.k).map(c => c.id)
  }

  private async sendProvide (to: PeerId, key: CID, signal?: AbortSignal): Promise<boolean> {
    const msg = {
      type: MessageType.ADD_PROVIDER,
      key: key.multihash.bytes,
      providers: [{ id: this.libp2p.peerId.toMultihash().bytes, multiaddrs: this.libp2p.getMultiaddrs().map(a => a.bytes) }],
      closer: []
    }
    let ok = false
    for await (const e of this.internals.network.sendMessage(to, msg, { signal })) {
      if (e.name === 'PEER_RESPONSE') ok = true
    }
    return ok
  }

  /**
   * Announces that this node provides `key`: records it locally and sends the provider record straight to the k
   * closest alive members (computed from membership, which knows every member, so no closest-peers walk is needed).
   * Without membership it falls back to the routing table's k closest.
   */
  async provide (key: CID, options: { signal?: AbortSignal } = {}): Promise<ProvideResult> {
    const started = performance.now()
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.init.provideTimeout ?? C.PROVIDE_TIMEOUT), ...(options.signal != null ? [options.signal] : [])])
    try {
      this.provided.add(key.toString())
      await this.internals.providers.addProvider(key, this.libp2p.peerId)
      const peers = this.closestMembers(key)
      const results = await Promise.all(peers.map(async p => await this.sendProvide(p, key, signal).catch(() => false)))
      const storedOn = results.filter(Boolean).length
      this.observe('provide', peers.length > 0 && storedOn === 0 ? 'error' : 'ok', started, peers.length)
      return { storedOn }
    } catch (err) {
      this.observe('provide', signal.aborted ? 'timeout' : 'error', started, 0)
      throw err
    }
  }

  /**
   * Looks up the providers of `key` with the standard Kademlia GET_PROVIDERS walk, within a deadline. Returns what it
   * found with `timedOut: true` when the deadline ran out. Providers that membership holds dead or left (or does not
   * know), and providers whose withdraw notice was seen, are left out.
   */
  async findProviders (key: CID, options: FindOptions = {}): Promise<FindProvidersResult> {
    const started = performance.now()
    const deadline = AbortSignal.timeout(options.timeout ?? this.init.findTimeout ?? C.FIND_TIMEOUT)
    const signal = AbortSignal.any([this.abort.signal, deadline, ...(options.signal != null ? [options.signal] : [])])
    const found = new Map<string, Provider>()
    const queried = new Set<string>()
    let timedOut = false
    const add = (id: string, addrs: string[]): void => {
      const prev = found.get(id)
      found.set(id, { peerId: id, addrs: [...new Set([...(prev?.addrs ?? []), ...addrs])] })
    }
    try {
      if (this.init.membership != null) {
        // Fast path: provide stored the record on the k closest members, which membership names exactly, so ask
        // our own store and the FIND_FANOUT closest members directly; fall back to the full walk if that finds none.
        for (const id of await this.internals.providers.getProviders(key)) {
          let addrs: string[] = []
          try { addrs = (await this.libp2p.peerStore.get(id)).addresses.map(a => a.multiaddr.toString()) } catch {}
          add(id.toString(), addrs)
        }
        const msg = { type: MessageType.GET_PROVIDERS, key: key.multihash.bytes, closer: [], providers: [] }
        await Promise.all(this.closestMembers(key).slice(0, C.FIND_FANOUT).map(async p => {
          queried.add(p.toString())
          try {
            for await (const e of this.internals.network.sendRequest(p, msg, { signal })) {
              if (e.name === 'PEER_RESPONSE') for (const pi of e.providers) add(pi.id.toString(), pi.multiaddrs.map(a => a.toString()))
            }
          } catch {}
        }))
      }
      if (signal.aborted) throw new Error('deadline')
      if (![...found.keys()].some(id => this.isLive(id, key.toString()))) {
        for await (const e of this.kad.findProviders(key, { signal })) {
        if (e.name === 'SEND_QUERY') queried.add(e.to.toString())
        else if (e.name === 'PROVIDER') for (const p of e.providers) add(p.id.toString(), p.multiaddrs.map(a => a.toString()))
        }
      }
    } catch (err) {
      if (options.signal?.aborted === true && !deadline.aborted) {
        this.observe('find_providers', 'error', started, queried.size)
        throw new MeshError('ABORTED', 'lookup aborted')
      }
      if (!signal.aborted) {
        this.observe('find_providers', 'error', started, queried.size)
        throw err
      }
      timedOut = true
    }
    if (signal.aborted) timedOut = true
    const providers = [...found.values()].filter(p => this.isLive(p.peerId, key.toString()))
    for (const p of providers) {
      if (p.addrs.length === 0 || p.peerId === this.peerId) p.addrs = this.addrsOf(p.peerId, p.addrs)
    }
    providers.sort((a, b) => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
    this.observe('find_providers', timedOut ? 'timeout' : 'ok', started, queried.size)
    return { providers, timedOut, queried: queried.size }
  }

  /** Finds a peer's addresses (this node's own, a member's, or through the DHT). Throws NOT_FOUND, BAD_REQUEST. */
  async findPeer (id: string, options: { signal?: AbortSignal } = {}): Promise<Provider> {
    const started = performance.now()
    let peer: PeerId
    try { peer = peerIdFromString(id) } catch { throw new BadRequestError(`bad peer id ${JSON.stringify(id)}`) }
    if (peer.equals(this.libp2p.peerId)) {
      this.observe('find_peer', 'ok', started, 0)
      return { peerId: id, addrs: this.libp2p.getMultiaddrs().map(a => a.toString()) }
    }
    const deadline = AbortSignal.timeout(this.init.findPeerTimeout ?? C.FIND_PEER_TIMEOUT)
    const signal = AbortSignal.any([this.abort.signal, deadline, ...(options.signal != null ? [options.signal] : [])])
    let queried = 0
    try {
      for await (const e of this.kad.findPeer(peer, { signal })) {
        if (e.name === 'SEND_QUERY') queried++
        if (e.name === 'FINAL_PEER' && e.peer.id.equals(peer)) {
          this.observe('find_peer', 'ok', started, queried)
          const addrs = e.peer.multiaddrs.map(a => a.toString())
          return { peerId: id, addrs: addrs.length > 0 ? addrs : this.addrsOf(id, []) }
        }
      }
    } catch (err) {
      if (!signal.aborted && (err as Error)?.name !== 'NotFoundError') { this.observe('find_peer', 'error', started, queried); throw err }
    }
    this.observe('find_peer', signal.aborted ? 'timeout' : 'not_found', started, queried)
    throw new NotFoundError(`peer ${id} was not found${deadline.aborted ? ' before the lookup deadline' : ''}`)
  }

  // ---------------------------------------------------------------- resources

  /** Advertises a resource name: persists it, provides its key, and tells the mesh (clearing earlier withdrawals). */
  async advertise (name: string, options: { ttl?: number } = {}): Promise<Advert & ProvideResult> {
    validateResourceName(name)
    const key = await resourceKey(name)
    const advert: Advert = { name, key: key.toString(), since: new Date().toISOString() }
    if (options.ttl != null) advert.expiresAt = new Date(Date.now() + options.ttl).toISOString()
    this.adverts.set(name, advert)
    this.metrics?.adverts.set(this.adverts.size)
    await this.saveAdverts()
    await this.notify('advertise', key)
    const result = await this.provide(key)
    return { ...advert, ...result }
  }

  /** Stops advertising a name: forgets it, drops the local record, and sends a withdraw notice. False if it was not advertised. */
  async withdraw (name: string): Promise<boolean> {
    validateResourceName(name)
    const key = await resourceKey(name)
    const had = this.adverts.delete(name)
    this.metrics?.adverts.set(this.adverts.size)
    if (had) await this.saveAdverts()
    await this.unprovide(key)
    return had
  }

  /** Stops providing `key`: drops the local record and sends a withdraw notice (see the withdrawal rule). */
  async unprovide (key: CID): Promise<void> {
    this.provided.delete(key.toString())
    await this.kad.cancelReprovide(key).catch(() => {})
    await this.notify('withdraw', key)
  }

  async findResource (name: string, options: FindOptions = {}): Promise<FindProvidersResult & { name: string, key: string }> {
    validateResourceName(name)
    const key = await resourceKey(name)
    return { name, key: key.toString(), ...await this.findProviders(key, options) }
  }

  /** Names this node advertises. */
  advertised (): Advert[] {
    return [...this.adverts.values()].sort((a, b) => a.name < b.name ? -1 : 1)
  }

  // ---------------------------------------------------------------- withdrawal and liveness

  private isLive (peerId: string, key: string): boolean {
    if (peerId === this.peerId) return this.provided.has(key)
    const n = this.notices.get(`${peerId}/${key}`)
    if (n?.op === 'withdraw' && Date.now() - n.at < (this.init.tombstoneTtl ?? C.TOMBSTONE_TTL)) return false
    const m = this.init.membership
    if (m == null) return true
    const state = m.member(peerId)?.state
    return state === 'alive' || state === 'suspect'
  }

  private addrsOf (peerId: string, fallback: string[]): string[] {
    if (peerId === this.peerId) return this.libp2p.getMultiaddrs().map(a => a.toString())
    const member = this.init.membership?.aliveMembers().find(m => m.peerId === peerId)
    return member != null && member.addrs.length > 0 ? member.addrs : fallback
  }

  private async notify (op: Notice['op'], key: CID): Promise<void> {
    const ps = this.init.pubsub
    if (ps == null) return
    this.lastSeq = Math.max(this.lastSeq + 1, Date.now())
    const notice: Notice = { v: 1, op, key: key.toString(), seq: this.lastSeq }
    await ps.publish(C.NOTICE_TOPIC, new TextEncoder().encode(JSON.stringify(notice))).catch((err: unknown) => {
      this.log.debug({ err, op }, 'could not publish a dht notice')
    })
  }

  private handleNotice (msg: { topic?: string, type?: string, from?: PeerId, data?: Uint8Array }): void {
    if (msg.topic !== C.NOTICE_TOPIC || msg.type !== 'signed' || msg.from == null || msg.data == null) return
    let notice: Notice
    try {
      notice = JSON.parse(new TextDecoder().decode(msg.data))
      if (notice.v !== 1 || (notice.op !== 'advertise' && notice.op !== 'withdraw') || typeof notice.seq !== 'number') return
    } catch { return }
    let key: CID
    try { key = CID.parse(notice.key) } catch { return }
    const slot = `${msg.from.toString()}/${key.toString()}`
    const prev = this.notices.get(slot)
    if (prev != null && prev.seq >= notice.seq) return
    this.notices.set(slot, { op: notice.op, seq: notice.seq, at: Date.now() })
    if (notice.op === 'withdraw') {
      this.internals.providers.removeProvider(key, msg.from).catch(() => {})
      this.log.debug({ peer: msg.from.toString(), key: notice.key }, 'provider withdrew')
    }
    this.pruneNotices()
  }

  private pruneNotices (): void {
    if (this.notices.size < 10_000) return
    const ttl = this.init.tombstoneTtl ?? C.TOMBSTONE_TTL
    for (const [k, n] of this.notices) if (Date.now() - n.at > ttl) this.notices.delete(k)
  }

  // ---------------------------------------------------------------- persistence and reproviding

  private async reprovideAll (why: string): Promise<void> {
    const now = Date.now()
    for (const a of [...this.adverts.values()]) {
      if (a.expiresAt != null && Date.parse(a.expiresAt) <= now) {
        this.log.info({ name: a.name }, 'advertisement expired')
        await this.withdraw(a.name).catch(() => {})
        continue
      }
      if (!this.running) return
      const key = CID.parse(a.key)
      await this.notify('advertise', key)
      await this.provide(key).catch((err: unknown) => { this.log.warn({ err, name: a.name, why }, 'reprovide failed') })
    }
  }

  private get advertsPath (): string | undefined {
    return this.init.dataDir != null ? join(this.init.dataDir, C.ADVERTS_FILE) : undefined
  }

  private async loadAdverts (): Promise<void> {
    const path = this.advertsPath
    if (path == null) return
    try {
      const data = JSON.parse(await readFile(path, 'utf8')) as { adverts?: Advert[] }
      for (const a of data.adverts ?? []) {
        try { validateResourceName(a.name) } catch { continue }
        this.adverts.set(a.name, { ...a, key: (await resourceKey(a.name)).toString() })
      }
      this.metrics?.adverts.set(this.adverts.size)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err, path }, 'could not read advertised resources')
    }
  }

  /** Writes the adverts file atomically; writes are serialised so the last state always wins. */
  private async saveAdverts (): Promise<void> {
    const path = this.advertsPath
    if (path == null) return
    const write = async (): Promise<void> => {
      await mkdir(this.init.dataDir!, { recursive: true })
      const tmp = `${path}.${process.pid}.tmp`
      await writeFile(tmp, JSON.stringify({ version: 1, adverts: this.advertised() }, null, 2) + '\n')
      await rename(tmp, path)
    }
    this.saving = this.saving.then(write, write)
    await this.saving
  }

  private observe (kind: string, outcome: string, started: number, peers: number): void {
    if (this.metrics == null) return
    this.metrics.queries.inc({ kind, outcome })
    this.metrics.latency.observe({ kind }, (performance.now() - started) / 1000)
    this.metrics.hops.observe({ kind }, peers)
  }
}
