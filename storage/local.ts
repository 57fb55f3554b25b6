import { EventEmitter } from 'node:events'
import { MeshError, NodeUnreachableError } from '../lib/errors.js'
import type { MembershipEvent, MembershipView, ReplicaTransport } from './types.js'
import type { ReplicaService } from './service.js'
import type {
  WriteRequest, WriteResponse, ReadRequest, ReadResponse, ReadManyRequest, ReadManyResponse, FetchRequest, FetchResponse,
  MerkleRequest, MerkleResponse, FetchRangeRequest, FetchRangeResponse, ScanRequest, ScanResponse, PurgesRequest, PurgesResponse
} from './storage.js'
import { raceSignal } from './util.js'

/** How an unreachable node fails: at once (connection refused) or by never answering (until the caller's deadline). */
export type FailureMode = 'throw' | 'timeout'

/**
 * In-process "network" of ReplicaServices, for tests and simulations. Requests and responses are
 * deep-copied through structuredClone so no node shares objects with another.
 */
export class LocalNetwork {
  private readonly services = new Map<string, ReplicaService>()
  private readonly down = new Map<string, FailureMode>()
  /** Requests routed, by method, for tests that count traffic. */
  readonly calls = new Map<string, number>()
  /** Requests routed, by destination peer. */
  readonly callsTo = new Map<string, number>()
  /** Methods each peer answers with UNKNOWN_METHOD, as a replica of an older version would. */
  readonly unknownMethods = new Map<string, Set<string>>()
  /** Peers whose requests wait (see `hold`), with the requests waiting. */
  private readonly held = new Map<string, Array<() => void>>()
  /** Links cut by `sever`, as 'from>to'. */
  private readonly severed = new Set<string>()

  register (peer: string, service: ReplicaService): void { this.services.set(peer, service) }
  unregister (peer: string): void { this.services.delete(peer) }
  /** Makes requests to peer fail (or stop failing with `false`). */
  setDown (peer: string, mode: FailureMode | false = 'throw'): void {
    if (mode === false) this.down.delete(peer)
    else this.down.set(peer, mode)
  }

  /**
   * Requests of every method to peer wait, as at a stalled replica, until `release(peer)` (or their own deadline:
   * the waiter of one that gave up is dropped at the release).
   */
  hold (peer: string): void {
    if (!this.held.has(peer)) this.held.set(peer, [])
  }

  release (peer: string): void {
    const waiting = this.held.get(peer) ?? []
    this.held.delete(peer)
    for (const go of waiting) go()
  }

  /** Requests between a and b fail both ways, as across a partition (or stop failing, with `mend`). */
  sever (a: string, b: string): void { this.severed.add(`${a}>${b}`); this.severed.add(`${b}>${a}`) }
  mend (a: string, b: string): void { this.severed.delete(`${a}>${b}`); this.severed.delete(`${b}>${a}`) }

  isDown (peer: string): boolean { return this.down.has(peer) || !this.services.has(peer) }

  async call<Req, Res> (peer: string, method: string, req: Req, signal: AbortSignal, fn: (s: ReplicaService, req: Req, signal: AbortSignal) => Promise<Res>, from?: string): Promise<Res> {
    signal.throwIfAborted()
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1)
    this.callsTo.set(peer, (this.callsTo.get(peer) ?? 0) + 1)
    // Yield first, as a real network would, so callers never rely on synchronous answers.
    await new Promise(resolve => setImmediate(resolve))
    const waiting = this.held.get(peer)
    if (waiting != null) await raceSignal(new Promise<void>(resolve => { waiting.push(resolve) }), signal)
    if (this.unknownMethods.get(peer)?.has(method) === true) throw new MeshError('UNKNOWN_METHOD', `unknown method kv.${method}`)
    const mode = this.down.get(peer)
    const service = this.services.get(peer)
    if (mode === 'timeout') return await raceSignal(new Promise<never>(() => {}), signal)
    if (mode === 'throw' || service == null || (from != null && this.severed.has(`${from}>${peer}`))) throw new NodeUnreachableError(`${peer} is unreachable`)
    const res = await raceSignal(fn(service, structuredClone(req), signal), signal)
    return structuredClone(res)
  }

  /** `from`: the calling node, which the replicas are told (as the RPC layer tells them the remote peer). */
  transport (from?: string): LocalReplicaTransport { return new LocalReplicaTransport(this, from) }
}

