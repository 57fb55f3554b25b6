import { peerIdFromString } from '@libp2p/peer-id'
import { isUtf8 } from 'node:buffer'
import { join } from 'node:path'
import { access, mkdir, readFile } from 'node:fs/promises'
import { systemClock, type Clock } from '../lib/clock.js'
import { removeDurable, removeStaleTemps, writeFileDurable } from '../lib/durable.js'
import { MeshError, BadRequestError, InvalidConfigError } from '../lib/errors.js'
import { MiB, minute, second } from '../lib/units.js'
import * as C from './constants.js'
import { KV_MAX_VALUE_CEILING } from './config.js'
import type { ServiceDef } from '../rpc/index.js'
import {
  createStorage, LevelEngine, replicaMethods, consistencyLevels, MAX_KEY_BYTES, MAX_VALUE_BYTES, MAX_TTL, MAX_SCAN_LIMIT,
  type Storage, type MembershipView, type MembershipEvent, type ReplicaTransport, type ReplicaMethod, type ConsistencyLevel,
  type Durability
} from '../storage/index.js'
import * as M from '../storage/storage.js'
import type { Timestamp } from '../storage/storage.js'
import type { MeshNode } from './node.js'
import type { Subsystem } from './subsystem.js'
import type { ApiServer } from './api.js'

/**
 * How long a dead member keeps its place in the ring. A short outage (a restart, a frozen process) then costs hints
 * and no data movement; past the grace the member leaves the ring and anti-entropy restores the replication factor
 * on the new owners. `left` members leave at once.
 */
export const DEAD_GRACE_MS = 45 * second

/** How long a member remembers letting go of a peer that came back (MembershipView.letGo): its check comes at once. */
const LET_GO_MEMORY = 10 * minute
/** Members gone (dead or left) whose time of going a view keeps, for MembershipView.letGo. */
const MAX_GONE_REMEMBERED = 10_000

/**
 * The membership tag (`kv=joining`) of a node still copying the ranges it took on joining: the members read those ranges
 * from the ring without it (MembershipView.joining).
 */
export const KV_META_KEY = 'kv'
export const KV_JOINING = 'joining'

/** Kept in the storage directory while a join is under way, so that a restart part way goes on joining. */
const JOINING_FILE = 'joining'
/**
 * Written when the node leaves the ring gracefully, and removed once its next start has asked the members whether they
 * let go of it (AbsenceGuardInit.left): after a whole mesh stopped, nobody has, and no node needs to join again.
 */
const LEFT_FILE = 'left'

/**
 * Whether this node starts as a joiner (StorageInit.joining), to be said in its first membership announcement. A new
 * identity with seeds joins a mesh that may hold data, and is a joiner until its ranges are copied, across restarts;
 * the first node of a new mesh holds everything there is from the start.
 */
export async function prepareJoin (dataDir: string, newIdentity: boolean, hasSeeds: boolean): Promise<boolean> {
  const dir = join(dataDir, 'storage')
  const file = join(dir, JOINING_FILE)
  if (newIdentity) {
    // A first start that failed may have left one, from seeds it was given then.
    if (!hasSeeds) { await removeDurable(file).catch(() => {}); return false }
    await mkdir(dir, { recursive: true })
    await writeFileDurable(file, '')
    return true
  }
  return await access(file).then(() => true, () => false)
}

/** The replica RPC service: `/meshos/kv/1.0.0`, one method per ReplicaTransport method. */
export const kvService = {
  name: 'kv',
  version: 1,
  maxMessageSize: 8 * MiB,
  // Replica traffic is many small calls from many clients' requests at once: batching them per loop turn pays.
  coalesce: 'turn',
  methods: {
    write: { request: M.WriteRequest, response: M.WriteResponse },
    read: { request: M.ReadRequest, response: M.ReadResponse },
    readMany: { request: M.ReadManyRequest, response: M.ReadManyResponse },
    fetch: { request: M.FetchRequest, response: M.FetchResponse },
    merkle: { request: M.MerkleRequest, response: M.MerkleResponse },
    fetchRange: { request: M.FetchRangeRequest, response: M.FetchRangeResponse },
    scan: { request: M.ScanRequest, response: M.ScanResponse },
    purges: { request: M.PurgesRequest, response: M.PurgesResponse }
  }
} satisfies ServiceDef<any>

