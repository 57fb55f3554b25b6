import { KiB, MiB, millisecond, minute, second } from '../lib/units.js'

/** The libp2p protocol id the membership protocol speaks. */
export const PROTOCOL = '/meshos/swim/1.0.0'

/** Signed payloads start with this, so a signature made for membership can never be replayed elsewhere. */
export const SIGNATURE_DOMAIN = 'meshos-swim-v1'

/*
 * Defaults, tuned with membership/sim.ts (1 ms links) against these targets at N=20:
 * a silent crash seen as dead by every survivor in about 3.5 s, a graceful leave everywhere in 0.5 s,
 * a join everywhere in 1 s, no false deaths (idle, 5% loss, a 1.5 s freeze), and at most 4 messages
 * sent per node per second.
 *
 * Message budget: each node sends one ping per period and, on average, answers one, so probing costs
 * 2 / probeInterval messages per second: 3.3/s at 600 ms. Push-pull adds 2 per push-pull interval
 * (0.07/s at 30 s). What is left covers ping-reqs, nacks and the gossip bursts that follow a
 * change (they cost nothing when the cluster is quiet).
 */

/**
 * One probe per protocol period. Shorter detects faster but every 100 ms less costs ~0.6 messages
 * per node per second; 600 ms is the shortest that keeps idle traffic under 4/s with room for gossip.
 */
export const PROBE_INTERVAL = 600 * millisecond

/**
 * How long a direct ping waits before asking others. Loopback and LAN round trips are well under
 * 10 ms; 250 ms leaves room for a GC pause or an event-loop stall, and leaves 350 ms of the period
 * for the indirect probes.
 */
export const PROBE_TIMEOUT = 250 * millisecond

/** How many members are asked to probe indirectly (k in SWIM). Three tolerates ~5% loss on every path. */
export const INDIRECT_CHECKS = 3

/**
 * Relays answer a ping-req with a nack when their own ping saw no ack within this fraction of the
 * probe timeout, so the nack reaches the requester before its period ends.
 */
export const NACK_TIMEOUT_FRACTION = 0.8

/**
 * Lifeguard local health: the multiplier (0..MAX) by which probe interval and timeout are scaled as
 * (LHM + 1). Eight matches Lifeguard and memberlist: a badly overloaded node slows to 1/9th.
 */
export const MAX_HEALTH_MULTIPLIER = 8

/**
 * Floor of the suspicion timeout at N ≤ 10. Crash → dead is (time until someone probes the node,
 * ~0.5 s at N=20) + (probe period until suspect, ~0.45 s) + this floor, so 1.8 s gives ~3 s on
 * average and ~3.5 s in the tail. It must also outlast a stall we forgive: a 1.5 s freeze cannot be
 * suspected before a probe period after it began, so it is refuted with ~0.9 s to spare; and under
 * 5% loss a false suspicion is refuted by gossip bursts within a few link round trips.
 */
export const SUSPICION_MIN_BASE = 1800 * millisecond

/**
 * The floor grows by this fraction per decade of cluster size (1.8 s at 10, 2.16 s at 100, 2.5 s at
 * 1000): gossip needs a few more hops in a big cluster, but the growth stays mild because
 * gossip bursts spread in milliseconds, not protocol periods.
 */
export const SUSPICION_LOG_SCALE = 0.2

/**
 * The suspicion timeout starts at this multiple of the floor and shrinks towards the floor as
 * independent members confirm (Lifeguard dynamic suspicion). Four: a suspicion nobody confirms is
 * most likely this node's own problem, and it gets 8+ s to be refuted.
 */
export const SUSPICION_MAX_MULT = 4

/** Independent confirmations (K) after which the suspicion timeout reaches its floor. */
export const SUSPICION_CONFIRMATIONS = 3

/**
 * λ in "each update is retransmitted λ·log10(N+1) times" (rounded up). Four is memberlist's value:
 * with bursts to GOSSIP_FANOUT members on top, an update reaches everyone with high probability.
 */
export const RETRANSMIT_MULT = 4

/** The broadcast queue never holds more than this; the most transmitted, oldest entries go first. */
export const MAX_BROADCASTS = 2048

/** At most this many updates are piggybacked on one message. */
export const MAX_PIGGYBACK = 64

/** Piggybacked updates stop once a message's gossip reaches this many encoded bytes. */
export const MAX_PIGGYBACK_BYTES = 8 * KiB

/**
 * A new update is pushed at once to this many random members (a gossip burst), and each member
 * that accepts it does the same: an epidemic that reaches 1000 nodes in about 6 hops, which is what
 * makes a leave, a join and a death visible everywhere in well under a second. A member that no burst
 * happens to hit (probability about e^-fanout) only learns from piggybacked pings, 0.3-1 s later: with
 * fan-out 3 (5% per member) real 20-process clusters had one such laggard in most joins and the last
 * member saw the join after ~1 s; four makes it 1.8%. It costs 4 messages per node per change, nothing
 * when the cluster is quiet.
 */
export const GOSSIP_FANOUT = 4

/** New updates are batched for this long before a burst, so a change that produces several goes out in one message. */
export const GOSSIP_DELAY = 5 * millisecond

