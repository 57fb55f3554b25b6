import { hour, minute, second } from '../lib/units.js'

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
/** How long a withdraw notice (tombstone) is honoured without a newer advertise notice: the record TTL. */
export const TOMBSTONE_TTL = RECORD_TTL

/**
 * How many of the closest members a lookup asks directly (besides its own store) before falling back to the full
 * Kademlia walk. Each of them holds the record (provide sends it to the k closest), so 2 gives redundancy.
 */
export const FIND_FANOUT = 2

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
