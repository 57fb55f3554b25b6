/**
 * The DHT subsystem: the mesh's lookup service, over the stock `@libp2p/kad-dht` (standard Kademlia, wire-compatible
 * with any libp2p node that speaks `/meshos/kad/1.0.0`).
 *
 * ## Keys
 * A resource name (`gpu`, `service:postgres`, `dataset:weather-2026`; 1-128 characters of letters, digits and
 * `. _ : / @ + -`) maps to CIDv1(raw, sha256("meshos:resource:" + name)) ({@link resourceKey}). Content ids are used as
 * they are.
 *
 * ## Routing table
 * Every node runs kad-dht in server mode. Each member membership reports alive (join, alive, update) is added to the
 * routing table at once, and removed when it is declared dead or left; a lookup works as soon as a node has joined.
 *
 * ## Provide
 * {@link MeshDht.provide} stores the record locally and sends ADD_PROVIDER straight to the k (20) members closest to
 * the key by XOR distance, computed from the membership list (which knows every member) instead of a closest-peers
 * walk. A member that joins later and is among the k closest gets the record when it joins. Advertised names are kept
 * in the data dir (`dht-adverts.json`), re-provided at start-up and every `REPROVIDE_INTERVAL` (20 min), well inside
 * the record TTL (`RECORD_TTL`, 1 h).
 *
 * ## Find
 * {@link MeshDht.findProviders} runs the standard GET_PROVIDERS walk with a deadline (5 s by default); when it runs out
 * the result carries what was found and `timedOut: true`.
 *
 * ## Withdrawal and death: the rule
 * kad-dht cannot delete a record on another node, so a provider stops being returned as follows.
 * - **Withdraw** (`withdraw(name)` / `unprovide(key)`): the node stops re-providing, drops its own record, and publishes
 *   a signed withdraw notice on the gossipsub topic `/meshos/dht/notices/1`. Each node that receives it deletes the
 *   record from its store and remembers the withdrawal (a tombstone, ordered by the sender's sequence number) so that
 *   stale copies returned by nodes that missed the notice are filtered out of its own lookups. A later advertise
 *   notice with a higher sequence number clears the tombstone. So a withdrawn provider disappears from every lookup as
 *   soon as the notice arrives (well under a second), and at the latest when the records expire (`RECORD_TTL`, 1 h),
 *   which is also how long a tombstone lasts.
 * - **Death or leave**: lookups return only providers that this node's membership holds `alive` or `suspect`. A
 *   provider declared `dead` or `left` (or unknown to membership) is dropped from results on the membership event,
 *   without waiting for its records to expire; it is also removed from the routing table. When it comes back (join,
 *   same peer id), its records count again, and it re-provides them itself at start-up.
 *
 * @packageDocumentation
 */
export { MeshDht, type MeshDhtInit, type DhtMembership, type DhtPubsub, type Provider, type FindProvidersResult, type ProvideResult, type Advert, type FindOptions } from './dht.js'
export { kadDhtOptions, meshKadDht } from './options.js'
export { resourceKey, validateResourceName, parseKey, parseDuration } from './keys.js'
export * as constants from './constants.js'
