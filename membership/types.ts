import type { SwimMessage } from './swim.js'

export type { SwimMessage } from './swim.js'

/** Where a member stands. `left` is a graceful leave and is never reported as `dead`. */
export type MemberState = 'alive' | 'suspect' | 'dead' | 'left'

/** Small, versioned facts a member publishes about itself. */
export interface MemberMeta {
  tags: Record<string, string>
  /** How much work the member is willing to take (units are the scheduler's). */
  capacity: number
  /** How much work the member currently has. */
  load: number
}

/** A snapshot of one member as this node sees it. */
export interface MemberInfo {
  peerId: string
  addrs: string[]
  state: MemberState
  incarnation: number
  meta: MemberMeta
  /** Clock time (ms) at which this node last saw the member change state. */
  stateSince: number
}

/** Who to send to: a member (peer id and addrs) or a seed (maybe only an address). */
export interface PeerAddress {
  peerId?: string
  addrs: string[]
}

/**
 * A datagram-like carrier. send() must never block or throw: the message may be dropped, as over UDP.
 * Whoever wires the transport calls Membership.onMessage(from, msg) for each message received.
 */
export interface Transport {
  send(to: PeerAddress, msg: SwimMessage): void
}

/** Signs this node's own alive and left updates. */
export interface Signer {
  sign(data: Uint8Array): Uint8Array
}

/** Checks that `sig` over `data` was made by the key of `peerId`. Must not throw. */
export interface Verifier {
  verify(peerId: string, data: Uint8Array, sig: Uint8Array): boolean
}

export interface MemberEvent {
  member: MemberInfo
  /** The state before this event; undefined for a member seen for the first time. */
  previous?: MemberState
}

/**
 * - join: a member is alive for the first time, or again after being dead or left
 * - update: an alive member changed its metadata or addresses
 * - suspect: a member is suspected of having failed
 * - alive: a suspect refuted the suspicion
 * - dead: a suspicion ran out; the member failed
 * - left: the member left gracefully
 */
export interface MembershipEvents {
  join: MemberEvent
  update: MemberEvent
  suspect: MemberEvent
  alive: MemberEvent
  dead: MemberEvent
  left: MemberEvent
}

export type MembershipEventName = keyof MembershipEvents

/** Counters a node keeps about its own protocol work. */
export interface MembershipStats {
  probes: number
  probeAcks: number
  probeIndirectAcks: number
  probeFailures: number
  refutations: number
  invalidSignatures: number
  invalidUpdates: number
  messagesSent: number
  messagesReceived: number
  pushPulls: number
  heals: number
  /** Broadcasts dropped because the queue was full. */
  broadcastsDropped: number
  /** Indirect probe requests refused because their target is not a member this node knows. */
  relaysRefused: number
  /** Updates left unverified because their sender had used up its signature checks (VERIFY_RATE). */
  verifyBudgetExceeded: number
  /** Alive updates refused for too many or too long addresses, or their size (MAX_ADDRS, MAX_ALIVE_BYTES). */
  oversizedUpdates: number
  /** This node's own addresses left out of its signed alive to keep it within those bounds, at its last signing. */
  addrsDropped: number
}