export class LocalReplicaTransport implements ReplicaTransport {
  constructor (private readonly network: LocalNetwork, private readonly from?: string) {}
  async write (peer: string, req: WriteRequest, signal: AbortSignal): Promise<WriteResponse> {
    return await this.network.call(peer, 'write', req, signal, async (s, r, sig) => await s.write(r, sig), this.from)
  }

  async read (peer: string, req: ReadRequest, signal: AbortSignal): Promise<ReadResponse> {
    return await this.network.call(peer, 'read', req, signal, async (s, r, sig) => await s.read(r, sig, this.from), this.from)
  }

  async readMany (peer: string, req: ReadManyRequest, signal: AbortSignal): Promise<ReadManyResponse> {
    return await this.network.call(peer, 'readMany', req, signal, async (s, r, sig) => await s.readMany(r, sig, this.from), this.from)
  }

  async fetch (peer: string, req: FetchRequest, signal: AbortSignal): Promise<FetchResponse> {
    return await this.network.call(peer, 'fetch', req, signal, async (s, r, sig) => await s.fetch(r, sig, this.from), this.from)
  }

  async merkle (peer: string, req: MerkleRequest, signal: AbortSignal): Promise<MerkleResponse> {
    return await this.network.call(peer, 'merkle', req, signal, async (s, r, sig) => await s.merkle(r, sig, this.from), this.from)
  }

  async fetchRange (peer: string, req: FetchRangeRequest, signal: AbortSignal): Promise<FetchRangeResponse> {
    return await this.network.call(peer, 'fetchRange', req, signal, async (s, r, sig) => await s.fetchRange(r, sig, this.from), this.from)
  }

  async scan (peer: string, req: ScanRequest, signal: AbortSignal): Promise<ScanResponse> {
    return await this.network.call(peer, 'scan', req, signal, async (s, r, sig) => await s.scan(r, sig, this.from), this.from)
  }

  async purges (peer: string, req: PurgesRequest, signal: AbortSignal): Promise<PurgesResponse> {
    return await this.network.call(peer, 'purges', req, signal, async (s, r, sig) => await s.purges(r, sig, this.from), this.from)
  }
}

/**
 * Shared membership state for in-process nodes; `view(self)` gives each node its MembershipView.
 * Tests flip liveness with setAlive and change the ring with join/leave.
 */
export class LocalMembership {
  private readonly memberSet = new Set<string>()
  private readonly aliveSet = new Set<string>()
  private readonly joiningSet = new Set<string>()
  /** Members the ring let go of (leave, drop) that have not since said they are joining: see MembershipView.letGo. */
  private readonly letGoSet = new Set<string>()
  private readonly events = new EventEmitter()

  constructor (members: string[] = []) {
    this.events.setMaxListeners(0)
    for (const m of members) { this.memberSet.add(m); this.aliveSet.add(m) }
  }

  join (peer: string): void {
    this.memberSet.add(peer)
    this.aliveSet.add(peer)
    this.events.emit('join', peer)
  }

  leave (peer: string): void {
    this.memberSet.delete(peer)
    this.aliveSet.delete(peer)
    this.letGoSet.add(peer)
    this.events.emit('left', peer)
  }

  /**
   * Out of the ring without leaving: as a daemon's view drops a member dead past its grace (no `left`, which is a
   * graceful leave). Dead first, if it was alive.
   */
  drop (peer: string): void {
    this.memberSet.delete(peer)
    this.letGoSet.add(peer)
    if (this.aliveSet.delete(peer)) this.events.emit('dead', peer)
  }

  setAlive (peer: string, alive: boolean): void {
    if (alive === this.aliveSet.has(peer)) return
    if (alive) this.aliveSet.add(peer)
    else this.aliveSet.delete(peer)
    this.events.emit(alive ? 'alive' : 'dead', peer)
  }

  /** Said to be joining, as a daemon's tag says it (see setJoining). */
  isJoining (peer: string): boolean { return this.joiningSet.has(peer) }

  /** Announces a member as joining (or done joining), as its membership metadata would. */
  setJoining (peer: string, joining: boolean): void {
    if (joining) { this.joiningSet.add(peer); this.letGoSet.delete(peer) } else this.joiningSet.delete(peer)
  }

  view (self: string): MembershipView {
    return {
      self: () => self,
      members: () => [...this.memberSet],
      alive: () => [...this.aliveSet],
      isAlive: (id) => this.aliveSet.has(id),
      joining: () => [...this.joiningSet].filter(p => p !== self),
      letGo: (peer) => this.letGoSet.has(peer),
      on: (event: MembershipEvent, listener: (peerId: string) => void) => {
        this.events.on(event, listener)
        return () => { this.events.off(event, listener) }
      }
    }
  }
}
