import { createHash } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { KadDHT } from '@libp2p/kad-dht'
import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { removeStaleTemps, writeFileDurable } from '../lib/durable.js'
import { BadRequestError, MeshError, NotFoundError } from '../lib/errors.js'
import { silentLogger, type Logger } from '../lib/log.js'
import * as C from './constants.js'
import { KadMessageType, type KadMessage, type KadPeer } from './kad.js'
import { resourceKey, validateResourceName } from './keys.js'
import { KadSender } from './sender.js'
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
  /**
   * gossipsub's per-topic validators. Notices are taken in the validator rather than from `message` events, so that
   * a malformed or stale one is not relayed to the rest of the mesh.
   */
  topicValidators: Map<string, (peer: PeerId, msg: NoticeMessage) => NoticeVerdict | Promise<NoticeVerdict>>
}

/** What gossipsub hands a validator; only these fields are read. */
export interface NoticeMessage { topic?: string, type?: string, from?: PeerId, data?: Uint8Array }
/** gossipsub's TopicValidatorResult values. */
export type NoticeVerdict = 'accept' | 'ignore' | 'reject'
/** How a received notice was taken; `too_old` is one whose sequence number (its sender's clock) is past the horizon. */
type NoticeOutcome = 'applied' | 'stale' | 'too_old' | 'malformed' | 'not_member'

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
  /** How long a withdraw notice hides a provider without a newer advertise notice. @default `TOMBSTONE_TTL` (81 min) */
  tombstoneTtl?: number
  /** Closest members a lookup asks at once. @default `FIND_FANOUT` (3) */
  findFanout?: number
  /** Answers a lookup waits for among those it asked. @default `FIND_ANSWERS` (2) */
  findAnswers?: number
  /** How long after start this node's store counts as a replica that lookups may answer from. @default `REPLICA_WARMUP` (30 s) */
  replicaWarmup?: number
  /** Closest replicas a provide asks to confirm the record. @default `PROVIDE_CONFIRM_FANOUT` (3) */
  provideConfirmFanout?: number
  /** A provide still short of confirmations after this long (ms) asks the next closest replicas too. @default `PROVIDE_HEDGE_AFTER` (100 ms) */
  provideHedgeAfter?: number
  /** Confirmations a provide waits for before it returns. @default `PROVIDE_CONFIRMATIONS` (2) */
  provideConfirmations?: number
  /** Deadline of delivering a record to one replica. @default `PROVIDE_PEER_TIMEOUT` (5 s) */
  providePeerTimeout?: number
  /** Waits before redelivering a record to a replica that failed. @default `PROVIDE_RETRY_DELAYS` (1 s, 5 s, 30 s) */
  provideRetryDelays?: readonly number[]
}

export interface Provider { peerId: string, addrs: string[] }

export interface FindProvidersResult {
  providers: Provider[]
  /** True when the deadline ran out before the lookup finished: `providers` is what was found until then. */
  timedOut: boolean
  /** Remote peers queried (the lookup's hops); 0 when this node answered from its own replica. */
  queried: number
  /** Where the answer came from: this node's replica, the closest members, or the full Kademlia walk. */
  source: 'replica' | 'closest' | 'walk'
}

export interface ProvideResult {
  /** Remote peers the provider record was written to by the time provide returned (the rest get it in the background). */
  storedOn: number
  /** Replicas that confirmed they store it (see `PROVIDE_CONFIRMATIONS`). */
  confirmedOn: number
}

export interface Advert {
  name: string
  key: string
  since: string
  /** When the node stops advertising the name by itself; absent = until withdrawn. */
  expiresAt?: string
}

export interface FindOptions {
  /** @default none: only the deadline ends the lookup early */
  signal?: AbortSignal
  /** Deadline of the lookup, in ms. @default the `findTimeout` of MeshDhtInit */
  timeout?: number
  /** Answer from this node's own replica when it is one (see `REPLICA_WARMUP`); false always asks the network. @default true */
  replica?: boolean
}

interface KadInternals {
  providers: { addProvider: (cid: CID, p: PeerId) => Promise<void>, removeProvider: (cid: CID, p: PeerId) => Promise<void>, getProviders: (cid: CID) => Promise<PeerId[]> }
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

function fromKadPeer (p: KadPeer): Provider | undefined {
  try {
    return { peerId: peerIdFromMultihash(Digest.decode(p.id)).toString(), addrs: p.multiaddrs.flatMap(a => { try { return [multiaddr(a).toString()] } catch { return [] } }) }
  } catch { return undefined }
}

/** Resolves after `ms`, or at once when `signal` aborts (the caller checks what it needs to). */
async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return
  await new Promise<void>(resolve => {
    const done = (): void => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve() }
    const timer = setTimeout(done, ms)
    timer.unref()
    signal.addEventListener('abort', done, { once: true })
  })
}

