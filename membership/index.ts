import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { componentLogger, silentLogger, type Logger } from '../lib/log.js'
import { Libp2pTransport, type Libp2pTransportInit } from './libp2p-transport.js'
import { incarnationSeed, Membership, type MembershipInit } from './membership.js'
import { Ed25519Signer, Ed25519Verifier } from './signer.js'
import type { MemberInfo, MemberMeta, MembershipEvents, MembershipStats, MemberState } from './types.js'
import type { TypedEmitter } from './emitter.js'

export * from './types.js'
export * from './errors.js'
export * as constants from './constants.js'
export { PROTOCOL } from './constants.js'
export { Membership, incarnationSeed, type MembershipInit, type ProbeOutcome } from './membership.js'
export { Libp2pTransport, type Libp2pTransportInit, type Libp2pTransportStats } from './libp2p-transport.js'
export { Ed25519Signer, Ed25519Verifier, FakeSigner, FakeVerifier } from './signer.js'
export { BroadcastQueue } from './broadcast-queue.js'
export { Suspicion, suspicionTimeout } from './suspicion.js'
export { TypedEmitter } from './emitter.js'
export { Simulation, SimNode, type SimulationInit, type NodeCounters } from './sim.js'

export interface CreateMembershipInit extends Omit<MembershipInit, 'peerId' | 'addrs' | 'transport' | 'signer' | 'verifier' | 'logger'> {
  /** A started libp2p node; its peer id and listen addresses are this member's. */
  libp2p: Libp2p
  /** The node's Ed25519 private key (the one its peer id derives from), used to sign our own updates. */
  privateKey: PrivateKey
  /** Addresses to join (each may include /p2p/<id>); also retried while healing. @default [] */
  seeds?: string[]
  /** Initial metadata. @default { tags: {}, capacity: 0, load: 0 } */
  meta?: Partial<MemberMeta>
  /** Parent logger; membership logs as component `membership`. @default silentLogger */
  logger?: Logger
  /** When given, membership metrics are registered here. @default undefined */
  registry?: Registry
  /** Options for the libp2p transport. @default {} */
  transport?: Omit<Libp2pTransportInit, 'libp2p' | 'logger' | 'onMalformed' | 'onFrame'>
  /**
   * This life's first incarnation. A process keeps nothing of its earlier lives, so it starts from the wall clock,
   * above what they signed (see INCARNATION_EPOCH). @default incarnationSeed(Date.now())
   */
  incarnation?: number
}

/** Membership running over libp2p: the state machine, its transport and its metrics. */
export class Libp2pMembership {
  readonly membership: Membership
  readonly transport: Libp2pTransport
  private readonly libp2p: Libp2p
  private readonly unsubscribe: Array<() => void> = []

  constructor (membership: Membership, transport: Libp2pTransport, libp2p: Libp2p) {
    this.membership = membership
    this.transport = transport
    this.libp2p = libp2p
  }

  get peerId (): string { return this.membership.peerId }
  get events (): TypedEmitter<MembershipEvents> { return this.membership.events }
  get stats (): MembershipStats { return this.membership.stats }
  get healthMultiplier (): number { return this.membership.healthMultiplier }

  members (): MemberInfo[] { return this.membership.members() }
  aliveMembers (): MemberInfo[] { return this.membership.aliveMembers() }
  member (peerId: string): MemberInfo | undefined { return this.membership.member(peerId) }
  setMeta (patch: Partial<MemberMeta>): MemberInfo { return this.membership.setMeta(patch) }
  async join (addrs: string[]): Promise<number> { return await this.membership.join(addrs) }

  async start (): Promise<void> {
    await this.transport.start()
    // Members' addresses go to the peer store, so later dials (by us or other subsystems) find them.
    const remember = ({ member }: { member: MemberInfo }): void => {
      if (member.addrs.length === 0) return
      try {
        const id = peerIdFromString(member.peerId)
        const multiaddrs = member.addrs.flatMap(a => { try { return [multiaddr(a)] } catch { return [] } })
        this.libp2p.peerStore.merge(id, { multiaddrs }).catch(() => {})
      } catch {}
    }
    // A suspect that refutes may do so from new addresses: `alive`, not `update`, carries them.
    this.unsubscribe.push(this.events.on('join', remember), this.events.on('update', remember), this.events.on('alive', remember))
    this.membership.start()
  }

