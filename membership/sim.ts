import { seededRandom, type Clock, type Random, type TimerHandle } from '../lib/clock.js'
import { millisecond } from '../lib/units.js'
import { VirtualClock } from '../lib/virtual-clock.js'
import { messageSize } from './codec.js'
import { Membership, type MembershipInit } from './membership.js'
import { FakeSigner, FakeVerifier } from './signer.js'
import type { SwimMessage } from './swim.js'
import type { MemberMeta, MemberState, PeerAddress } from './types.js'

export interface SimulationInit {
  /**
   * Seed of every random choice (nodes' and the network's), so a run can be replayed exactly.
   * @default 1
   */
  seed?: number
  /**
   * One-way delay of a message from one node to another, in ms.
   * @default () => 1
   */
  delay?: (from: string, to: string) => number
  /**
   * Probability that a message from one node to another is lost.
   * @default () => 0
   */
  loss?: (from: string, to: string) => number
  /**
   * Whether the link from one node to another is cut.
   * @default () => false
   */
  partitioned?: (from: string, to: string) => boolean
  /**
   * Options passed to every node's Membership (peer id, transport, clock, signer are the simulator's).
   * @default {}
   */
  membership?: Partial<Omit<MembershipInit, 'peerId' | 'addrs' | 'transport' | 'clock' | 'random' | 'signer' | 'verifier'>>
  /**
   * Called for every message a node sends (before loss), for tests that inspect traffic.
   * @default undefined
   */
  onSend?: (from: string, to: PeerAddress, msg: SwimMessage) => void
}

export interface NodeCounters {
  messagesSent: number
  bytesSent: number
  messagesReceived: number
  bytesReceived: number
  sentByType: Record<string, number>
}

interface DeferredTimer { fn: () => void, cancelled: boolean, inner?: TimerHandle }

/** One simulated node: a Membership with its own view of the clock and the network. */
export class SimNode {
  readonly id: string
  readonly index: number
  readonly addr: string
  readonly membership: Membership
  crashed = false
  frozen = false
  readonly counters: NodeCounters = { messagesSent: 0, bytesSent: 0, messagesReceived: 0, bytesReceived: 0, sentByType: {} }
  /** Work held while frozen: deliveries first, then timers, in arrival order. */
  readonly heldMessages: Array<() => void> = []
  readonly heldTimers: DeferredTimer[] = []

  constructor (id: string, index: number, addr: string, membership: Membership) {
    this.id = id
    this.index = index
    this.addr = addr
    this.membership = membership
  }

  /** This node's view of another member's state. */
  stateOf (peerId: string): MemberState | undefined {
    return this.membership.member(peerId)?.state
  }
}

/**
 * Hundreds of Membership nodes in one process on virtual time, over a network with per-link
 * delay, loss and partitions. Nodes can crash (silent), freeze and resume, and leave.
 */
export class Simulation {
  readonly clock = new VirtualClock()
  readonly nodes: SimNode[] = []
  private readonly byId = new Map<string, SimNode>()
  private readonly byAddr = new Map<string, SimNode>()
  private readonly random: Random
  private readonly seed: number
  private readonly verifier = new FakeVerifier()
  private readonly delay: (from: string, to: string) => number
  private readonly loss: (from: string, to: string) => number
  private readonly onSend?: SimulationInit['onSend']
  private readonly membershipInit: NonNullable<SimulationInit['membership']>
  /** Can be replaced at run time (to partition and heal). */
  partitioned: (from: string, to: string) => boolean
  /** Messages dropped by loss or partition. */
  dropped = 0

  constructor (init: SimulationInit = {}) {
    this.seed = init.seed ?? 1
    this.random = seededRandom(this.seed)
    this.delay = init.delay ?? (() => 1 * millisecond)
    this.loss = init.loss ?? (() => 0)
    this.partitioned = init.partitioned ?? (() => false)
    this.onSend = init.onSend
    this.membershipInit = init.membership ?? {}
  }

