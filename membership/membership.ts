import { sameItems } from '../lib/arrays.js'
import { systemClock, type Clock, type Random, type TimerHandle } from '../lib/clock.js'
import { silentLogger, type Logger } from '../lib/log.js'
import { TokenBuckets } from '../lib/token-bucket.js'
import { second } from '../lib/units.js'
import { BroadcastQueue } from './broadcast-queue.js'
import {
  emptyMessage, emptyMeta, kindToState, metaFromWire, metaToWire, signedBytes,
  stateRank, updateSize, validateMeta
} from './codec.js'
import * as C from './constants.js'
import { InvalidIncarnationError, JoinFailedError, MembershipNotRunningError } from './errors.js'
import { TypedEmitter } from './emitter.js'
import { Suspicion } from './suspicion.js'
import { Kind, MessageType, Update as UpdateCodec, type SwimMessage, type Update } from './swim.js'
import type {
  MemberInfo, MemberMeta, MembershipEvents, MembershipStats, MemberState, PeerAddress, Signer, Transport, Verifier
} from './types.js'

export interface MembershipInit {
  /** This node's peer id. */
  peerId: string
  /** This node's addresses, or a function read whenever this node re-announces itself. */
  addrs: string[] | (() => string[])
  transport: Transport
  signer: Signer
  verifier: Verifier
  /** @default systemClock */
  clock?: Clock
  /** @default Math.random */
  random?: Random
  /** @default silentLogger */
  logger?: Logger
  /** Initial metadata of this node. @default { tags: {}, capacity: 0, load: 0 } */
  meta?: Partial<MemberMeta>
  /** Addresses (each may end in /p2p/<id>) to join at start and to retry while healing. @default [] */
  seeds?: string[]
  /** @default PROBE_INTERVAL (600 ms) */
  probeInterval?: number
  /** @default PROBE_TIMEOUT (250 ms) */
  probeTimeout?: number
  /** @default INDIRECT_CHECKS (3) */
  indirectChecks?: number
  /** @default MAX_HEALTH_MULTIPLIER (8) */
  maxHealthMultiplier?: number
  /** @default SUSPICION_MIN_BASE (1.8 s) */
  suspicionMinBase?: number
  /** @default SUSPICION_LOG_SCALE (0.2) */
  suspicionLogScale?: number
  /** @default SUSPICION_MAX_MULT (4) */
  suspicionMaxMult?: number
  /** @default SUSPICION_CONFIRMATIONS (3) */
  suspicionConfirmations?: number
  /** @default RETRANSMIT_MULT (4) */
  retransmitMult?: number
  /** @default MAX_BROADCASTS (2048) */
  maxBroadcasts?: number
  /** @default MAX_PIGGYBACK (64) */
  maxPiggyback?: number
  /** @default MAX_PIGGYBACK_BYTES (8 KiB) */
  maxPiggybackBytes?: number
  /** @default GOSSIP_FANOUT (4) */
  gossipFanout?: number
  /** @default GOSSIP_DELAY (5 ms) */
  gossipDelay?: number
  /** @default PUSH_PULL_INTERVAL (30 s) */
  pushPullInterval?: number
  /** @default HEAL_INTERVAL (5 s) */
  healInterval?: number
  /** @default DEAD_RECLAIM_TIME (30 min) */
  deadReclaimTime?: number
  /** @default MAX_MESSAGE_BYTES (60 KiB) */
  maxMessageBytes?: number
  /** @default MAX_META_BYTES (1 KiB) */
  maxMetaBytes?: number
  /** @default LEAVE_DIRECT_MAX (128) */
  leaveDirectMax?: number
  /** @default LEAVE_LINGER (200 ms) */
  leaveLinger?: number
  /** @default LEAVE_TIMEOUT (2 s) */
  leaveTimeout?: number
  /** @default JOIN_TIMEOUT (10 s) */
  joinTimeout?: number
  /** @default VERIFIED_CACHE_SIZE (4096) */
  verifiedCacheSize?: number
  /**
   * The incarnation this life starts at. A process should start above any incarnation an earlier life of its peer id
   * signed, or that life's leave, replayed, holds this one `left` until it refutes: give it {@link incarnationSeed} of
   * the wall clock (createMembership does). Tests and the simulator on virtual time start at 0.
   * An integer in [0, MAX_INCARNATION / 2].
   * @default 0
   */
  incarnation?: number
}

/**
 * Where a new life's incarnation starts: whole seconds of `wallClockMs` since INCARNATION_EPOCH, so each process of a
 * peer starts above the last (which re-signed at most once a second on average), clamped to [0, MAX_INCARNATION / 2].
 */
export function incarnationSeed (wallClockMs: number): number {
  const s = Math.floor((wallClockMs - C.INCARNATION_EPOCH) / second)
  return Number.isFinite(s) ? Math.min(Math.max(0, s), C.MAX_INCARNATION / 2) : 0
}

interface MemberRecord {
  peerId: string
  addrs: string[]
  state: MemberState
  incarnation: number
  meta: MemberMeta
  stateSince: number
  /** The latest signed alive, kept so it can be forwarded (push-pull) with its signature. */
  alive?: Update
  /** The update that set the current state. */
  last: Update
  suspicion?: Suspicion
}

interface Probe {
  seq: number
  target: string
  acked: boolean
  direct: boolean
  expectedNacks: number
  nacks: number
  timers: TimerHandle[]
}

interface Relay {
  requester: string
  seq: number
  timer: TimerHandle
}

interface PendingJoin {
  seqs: Set<number>
  replied: number
  resolve: (n: number) => void
  reject: (err: Error) => void
  timer: TimerHandle
}

/** Probe outcome, reported to an optional observer (metrics). */
export type ProbeOutcome = 'ack' | 'indirect-ack' | 'fail'

const MAX_INCARNATION = C.MAX_INCARNATION

/** A claim about a member, preceded by the member's signed alive it is about, when we hold one. */
/**
 * The update with a signature of its own. Decoded bytes are views into the received frame (noise decrypts in place
 * into the socket's chunk), and a member's record holds its updates for as long as the member is known: each kept a
 * chunk of up to 64 KiB alive.
 */
function kept (u: Update): Update {
  const sig = u.signature
  return sig.byteLength === sig.buffer.byteLength ? u : { ...u, signature: sig.slice() }
}

function withAlive (rec: MemberRecord): Update[] {
  return rec.alive !== undefined && rec.alive !== rec.last ? [rec.alive, rec.last] : [rec.last]
}

function peerIdOfAddr (addr: string): string | undefined {
  const i = addr.lastIndexOf('/p2p/')
  if (i < 0) return undefined
  const id = addr.slice(i + 5)
  return id.includes('/') ? undefined : id
}

/**
 * SWIM membership with Lifeguard, as a state machine: it acts only through the injected transport and
 * clock, and learns only through onMessage(). One instance per node.
 */