export interface NodeStorageEnv {
  /** MESH_REPLICATION_FACTOR @default 3 */
  replicationFactor: number
  /** MESH_DURABILITY @default 'strict' */
  durability: Durability
  /** MESH_KV_ANTI_ENTROPY_MS: interval between anti-entropy rounds. @default 2 s */
  antiEntropyInterval?: number
  /** MESH_KV_TOMBSTONE_MIN_AGE_MS: how old a dead record must be before it is purged. @default 3 h 30 min */
  tombstoneMinAge?: number
  /** MESH_KV_JOIN_DELAY_MS: how long a joining node waits before it copies its ranges (StorageInit.joinDelay). @default 5 s */
  joinDelay?: number
}

/** Replication factor and durability come from the config (--replication-factor, --durability); only the test knobs are here. */
export function storageEnv (env: NodeJS.ProcessEnv = process.env): Pick<NodeStorageEnv, 'antiEntropyInterval' | 'tombstoneMinAge' | 'joinDelay'> {
  const ae = env.MESH_KV_ANTI_ENTROPY_MS != null ? Number(env.MESH_KV_ANTI_ENTROPY_MS) : undefined
  if (ae != null && !(ae >= 50)) throw new InvalidConfigError('MESH_KV_ANTI_ENTROPY_MS must be at least 50')
  const rawTomb = env.MESH_KV_TOMBSTONE_MIN_AGE_MS
  if (rawTomb != null && !/^\d+$/.test(rawTomb)) throw new InvalidConfigError(`MESH_KV_TOMBSTONE_MIN_AGE_MS must be a whole number of ms, 0 or more, got '${rawTomb}'`)
  const tomb = rawTomb != null ? Number(rawTomb) : undefined
  const rawJoin = env.MESH_KV_JOIN_DELAY_MS
  if (rawJoin != null && !/^\d+$/.test(rawJoin)) throw new InvalidConfigError(`MESH_KV_JOIN_DELAY_MS must be a whole number of ms, 0 or more, got '${rawJoin}'`)
  const joinDelay = rawJoin != null ? Number(rawJoin) : undefined
  return { antiEntropyInterval: ae, tombstoneMinAge: tomb, joinDelay }
}

/** The node's wall clock as storage sees it, offset by --clock-skew-ms (a test flag). */
export function skewedClock (skewMs: number): Clock {
  if (skewMs === 0) return systemClock
  return { ...systemClock, now: () => systemClock.now() + skewMs }
}

export interface ViewReadiness {
  /** Peers this node had in its ring when it last ran (persisted in the storage directory); empty after a wipe. */
  expected: string[]
  /** The node has bootstrap seeds: its join's push-pull brings the whole table in one reply. */
  hasSeeds: boolean
  /**
   * This process created the node's identity: a brand-new node. Without seeds it is the first node of a new mesh
   * and nobody holds data it could misplace, so it is ready at once. (A wiped node keeps its identity, so it is not.)
   */
  fresh?: boolean
  /** Push-pulls so far, inbound or answered to ours (each carries the other side's whole table). */
  pushPulls: () => number
  /** With evidence of a full table, the member set must then stay unchanged this long (ms). @default 1 s */
  settleMs?: number
  /**
   * Without any, this long (ms). A view that is merely stable is no evidence: a restarted seedless node knew 3 of
   * its 4 peers for 15 s and, ready by this rule, placed keys on the wrong replicas. @default Infinity
   */
  blindSettleMs?: number
}

/**
 * Adapts SWIM membership to storage's MembershipView (see DEAD_GRACE_MS for the ring rule).
 *
 * Readiness: a restarted node's table starts empty and fills over seconds (a seedless node learned its last member
 * 12 s after restart in a 5-node testnet); a ring from that view names wrong replicas, so a quorum "acknowledged" by
 * them misses the real replicas. The view is ready, for good, once the node holds a whole member table (a push-pull,
 * inbound or its own) and its member set has then been stable for settleMs.
 */