/**
 * Full-state push-pull with one random member. Repairs what gossip missed; its cost is bytes, not
 * messages, so it stays slow. Scaled up for big clusters as memberlist does.
 */
export const PUSH_PULL_INTERVAL = 30 * second

/**
 * Partition healing (the gap in memberlist#222): this often, push-pull with a random member held as
 * dead, or with a seed that is not a known alive member. Quiet clusters with no dead members pay nothing.
 */
export const HEAL_INTERVAL = 5 * second

/**
 * A member we hold no record of is talking to us: we missed its join (we restarted without seeds and others still
 * probe us, or its alive gossip died out before it reached us). We ask it for its table at once, then at most this
 * often while it stays unknown.
 */
export const UNKNOWN_SENDER_PULL_INTERVAL = 2 * second

/** Dead and left members are kept this long (so healing can find them) and then forgotten. */
export const DEAD_RECLAIM_TIME = 30 * minute

/** A push-pull (and any message) is trimmed to stay under this many encoded bytes. */
export const MAX_MESSAGE_BYTES = 60 * KiB

/** The libp2p transport refuses frames larger than this and closes the stream that sent one. */
export const MAX_FRAME_BYTES = 64 * KiB

/**
 * Push-pull parts that wait for a peer's stream to drain. A table is sent in parts back to back, and a new stream's
 * window (256 KiB) holds about four: dropped as other messages are when the stream is busy, a joiner learned only the
 * first ~1,000 members. 4 MiB is a table of about 15,000.
 */
export const MAX_PUSH_PULL_BACKLOG = 4 * MiB

/** Push-pull parts held over all peers: many joiners (or strangers) that never read their replies hold no more. */
export const MAX_PUSH_PULL_BACKLOG_TOTAL = 32 * MiB

/**
 * Peers the libp2p transport keeps an outbound entry (a stream, or messages waiting for one) for. Entries go once their
 * stream closes (idle streams close after 120 s) with nothing waiting; past this many, the least recently used goes
 * too (its stream is closed and reopened on the next send). A member talks to a few dozen peers a minute, so this is
 * only reached when something sends to many ids (relayed probes, claims naming other peers) faster than they expire.
 */
export const MAX_OUTBOUND_PEERS = 1024

/**
 * A member's signed alive carries at most this many addresses, each at most MAX_ADDR_BYTES long, and encodes in at most
 * MAX_ALIVE_BYTES: below MAX_PIGGYBACK_BYTES, so it always fits a message's gossip. An alive of a host with ~100
 * addresses (container bridges, IPv4 and IPv6) was larger than that, was never gossiped, and its refutations did not
 * spread: it was declared dead after any short stall. Its own extra addresses are left out (counted in
 * stats.addrsDropped); a received alive beyond the bounds is refused (stats.oversizedUpdates).
 */
export const MAX_ADDRS = 32
export const MAX_ADDR_BYTES = 256
export const MAX_ALIVE_BYTES = 6 * KiB

/** Encoded member metadata may not exceed this. */
export const MAX_META_BYTES = 1 * KiB

/** A leave is sent directly to every alive member when there are at most this many, on top of gossip:
 * one message per member, once, and nobody has to wait for a burst that happened to miss them. */
export const LEAVE_DIRECT_MAX = 128

/** After sending its leave, a node keeps answering (and gossiping) this long before it stops. */
export const LEAVE_LINGER = 200 * millisecond

/** leave() never takes longer than this. */
export const LEAVE_TIMEOUT = 2 * second

/** join() gives up on seeds that have not answered a push-pull within this. */
export const JOIN_TIMEOUT = 10 * second

/** Signatures already verified are remembered, the latest per member and kind, up to this many entries. */
export const VERIFIED_CACHE_SIZE = 4096
/**
 * Signature checks one sender may cost this node: a burst that covers a push-pull of a 4,096-member table even if every
 * member in it has left (an alive and a leave to check each), refilled at 1,000 a second. Past it, that sender's unverified updates are ignored (gossip brings them again). Without it, a peer
 * sending alive updates with bad signatures cost 1.5 CPU-seconds per MiB it sent.
 */
export const VERIFY_BURST = 8192
export const VERIFY_RATE = 1000

/** Relayed pings for ping-req (state held per outstanding request) are capped so a flood cannot grow memory. */
export const MAX_PENDING_RELAYS = 1024

/**
 * Claims about our own incarnation beyond this are ignored, so refuting can never overflow the uint32 on the wire, and
 * a life never starts above half of it, so it has room for 2^30 refutations and metadata changes of its own.
 */
export const MAX_INCARNATION = 2 ** 31

/**
 * A new process starts its incarnation at the wall-clock seconds since this instant (2025-01-01T00:00:00Z), so it is
 * above what an earlier life of the same peer signed (unless that life re-signed more than once a second on average):
 * a signed leave or alive from that life, replayed by a stale node, is then outbid instead of taking down this one.
 * 2^30 seconds from here is the year 2059; MAX_INCARNATION / 2 is the ceiling after that.
 */
export const INCARNATION_EPOCH = Date.UTC(2025, 0, 1)