export class Membership {
  readonly peerId: string
  readonly events: TypedEmitter<MembershipEvents>
  readonly stats: MembershipStats = {
    probes: 0,
    probeAcks: 0,
    probeIndirectAcks: 0,
    probeFailures: 0,
    refutations: 0,
    invalidSignatures: 0,
    invalidUpdates: 0,
    messagesSent: 0,
    messagesReceived: 0,
    pushPulls: 0,
    heals: 0,
    broadcastsDropped: 0,
    relaysRefused: 0,
    verifyBudgetExceeded: 0,
    oversizedUpdates: 0,
    addrsDropped: 0
  }

  /** Optional observer of probe outcomes (for metrics). */
  onProbeOutcome?: (outcome: ProbeOutcome) => void

  private readonly cfg: Required<Omit<MembershipInit, 'peerId' | 'addrs' | 'transport' | 'signer' | 'verifier' | 'clock' | 'random' | 'logger' | 'meta' | 'seeds' | 'incarnation'>>
  private readonly addrsOf: () => string[]
  private readonly transport: Transport
  private readonly signer: Signer
  private readonly verifier: Verifier
  private readonly clock: Clock
  private readonly random: Random
  private readonly log: Logger
  private readonly seeds: string[]
  private readonly seedIds = new Map<string, string>()

  private readonly table = new Map<string, MemberRecord>()
  /** Seed push-pulls sent to a bare address, so the reply can tell us whose address it is. */
  private readonly pendingSeedSeqs = new Map<number, string>()
  /** Unknown senders asked for their table, and when (see UNKNOWN_SENDER_PULL_INTERVAL). */
  private readonly unknownPulls = new Map<string, number>()
  private readonly queue: BroadcastQueue
  private readonly verified = new Map<string, { payload: Uint8Array, sig: Uint8Array }>()
  /** Signature checks left to each sender (see VERIFY_BURST), and the peer whose message is being handled. */
  private readonly verifyBudget: TokenBuckets
  private sender = ''
  private readonly probes = new Map<number, Probe>()
  private readonly relays = new Map<number, Relay>()
  private readonly joins = new Set<PendingJoin>()
  private readonly timers = new Set<TimerHandle>()

  private readonly aliveIds: string[] = []
  private readonly aliveIndex = new Map<string, number>()
  private liveCountCache = -1
  private running = false
  private leaving = false
  private seq = 0
  private lhm = 0
  /** When a claim about us last raised lhm (see applyAboutSelf). */
  private suspectedAt = -Infinity
  private probeOrder: string[] = []
  private probeIndex = 0
  private probeTimer?: TimerHandle
  private burstTimer?: TimerHandle

  constructor (init: MembershipInit) {
    this.peerId = init.peerId
    const addrs = init.addrs
    this.addrsOf = typeof addrs === 'function' ? addrs : () => addrs
    this.transport = init.transport
    this.signer = init.signer
    this.verifier = init.verifier
    this.clock = init.clock ?? systemClock
    this.verifyBudget = new TokenBuckets(C.VERIFIED_CACHE_SIZE, () => this.clock.now())
    this.random = init.random ?? Math.random
    this.log = init.logger ?? silentLogger
    this.seeds = init.seeds ?? []
    this.cfg = {
      probeInterval: init.probeInterval ?? C.PROBE_INTERVAL,
      probeTimeout: init.probeTimeout ?? C.PROBE_TIMEOUT,
      indirectChecks: init.indirectChecks ?? C.INDIRECT_CHECKS,
      maxHealthMultiplier: init.maxHealthMultiplier ?? C.MAX_HEALTH_MULTIPLIER,
      suspicionMinBase: init.suspicionMinBase ?? C.SUSPICION_MIN_BASE,
      suspicionLogScale: init.suspicionLogScale ?? C.SUSPICION_LOG_SCALE,
      suspicionMaxMult: init.suspicionMaxMult ?? C.SUSPICION_MAX_MULT,
      suspicionConfirmations: init.suspicionConfirmations ?? C.SUSPICION_CONFIRMATIONS,
      retransmitMult: init.retransmitMult ?? C.RETRANSMIT_MULT,
      maxBroadcasts: init.maxBroadcasts ?? C.MAX_BROADCASTS,
      maxPiggyback: init.maxPiggyback ?? C.MAX_PIGGYBACK,
      maxPiggybackBytes: init.maxPiggybackBytes ?? C.MAX_PIGGYBACK_BYTES,
      gossipFanout: init.gossipFanout ?? C.GOSSIP_FANOUT,
      gossipDelay: init.gossipDelay ?? C.GOSSIP_DELAY,
      pushPullInterval: init.pushPullInterval ?? C.PUSH_PULL_INTERVAL,
      healInterval: init.healInterval ?? C.HEAL_INTERVAL,
      deadReclaimTime: init.deadReclaimTime ?? C.DEAD_RECLAIM_TIME,
      maxMessageBytes: init.maxMessageBytes ?? C.MAX_MESSAGE_BYTES,
      maxMetaBytes: init.maxMetaBytes ?? C.MAX_META_BYTES,
      leaveDirectMax: init.leaveDirectMax ?? C.LEAVE_DIRECT_MAX,
      leaveLinger: init.leaveLinger ?? C.LEAVE_LINGER,
      leaveTimeout: init.leaveTimeout ?? C.LEAVE_TIMEOUT,
      joinTimeout: init.joinTimeout ?? C.JOIN_TIMEOUT,
      verifiedCacheSize: init.verifiedCacheSize ?? C.VERIFIED_CACHE_SIZE
    }
    this.queue = new BroadcastQueue({ maxEntries: this.cfg.maxBroadcasts })
    this.events = new TypedEmitter<MembershipEvents>(err => { this.log.error({ err }, 'membership event listener threw') })

    const meta = { ...emptyMeta(), ...init.meta, tags: { ...init.meta?.tags } }
    validateMeta(meta, this.cfg.maxMetaBytes)
    const incarnation = init.incarnation ?? 0
    if (!Number.isSafeInteger(incarnation) || incarnation < 0 || incarnation > MAX_INCARNATION / 2) {
      throw new InvalidIncarnationError(incarnation, MAX_INCARNATION / 2)
    }
    const now = this.clock.now()
    const self: MemberRecord = {
      peerId: this.peerId,
      addrs: this.addrsOf(),
      state: 'alive',
      incarnation,
      meta,
      stateSince: now,
      last: undefined as unknown as Update
    }
    this.table.set(this.peerId, self)
    this.signSelf()
  }

  // ---------------------------------------------------------------------------------------------
  // Public API

  get isRunning (): boolean { return this.running }

  /** Lifeguard local health multiplier, 0 (healthy) to maxHealthMultiplier. */
  get healthMultiplier (): number { return this.lhm }

  get incarnation (): number { return this.self.incarnation }

  /** Updates waiting to be gossiped. */
  get broadcastQueueSize (): number { return this.queue.size }

