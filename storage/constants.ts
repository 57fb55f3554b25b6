import { KiB, MiB, second, minute, hour } from '../lib/units.js'

/** Largest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1 * KiB
/** Largest value, in bytes; configurable per store up to what the RPC layer can carry. */
export const MAX_VALUE_BYTES = 1 * MiB
/**
 * Longest time to live, 100 years. An expiry is a 64-bit millisecond time on the wire: a larger TTL wrapped round and
 * expired the value (and hid the one before it) the moment it was acknowledged.
 */
export const MAX_TTL = 100 * 365 * 24 * hour
/** Copies of every key. */
export const DEFAULT_REPLICATION_FACTOR = 3
/** 256 keeps the busiest of 20 nodes well under 1.25x the mean at RF=3 (see bench/placement.ts). */
export const DEFAULT_VNODES = 256
/**
 * Coordinator deadline for one put/get/delete when the caller gives none (`?timeout=` sets it per request). Known-down
 * replicas fail a request at once (UNAVAILABLE); this bounds only replicas that are up but slow, and 2 s (Cassandra's
 * write timeout) timed out healthy replicas on a loaded 2-core machine: 5 s is Cassandra's read timeout.
 */
export const DEFAULT_REQUEST_TIMEOUT = 5 * second
/** Budget for one anti-entropy round or one handoff batch. */
export const DEFAULT_ROUND_TIMEOUT = 10 * second
/**
 * Budget for one batch of a graceful leave's handoff, against the 8 s the node gives the whole handoff: a peer that
 * takes longer (frozen, dying) is skipped for the rest of it, and its records are left to anti-entropy.
 */
export const HANDOFF_BATCH_TIMEOUT = 4 * second
/**
 * How long a joining node waits, its view ready, before it copies its ranges: long enough for gossip to tell every
 * member it is joining (a few probe intervals; memberlist spreads an update to 100 nodes in about a second).
 */
export const JOIN_DELAY = 5 * second
/** How long a record that arrived after the last ring change, and is foreign in that ring, stays before it is moved. */
export const REBALANCE_GRACE = 30 * second
/** One anti-entropy round (one peer, one segment) per this interval. */
export const DEFAULT_ANTI_ENTROPY_INTERVAL = 2 * second
/** The token space is cut into this many equal segments; a round compares one. */
export const DEFAULT_SEGMENTS = 16
/** Merkle leaves per segment are 2^depth. */
export const DEFAULT_MERKLE_DEPTH = 10
/** Records repaired per anti-entropy round; more differences are left to the next round. */
export const DEFAULT_MAX_RECORDS_PER_ROUND = 2000
/** Upper bound of one request/response batch of records, to stay under the RPC message limit. */
export const DEFAULT_MAX_BATCH_BYTES = 4 * MiB
/** Hints kept at most; beyond this new hints are dropped (anti-entropy still repairs). */
export const DEFAULT_MAX_HINTS = 100_000
/** Hints older than this are dropped: by then anti-entropy has had ample time to repair. */
export const DEFAULT_MAX_HINT_AGE = 3 * hour
/**
 * Added to the hint age to give how long a dead record outlives its last possible older write (AntiEntropyInit
 * `tombstoneMinAge`): covers a hint store's clock running slow against a replica's, and the replay's own duration.
 */
export const TOMBSTONE_MIN_AGE_MARGIN = 30 * minute
/** Hinted records replayed per second per target. */
export const DEFAULT_HINT_REPLAY_RATE = 1000
/**
 * Sweep for deliverable hints. A hint for a target that stayed alive (one write timed out) has no event to trigger
 * its replay, so this bounds its delay; a sweep with nothing pending costs nothing.
 */
export const DEFAULT_HINT_SWEEP_INTERVAL = 2 * second
/** Remote timestamps further ahead than this do not advance our clock (a broken peer clock must not drag everyone). */
export const DEFAULT_MAX_CLOCK_DRIFT = 1 * hour
/** How long a node whose timestamps most replicas refused as too far ahead coordinates no writes; renewed by each refusal seen. */
export const SELF_SKEW_HOLD = 1 * minute
/** Scan page size per node. */
export const DEFAULT_SCAN_LIMIT = 1000
export const MAX_SCAN_LIMIT = 10_000
/**
 * Keys and values one scan answers with, at most (it then says `more`, and the caller pages on with `after`). The
 * limit counts entries only, and 10,000 values of 1 MiB would have been gathered in the coordinator's memory at once.
 */
export const MAX_SCAN_BYTES = 8 * 1024 * 1024
/** Statistics recount period (keys held are counted exactly by iteration, which is cheap at our sizes). */
export const DEFAULT_STATS_INTERVAL = 1 * minute
/** Records of concurrent writes to one replica sent in one request, at most. */
export const MAX_WRITE_BATCH = 256
/** Concurrent reads of one replica sent in one request, at most; a replica refuses larger requests. */
export const MAX_READ_BATCH = 256
/** Most keys one `fetch` request may name (anti-entropy asks for 500 at a time). */
export const MAX_FETCH_KEYS = 1000
/**
 * Most token ranges one `merkle` or `fetchRange` request may name: the ranges two members share are at most the ring's
 * vnode ranges, 256 per member, so this covers a mesh of 256 members.
 */
export const MAX_REQUEST_RANGES = 65_536
/** Bytes a read adds to its batch's answer besides its key and value (version, framing), as the batch estimates it. */
export const READ_OVERHEAD_BYTES = 64
/** How long a replica that lacks batched reads (an older version) is read key by key before it is asked again. */
export const SINGLE_READER_RECHECK = 5 * minute
/** Keys whose stored version a replica keeps in memory (about 150 bytes each), to write without reading first. */
export const DEFAULT_VERSION_CACHE_SIZE = 100_000
/** Write batches a coordinator has unanswered at one replica before the next waits (see CoordinatorInit). */
export const MAX_BATCHES_IN_FLIGHT = 1
/** Coordinator ids a replica keeps one shared copy of for its cached versions (far more than a mesh has members). */
export const MAX_INTERNED_NODE_IDS = 1024