export function membershipView (node: MeshNode, graceMs = DEAD_GRACE_MS, readiness?: ViewReadiness): MembershipView & { ready: () => boolean, close: () => void } {
  const m = node.membership
  const self = m.peerId
  const unsubscribe: Array<() => void> = []
  let ready = readiness == null || (readiness.fresh === true && !readiness.hasSeeds && readiness.expected.length === 0)
  let signature = ''
  let changedAt = Date.now()
  // The joiners are found in the same pass over the member table as the ring's members (storage asks for the ring, then
  // the joiners, on every operation): read apart, a member that had just appeared was in the ring but not yet known to
  // be joining, and was read from with nothing.
  let joining: string[] = []
  let joiningAt = -Infinity
  const members_ = (): string[] => {
    const now = Date.now()
    const out: string[] = []
    const joiners: string[] = []
    for (const x of m.members()) {
      if (x.peerId === self || x.state === 'alive' || x.state === 'suspect' || (x.state === 'dead' && now - x.stateSince < graceMs)) {
        out.push(x.peerId)
        // (On every operation: nothing looked up unless a member let go of came back.)
        const back = letGoAt.size === 0 || x.peerId === self ? undefined : letGoAt.get(x.peerId)
        if (x.peerId !== self && x.meta.tags[KV_META_KEY] === KV_JOINING) {
          joiners.push(x.peerId)
          // Joining again since it was seen back without the tag: it has heard (and recorded it; see announceRejoining),
          // and a later absence must be let go of anew to count. A tag it came back with is the join it was already in,
          // whose progress the return undoes, and proves nothing.
          if (back?.untagged === true) letGoAt.delete(x.peerId)
        } else if (back != null) {
          back.untagged = true
        }
      }
    }
    if (!out.includes(self)) out.push(self)
    joining = joiners
    joiningAt = now
    return out
  }
  // Members this ring let go of (see MembershipView.letGo), told to each when it asks, as its check after an absence
  // does. `gone`: when a member died or left, kept until it is seen back (SWIM forgets dead and left members after
  // 30 min, and a long absence must still count); `letGoAt`: when one this ring had let go of was seen back, until it
  // says it is joining again (the tag appearing after it was seen without it) or LET_GO_MEMORY has passed (its check
  // asks at once).
  const gone = new Map<string, { at: number, left: boolean }>()
  const letGoAt = new Map<string, { at: number, untagged: boolean }>()
  const onState = (event: string, fn: (peer: string, previous?: string) => void): void => {
    unsubscribe.push(m.events.on(event as any, ({ member, previous }: { member: { peerId: string }, previous?: string }) => { fn(member.peerId, previous) }))
  }
  const wasLetGo = (g: { at: number, left: boolean } | undefined, now: number): boolean => g != null && (g.left || now - g.at > graceMs)
  onState('dead', peer => { if (!gone.has(peer)) remember(peer, { at: Date.now(), left: false }) })
  onState('left', peer => { remember(peer, { at: gone.get(peer)?.at ?? Date.now(), left: true }) })
  onState('alive', peer => { gone.delete(peer) })
  onState('join', peer => {
    const now = Date.now()
    if (wasLetGo(gone.get(peer), now)) letGoAt.set(peer, { at: now, untagged: false })
    gone.delete(peer)
    for (const [p, b] of letGoAt) if (now - b.at > LET_GO_MEMORY) letGoAt.delete(p)
  })
  const remember = (peer: string, g: { at: number, left: boolean }): void => {
    gone.delete(peer)
    gone.set(peer, g)
    // Bounded: members that never come back are forgotten, oldest first.
    if (gone.size > MAX_GONE_REMEMBERED) gone.delete(gone.keys().next().value as string)
  }
  const letGo = (peer: string): boolean => {
    const now = Date.now()
    const rec = m.member(peer)
    if (rec?.state === 'left' || (rec?.state === 'dead' && now - rec.stateSince > graceMs)) return true
    // Not seen back yet, its record perhaps reaped.
    if ((rec == null || rec.state === 'dead') && wasLetGo(gone.get(peer), now)) return true
    const back = letGoAt.get(peer)
    if (back == null) return false
    if (now - back.at > LET_GO_MEMORY) { letGoAt.delete(peer); return false }
    return true
  }
  const joining_ = (): string[] => {
    if (Date.now() - joiningAt > 50) members_()
    return joining
  }
  const ready_ = (): boolean => {
    if (ready || readiness == null) return true
    const known = m.members().map(x => x.peerId).filter(p => p !== self).sort()
    const sig = known.join(',')
    const now = Date.now()
    if (sig !== signature) { signature = sig; changedAt = now; return false }
    const stable = now - changedAt
    // Knowing some members, or every peer of the last run, is not evidence of knowing all (a ping can arrive before
    // the join's reply; members may have joined while this node was down): only a whole table is. A mesh that was
    // this node alone has nobody to ask.
    const alone = readiness.expected.length > 0 && readiness.expected.every(p => p === self) && known.length === 0
    const full = alone || readiness.pushPulls() > 0
    ready = (full && stable >= (readiness.settleMs ?? second)) || stable >= (readiness.blindSettleMs ?? Infinity)
    return ready
  }
  return {
    self: () => self,
    ready: ready_,
    joining: joining_,
    letGo,
    members: members_,
    // A suspect is not convicted: writes still go to it (a failure becomes a hint) and reads may ask it. Treating
    // suspects as down would turn every brief suspicion, common on a loaded machine, into hint churn.
    alive: () => {
      const out = m.members().filter(x => x.state === 'alive' || x.state === 'suspect').map(x => x.peerId)
      if (!out.includes(self)) out.push(self)
      return out
    },
    isAlive: (id) => { const st = m.member(id)?.state; return id === self || st === 'alive' || st === 'suspect' },
    on: (event: MembershipEvent, listener: (peerId: string) => void) => {
      // SWIM says `join` for a member that is alive again after dead or left, and `alive` for a refuted suspicion;
      // for storage both mean "reachable again" (hints replay on it).
      const sources: string[] = event === 'alive' ? ['alive', 'join'] : [event]
      const offs = sources.map(s => m.events.on(s as any, ({ member }: { member: { peerId: string } }) => { listener(member.peerId) }))
      // Callers subscribe per operation too (a scan watches for members that die under it): an unsubscribed listener
      // leaves the list, or it would grow with every scan.
      const off = (): void => {
        for (const o of offs) o()
        const i = unsubscribe.indexOf(off)
        if (i >= 0) unsubscribe.splice(i, 1)
      }
      unsubscribe.push(off)
      return off
    },
    close: () => { for (const off of unsubscribe.splice(0)) off() }
  }
}