  /** Creates (but does not start) a node. */
  addNode (opts: { meta?: Partial<MemberMeta>, seeds?: string[], membership?: SimulationInit['membership'] } = {}): SimNode {
    const index = this.nodes.length
    const id = `sim-${String(index).padStart(4, '0')}`
    const addr = `/dns4/${id}.sim/tcp/4001/p2p/${id}`
    const node = this.build(id, index, addr, opts)
    this.nodes.push(node)
    this.byId.set(id, node)
    this.byAddr.set(addr, node)
    return node
  }

  /**
   * A crashed node's process starting again under the same identity and address, with what a restart keeps: nothing
   * (an empty table, the given incarnation, 0 by default as if its wall clock had gone back) and the given seeds (none by
   * default, as for a mesh's first node). Started.
   */
  restart (id: string, opts: { seeds?: string[], incarnation?: number } = {}): SimNode {
    const old = this.node(id)
    if (!old.crashed) throw new Error(`${id} is still running; crash it first`)
    const node = this.build(id, old.index, old.addr, { seeds: opts.seeds ?? [], membership: { incarnation: opts.incarnation } })
    this.nodes[old.index] = node
    this.byId.set(id, node)
    this.byAddr.set(old.addr, node)
    node.membership.start()
    return node
  }

  private build (id: string, index: number, addr: string, opts: { meta?: Partial<MemberMeta>, seeds?: string[], membership?: SimulationInit['membership'] }): SimNode {
    let node: SimNode | undefined
    const clock = this.nodeClock(() => node as SimNode)
    const membership = new Membership({
      ...this.membershipInit,
      ...opts.membership,
      peerId: id,
      addrs: [addr],
      meta: opts.meta ?? this.membershipInit.meta,
      seeds: opts.seeds ?? this.membershipInit.seeds,
      clock,
      random: seededRandom((this.seed * 7919 + index * 104729) >>> 0),
      signer: new FakeSigner(id),
      verifier: this.verifier,
      transport: { send: (to, msg) => { this.send(node as SimNode, to, msg) } }
    })
    node = new SimNode(id, index, addr, membership)
    return node
  }

  /** Adds and starts `n` nodes, each joining through node 0 (the first node joins nobody). */
  addNodes (n: number, opts: { staggerMs?: number } = {}): SimNode[] {
    const out: SimNode[] = []
    for (let i = 0; i < n; i++) {
      const first = this.nodes.length === 0
      const node = this.addNode({ seeds: first ? [] : [this.nodes[0].addr] })
      out.push(node)
      const startIt = (): void => { node.membership.start() }
      // The seed starts at once: nodes that came up before it would only find it by healing.
      if (!first && opts.staggerMs !== undefined && opts.staggerMs > 0) this.clock.setTimeout(startIt, this.random() * opts.staggerMs)
      else startIt()
    }
    return out
  }

  node (id: string): SimNode {
    const n = this.byId.get(id)
    if (n === undefined) throw new Error(`no such node ${id}`)
    return n
  }

  /** Stops answering and sending; its timers never fire again. */
  crash (id: string): void {
    const n = this.node(id)
    n.crashed = true
    n.heldMessages.length = 0
    n.heldTimers.length = 0
  }

  /** Holds its messages and timers until resume(), like a process stopped by SIGSTOP or a long GC. */
  freeze (id: string): void {
    this.node(id).frozen = true
  }

  resume (id: string): void {
    const n = this.node(id)
    if (!n.frozen) return
    n.frozen = false
    const msgs = n.heldMessages.splice(0)
    for (const m of msgs) {
      if (n.crashed || n.frozen) break
      m()
    }
    const timers = n.heldTimers.splice(0)
    for (const t of timers) {
      if (n.crashed || n.frozen) break
      if (!t.cancelled) {
        t.cancelled = true
        t.fn()
      }
    }
  }

  /** Starts a graceful leave; the promise settles as virtual time advances. */
  leave (id: string): Promise<void> {
    return this.node(id).membership.leave()
  }

  run (ms: number): void { this.clock.advance(ms) }

  /** Runs until `predicate` holds or `limit` ms pass; returns whether it held. */
  runUntil (predicate: () => boolean, limit: number, step = 10 * millisecond): boolean {
    const end = this.clock.now() + limit
    while (this.clock.now() < end) {
      if (predicate()) return true
      this.clock.advance(Math.min(step, end - this.clock.now()))
    }
    return predicate()
  }