  /** λ·log10(N+1), rounded up: how often each update is retransmitted. */
  get retransmitLimit (): number {
    return Math.max(1, Math.ceil(this.cfg.retransmitMult * Math.log10(this.liveCount() + 1)))
  }

  /** The suspicion timeout floor at the current cluster size. */
  get suspicionMin (): number {
    const n = Math.max(this.liveCount(), 10)
    return Math.round(this.cfg.suspicionMinBase * (1 + this.cfg.suspicionLogScale * Math.log10(n / 10)))
  }

  start (): void {
    if (this.running) return
    this.running = true
    this.leaving = false
    this.lhm = 0
    const self = this.self
    if (self.state !== 'alive') {
      // Restarted after a leave: come back under a new incarnation so the left is outbid.
      self.incarnation++
      this.signSelf()
      this.setState(self, 'alive', self.last)
    }
    // stop() ended every suspicion: start them again, or a suspect would never be declared dead.
    for (const rec of this.table.values()) {
      if (rec.state === 'suspect' && rec.peerId !== this.peerId) this.startSuspicion(rec, rec.last.accuser !== '' ? rec.last.accuser : this.peerId)
    }
    this.reshuffle()
    // Random phases, so that nodes started together do not probe and push-pull in lockstep.
    this.probeTimer = this.clock.setTimeout(() => { this.probeTick() }, this.random() * this.cfg.probeInterval)
    this.after(this.random() * this.pushPullPeriod(), () => { this.pushPullTick() })
    this.after(this.cfg.healInterval * (0.5 + this.random()), () => { this.healTick() })
    this.after(this.cfg.deadReclaimTime / 10, () => { this.reapTick() })
    if (this.seeds.length > 0) this.join(this.seeds).catch(err => { this.log.debug({ err }, 'initial join failed; healing will retry the seeds') })
  }

  stop (): void {
    this.running = false
    this.endLinger?.()
    if (this.probeTimer !== undefined) this.clock.clearTimeout(this.probeTimer)
    this.probeTimer = undefined
    if (this.burstTimer !== undefined) this.clock.clearTimeout(this.burstTimer)
    this.burstTimer = undefined
    for (const t of this.timers) this.clock.clearTimeout(t)
    this.timers.clear()
    for (const p of this.probes.values()) for (const t of p.timers) this.clock.clearTimeout(t)
    this.probes.clear()
    for (const r of this.relays.values()) this.clock.clearTimeout(r.timer)
    this.relays.clear()
    for (const rec of this.table.values()) {
      rec.suspicion?.stop()
      rec.suspicion = undefined
    }
    for (const j of [...this.joins]) {
      this.clock.clearTimeout(j.timer)
      j.reject(new MembershipNotRunningError('join'))
    }
    this.joins.clear()
    this.queue.clear()
  }

  /** Every member this node knows of, itself included. */
  members (): MemberInfo[] {
    return [...this.table.values()].map(r => this.info(r))
  }

  /** How many members (this node included) are in each state; cheap, for polling. */
  stateCounts (): Record<MemberState, number> {
    const c: Record<MemberState, number> = { alive: 0, suspect: 0, dead: 0, left: 0 }
    for (const r of this.table.values()) c[r.state]++
    return c
  }

  aliveMembers (): MemberInfo[] {
    return [...this.table.values()].filter(r => r.state === 'alive').map(r => this.info(r))
  }

  member (peerId: string): MemberInfo | undefined {
    const r = this.table.get(peerId)
    return r === undefined ? undefined : this.info(r)
  }

  /**
   * Changes this node's metadata: validated, size-checked, then versioned by a new incarnation and
   * gossiped as a signed alive.
   */
  setMeta (patch: Partial<MemberMeta>): MemberInfo {
    const self = this.self
    const meta: MemberMeta = {
      tags: patch.tags !== undefined ? { ...patch.tags } : { ...self.meta.tags },
      capacity: patch.capacity ?? self.meta.capacity,
      load: patch.load ?? self.meta.load
    }
    validateMeta(meta, this.cfg.maxMetaBytes)
    self.meta = meta
    // A signed alive at a higher incarnation would outbid our own `left`, and the members would hold us dead instead.
    // The change is signed when this node starts again.
    if (this.leaving || self.state === 'left') return this.info(self)
    self.incarnation++
    this.signSelf()
    if (this.running) this.broadcast(self.last)
    return this.info(self)
  }

  /**
   * Joins through the given addresses: a push-pull with each. Resolves with how many answered within
   * the join timeout; rejects when none did.
   */
  async join (addrs: string[]): Promise<number> {
    if (!this.running) throw new MembershipNotRunningError('join')
    const targets = addrs.filter(a => peerIdOfAddr(a) !== this.peerId)
    if (targets.length === 0) return 0
    return await new Promise<number>((resolve, reject) => {
      const pending: PendingJoin = {
        seqs: new Set(),
        replied: 0,
        resolve,
        reject,
        timer: this.clock.setTimeout(() => {
          this.joins.delete(pending)
          if (pending.replied > 0) resolve(pending.replied)
          else reject(new JoinFailedError(`no seed answered within ${this.cfg.joinTimeout} ms: ${targets.join(', ')}`))
        }, this.cfg.joinTimeout)
      }
      this.joins.add(pending)
      for (const addr of targets) {
        const seq = this.nextSeq()
        pending.seqs.add(seq)
        this.sendPushPull({ peerId: peerIdOfAddr(addr), addrs: [addr] }, seq, true)
      }
    })
  }

  /**
   * Leaves gracefully: gossips a signed `left` (and sends it straight to every alive member in a small
   * cluster), keeps answering for a short linger so it spreads, then stops. Bounded by leaveTimeout.
   */
  async leave (): Promise<void> {
    if (!this.running || this.leaving) return
    this.leaving = true
    const self = this.self
    const left: Update = {
      kind: Kind.LEFT,
      member: this.peerId,
      incarnation: self.incarnation,
      addrs: [],
      accuser: '',
      signature: new Uint8Array(0)
    }
    const signed: Update = { ...left, signature: this.signer.sign(signedBytes(left)) as Uint8Array<ArrayBuffer> }
    this.setState(self, 'left', signed)
    this.queue.enqueue(signed, updateSize(signed))
    const alive = [...this.table.values()].filter(r => r.peerId !== this.peerId && (r.state === 'alive' || r.state === 'suspect'))
    if (alive.length <= this.cfg.leaveDirectMax) {
      for (const r of alive) this.sendTo(r, { ...emptyMessage(MessageType.GOSSIP), updates: [signed] })
    }
    this.burst()
    const wait = Math.min(this.cfg.leaveLinger, this.cfg.leaveTimeout)
    // A stop() during the linger clears the timer; it ends the wait too, or this leave would never return.
    await new Promise<void>(resolve => {
      this.endLinger = resolve
      this.after(wait, resolve)
    })
    this.endLinger = undefined
    this.stop()
  }