/** ReplicaTransport over the node's RPC layer. */
export function rpcTransport (node: MeshNode, timeout = 10 * second): ReplicaTransport {
  const call = (method: ReplicaMethod, limit = timeout) => async (peer: string, req: any, signal: AbortSignal): Promise<any> =>
    await node.rpc.call(peer, kvService, method, req, { signal, timeout: limit })
  // A coordinator's reads and writes carry their request's own deadline (`?timeout=`, up to MAX_REQUEST_TIMEOUT) in
  // their signal: the RPC's cap must not cut a longer one short.
  const request = Math.max(timeout, MAX_REQUEST_TIMEOUT)
  return {
    write: call('write', request),
    read: call('read', request),
    readMany: call('readMany', request),
    fetch: call('fetch'),
    merkle: call('merkle'),
    fetchRange: call('fetchRange'),
    scan: call('scan'),
    purges: call('purges')
  }
}

export function timestampJson (ts: Timestamp | undefined): { wall: number, logical: number, node: string } | undefined {
  return ts == null ? undefined : { wall: Number(ts.wall), logical: ts.logical, node: ts.node }
}

function parseConsistency (v: string | null): ConsistencyLevel | undefined {
  if (v == null || v === '') return undefined
  const l = v.toLowerCase()
  if (!(consistencyLevels as readonly string[]).includes(l)) throw new BadRequestError(`unknown consistency level "${v}"; use one of ${consistencyLevels.join(', ')}`)
  return l as ConsistencyLevel
}