interface Metrics {
  queries: Counter<'kind' | 'outcome'>
  latency: Histogram<'kind'>
  hops: Histogram<'kind'>
  routingTable: Gauge
  adverts: Gauge
  notices: Counter<'outcome'>
}

function createMetrics (registry: Registry): Metrics {
  return {
    queries: new Counter({ name: 'meshos_dht_queries_total', help: 'DHT operations by kind (provide, find_providers, find_peer) and outcome (ok, timeout, not_found, error)', labelNames: ['kind', 'outcome'] as const, registers: [registry] }),
    latency: new Histogram({ name: 'meshos_dht_query_seconds', help: 'DHT operation latency by kind', labelNames: ['kind'] as const, buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] }),
    hops: new Histogram({ name: 'meshos_dht_query_peers', help: 'Remote peers contacted per DHT operation, by kind', labelNames: ['kind'] as const, buckets: [0, 1, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50], registers: [registry] }),
    routingTable: new Gauge({ name: 'meshos_dht_routing_table_size', help: 'Peers in the DHT routing table', registers: [registry] }),
    adverts: new Gauge({ name: 'meshos_dht_adverts', help: 'Resource names this node advertises', registers: [registry] }),
    notices: new Counter({ name: 'meshos_dht_notices_total', help: 'Advertise/withdraw notices received, by outcome (applied, stale, too_old, malformed, not_member)', labelNames: ['outcome'] as const, registers: [registry] })
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
  /** The write queued behind the running one, which every save asked for meanwhile waits on. */
  private nextSave?: Promise<void>
  private dataDirReady = false
  /**
   * Key → when this node last withdrew it (kept in the data dir). Only a withdrawal leaves tombstones on other nodes,
   * so only a key withdrawn within `TOMBSTONE_TTL` needs an advertise notice when it is provided again.
   */
  private readonly withdrawnAt = new Map<string, number>()
  /** `${peerId}/${key}` → the latest notice seen from that provider about that key. */
  private readonly notices = new Map<string, { op: Notice['op'], seq: number, at: number }>()
  private readonly unsubscribe: Array<() => void> = []
  private reprovideTimer?: NodeJS.Timeout
  private expiryTimer?: NodeJS.Timeout
  private renoticeTimer?: NodeJS.Timeout
  /** Aborted by stop(); a new one for each start, so that a restarted DHT is not born aborted. */
  private abort = new AbortController()
  private lastSeq = 0
  /** The sequence number of this process's withdraw notice for each key, so that it can be sent again as it was. */
  private readonly withdrawSeqs = new Map<string, number>()
  private running = false
  private startedAt = 0
  private sender?: KadSender
  /** Kademlia ids of member peer ids, which are hashed on every closest-members computation. */
  private readonly kadIds = new Map<string, { id: PeerId, kid: Buffer }>()
  private readonly onConnect = (evt: CustomEvent<PeerId>): void => { this.pushRecordsTo(evt.detail) }
  /**
   * Key → the tail of its provides and withdrawals, run one at a time in the order they were asked for. Run together,
   * a reprovide round reached a name withdrawn meanwhile and advertised it again with a newer notice, and a withdrawal
   * racing an advert took the later sequence number though the advert was the final state.
   */
  private readonly keyOps = new Map<string, Promise<void>>()
  /**
   * What gossipsub does with a notice after this node has looked at it. An applied one travels on. So does a
   * well-formed one from a sender this node does not count as a member: this node's view may lag (a joiner not yet
   * known here) and others may know it; its size and age are checked already, and gossipsub drops duplicates. A
   * malformed notice is rejected: neither delivered nor relayed. A stale or too old one is ignored, since every node
   * that saw the newer notice already has it.
   */
  private readonly validateNotice = (_peer: PeerId, msg: NoticeMessage): NoticeVerdict => {
    const outcome = this.takeNotice(msg)
    return outcome === 'applied' || outcome === 'not_member' ? 'accept' : outcome === 'malformed' ? 'reject' : 'ignore'
  }

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
    if (this.abort.signal.aborted) this.abort = new AbortController()
    this.startedAt = Date.now()
    this.sender = new KadSender({ libp2p: this.libp2p, logger: this.log })
    // A peer that (re)connects may have restarted with an empty store: give it the records it should hold.
    this.libp2p.addEventListener('peer:connect', this.onConnect)
    this.unsubscribe.push(() => { this.libp2p.removeEventListener('peer:connect', this.onConnect) })
    const m = this.init.membership
    if (m != null) {
      const seed = ({ member }: { member: { peerId: string, addrs: string[] } }): void => { void this.seed(member) }
      // A member's new addresses or metadata (a busy node's load, once a second) change nothing it stores: only its
      // routing entry is refreshed. A member that restarted reconnects, and `peer:connect` sends it its records.
      const readdress = ({ member }: { member: { peerId: string, addrs: string[] } }): void => { void this.seed(member, false) }
      const drop = ({ member }: { member: { peerId: string } }): void => { void this.unseed(member.peerId) }
      // A member that was away (frozen, partitioned, restarting) missed the withdraw notices sent meanwhile, and would go
      // on answering finds from its stored records with the withdrawn providers until those expired (up to 80 min).
      const back = (): void => { this.renoticeSoon() }
      this.unsubscribe.push(m.events.on('join', seed), m.events.on('alive', seed), m.events.on('update', readdress), m.events.on('dead', drop), m.events.on('left', drop),
        m.events.on('join', back), m.events.on('alive', back))
      for (const member of m.aliveMembers()) void this.seed(member)
    }
    const ps = this.init.pubsub
    if (ps != null) {
      ps.subscribe(C.NOTICE_TOPIC)
      ps.topicValidators.set(C.NOTICE_TOPIC, this.validateNotice)
      this.unsubscribe.push(() => {
        if (ps.topicValidators.get(C.NOTICE_TOPIC) === this.validateNotice) ps.topicValidators.delete(C.NOTICE_TOPIC)
        ps.unsubscribe(C.NOTICE_TOPIC)
      })
    }
    try {
      await this.loadAdverts()
    } catch (err) {
      // A start that fails leaves nothing running: its listeners, subscription and sender go with it.
      await this.stop()
      throw err
    }
    this.scheduleExpiry()
    if (this.adverts.size > 0) void this.reprovideAll('restart')
    this.reprovideTimer = setInterval(() => { void this.reprovideAll('interval') }, this.init.reprovideInterval ?? C.REPROVIDE_INTERVAL)
    this.reprovideTimer.unref()
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.abort.abort()
    clearInterval(this.reprovideTimer)
    clearTimeout(this.expiryTimer)
    clearTimeout(this.renoticeTimer)
    this.renoticeTimer = undefined
    for (const u of this.unsubscribe.splice(0)) u()
    this.sender?.stop()
  }

  // ---------------------------------------------------------------- seeding from membership

  private async seed (member: { peerId: string, addrs: string[] }, push = true): Promise<void> {
    if (member.peerId === this.peerId || !this.running) return
    try {
      const id = peerIdFromString(member.peerId)
      const multiaddrs = member.addrs.flatMap(a => { try { return [multiaddr(a)] } catch { return [] } })
      if (multiaddrs.length > 0) await this.libp2p.peerStore.merge(id, { multiaddrs })
      await this.internals.routingTable.add(id, { signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(C.SEED_TIMEOUT)]) })
      this.metrics?.routingTable.set(this.routingTableSize)
      if (push) this.pushRecordsTo(id)
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

  /** Members other than this node, with their Kademlia ids (cached: hashing every id on every lookup adds up). */
  private members (): Array<{ id: PeerId, kid: Buffer }> {
    const out: Array<{ id: PeerId, kid: Buffer }> = []
    for (const member of this.init.membership?.aliveMembers() ?? []) {
      if (member.peerId === this.peerId) continue
      let entry = this.kadIds.get(member.peerId)
      if (entry == null) {
        try {
          const id = peerIdFromString(member.peerId)
          entry = { id, kid: kadId(id.toMultihash().bytes) }
        } catch { continue }
        if (this.kadIds.size > 10_000) this.kadIds.clear()
        this.kadIds.set(member.peerId, entry)
      }
      out.push(entry)
    }
    return out
  }

  /** The k peers closest to `key` by XOR distance, among alive members (or the routing table without membership). */
  private closestMembers (key: CID): PeerId[] {
    const target = kadId(key.multihash.bytes)
    if (this.init.membership == null) return this.internals.routingTable.closestPeers(target, { count: this.k })
    return this.members().sort((a, b) => xorCompare(a.kid, b.kid, target)).slice(0, this.k).map(c => c.id)
  }

  /**
   * True when this node is among the k members closest to `key`, so that every provider sends it the record. The
   * test is conservative: it counts the provider among the closer members too, though a provider skips itself.
   */
  private isReplica (key: CID): boolean {
    if (this.init.membership == null) return false
    const target = kadId(key.multihash.bytes)
    const self = kadId(this.libp2p.peerId.toMultihash().bytes)
    let closer = 0
    for (const m of this.members()) {
      if (xorCompare(m.kid, self, target) < 0 && ++closer >= this.k) return false
    }
    return true
  }

  private addProviderMessage (key: CID): Partial<KadMessage> {
    return {
      type: KadMessageType.ADD_PROVIDER,
      key: key.multihash.bytes,
      providers: [{ id: this.libp2p.peerId.toMultihash().bytes, multiaddrs: this.libp2p.getMultiaddrs().map(a => a.bytes) }]
    }
  }

  /**
   * Writes the record to one replica. With `confirm`, a PING follows it on the same stream and its echo is the proof
   * that the replica stored the record (see KadSender.sendConfirmed). It used to be a GET_PROVIDERS whose answer named
   * this node, but answering one costs the replica a routing-table walk and a peer-store read per closer peer: a
   * 5-node mesh spent ~49 ms of CPU providing a small file's put (three holders), ~20 with the PING (BENCHMARKS.md,
   * files, session 6).
   */
  private async deliver (to: PeerId, key: CID, confirm: boolean): Promise<boolean> {
    const sender = this.sender
    if (sender == null) return false
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.init.providePeerTimeout ?? C.PROVIDE_PEER_TIMEOUT)])
    const msg = this.addProviderMessage(key)
    if (!confirm) {
      await sender.send(to, msg, { signal })
      return true
    }
    // A record without addresses is dropped by the replica without an error, so its echo would prove nothing.
    if ((msg.providers?.[0]?.multiaddrs.length ?? 0) === 0) {
      await sender.send(to, msg, { signal })
      return false
    }
    return await sender.sendConfirmed(to, msg, { signal })
  }

  /** Delivers the record, and on failure tries again after each of `PROVIDE_RETRY_DELAYS` while the key is provided. */
  private async deliverWithRetries (to: PeerId, key: CID, confirm: boolean, onFirstAttempt: (ok: boolean) => void): Promise<void> {
    const delays = this.init.provideRetryDelays ?? C.PROVIDE_RETRY_DELAYS
    for (let attempt = 0; ; attempt++) {
      let ok = false
      try { ok = await this.deliver(to, key, confirm) } catch (err) {
        this.log.debug({ err, peer: to.toString(), key: key.toString(), attempt }, 'could not deliver a provider record')
      }
      if (attempt === 0) onFirstAttempt(ok)
      if (ok || attempt >= delays.length || !this.running || !this.provided.has(key.toString())) return
      // Still a replica? Membership may have moved on while we waited.
      if (this.init.membership != null && !this.closestMembers(key).some(p => p.equals(to))) return
      await sleep(delays[attempt], this.abort.signal)
      if (!this.running || !this.provided.has(key.toString())) return
    }
  }

  /** Sends a peer that just joined or connected the records it should hold (it may have restarted with none). */
  private pushRecordsTo (peer: PeerId): void {
    if (!this.running || peer.equals(this.libp2p.peerId)) return
    for (const k of this.provided) {
      let key: CID
      try { key = CID.parse(k) } catch { continue }
      if (this.closestMembers(key).some(p => p.equals(peer))) void this.deliverWithRetries(peer, key, false, () => {})
    }
  }

  /**
   * Announces that this node provides `key`: records it locally and sends ADD_PROVIDER to the k closest alive members
   * (computed from membership, which knows every member, so no closest-peers walk is needed), all in parallel over
   * persistent streams. It returns once `PROVIDE_CONFIRMATIONS` of the `PROVIDE_CONFIRM_FANOUT` closest (the replicas
   * lookups ask first) confirm they store the record, or every delivery has ended, or the deadline passed. The other
   * replicas' deliveries start when the confirmations are in and go on in the background; a failed one is retried
   * (`PROVIDE_RETRY_DELAYS`), so that the record still reaches all k. Without membership it uses the routing table's k
   * closest.
   */
  async provide (key: CID, options: { signal?: AbortSignal } = {}): Promise<ProvideResult> {
    return await this.inKeyOrder(key, async () => await this.provideNow(key, options))
  }

  /** Runs `fn` after every provide and withdrawal of `key` asked for before it has ended. */
  private async inKeyOrder<T> (key: CID, fn: () => Promise<T>): Promise<T> {
    const k = key.toString()
    const run = (this.keyOps.get(k) ?? Promise.resolve()).then(fn)
    const tail = run.then(() => {}, () => {})
    this.keyOps.set(k, tail)
    void tail.then(() => { if (this.keyOps.get(k) === tail) this.keyOps.delete(k) })
    return await run
  }

  private async provideNow (key: CID, options: { signal?: AbortSignal }): Promise<ProvideResult> {
    const started = performance.now()
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.init.provideTimeout ?? C.PROVIDE_TIMEOUT), ...(options.signal != null ? [options.signal] : [])])
    this.provided.add(key.toString())
    // Clears the tombstones an earlier withdrawal left. Every other provide skips the notice: it would wake every node
    // (a signed gossip message each) for nothing, and on a busy host that costs the provide's confirmations time.
    const notice = this.recentlyWithdrawn(key) ? this.notify('advertise', key) : Promise.resolve()
    try {
      await this.internals.providers.addProvider(key, this.libp2p.peerId)
    } catch (err) {
      this.observe('provide', 'error', started, 0)
      throw err
    }
    const peers = this.closestMembers(key)
    const confirmers = Math.min(this.init.provideConfirmFanout ?? C.PROVIDE_CONFIRM_FANOUT, peers.length)
    const needed = Math.min(this.init.provideConfirmations ?? C.PROVIDE_CONFIRMATIONS, confirmers)
    let storedOn = 0
    let confirmedOn = 0
    let settled = 0
    // The confirming replicas go first and the rest right after they answer: on a busy host the other deliveries'
    // stream opens and writes would otherwise take the CPU the confirmations wait for.
    let restStarted = false
    // Replicas past the confirming ones that were asked to confirm too, because the first ones were slow.
    const hedged = new Set<number>()
    const startRest = (): void => {
      if (restStarted) return
      restStarted = true
      peers.forEach((p, i) => {
        if (i >= confirmers && !hedged.has(i)) void this.deliverWithRetries(p, key, false, ok => { settled++; if (ok) storedOn++ })
      })
    }
    let hedgeTimer: NodeJS.Timeout | undefined
    await new Promise<void>(resolve => {
      const check = (): void => {
        if (confirmedOn >= needed || settled >= confirmers + hedged.size || signal.aborted) startRest()
        if (confirmedOn >= needed || settled === peers.length || signal.aborted) resolve()
      }
      const confirm = (p: PeerId): void => {
        void this.deliverWithRetries(p, key, true, ok => {
          settled++
          if (ok) { storedOn++; confirmedOn++ }
          check()
        })
      }
      signal.addEventListener('abort', check, { once: true })
      peers.slice(0, confirmers).forEach(confirm)
      // A confirming replica that is slow to be scheduled (a busy host) set the provide's tail: past the hedge delay,
      // the next closest are asked to confirm as well, and the first confirmations from either group count.
      hedgeTimer = setTimeout(() => {
        if (confirmedOn >= needed || restStarted) return
        for (let i = confirmers; i < Math.min(peers.length, confirmers * 2); i++) { hedged.add(i); confirm(peers[i]) }
      }, this.init.provideHedgeAfter ?? C.PROVIDE_HEDGE_AFTER)
      check()
    })
    clearTimeout(hedgeTimer)
    await notice
    const outcome = signal.aborted && confirmedOn < needed ? 'timeout' : peers.length > 0 && storedOn === 0 ? 'error' : 'ok'
    this.observe('provide', outcome, started, peers.length)
    return { storedOn, confirmedOn }
  }

  /**
   * Looks up the providers of `key` within a deadline; returns what it found with `timedOut: true` when the deadline ran
   * out. In order: this node's own replica, when it is one of the k closest members and has run `REPLICA_WARMUP` (no
   * network at all); else the `FIND_FANOUT` closest members, asked at once over persistent streams, returning the union
   * of the first `FIND_ANSWERS` answers; and when those name no live provider, the standard GET_PROVIDERS walk.
   * Providers that membership holds dead or left (or does not know), and providers whose withdraw notice was seen, are
   * left out.
   */
  async findProviders (key: CID, options: FindOptions = {}): Promise<FindProvidersResult> {
    const started = performance.now()
    const deadline = AbortSignal.timeout(options.timeout ?? this.init.findTimeout ?? C.FIND_TIMEOUT)
    const signal = AbortSignal.any([this.abort.signal, deadline, ...(options.signal != null ? [options.signal] : [])])
    const found = new Map<string, Provider>()
    const queried = new Set<string>()
    let timedOut = false
    let source: FindProvidersResult['source'] = 'replica'
    const keyString = key.toString()
    const add = (id: string, addrs: string[]): void => {
      const prev = found.get(id)
      found.set(id, { peerId: id, addrs: [...new Set([...(prev?.addrs ?? []), ...addrs])] })
    }
    const anyLive = (): boolean => [...found.keys()].some(id => this.isLive(id, keyString))
    try {
      if (this.init.membership != null) {
        for (const id of await this.internals.providers.getProviders(key)) {
          let addrs: string[] = []
          try { addrs = (await this.libp2p.peerStore.get(id)).addresses.map(a => a.multiaddr.toString()) } catch {}
          add(id.toString(), addrs)
        }
        const warm = Date.now() - this.startedAt >= (this.init.replicaWarmup ?? C.REPLICA_WARMUP)
        if (!(options.replica !== false && warm && anyLive() && this.isReplica(key))) {
          source = 'closest'
          await this.askClosest(key, signal, queried, add)
        }
      }
      if (signal.aborted) throw new Error('deadline')
      if (!anyLive()) {
        source = 'walk'
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
    const providers = [...found.values()].filter(p => this.isLive(p.peerId, keyString))
    for (const p of providers) {
      if (p.addrs.length === 0 || p.peerId === this.peerId) p.addrs = this.addrsOf(p.peerId, p.addrs)
    }
    providers.sort((a, b) => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
    this.observe('find_providers', timedOut ? 'timeout' : providers.length === 0 ? 'not_found' : 'ok', started, queried.size)
    return { providers, timedOut, queried: queried.size, source }
  }

  /** Asks the closest members for the key's providers at once; resolves at `FIND_ANSWERS` answers, all settled, or abort. */
  private async askClosest (key: CID, signal: AbortSignal, queried: Set<string>, add: (id: string, addrs: string[]) => void): Promise<void> {
    const sender = this.sender
    if (sender == null) return
    const peers = this.closestMembers(key).slice(0, this.init.findFanout ?? C.FIND_FANOUT)
    const wanted = Math.min(this.init.findAnswers ?? C.FIND_ANSWERS, peers.length)
    const msg: Partial<KadMessage> = { type: KadMessageType.GET_PROVIDERS, key: key.multihash.bytes }
    let answers = 0
    let settled = 0
    await new Promise<void>(resolve => {
      const check = (): void => { if (answers >= wanted || settled === peers.length || signal.aborted) resolve() }
      signal.addEventListener('abort', check, { once: true })
      for (const p of peers) {
        queried.add(p.toString())
        // The exchanges not waited for run on under the lookup's deadline; their answers are simply not used.
        sender.request(p, msg, { signal }).then(res => {
          for (const pi of res.providers) {
            const info = fromKadPeer(pi)
            if (info != null) add(info.peerId, info.addrs)
          }
          answers++
        }, (err: unknown) => {
          if (!signal.aborted) this.log.debug({ err, peer: p.toString() }, 'GET_PROVIDERS failed')
        }).finally(() => { settled++; check() })
      }
      check()
    })
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
          // The same address can come back from several sources (its signed record, identify, a DHT answer).
          const addrs = [...new Set(e.peer.multiaddrs.map(a => a.toString()))]
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
    // Past a Date's range the expiry cannot even be written down: "Invalid time value", answered as INTERNAL.
    if (options.ttl != null && !(Number.isFinite(options.ttl) && options.ttl > 0 && options.ttl <= C.MAX_ADVERT_TTL)) throw new BadRequestError(`ttl must be a positive duration of at most ${C.MAX_ADVERT_TTL / (365 * 24 * 3600_000)} years`)
    const key = await resourceKey(name)
    const advert: Advert = { name, key: key.toString(), since: new Date().toISOString() }
    if (options.ttl != null) advert.expiresAt = new Date(Date.now() + options.ttl).toISOString()
    this.adverts.set(name, advert)
    this.metrics?.adverts.set(this.adverts.size)
    this.scheduleExpiry()
    // Independent steps, run together: the call returns once both are done, so persisting first would add its latency
    // without making the answer any more durable.
    const [, result] = await Promise.all([this.saveAdverts(), this.provide(key)])
    return { ...advert, ...result }
  }

  /**
   * Stops advertising a name: forgets it, drops the local record, and sends a withdraw notice. False if it was not
   * advertised. With `only`, only that advert (an expired one), not one that renewed the name meanwhile.
   */
  async withdraw (name: string, only?: Advert): Promise<boolean> {
    validateResourceName(name)
    const key = await resourceKey(name)
    if (only != null && this.adverts.get(name) !== only) return false
    const had = this.adverts.delete(name)
    this.metrics?.adverts.set(this.adverts.size)
    // unprovide saves the data dir file, with this name gone and the withdrawal noted.
    await this.unprovide(key)
    return had
  }

  /** Stops providing `key`: drops the local record and sends a withdraw notice (see the withdrawal rule). */
  async unprovide (key: CID): Promise<void> {
    await this.inKeyOrder(key, async () => { await this.unprovideNow(key) })
  }

  private async unprovideNow (key: CID): Promise<void> {
    this.provided.delete(key.toString())
    this.withdrawnAt.set(key.toString(), Date.now())
    await this.kad.cancelReprovide(key).catch(() => {})
    await Promise.all([this.notify('withdraw', key), this.saveAdverts()])
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

  private recentlyWithdrawn (key: CID): boolean {
    const at = this.withdrawnAt.get(key.toString())
    return at != null && Date.now() - at < this.tombstoneHorizon
  }

  private isLive (peerId: string, key: string): boolean {
    if (peerId === this.peerId) return this.provided.has(key)
    const n = this.notices.get(`${peerId}/${key}`)
    if (n?.op === 'withdraw' && Date.now() - n.at < this.tombstoneTtl) return false
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

  /**
   * Sends this node's recent withdrawals again, shortly after members come back, at most once per RENOTICE_DELAY, each
   * with its original sequence number: a node that applied it counts the repeat stale (no tombstone renewed, nothing
   * relayed), and only one that missed it applies it.
   */
  private renoticeSoon (): void {
    if (this.renoticeTimer != null || !this.running || this.withdrawnAt.size === 0) return
    this.renoticeTimer = setTimeout(() => {
      this.renoticeTimer = undefined
      const now = Date.now()
      const recent = [...this.withdrawnAt].filter(([k, at]) => now - at < this.tombstoneHorizon && !this.provided.has(k) && this.withdrawSeqs.has(k))
      for (const [k] of recent.sort((a, b) => b[1] - a[1]).slice(0, C.MAX_RENOTICES)) {
        try { void this.notify('withdraw', CID.parse(k), this.withdrawSeqs.get(k)) } catch {}
      }
    }, C.RENOTICE_DELAY)
    this.renoticeTimer.unref()
  }

  /** Publishes a notice; `seq` repeats an earlier one as it was (a node that has it counts it stale, and relays nothing). */
  private async notify (op: Notice['op'], key: CID, seq?: number): Promise<void> {
    const ps = this.init.pubsub
    if (ps == null) return
    if (seq == null) {
      this.lastSeq = Math.max(this.lastSeq + 1, Date.now())
      seq = this.lastSeq
      if (op === 'withdraw') this.withdrawSeqs.set(key.toString(), seq)
      else this.withdrawSeqs.delete(key.toString())
    }
    const notice: Notice = { v: 1, op, key: key.toString(), seq }
    await ps.publish(C.NOTICE_TOPIC, new TextEncoder().encode(JSON.stringify(notice))).catch((err: unknown) => {
      this.log.debug({ err, op }, 'could not publish a dht notice')
    })
  }

  /** Checks a notice, applies it if it is news, and counts it by outcome. */
  private takeNotice (msg: NoticeMessage): NoticeOutcome {
    const outcome = this.noticeOutcome(msg)
    this.metrics?.notices.inc({ outcome })
    return outcome
  }

  private noticeOutcome (msg: NoticeMessage): NoticeOutcome {
    if (msg.type !== 'signed' || msg.from == null || msg.data == null) return 'malformed'
    const from = msg.from.toString()
    let notice: Notice
    let key: CID
    try {
      if (msg.data.byteLength > C.MAX_NOTICE_BYTES) throw new Error('too large')
      notice = JSON.parse(new TextDecoder().decode(msg.data))
      if (notice.v !== 1 || (notice.op !== 'advertise' && notice.op !== 'withdraw') || !Number.isSafeInteger(notice.seq) || notice.seq <= 0 || typeof notice.key !== 'string') throw new Error('bad fields')
      key = CID.parse(notice.key)
      // Every key the mesh provides is a CIDv1 over a SHA-256 digest; anything else only costs memory here.
      if (key.version !== 1 || key.multihash.code !== 0x12 || key.multihash.digest.byteLength !== 32) throw new Error('not a mesh key')
    } catch {
      return 'malformed'
    }
    // A sequence number is its sender's clock when it sent the notice. One older than a tombstone lives is not news,
    // and refusing it bounds the replay of a captured notice: the table keeps every entry at least that long (see
    // pruneNotices), so a replay either meets the newer notice there or is refused here.
    if (notice.seq < Date.now() - this.tombstoneHorizon) return 'too_old'
    // Only members' notices take a slot, so a peer outside the mesh cannot fill the table.
    const m = this.init.membership
    if (m != null && m.member(from) == null) return 'not_member'
    const slot = `${from}/${key.toString()}`
    const prev = this.notices.get(slot)
    if (prev != null && prev.seq >= notice.seq) return 'stale'
    // Re-inserted, so that the map stays in arrival order (see pruneNotices).
    this.notices.delete(slot)
    this.notices.set(slot, { op: notice.op, seq: notice.seq, at: Date.now() })
    if (notice.op === 'withdraw') {
      this.internals.providers.removeProvider(key, msg.from).catch(() => {})
      this.log.debug({ peer: from, key: notice.key }, 'provider withdrew')
    }
    this.pruneNotices()
    return 'applied'
  }

  private get tombstoneTtl (): number { return this.init.tombstoneTtl ?? C.TOMBSTONE_TTL }
  /**
   * A tombstone's lifetime plus the margin for clocks that differ: how old a notice may be, by its sequence number;
   * how long the table keeps one; and how long this node's own withdrawal may still hide it elsewhere.
   */
  private get tombstoneHorizon (): number { return this.tombstoneTtl + C.TOMBSTONE_CLOCK_MARGIN }

  /**
   * Keeps the table under MAX_NOTICES. The map is in arrival order, so expired entries are at its head: the sweep stops
   * at the first live one, and each notice costs only the entries it removes. An entry is kept as long as a notice it
   * supersedes could still be taken (tombstoneHorizon), so that such a notice, replayed, is found stale.
   */
  private pruneNotices (): void {
    const now = Date.now()
    for (const [k, n] of this.notices) {
      if (now - n.at <= this.tombstoneHorizon) break
      this.notices.delete(k)
    }
    // Still full of live ones: the oldest go first. A lost withdrawal notice costs a stale provider until its record
    // expires, as without notices.
    for (const k of this.notices.keys()) {
      if (this.notices.size < C.MAX_NOTICES) break
      this.notices.delete(k)
    }
  }

  // ---------------------------------------------------------------- persistence and reproviding

  /**
   * One timer, for the advert that expires first. Expiry was checked only when reproviding (every 20 min), so an advert
   * with a 30 s TTL stayed listed and found for up to 20 minutes.
   */
  private scheduleExpiry (): void {
    clearTimeout(this.expiryTimer)
    this.expiryTimer = undefined
    if (!this.running) return
    let next = Infinity
    for (const a of this.adverts.values()) if (a.expiresAt != null) next = Math.min(next, Date.parse(a.expiresAt))
    if (next === Infinity) return
    // setTimeout takes at most 2^31-1 ms (24.8 days); a later expiry is looked at again then.
    this.expiryTimer = setTimeout(() => { void this.expireAdverts() }, Math.min(Math.max(0, next - Date.now()), 2 ** 31 - 1))
    this.expiryTimer.unref()
  }

  private async expireAdverts (): Promise<void> {
    const now = Date.now()
    for (const a of [...this.adverts.values()]) {
      if (!this.running) return
      if (a.expiresAt == null || Date.parse(a.expiresAt) > now) continue
      this.log.info({ name: a.name }, 'advertisement expired')
      await this.withdraw(a.name, a).catch((err: unknown) => { this.log.warn({ err, name: a.name }, 'could not withdraw an expired advertisement') })
    }
    this.scheduleExpiry()
  }

  private async reprovideAll (why: string): Promise<void> {
    const now = Date.now()
    for (const a of [...this.adverts.values()]) {
      if (a.expiresAt != null && Date.parse(a.expiresAt) <= now) {
        this.log.info({ name: a.name }, 'advertisement expired')
        await this.withdraw(a.name, a).catch(() => {})
        continue
      }
      if (!this.running) return
      const key = CID.parse(a.key)
      // Only while this very advert stands: a name withdrawn (or advertised anew) since the round began is not touched.
      await this.inKeyOrder(key, async () => {
        if (this.adverts.get(a.name) === a && this.running) await this.provideNow(key, {})
      }).catch((err: unknown) => { this.log.warn({ err, name: a.name, why }, 'reprovide failed') })
    }
  }

  private get advertsPath (): string | undefined {
    return this.init.dataDir != null ? join(this.init.dataDir, C.ADVERTS_FILE) : undefined
  }

  private async loadAdverts (): Promise<void> {
    const path = this.advertsPath
    if (path == null) return
    // Also that of the writes before durable ones ("<file>.<pid>.tmp").
    await removeStaleTemps(dirname(path), { only: basename(path), legacy: name => name.startsWith(`${basename(path)}.`) && name.endsWith('.tmp') })
    try {
      const data = JSON.parse(await readFile(path, 'utf8')) as { adverts?: Advert[], withdrawn?: Record<string, number>, withdrawnSeq?: Record<string, number> }
      for (const [key, at] of Object.entries(data.withdrawn ?? {})) if (typeof at === 'number') this.withdrawnAt.set(key, at)
      // The notices as they were sent, so that members coming back after this restart still get them (renoticeSoon).
      for (const [key, seq] of Object.entries(data.withdrawnSeq ?? {})) {
        if (!Number.isSafeInteger(seq) || seq <= 0 || !this.withdrawnAt.has(key)) continue
        this.withdrawSeqs.set(key, seq)
        this.lastSeq = Math.max(this.lastSeq, seq)
      }
      for (const a of data.adverts ?? []) {
        try { validateResourceName(a.name) } catch { continue }
        this.adverts.set(a.name, { ...a, key: (await resourceKey(a.name)).toString() })
      }
      this.metrics?.adverts.set(this.adverts.size)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err, path }, 'could not read advertised resources')
    }
  }

  /**
   * Writes the adverts file atomically and durably, resolving once a write that began after this call has ended. Calls
   * made while a write runs share the next one: the file holds an hour of withdrawals, and a burst of file removals
   * (each one a withdrawal here) rewrote all of it once per removal.
   */
  private async saveAdverts (): Promise<void> {
    const path = this.advertsPath
    if (path == null) return
    if (this.nextSave != null) { await this.nextSave; return }
    const write = async (): Promise<void> => {
      this.nextSave = undefined
      if (!this.dataDirReady) { await mkdir(this.init.dataDir!, { recursive: true }); this.dataDirReady = true }
      const ttl = this.tombstoneHorizon
      for (const [key, at] of this.withdrawnAt) if (Date.now() - at >= ttl) { this.withdrawnAt.delete(key); this.withdrawSeqs.delete(key) }
      const withdrawn = Object.fromEntries(this.withdrawnAt)
      const withdrawnSeq = Object.fromEntries([...this.withdrawSeqs].filter(([key]) => this.withdrawnAt.has(key)))
      await writeFileDurable(path, JSON.stringify({ version: 1, adverts: this.advertised(), withdrawn, withdrawnSeq }) + '\n')
    }
    const next = this.saving.then(write, write)
    this.nextSave = next
    this.saving = next
    await next
  }

  private observe (kind: string, outcome: string, started: number, peers: number): void {
    if (this.metrics == null) return
    this.metrics.queries.inc({ kind, outcome })
    this.metrics.latency.observe({ kind }, (performance.now() - started) / 1000)
    this.metrics.hops.observe({ kind }, peers)
  }
}