  /** Ends a leave's linger early: set while `leave` waits, called by `stop`. */
  private endLinger?: () => void

  // ---------------------------------------------------------------------------------------------
  // Receiving

  /** Entry point for every message the transport receives. Never throws. */
  onMessage (from: string, msg: SwimMessage): void {
    if (!this.running || from === this.peerId) return
    this.stats.messagesReceived++
    try {
      this.handle(from, msg)
    } catch (err) {
      this.log.warn({ err, from }, 'failed to handle membership message')
    }
  }

  private handle (from: string, msg: SwimMessage): void {
    this.sender = from
    try {
      this.handleFrom(from, msg)
    } finally {
      this.sender = ''
    }
  }

  private handleFrom (from: string, msg: SwimMessage): void {
    if (msg.type !== MessageType.PUSH_PULL && msg.type !== MessageType.PUSH_PULL_REPLY) this.pullFromUnknown(from)
    switch (msg.type) {
      case MessageType.PING:
        this.applyUpdates(from, msg.updates)
        // A ping meant for a peer that used to have this address is not ours to answer.
        if (msg.target !== '' && msg.target !== this.peerId) return
        this.reply(from, { ...emptyMessage(MessageType.ACK), seq: msg.seq })
        return
      case MessageType.ACK:
        this.applyUpdates(from, msg.updates)
        this.onAck(from, msg.seq)
        return
      case MessageType.NACK:
        this.applyUpdates(from, msg.updates)
        this.onNack(msg.seq)
        return
      case MessageType.PING_REQ:
        this.applyUpdates(from, msg.updates)
        this.onPingReq(from, msg)
        return
      case MessageType.GOSSIP:
        this.applyUpdates(from, msg.updates)
        return
      case MessageType.PUSH_PULL:
        this.stats.pushPulls++
        this.merge(from, msg.states)
        this.applyUpdates(from, msg.updates)
        // One reply per push-pull, however many parts it came in.
        if (msg.part === 0) this.sendTable(this.addressOf(from), MessageType.PUSH_PULL_REPLY, msg.seq, false)
        return
      case MessageType.PUSH_PULL_REPLY:
        this.merge(from, msg.states)
        this.applyUpdates(from, msg.updates)
        if (msg.part === 0) this.onPushPullReply(from, msg.seq)
    }
  }

  private onAck (from: string, seq: number): void {
    const probe = this.probes.get(seq)
    if (probe !== undefined) {
      if (!probe.acked) {
        probe.acked = true
        probe.direct = from === probe.target
      }
      return
    }
    const relay = this.relays.get(seq)
    if (relay !== undefined) {
      this.relays.delete(seq)
      this.clock.clearTimeout(relay.timer)
      this.reply(relay.requester, { ...emptyMessage(MessageType.ACK), seq: relay.seq })
    }
  }

  private onNack (seq: number): void {
    const probe = this.probes.get(seq)
    if (probe === undefined) return
    // Nacks only tell our own health (finishProbe). The probe still waits out its period for an ack, as memberlist's
    // does: ending it once every relay had nacked failed targets whose answer takes longer than a relay's nack.
    probe.nacks++
  }

  private onPingReq (from: string, msg: SwimMessage): void {
    if (msg.target === this.peerId) {
      this.reply(from, { ...emptyMessage(MessageType.ACK), seq: msg.seq })
      return
    }
    if (this.relays.size >= C.MAX_PENDING_RELAYS) return
    // A target this node has not heard of yet (a member that just joined) is probed at the addresses the requester
    // gives only if the requester is itself a live member: a relay for anyone to any address let a stranger make this
    // node dial wherever it liked and fill the transport's tables with targets that never answer.
    const known = this.table.get(msg.target)
    const requester = this.table.get(from)
    if (known === undefined && (requester === undefined || (requester.state !== 'alive' && requester.state !== 'suspect'))) {
      this.stats.relaysRefused++
      return
    }
    const relaySeq = this.nextSeq()
    const timeout = this.cfg.probeTimeout * C.NACK_TIMEOUT_FRACTION
    const relay: Relay = { requester: from, seq: msg.seq, timer: undefined as unknown as TimerHandle }
    relay.timer = this.clock.setTimeout(() => {
      if (this.relays.get(relaySeq) !== relay) return
      this.reply(from, { ...emptyMessage(MessageType.NACK), seq: msg.seq })
      // A late ack still counts while the requester's probe waits out its period (it ends no sooner for the nack), so
      // it is passed on until then.
      relay.timer = this.clock.setTimeout(() => { if (this.relays.get(relaySeq) === relay) this.relays.delete(relaySeq) }, this.cfg.probeInterval)
    }, timeout)
    this.relays.set(relaySeq, relay)
    const to: PeerAddress = { peerId: msg.target, addrs: known !== undefined && known.addrs.length > 0 ? known.addrs : msg.targetAddrs }
    this.sendPing(to, relaySeq, known)
  }