/** `30s`, `5m`, `2h`, `1d`, `1500ms` or a bare number of seconds → ms. */
export function parseTtl (v: string | null): number | undefined {
  if (v == null || v === '') return undefined
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(v.trim())
  if (m == null) throw new BadRequestError(`ttl must be a duration such as 30s, 5m or 1h, not "${v}"`)
  const n = Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const)[(m[2] ?? 's') as 'ms']
  if (!(n >= 1)) throw new BadRequestError('ttl must be at least 1 ms')
  if (n > MAX_TTL) throw new BadRequestError(`ttl must be at most 100 years, not "${v}"`)
  return n
}

/** The longest deadline a KV request may ask for (`?timeout=`, ms). */
const MAX_REQUEST_TIMEOUT = 60 * second

function parseTimeout (v: string | null): number | undefined {
  if (v == null || v === '') return undefined
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0 || n > MAX_REQUEST_TIMEOUT) throw new BadRequestError(`timeout must be a number of ms from 1 to ${MAX_REQUEST_TIMEOUT}`)
  return n
}

/** The raw path segment after /v1/kv/, checked for UTF-8 before the router's decoding is trusted. */
function rawKey (url: string | undefined): void {
  const path = (url ?? '').split('?')[0]
  const raw = path.replace(/^\/v1\/kv\/?/, '')
  // Plain ASCII without escapes, the usual key, is UTF-8 as it stands.
  if (!ESCAPED_OR_NOT_ASCII.test(raw)) return
  const bytes: number[] = []
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === '%' && /^[0-9a-fA-F]{2}$/.test(raw.slice(i + 1, i + 3))) { bytes.push(parseInt(raw.slice(i + 1, i + 3), 16)); i += 2 } else bytes.push(raw.charCodeAt(i) & 0xff)
  }
  if (!isUtf8(new Uint8Array(bytes))) throw new BadRequestError('invalid key: not valid UTF-8')
}
const ESCAPED_OR_NOT_ASCII = /[%\u0080-\uffff]/