  /** Leaves gracefully (bounded by the leave timeout), then stops. */
  async leave (): Promise<void> {
    await this.membership.leave()
    await this.stop()
  }

  async stop (): Promise<void> {
    this.membership.stop()
    for (const u of this.unsubscribe.splice(0)) u()
    await this.transport.stop()
  }
}

/**
 * Wires the SWIM state machine to libp2p (protocol /meshos/swim/1.0.0), the node's Ed25519 key, and,
 * when a registry is given, prom-client metrics. Call start() to begin (it joins the seeds).
 */
export function createMembership (init: CreateMembershipInit): Libp2pMembership {
  const { libp2p, privateKey, registry, transport: transportInit, logger, ...rest } = init
  const log = componentLogger(logger ?? silentLogger, 'membership')
  const metrics = registry !== undefined ? createMetrics(registry) : undefined
  const transport = new Libp2pTransport({
    ...transportInit,
    libp2p,
    logger: log,
    onMalformed: metrics === undefined ? undefined : () => { metrics.malformed.inc() },
    onFrame: metrics === undefined
      ? undefined
      : (direction, bytes) => {
          metrics.messages.inc({ direction })
          metrics.bytes.inc({ direction }, bytes)
        }
  })
  const membership = new Membership({
    ...rest,
    incarnation: rest.incarnation ?? incarnationSeed(Date.now()),
    peerId: libp2p.peerId.toString(),
    addrs: () => libp2p.getMultiaddrs().map(a => a.toString()),
    transport,
    signer: new Ed25519Signer(privateKey),
    verifier: new Ed25519Verifier(),
    logger: log
  })
  transport.setReceiver((from, msg) => { membership.onMessage(from, msg) })
  if (metrics !== undefined) {
    membership.onProbeOutcome = outcome => { metrics.probes.inc({ outcome }) }
    metrics.bind(membership)
  }
  return new Libp2pMembership(membership, transport, libp2p)
}

function createMetrics (registry: Registry): {
  probes: Counter<'outcome'>
  messages: Counter<'direction'>
  bytes: Counter<'direction'>
  malformed: Counter
  bind: (m: Membership) => void
} {
  let bound: Membership | undefined
  const transitions = new Counter({ name: 'meshos_membership_events_total', help: 'Membership changes this node observed about other members, by event (join, suspect, alive, dead, left)', labelNames: ['event'], registers: [registry] })
  const states: MemberState[] = ['alive', 'suspect', 'dead', 'left']
  new Gauge({
    name: 'meshos_membership_members',
    help: 'Members this node knows of, by state (itself included)',
    labelNames: ['state'],
    registers: [registry],
    collect () {
      if (bound === undefined) return
      const c = bound.stateCounts()
      for (const s of states) this.set({ state: s }, c[s])
    }
  })
  new Gauge({
    name: 'meshos_membership_health_multiplier',
    help: 'Lifeguard local health multiplier (0 is healthy)',
    registers: [registry],
    collect () { if (bound !== undefined) this.set(bound.healthMultiplier) }
  })
  return {
    probes: new Counter({ name: 'meshos_membership_probes_total', help: 'Probe outcomes', labelNames: ['outcome'], registers: [registry] }),
    messages: new Counter({ name: 'meshos_membership_messages_total', help: 'Membership frames sent and received', labelNames: ['direction'], registers: [registry] }),
    bytes: new Counter({ name: 'meshos_membership_bytes_total', help: 'Membership bytes sent and received', labelNames: ['direction'], registers: [registry] }),
    malformed: new Counter({ name: 'meshos_membership_malformed_frames_total', help: 'Inbound frames that were malformed or oversized (the stream was closed)', registers: [registry] }),
    bind: (m) => {
      bound = m
      // State changes this node saw about others. A suspicion or death that was refuted later shows here and
      // nowhere else, which is what false-positive counts (benchmarks, alerts) need.
      for (const event of ['join', 'suspect', 'alive', 'dead', 'left'] as const) {
        m.events.on(event, () => { transitions.inc({ event }) })
      }
    }
  }
}