  private onPushPullReply (from: string, seq: number): void {
    const seedAddr = this.pendingSeedSeqs.get(seq)
    if (seedAddr !== undefined) {
      this.pendingSeedSeqs.delete(seq)
      this.seedIds.set(seedAddr, from)
    }
    for (const j of this.joins) {
      if (j.seqs.delete(seq)) {
        j.replied++
        if (j.seqs.size === 0) {
          this.joins.delete(j)
          this.clock.clearTimeout(j.timer)
          j.resolve(j.replied)
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Applying updates (the incarnation rules)

  private applyUpdates (from: string, updates: Update[]): void {
    for (const u of updates) this.apply(u, from)
  }

  /**
   * Merges a push-pull table. A remote `dead` is taken only as `suspect` (as memberlist does): after a
   * partition each side holds the other dead, and taking that at face value would kill live members
   * that simply had not heard of the partition; as a suspicion, the member gets to refute.
   * Members we have never heard of that the remote holds dead or left are not recorded, as memberlist does: every
   * node reaps them on its own clock, and a record taken from a node that has not reaped yet came back with its time
   * of death reset to now, so a member dead for good circulated for ever and looked freshly dead (storage puts a member
   * dead for less than its grace back in its ring).
   */
  private merge (from: string, states: Update[]): void {
    const groups = new Map<string, { alive?: Update, other?: Update }>()
    for (const u of states) {
      let g = groups.get(u.member)
      if (g === undefined) {
        g = {}
        groups.set(u.member, g)
      }
      if (u.kind === Kind.ALIVE) g.alive = u
      else g.other = u
    }
    for (const [member, g] of groups) {
      if (member !== this.peerId && !this.table.has(member) && (g.other?.kind === Kind.DEAD || g.other?.kind === Kind.LEFT)) continue
      if (g.alive !== undefined) this.apply(g.alive, from)
      if (g.other !== undefined) {
        const u = g.other.kind === Kind.DEAD
          ? { ...g.other, kind: Kind.SUSPECT, accuser: g.other.accuser !== '' ? g.other.accuser : from }
          : g.other
        this.apply(u, from)
      }
    }
  }

  /** Applies one update under SWIM's rules; returns whether it changed anything. */
  private apply (u: Update, from: string): boolean {
    if (u.member === '') return false
    if (u.member === this.peerId) return this.applyAboutSelf(u, from)
    const rec = this.table.get(u.member)
    const state = kindToState(u.kind)

    if (u.kind === Kind.ALIVE) {
      if (rec !== undefined && u.incarnation <= rec.incarnation) return false
      // Kept before the checks, so that the size they measure (cached per update) is the one broadcast reuses.
      u = kept(u)
      if (!this.validAlive(u)) return false
      const meta = metaFromWire(u.meta)
      if (rec === undefined) {
        const fresh: MemberRecord = {
          peerId: u.member,
          addrs: u.addrs,
          state: 'alive',
          incarnation: u.incarnation,
          meta,
          stateSince: this.clock.now(),
          alive: u,
          last: u
        }
        this.table.set(u.member, fresh)
        this.track(fresh)
        this.insertProbeTarget(u.member)
        this.broadcast(u)
        this.events.emit('join', { member: this.info(fresh) })
        return true
      }
      const previous = rec.state
      const changed = !sameMeta(rec.meta, meta) || !sameItems(rec.addrs, u.addrs)
      rec.addrs = u.addrs
      rec.meta = meta
      rec.alive = u
      rec.incarnation = u.incarnation
      this.setState(rec, 'alive', u)
      this.broadcast(u)
      if (previous === 'dead' || previous === 'left') {
        this.insertProbeTarget(u.member)
        this.events.emit('join', { member: this.info(rec), previous })
      } else if (previous === 'suspect') {
        this.events.emit('alive', { member: this.info(rec), previous })
        // Its new addresses or metadata (a load published while it was suspected) are news of their own.
        if (changed) this.events.emit('update', { member: this.info(rec), previous: 'alive' })
      } else if (changed) {
        this.events.emit('update', { member: this.info(rec), previous })
      }
      return true
    }

    if (rec === undefined) return false
    if (u.incarnation < rec.incarnation) return false
    // Suspect and dead are unsigned: only take them about an incarnation the member itself signed
    // (one we hold an alive for), or anyone could push a member's incarnation up to the limit.
    if (u.kind !== Kind.LEFT && u.incarnation > (rec.alive?.incarnation ?? -1)) return false

    if (u.kind === Kind.SUSPECT && rec.state === 'suspect' && u.incarnation === rec.incarnation) {
      // Another accuser: a Lifeguard confirmation. Re-gossip it only while it still shortens the timeout. Accusers are
      // unauthenticated, so only a live member we know counts: one peer naming K invented accusers in one message cut
      // the timeout to its floor, as if K members had failed to reach the suspect independently.
      if (this.isLiveAccuser(u.accuser, u.member) && rec.suspicion?.confirm(u.accuser) === true) this.broadcast(u)
      return false
    }
    if (u.incarnation === rec.incarnation && stateRank(state) <= stateRank(rec.state)) return false
    if (u.kind === Kind.LEFT && !this.verify(u)) return false
    u = kept(u)

    const previous = rec.state
    rec.incarnation = u.incarnation
    this.setState(rec, state, u)
    this.broadcast(u)
    if (state === 'suspect') this.startSuspicion(rec, u.accuser !== '' ? u.accuser : from)
    this.events.emit(state as 'suspect' | 'dead' | 'left', { member: this.info(rec), previous })
    return true
  }

  private applyAboutSelf (u: Update, from: string): boolean {
    const self = this.self
    if (this.leaving) return false
    switch (u.kind) {
      case Kind.ALIVE:
        // Our own alive from a previous run (we restarted with a lower incarnation, or the same one
        // with other addresses or metadata): outbid it, or the old version would stand.
        if (u.incarnation < self.incarnation) return false
        if (u.incarnation === self.incarnation && self.alive !== undefined && bytesEqual(signedBytes(u), signedBytes(self.alive))) return false
        if (u.incarnation < MAX_INCARNATION && this.verify(u)) {
          this.refute(u.incarnation, [from])
          return true
        }
        return false
      case Kind.SUSPECT:
      case Kind.DEAD:
        // Unsigned, so only a claim about the incarnation we hold now is refuted. One about a higher incarnation can be
        // true only of an earlier life of this node; then our signed alive from that life comes with it (push-pull,
        // reply, buddy ping) and is refuted first. Taken alone, anyone could push our incarnation to the limit, and
        // we could never refute again.
        if (u.incarnation !== self.incarnation) return false
        // Being suspected hints that we are the slow one (Lifeguard): back off a little. Only when a live member we
        // know accuses us, and once a protocol period (a member is probed about once a round, and a refutation
        // outbids every claim made before it arrives): a stream of claims, each about the incarnation the last
        // refutation made, pegged the multiplier and slowed our probing ninefold.
        const now = this.clock.now()
        if (this.isLiveAccuser(u.accuser, this.peerId) && now - this.suspectedAt >= this.cfg.probeInterval) {
          this.suspectedAt = now
          this.adjustHealth(1)
        }
        // The refutation goes straight to the accuser only when it is a member we know: sending to any id a claim
        // names had the transport dial (and keep state for) peers that do not exist. Whoever told us is connected.
        this.refute(u.incarnation, this.table.has(u.accuser) ? [u.accuser, from] : [from])
        return true
      case Kind.LEFT:
        // A leave from an earlier life of this node, still circulating.
        if (u.incarnation < self.incarnation || u.incarnation >= MAX_INCARNATION || !this.verify(u)) return false
        this.refute(u.incarnation, [from])
        return true
    }
  }

  /**
   * Outbids a claim about us with a higher incarnation, gossips it, and also sends it straight to
   * the accusers and to whoever told us, so that a node that was only frozen is not declared dead
   * while gossip takes its time.
   */
  private refute (claimed: number, notify: string[]): void {
    const self = this.self
    self.incarnation = Math.max(self.incarnation, claimed) + 1
    this.stats.refutations++
    this.signSelf()
    this.broadcast(self.last)
    const msg = { ...emptyMessage(MessageType.GOSSIP), updates: [self.last] }
    for (const id of new Set(notify)) {
      if (id === '' || id === this.peerId) continue
      this.transport.send(this.addressOf(id), this.counted(msg))
    }
  }

  /** Whether `accuser` is a live member this node knows (itself included), other than the member it accuses. */
  private isLiveAccuser (accuser: string, suspect: string): boolean {
    if (accuser === '' || accuser === suspect) return false
    const rec = this.table.get(accuser)
    return rec !== undefined && (rec.state === 'alive' || rec.state === 'suspect')
  }

  private validAlive (u: Update): boolean {
    if (!aliveFits(u, updateSize(u))) {
      this.stats.oversizedUpdates++
      return false
    }
    const meta = metaFromWire(u.meta)
    try {
      validateMeta(meta, this.cfg.maxMetaBytes)
    } catch {
      this.stats.invalidUpdates++
      return false
    }
    return this.verify(u)
  }

  /** Checks the member's own signature on an alive or left, remembering what was verified. */
  private verify (u: Update): boolean {
    const payload = signedBytes(u)
    // One entry per member and kind, its latest verified update: a member that re-signs often (its load changes with
    // every task) does not fill the cache with incarnations no one will send again.
    const key = `${u.kind}:${u.member}`
    const hit = this.verified.get(key)
    if (hit !== undefined && bytesEqual(hit.payload, payload) && bytesEqual(hit.sig, u.signature)) return true
    if (!this.chargeVerify()) {
      this.stats.verifyBudgetExceeded++
      return false
    }
    if (!this.verifier.verify(u.member, payload, u.signature)) {
      this.stats.invalidSignatures++
      this.log.debug({ member: u.member, kind: u.kind, incarnation: u.incarnation }, 'rejected update with a bad signature')
      return false
    }
    this.verified.delete(key)
    if (this.verified.size >= this.cfg.verifiedCacheSize) {
      // Map iteration is insertion order: dropping the first entry forgets the oldest.
      const first = this.verified.keys().next().value
      if (first !== undefined) this.verified.delete(first)
    }
    // Copies: both are views, the payload into a 64 KiB pooled buffer and the signature into the received message,
    // and kept as they are, each entry held its whole buffer (35 MB on a node after nine minutes of tasks).
    this.verified.set(key, { payload: new Uint8Array(payload), sig: new Uint8Array(u.signature) })
    return true
  }

  /** Takes one signature check from the current sender's budget; false when it has none left. */
  private chargeVerify (): boolean {
    return this.sender === '' || this.verifyBudget.take(this.sender, C.VERIFY_RATE, C.VERIFY_BURST)
  }

  private setState (rec: MemberRecord, state: MemberState, u: Update): void {
    if (rec.state !== state) rec.stateSince = this.clock.now()
    rec.state = state
    rec.last = u
    this.track(rec)
    if (state !== 'suspect') {
      rec.suspicion?.stop()
      rec.suspicion = undefined
    }
  }

  private startSuspicion (rec: MemberRecord, accuser: string): void {
    rec.suspicion?.stop()
    const k = Math.min(this.cfg.suspicionConfirmations, Math.max(0, this.liveCount() - 2))
    const min = this.suspicionMin
    const incarnation = rec.incarnation
    rec.suspicion = new Suspicion({
      clock: this.clock,
      accuser,
      confirmations: k,
      min,
      max: min * this.cfg.suspicionMaxMult,
      onTimeout: () => {
        rec.suspicion = undefined
        if (!this.running || rec.state !== 'suspect' || rec.incarnation !== incarnation) return
        this.log.info({ member: rec.peerId, incarnation }, 'suspicion timed out; member is dead')
        this.apply({ kind: Kind.DEAD, member: rec.peerId, incarnation, addrs: [], accuser: this.peerId, signature: new Uint8Array(0) }, this.peerId)
      }
    })
  }

  // ---------------------------------------------------------------------------------------------
  // Probing

  private probeTick (): void {
    this.probeTimer = undefined
    if (!this.running) return
    const scale = this.lhm + 1
    const period = this.cfg.probeInterval * scale
    this.probeTimer = this.clock.setTimeout(() => { this.probeTick() }, period)
    if (this.leaving) return
    const target = this.nextProbeTarget()
    if (target === undefined) return
    const seq = this.nextSeq()
    const probe: Probe = { seq, target: target.peerId, acked: false, direct: false, expectedNacks: 0, nacks: 0, timers: [] }
    this.probes.set(seq, probe)
    this.stats.probes++
    this.sendPing(target, seq, target)
    probe.timers.push(this.clock.setTimeout(() => { this.indirectProbe(probe) }, this.cfg.probeTimeout * scale))
    // Ends just before the next tick, so a late ack still counts and one probe never overlaps the next.
    probe.timers.push(this.clock.setTimeout(() => { this.finishProbe(probe) }, Math.max(1, period - 1)))
  }

  private indirectProbe (probe: Probe): void {
    if (probe.acked || !this.running) return
    const target = this.table.get(probe.target)
    if (target === undefined) return
    const relays = this.randomAlive(this.cfg.indirectChecks, probe.target)
    probe.expectedNacks = relays.length
    for (const r of relays) {
      this.sendTo(r, { ...emptyMessage(MessageType.PING_REQ), seq: probe.seq, target: target.peerId, targetAddrs: target.addrs })
    }
  }

  private finishProbe (probe: Probe): void {
    this.probes.delete(probe.seq)
    for (const t of probe.timers) this.clock.clearTimeout(t)
    if (!this.running) return
    if (probe.acked) {
      if (probe.direct) this.stats.probeAcks++
      else this.stats.probeIndirectAcks++
      this.onProbeOutcome?.(probe.direct ? 'ack' : 'indirect-ack')
      this.adjustHealth(-1)
      return
    }
    this.stats.probeFailures++
    this.onProbeOutcome?.('fail')
    // Lifeguard: relays that should have nacked but did not point at our own links; with no relays at
    // all, any failure counts against us.
    this.adjustHealth(probe.expectedNacks > 0 ? Math.max(0, probe.expectedNacks - probe.nacks) : 1)
    const rec = this.table.get(probe.target)
    if (rec === undefined || (rec.state !== 'alive' && rec.state !== 'suspect')) return
    this.log.debug({ member: rec.peerId, incarnation: rec.incarnation }, 'probe failed; suspecting')
    this.apply({ kind: Kind.SUSPECT, member: rec.peerId, incarnation: rec.incarnation, addrs: [], accuser: this.peerId, signature: new Uint8Array(0) }, this.peerId)
  }

  private adjustHealth (delta: number): void {
    this.lhm = Math.max(0, Math.min(this.cfg.maxHealthMultiplier, this.lhm + delta))
  }

  /** Randomised round robin: every member once per round, in a fresh random order each round. */
  private nextProbeTarget (): MemberRecord | undefined {
    for (let tries = 0; tries < 2; tries++) {
      while (this.probeIndex < this.probeOrder.length) {
        const rec = this.table.get(this.probeOrder[this.probeIndex++])
        if (rec !== undefined && rec.peerId !== this.peerId && (rec.state === 'alive' || rec.state === 'suspect')) return rec
      }
      this.reshuffle()
    }
    return undefined
  }

  private reshuffle (): void {
    const ids = [...this.table.values()]
      .filter(r => r.peerId !== this.peerId && (r.state === 'alive' || r.state === 'suspect'))
      .map(r => r.peerId)
    this.shuffle(ids)
    this.probeOrder = ids
    this.probeIndex = 0
  }

  /** New members go to a random place in the rest of this round, so they are probed soon but not first. */
  private insertProbeTarget (peerId: string): void {
    const lo = this.probeIndex
    const at = lo + Math.floor(this.random() * (this.probeOrder.length - lo + 1))
    this.probeOrder.splice(at, 0, peerId)
  }

  // ---------------------------------------------------------------------------------------------
  // Dissemination

  /** Queues an update for piggybacking and schedules a burst to a few random members. */
  private broadcast (u: Update): void {
    this.queue.enqueue(u, updateSize(u))
    this.stats.broadcastsDropped = this.queue.dropped
    if (!this.running || this.burstTimer !== undefined) return
    this.burstTimer = this.clock.setTimeout(() => {
      this.burstTimer = undefined
      this.burst()
    }, this.cfg.gossipDelay)
  }

  private burst (): void {
    if (!this.running) return
    const targets = this.randomAlive(this.cfg.gossipFanout)
    for (const r of targets) {
      const updates = this.queue.take({
        maxCount: this.cfg.maxPiggyback,
        maxBytes: this.cfg.maxPiggybackBytes,
        retransmitLimit: this.retransmitLimit,
        belowTransmits: this.cfg.gossipFanout
      })
      if (updates.length === 0) break
      this.transport.send({ peerId: r.peerId, addrs: r.addrs }, this.counted({ ...emptyMessage(MessageType.GOSSIP), updates }))
    }
  }

  private sendPing (to: PeerAddress, seq: number, known: MemberRecord | undefined): void {
    const msg: SwimMessage = { ...emptyMessage(MessageType.PING), seq, target: to.peerId ?? '' }
    // Buddy system: a suspect learns of the suspicion from the very ping that checks on it.
    // Its signed alive goes too: a node that restarted since refutes only claims about a life it can see was its own.
    if (known?.state === 'suspect') msg.updates = withAlive(known)
    this.send(to, msg)
  }

  private sendTo (rec: MemberRecord, msg: SwimMessage): void {
    this.send({ peerId: rec.peerId, addrs: rec.addrs }, msg)
  }

  private reply (to: string, msg: SwimMessage): void {
    const rec = this.table.get(to)
    // Someone we hold suspect, dead or left is talking to us: tell it, so it can refute at once. A member held left
    // while it runs is one whose leave from an earlier life was replayed after it restarted (a leaving member ignores
    // claims about itself while it lingers): gossip about it may have died out long before it talks to us again.
    if (rec !== undefined && rec.state !== 'alive') msg.updates = withAlive(rec)
    this.send(this.addressOf(to), msg)
  }

  /** Sends with piggybacked gossip. */
  private send (to: PeerAddress, msg: SwimMessage): void {
    const already = msg.updates
    const room = this.cfg.maxPiggyback - already.length
    if (room > 0) {
      const more = this.queue.take({
        maxCount: room,
        maxBytes: this.cfg.maxPiggybackBytes,
        retransmitLimit: this.retransmitLimit,
        skipMember: already[0]?.member
      })
      if (more.length > 0) msg.updates = already.length === 0 ? more : [...already, ...more]
    }
    this.transport.send(to, this.counted(msg))
  }

  private counted (msg: SwimMessage): SwimMessage {
    this.stats.messagesSent++
    return msg
  }

  // ---------------------------------------------------------------------------------------------
  // Push-pull and healing

  /** memberlist's scaling: beyond 32 members, push-pull slows with log2(N) so its total cost stays flat. */
  private pushPullPeriod (): number {
    const n = this.liveCount()
    const mult = n <= 32 ? 1 : Math.ceil(Math.log2(n) - Math.log2(32)) + 1
    return this.cfg.pushPullInterval * mult
  }

  private pushPullTick (): void {
    if (!this.running) return
    this.after(this.pushPullPeriod() * (0.75 + this.random() * 0.5), () => { this.pushPullTick() })
    if (this.leaving) return
    const [peer] = this.randomAlive(1)
    if (peer !== undefined) this.sendPushPull({ peerId: peer.peerId, addrs: peer.addrs }, this.nextSeq(), false)
  }

  /**
   * Healing, the part memberlist lacks (#222): members held dead are never probed, so two halves
   * of a healed partition would stay apart. Now and then, push-pull with a random dead member or with
   * a seed that is not a known live member; the exchange makes both sides refute and re-merge.
   */
  private healTick (): void {
    if (!this.running) return
    this.after(this.cfg.healInterval * (0.75 + this.random() * 0.5), () => { this.healTick() })
    if (this.leaving) return
    const candidates: PeerAddress[] = []
    for (const r of this.table.values()) {
      if (r.state === 'dead') candidates.push({ peerId: r.peerId, addrs: r.addrs })
    }
    for (const addr of this.seeds) {
      const id = peerIdOfAddr(addr) ?? this.seedIds.get(addr)
      if (id === this.peerId) continue
      const known = id === undefined ? undefined : this.table.get(id)
      if (known !== undefined && (known.state === 'alive' || known.state === 'suspect')) continue
      candidates.push({ peerId: id, addrs: [addr] })
    }
    if (candidates.length === 0) return
    const to = candidates[Math.floor(this.random() * candidates.length)]
    this.stats.heals++
    const seq = this.nextSeq()
    this.sendPushPull(to, seq, false)
  }

  /**
   * A restarted seedless node is probed by members that never declared it dead, so none of them heals with it, and
   * gossip repeats no old joins: without this it learned its last member only at its next push-pull (up to 30 s),
   * and a store building its ring meanwhile placed keys on the wrong replicas.
   */
  private pullFromUnknown (from: string): void {
    if (this.leaving || this.table.has(from)) {
      if (this.unknownPulls.size > 0) this.unknownPulls.delete(from)
      return
    }
    const now = this.clock.now()
    const last = this.unknownPulls.get(from)
    if (last !== undefined && now - last < C.UNKNOWN_SENDER_PULL_INTERVAL) return
    if (this.unknownPulls.size >= this.cfg.verifiedCacheSize) this.unknownPulls.clear()
    this.unknownPulls.set(from, now)
    this.sendPushPull(this.addressOf(from), this.nextSeq(), false)
  }

  private sendPushPull (to: PeerAddress, seq: number, join: boolean): void {
    if (to.peerId === undefined && to.addrs.length === 1) this.pendingSeedSeqs.set(seq, to.addrs[0])
    this.sendTable(to, MessageType.PUSH_PULL, seq, join)
  }

  /** Sends our whole table, in as many parts as maxMessageBytes requires. */
  private sendTable (to: PeerAddress, type: MessageType, seq: number, join: boolean): void {
    const parts = this.snapshotParts()
    parts.forEach((states, part) => {
      this.transport.send(to, this.counted({ ...emptyMessage(type), seq, join, states, part, parts: parts.length }))
    })
  }

  /**
   * Our table for push-pull: each member's signed alive, followed by its current state when it is not
   * alive (so the pair is never split across parts). Our own entry comes first, in part 0.
   */
  private snapshotParts (): Update[][] {
    const budget = this.cfg.maxMessageBytes - 64
    const parts: Update[][] = []
    let cur: Update[] = []
    let bytes = 0
    const add = (r: MemberRecord): void => {
      const group = r.alive !== undefined && r.last !== r.alive ? [r.alive, r.last] : [r.last]
      const size = group.reduce((s, u) => s + updateSize(u) + 4, 0)
      if (bytes + size > budget && cur.length > 0) {
        parts.push(cur)
        cur = []
        bytes = 0
      }
      cur.push(...group)
      bytes += size
    }
    add(this.self)
    for (const r of this.table.values()) if (r.peerId !== this.peerId) add(r)
    parts.push(cur)
    return parts
  }

  private reapTick (): void {
    if (!this.running) return
    this.after(this.cfg.deadReclaimTime / 10, () => { this.reapTick() })
    const now = this.clock.now()
    for (const r of [...this.table.values()]) {
      if ((r.state === 'dead' || r.state === 'left') && now - r.stateSince > this.cfg.deadReclaimTime) {
        this.table.delete(r.peerId)
        this.track(r, true)
      }
    }
    // The pending-seed map only matters for replies; anything older than a few periods is noise.
    if (this.pendingSeedSeqs.size > 256) this.pendingSeedSeqs.clear()
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers

  private get self (): MemberRecord {
    return this.table.get(this.peerId) as MemberRecord
  }

  private signSelf (): void {
    const self = this.self
    const all = this.addrsOf()
    // Within the bounds every receiver checks (aliveFits): too long ones go, then the last ones, until it fits.
    const addrs = all.filter(a => Buffer.byteLength(a) <= C.MAX_ADDR_BYTES).slice(0, C.MAX_ADDRS)
    const u: Update = {
      kind: Kind.ALIVE,
      member: this.peerId,
      incarnation: self.incarnation,
      addrs,
      meta: metaToWire(self.meta),
      accuser: '',
      signature: new Uint8Array(ED25519_SIGNATURE_BYTES)
    }
    while (addrs.length > 0 && !aliveFits(u, UpdateCodec.encode(u).byteLength)) {
      addrs.pop()
      u.addrs = [...addrs]
    }
    if (all.length > u.addrs.length && this.stats.addrsDropped !== all.length - u.addrs.length) {
      this.log.warn({ addrs: all.length, kept: u.addrs.length }, 'too many or too long addresses for a signed alive; the rest are not announced')
    }
    this.stats.addrsDropped = all.length - u.addrs.length
    self.addrs = u.addrs
    const signed: Update = { ...u, signature: this.signer.sign(signedBytes({ ...u, signature: new Uint8Array(0) })) as Uint8Array<ArrayBuffer> }
    self.alive = signed
    self.last = signed
  }

  private info (r: MemberRecord): MemberInfo {
    return {
      peerId: r.peerId,
      addrs: [...r.addrs],
      state: r.state,
      incarnation: r.incarnation,
      meta: { tags: { ...r.meta.tags }, capacity: r.meta.capacity, load: r.meta.load },
      stateSince: r.stateSince
    }
  }

  /** Members not known to be dead or gone, this node included. */
  private liveCount (): number {
    if (this.liveCountCache < 0) {
      let n = 0
      for (const r of this.table.values()) if (r.state === 'alive' || r.state === 'suspect') n++
      this.liveCountCache = n
    }
    return this.liveCountCache
  }

  /**
   * Keeps the derived indexes in step with a record's state: the list of alive peers (random choices
   * are O(k), not O(N), which matters at N=1000) and the cached live count.
   */
  private track (rec: MemberRecord, removed = false): void {
    this.liveCountCache = -1
    if (rec.peerId === this.peerId) return
    const at = this.aliveIndex.get(rec.peerId)
    const want = !removed && rec.state === 'alive'
    if (want && at === undefined) {
      this.aliveIndex.set(rec.peerId, this.aliveIds.length)
      this.aliveIds.push(rec.peerId)
    } else if (!want && at !== undefined) {
      const last = this.aliveIds.pop() as string
      if (last !== rec.peerId) {
        this.aliveIds[at] = last
        this.aliveIndex.set(last, at)
      }
      this.aliveIndex.delete(rec.peerId)
    }
  }

  private addressOf (peerId: string): PeerAddress {
    return { peerId, addrs: this.table.get(peerId)?.addrs ?? [] }
  }

  /** Up to k distinct random alive members other than `except`. */
  private randomAlive (k: number, except?: string): MemberRecord[] {
    const ids = this.aliveIds
    if (ids.length <= 4 * k) return this.randomMembers(k, r => r.state === 'alive' && r.peerId !== except)
    const picked = new Set<string>()
    const out: MemberRecord[] = []
    for (let tries = 0; out.length < k && tries < 8 * k; tries++) {
      const id = ids[Math.floor(this.random() * ids.length)]
      if (id === except || picked.has(id)) continue
      picked.add(id)
      out.push(this.table.get(id) as MemberRecord)
    }
    return out
  }

  private randomMembers (k: number, pred: (r: MemberRecord) => boolean): MemberRecord[] {
    const pool: MemberRecord[] = []
    for (const r of this.table.values()) if (r.peerId !== this.peerId && pred(r)) pool.push(r)
    // Partial Fisher-Yates: only the first k places are drawn.
    const n = Math.min(k, pool.length)
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(this.random() * (pool.length - i))
      ;[pool[i], pool[j]] = [pool[j], pool[i]]
    }
    return pool.slice(0, n)
  }

  private shuffle<T>(a: T[]): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1))
      ;[a[i], a[j]] = [a[j], a[i]]
    }
  }