export function kvRoutes (api: ApiServer, storage: Storage, maxBody = MAX_VALUE_BYTES): void {
  api.route({
    method: 'PUT',
    path: '/v1/kv/*key',
    maxBody,
    handler: async ({ req, params, query, body, signal }) => {
      rawKey(req.url)
      const consistency = parseConsistency(query.get('consistency'))
      const ttl = parseTtl(query.get('ttl'))
      const timeoutMs = parseTimeout(query.get('timeout'))
      const value = await body()
      const declared = req.headers['content-length']
      if (declared != null && Number(declared) !== value.byteLength) throw new BadRequestError('request body was truncated')
      const r = await storage.put(params.key, new Uint8Array(value.buffer, value.byteOffset, value.byteLength), { consistency, ttl, timeoutMs, signal })
      return { key: r.key, timestamp: timestampJson(r.timestamp), acks: r.acks, hinted: r.hinted }
    }
  })
  api.route({
    method: 'GET',
    path: '/v1/kv/*key',
    handler: async ({ req, res, params, query, signal }) => {
      rawKey(req.url)
      const consistency = parseConsistency(query.get('consistency'))
      const replica = query.get('replica') ?? undefined
      if (replica != null) {
        try { peerIdFromString(replica) } catch { throw new BadRequestError('replica= must be a peer id') }
      }
      const timeoutMs = parseTimeout(query.get('timeout'))
      if (replica != null && consistency != null && consistency !== 'one') throw new BadRequestError('replica= needs consistency=one')
      const r = await storage.get(params.key, { consistency: replica != null ? 'one' : consistency, replica, timeoutMs, signal })
      const ts = timestampJson(r.timestamp)
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': r.value.byteLength,
        'x-mesh-timestamp': ts == null ? '' : `${ts.wall}.${ts.logical}@${ts.node}`,
        ...(r.expiresAt != null ? { 'x-mesh-expires-at': String(r.expiresAt) } : {})
      })
      res.end(req.method === 'HEAD' ? undefined : r.value)
      return undefined
    }
  })
  api.route({
    method: 'DELETE',
    path: '/v1/kv/*key',
    handler: async ({ req, params, query, signal }) => {
      rawKey(req.url)
      const consistency = parseConsistency(query.get('consistency'))
      const timeoutMs = parseTimeout(query.get('timeout'))
      const r = await storage.delete(params.key, { consistency, timeoutMs, signal })
      return { key: r.key, deleted: true, timestamp: timestampJson(r.timestamp), acks: r.acks, hinted: r.hinted }
    }
  })
  api.route({
    method: 'GET',
    path: '/v1/kv',
    handler: async ({ query, signal }) => {
      const prefix = query.get('prefix') ?? ''
      if (!prefix.isWellFormed()) throw new BadRequestError('prefix is not valid UTF-8')
      if (Buffer.byteLength(prefix) > MAX_KEY_BYTES) throw new MeshError('PAYLOAD_TOO_LARGE', `prefix is longer than ${MAX_KEY_BYTES} bytes`)
      const limitRaw = query.get('limit')
      const limit = limitRaw == null || limitRaw === '' ? undefined : Number(limitRaw)
      if (limit != null && (!Number.isInteger(limit) || limit < 1 || limit > MAX_SCAN_LIMIT)) throw new BadRequestError(`limit must be an integer from 1 to ${MAX_SCAN_LIMIT}`)
      const after = query.get('after') ?? ''
      if (!after.isWellFormed()) throw new BadRequestError('after is not valid UTF-8')
      if (Buffer.byteLength(after) > MAX_KEY_BYTES) throw new MeshError('PAYLOAD_TOO_LARGE', `after is longer than ${MAX_KEY_BYTES} bytes`)
      const r = await storage.scan({ prefix, limit, after, signal })
      return {
        entries: r.entries.map(e => ({ key: e.key, value: Buffer.from(e.value).toString('base64'), timestamp: timestampJson(e.timestamp) })),
        unreachable: r.unreachable,
        more: r.more
      }
    }
  })
  api.route({
    method: 'GET',
    path: '/v1/storage/replicas',
    handler: ({ query }) => ({ key: query.get('key') ?? '', replicas: storage.replicasOf(query.get('key') ?? '') })
  })
  api.route({
    method: 'GET',
    path: '/v1/storage/stats',
    handler: async () => {
      const s = await storage.stats()
      return s
    }
  })
}

