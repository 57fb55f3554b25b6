import { hour, millisecond, minute, second } from '../lib/units.js'

/** The private Kademlia protocol id: prefix `/meshos`, so meshos never joins (or pollutes) the public Amino DHT. */
export const PROTOCOL = '/meshos/kad/1.0.0'

/** Prefix hashed with a resource name to make its DHT key. Changing it changes every key: it is a contract. */
export const RESOURCE_KEY_PREFIX = 'meshos:resource:'

/** Resource names: 1-128 characters of letters, digits and `. _ : / @ + -`, starting with a letter or digit. */
export const RESOURCE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$/
export const RESOURCE_NAME_MAX = 128

/** Peers per k-bucket and replication factor (the k closest peers hold each provider record). */
export const K_BUCKET_SIZE = 20
/** Query concurrency. */
export const ALPHA = 3

/**
 * How long a provider record lives on the nodes that store it. Short enough that a provider which vanished without a
 * withdraw notice (and was missed by membership) stops being returned within it; long enough to cost little traffic.
 */
export const RECORD_TTL = 1 * hour
/** How often a node re-provides what it advertises: well before RECORD_TTL runs out. */
export const REPROVIDE_INTERVAL = 20 * minute
/**
 * How long a withdraw notice (tombstone) is honoured without a newer advertise notice: as long as a copy of the record
 * written just after the withdrawal can still be served. kad-dht deletes an expired record only in its reprovider's
 * pass, once per REPROVIDE_INTERVAL, so a record lives up to RECORD_TTL plus that; and a delivery already under way
 * when the node withdrew ends, with its retries, within a minute.
 */
export const TOMBSTONE_TTL = RECORD_TTL + REPROVIDE_INTERVAL + 1 * minute
/** Added to TOMBSTONE_TTL when a provider decides whether its old withdrawal may still hide it: receivers start the clock later. */
export const TOMBSTONE_CLOCK_MARGIN = 1 * minute

/**
 * How many of the closest members a lookup asks at once (besides its own store) before falling back to the full
 * Kademlia walk. Each of them holds the record (provide sends it to the k closest); asking one more than the lookup
 * waits for (`FIND_ANSWERS`) lets it ignore the slowest, which on a loaded host is the tail of the latency.
 */
export const FIND_FANOUT = 3
/** Answers a lookup waits for among the `FIND_FANOUT` it asked (then it returns the union). */
export const FIND_ANSWERS = 2

/**
 * A node among the k closest members to a key holds a replica of every provider record for it, and answers lookups
 * from that replica without asking anyone, once it has run this long: time enough for providers to push their records
 * to it when they connect (after a restart its store starts empty).
 */
export const REPLICA_WARMUP = 30 * second

/**
 * How many of the closest replicas a provide asks to confirm the record (a GET_PROVIDERS behind the ADD_PROVIDER on the
 * same stream, which the remote answers only after storing it) and how many confirmations it waits for. The rest of
 * the k replicas get the record in the background.
 */
export const PROVIDE_CONFIRM_FANOUT = 3
export const PROVIDE_CONFIRMATIONS = 2
/** Deadline of delivering the record to one replica (open the stream, write, and confirm when asked). */
export const PROVIDE_PEER_TIMEOUT = 5 * second
/** Waits before redelivering a record to a replica that failed; after the last the next reprovide covers it. */
export const PROVIDE_RETRY_DELAYS = [1 * second, 5 * second, 30 * second] as const

/**
 * A persistent kad stream left unused this long is closed by its opener: below the server's idle timeout
 * (`KAD_SERVER_STREAM_IDLE`; MeshDht sends only to members, which are meshos nodes), so that it is seldom reset under a
 * request. A stream the remote did reset is reopened (see dht/sender.ts).
 */
export const KAD_STREAM_IDLE = 50 * second
/** How long a meshos kad-dht server keeps an inbound stream open between two messages (kad-dht's `incomingMessageTimeout`). */
export const KAD_SERVER_STREAM_IDLE = 60 * second
/** Deadline of one kad exchange when the caller gives none. */
export const KAD_REQUEST_TIMEOUT = 5 * second

/** Deadline of a find-providers lookup. */
export const FIND_TIMEOUT = 5 * second
/** Largest deadline a caller may ask for. */
export const FIND_TIMEOUT_MAX = 60 * second
/** Deadline of a peer lookup. */
export const FIND_PEER_TIMEOUT = 5 * second
/** Deadline of one provide (sending the record to the k closest peers). */
export const PROVIDE_TIMEOUT = 10 * second
/** Deadline of adding one member to the routing table (it is pinged first). */
export const SEED_TIMEOUT = 10 * second

/** Gossipsub topic on which advertise/withdraw notices travel. */
export const NOTICE_TOPIC = '/meshos/dht/notices/1'

/** File in the data dir holding the names this node advertises. */
export const ADVERTS_FILE = 'dht-adverts.json'
/**
 * A provide without its confirmations after this long asks the next PROVIDE_CONFIRM_FANOUT closest to confirm too.
 * Well above a confirmation on a healthy host (a few ms to tens of ms), well below a slow process's stall.
 */
export const PROVIDE_HEDGE_AFTER = 100 * millisecond

/** Largest advertise/withdraw notice taken from pubsub: a CID, an op and a sequence number need far less. */
export const MAX_NOTICE_BYTES = 1024
/** Notices remembered at most (per provider and key); past it the oldest are forgotten. */
export const MAX_NOTICES = 10_000

/** Longest TTL an advert may ask for: as for a KV value, 100 years. */
export const MAX_ADVERT_TTL = 100 * 365 * 24 * hour

/** After a member joins or comes back, this node's recent withdrawals are sent again once this has passed. */
export const RENOTICE_DELAY = 2 * second
/** At most this many withdrawals (the newest) are sent again at a time. */
export const MAX_RENOTICES = 64