  private nextSeq (): number {
    this.seq = (this.seq + 1) >>> 0
    if (this.seq === 0) this.seq = 1
    return this.seq
  }

  /** A timer that stop() clears. */
  private after (ms: number, fn: () => void): void {
    const handle = this.clock.setTimeout(() => {
      this.timers.delete(handle)
      fn()
    }, ms)
    this.timers.add(handle)
  }
}

/** Ed25519; the bound on a whole alive is checked as if signed, before signing. */
const ED25519_SIGNATURE_BYTES = 64

/** Whether an alive of `size` encoded bytes is within the bounds (MAX_ADDRS, MAX_ADDR_BYTES, MAX_ALIVE_BYTES). */
function aliveFits (u: Update, size: number): boolean {
  if (u.addrs.length > C.MAX_ADDRS || size > C.MAX_ALIVE_BYTES) return false
  for (const a of u.addrs) if (Buffer.byteLength(a) > C.MAX_ADDR_BYTES) return false
  return true
}

function sameMeta (a: MemberMeta, b: MemberMeta): boolean {
  if (a.capacity !== b.capacity || a.load !== b.load) return false
  const ka = Object.keys(a.tags)
  if (ka.length !== Object.keys(b.tags).length) return false
  return ka.every(k => a.tags[k] === b.tags[k])
}

function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}