/** Wires storage/ into the node: engine, membership view, replica RPC service, routes. */
export async function createNodeStorage (node: MeshNode): Promise<Subsystem | undefined> {
  const env = { ...storageEnv(), durability: node.config.durability, replicationFactor: node.config.replicationFactor }
  const log = node.log.child({ component: 'storage' })
  const dir = join(node.config.dataDir, 'storage')
  await mkdir(dir, { recursive: true })
  const peersFile = join(dir, 'peers.json')
  await removeStaleTemps(dir, { only: 'peers.json' })
  // A new identity has no ring peers yet: a peers.json left by a start that failed after storage ran names the
  // identity that start made and threw away, and readiness would wait for it for ever.
  const expected = node.newIdentity ? [] : await readFile(peersFile, 'utf8').then(t => JSON.parse(t) as unknown).then(v => Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [], (err) => {
    // Read as a wiped node's: readiness then waits for a whole member table from the mesh.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ err, file: peersFile }, 'ring members file unreadable; learning them from the mesh')
    return []
  })
  const fresh = node.newIdentity
  const hasSeeds = node.config.bootstrap.length > 0
  let tablesPulled = 0
  const view = membershipView(node, DEAD_GRACE_MS, {
    expected,
    fresh,
    hasSeeds,
    pushPulls: () => node.membership.stats.pushPulls + tablesPulled
  })
  let pulling = false
  // Readiness needs a whole table (a ring built from a partial member list names wrong replicas, and quorums "met"
  // there miss acknowledged writes): as soon as the node knows any member, it asks one for its table.
  const needsTable = !(fresh && !hasSeeds && expected.length === 0)
  const pullTable = (): void => {
    if (!needsTable || tablesPulled > 0 || pulling || view.ready()) return
    const known = node.membership.members().filter(x => x.peerId !== node.membership.peerId && (x.state === 'alive' || x.state === 'suspect'))
    if (known.length === 0) return
    const target = known[Math.floor(Math.random() * known.length)]
    const addrs = target.addrs.map(a => a.includes('/p2p/') ? a : `${a}/p2p/${target.peerId}`)
    pulling = true
    node.membership.join(addrs)
      .then(n => { if (n > 0) tablesPulled++ }, err => { log.debug({ err, peer: target.peerId }, 'table pull failed; trying another member') })
      .finally(() => { pulling = false })
  }
  // The ring's members are remembered so that after a restart readiness can tell a complete view from a partial one.
  let savedPeers = [...expected].sort().join(',')
  let saving = Promise.resolve()
  const savePeers = (): void => {
    if (!view.ready()) return
    const peers = view.members().sort()
    const sig = peers.join(',')
    if (sig === savedPeers) return
    savedPeers = sig
    saving = saving.then(async () => { await writeFileDurable(peersFile, JSON.stringify(peers)) })
      .catch(err => { log.warn({ err }, 'could not save the ring members') })
  }
  let readyTimer: NodeJS.Timeout | undefined
  let savedReady = false
  // The end of a join is recorded on disk before it is announced: a node that restarted joining again after the members
  // had stopped counting it as pending would be read from the ring without it, which then lacked what it took meanwhile.
  const marker = join(dir, JOINING_FILE)
  const leftMarker = join(dir, LEFT_FILE)
  let left = await access(leftMarker).then(() => true, () => false)
  // Once the start's check is over (and a rejoin it decided is on disk, the queue being in order).
  let stopping = false
  const checkedLeave = (): void => {
    if (!left || stopping || storage.service.quarantined) return
    left = false
    onMarker(async () => { await removeDurable(leftMarker) })
      .catch(err => { log.warn({ err }, 'could not record that the return after leaving was checked') })
  }
  // The markers' writes and removals go one at a time, in the order asked for.
  let markerOps: Promise<void> = Promise.resolve()
  const onMarker = async (op: () => Promise<void>): Promise<void> => { const p = markerOps.then(op); markerOps = p.catch(() => {}); await p }
  const writeMarker = async (file: string): Promise<void> => { await onMarker(async () => { await mkdir(dir, { recursive: true }); await writeFileDurable(file, '') }) }
  let joinEnded = false
  let joinAnnounced = !node.kvJoining
  let announcing = false
  const setJoiningTag = (on: boolean): void => {
    const tags = { ...(node.membership.member(node.membership.peerId)?.meta.tags ?? {}) }
    if (on) tags[KV_META_KEY] = KV_JOINING
    else delete tags[KV_META_KEY]
    node.membership.setMeta({ tags })
  }
  const announceJoined = (): void => {
    if (!joinEnded || joinAnnounced || announcing) return
    announcing = true
    onMarker(async () => {
      await removeDurable(marker)
      // A rejoin that began meanwhile keeps the tag (and writes the marker again after this).
      if (!joinEnded) return
      setJoiningTag(false)
      joinAnnounced = true
    }).catch(err => { log.warn({ err }, 'could not record the end of the join; trying again') })
      .finally(() => { announcing = false })
  }
  // On disk before the check that decided it ends (it waits for this): a restart part way must go on joining, and would
  // otherwise find neither an absence nor a leave to check. And on disk before it is said: a member that sees the tag
  // stops telling this node it was let go of (membershipView), so a check run again after a failed write would not
  // hear it a second time. (The replica refuses reads from the start meanwhile: ReplicaService.joining.)
  const announceRejoining = async (): Promise<void> => {
    joinEnded = false
    joinAnnounced = false
    await writeMarker(marker)
    setJoiningTag(true)
  }
  const storage = createStorage({
    engine: new LevelEngine({ path: dir, durability: env.durability }),
    membership: view,
    transport: rpcTransport(node),
    clock: skewedClock(node.config.clockSkewMs),
    logger: node.log,
    registry: node.registry,
    onJoined: () => {
      joinEnded = true
      announceJoined()
    },
    onRejoining: announceRejoining
  }, {
    replicationFactor: env.replicationFactor,
    joining: node.kvJoining,
    joinDelay: env.joinDelay,
    // The KV API takes at most the configured size (kvRoutes); the store itself never less than 1 MiB, which the
    // tasks' records and logs, stored here too, are sized for. (Also what its reads are batched by.)
    maxValueBytes: Math.max(node.config.kvMaxValueBytes, MAX_VALUE_BYTES),
    // As a replica, it takes the largest value any node's API may be configured to take: a node whose limit is higher
    // than this one's had its every batch to this one refused, with the other clients' records in it, and its hints
    // for this one stuck behind that batch for hours.
    maxReplicaValueBytes: KV_MAX_VALUE_CEILING,
    maxBatchBytes: 4 * MiB,
    // Unset knobs are undefined, and AntiEntropy takes its defaults for them.
    antiEntropy: { interval: env.antiEntropyInterval, tombstoneMinAge: env.tombstoneMinAge },
    // An identity that has run before with no record of its ring peers: its storage directory may have been lost or
    // wiped (or the node crashed before it first saved them; the store tells the two apart by its own records).
    rebuild: !fresh && expected.length === 0,
    // Away longer than the ring keeps a dead member: the others may have purged deletes this replica missed.
    absence: { ringGrace: DEAD_GRACE_MS, left }
  })
  const s = storage.service
  // The caller is passed on: a request from a peer this replica lost touch with is how it learns it is back (AbsenceGuard).
  const handlers = Object.fromEntries((Object.keys(replicaMethods) as ReplicaMethod[]).map(name =>
    [name, async (req: any, ctx: { signal: AbortSignal, peer: { toString: () => string } }) => await (s as any)[name](req, ctx.signal, ctx.peer.toString())]))
  return {
    name: 'storage',
    /** The store itself, for subsystems built on it (tasks keep their state here). */
    service: storage,
    async start () {
      await storage.start()
      await node.rpc.handle(kvService, handlers as any)
      const started = Date.now()
      readyTimer = setInterval(() => {
        pullTable()
        const wasReady = savedReady
        savedReady = view.ready()
        if (savedReady && !wasReady) {
          log.info({ ms: Date.now() - started, members: view.members().length }, 'membership view ready; serving kv requests')
          storage.hints.sweep()
        }
        savePeers()
        announceJoined()
        checkedLeave()
      }, 250)
      readyTimer.unref()
      log.info({ dir, rf: env.replicationFactor, durability: env.durability, clockSkewMs: node.config.clockSkewMs }, 'kv store ready')
    },
    async stop () {
      // The ready timer must not take back a marker written below (checkedLeave) while the handoff runs.
      stopping = true
      // Leaving, it is out of the ring at once, and the writes its ranges take until it is back go to other members.
      if (node.leaving) {
        await writeMarker(leftMarker).catch(err => { log.warn({ err }, 'could not record that this node leaves; unless it is away past the ring\'s grace, its next start is read from at once') })
      }
      try {
        const r = await storage.handoff(AbortSignal.timeout(C.handoffTimeout))
        log.info(r, 'handoff before leaving done')
      } catch (err) {
        log.warn({ err }, 'handoff before leaving incomplete; anti-entropy will restore replicas')
      }
      clearInterval(readyTimer)
      view.close()
      await storage.stop()
      await saving
    },
    routes (api) { kvRoutes(api, storage, node.config.kvMaxValueBytes) },
    async stats () {
      const st = await storage.stats()
      return { dataBytes: Number(st.bytes), records: Number(st.records), ringShare: st.ringShare, hintsPending: st.hintsPending }
    }
  }
}