  /** Nodes that are running and neither crashed nor frozen. */
  live (): SimNode[] {
    return this.nodes.filter(n => !n.crashed && n.membership.isRunning)
  }

  /** Whether every live node (other than `subject`) sees `subject` in `state`. */
  allSee (subject: string, state: MemberState, among: SimNode[] = this.live()): boolean {
    return among.every(n => n.id === subject || n.stateOf(subject) === state)
  }

  /** Whether every node in `among` sees exactly the members of `among` alive. */
  converged (among: SimNode[] = this.live()): boolean {
    // Counting first keeps the common (not yet converged) case cheap at N=1000.
    if (!among.every(n => n.membership.stateCounts().alive === among.length)) return false
    const ids = new Set(among.map(n => n.id))
    return among.every(n => n.membership.aliveMembers().every(m => ids.has(m.peerId)))
  }

  /** Sum of counters over the given nodes. */
  totals (among: SimNode[] = this.nodes): NodeCounters {
    const t: NodeCounters = { messagesSent: 0, bytesSent: 0, messagesReceived: 0, bytesReceived: 0, sentByType: {} }
    for (const n of among) {
      t.messagesSent += n.counters.messagesSent
      t.bytesSent += n.counters.bytesSent
      t.messagesReceived += n.counters.messagesReceived
      t.bytesReceived += n.counters.bytesReceived
      for (const [k, v] of Object.entries(n.counters.sentByType)) t.sentByType[k] = (t.sentByType[k] ?? 0) + v
    }
    return t
  }

  resetCounters (): void {
    for (const n of this.nodes) {
      n.counters.messagesSent = 0
      n.counters.bytesSent = 0
      n.counters.messagesReceived = 0
      n.counters.bytesReceived = 0
      n.counters.sentByType = {}
    }
  }

  /** Stops every node, releasing all their timers. */
  stop (): void {
    for (const n of this.nodes) n.membership.stop()
  }

  private send (from: SimNode, to: PeerAddress, msg: SwimMessage): void {
    if (from.crashed) return
    const size = messageSize(msg)
    from.counters.messagesSent++
    from.counters.bytesSent += size
    const type: string = msg.type
    from.counters.sentByType[type] = (from.counters.sentByType[type] ?? 0) + 1
    this.onSend?.(from.id, to, msg)
    const target = this.resolve(to)
    if (target === undefined) return
    if (this.partitioned(from.id, target.id) || this.random() < this.loss(from.id, target.id)) {
      this.dropped++
      return
    }
    const deliver = (): void => {
      if (target.crashed) return
      target.counters.messagesReceived++
      target.counters.bytesReceived += size
      target.membership.onMessage(from.id, msg)
    }
    this.clock.setTimeout(() => {
      if (target.crashed) return
      if (target.frozen) target.heldMessages.push(deliver)
      else deliver()
    }, this.delay(from.id, target.id))
  }

  private resolve (to: PeerAddress): SimNode | undefined {
    if (to.peerId !== undefined) {
      const n = this.byId.get(to.peerId)
      if (n !== undefined) return n
    }
    for (const a of to.addrs) {
      const n = this.byAddr.get(a)
      if (n !== undefined && (to.peerId === undefined || to.peerId === n.id)) return n
    }
    return undefined
  }

  /** A node's clock: shared virtual time, but its timers wait while it is frozen and die with it. */
  private nodeClock (node: () => SimNode): Clock {
    const clock = this.clock
    return {
      now: () => clock.now(),
      setTimeout: (fn, ms) => {
        const t: DeferredTimer = { fn, cancelled: false }
        t.inner = clock.setTimeout(() => {
          const n = node()
          if (t.cancelled || n.crashed) return
          if (n.frozen) {
            n.heldTimers.push(t)
            return
          }
          t.cancelled = true
          fn()
        }, ms)
        return { id: t }
      },
      clearTimeout: (h) => {
        const t = h.id as DeferredTimer
        t.cancelled = true
        if (t.inner !== undefined) clock.clearTimeout(t.inner)
      }
    }
  }
}
