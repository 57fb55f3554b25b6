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
 * {@link MeshDht.provide} stores the record locally and sends ADD_PROVIDER to the k (20) members closest to the key by
 * XOR distance, computed from the membership list (which knows every member) instead of a closest-peers walk. The 3
 * closest come first: it returns once 2 of them confirm they store the record (a GET_PROVIDERS sent behind the
 * ADD_PROVIDER on the same stream; the server handles a stream's messages in order), or every delivery ended, or the
 * deadline passed. The other replicas' deliveries start as soon as those confirmations are in (on a busy host they
 * would otherwise take the CPU the confirmations wait for) and finish in the background; a failed one is retried
 * after 1 s, 5 s and 30 s
 * while the key is still provided and the peer still among the k closest. A member that joins, or (re)connects (after a
 * restart its store is empty), and is among the k closest to a key this node provides is sent the record then.
 * Advertised names are kept in the data dir (`dht-adverts.json`), re-provided at start-up and every
 * `REPROVIDE_INTERVAL` (20 min), well inside the record TTL (`RECORD_TTL`, 1 h).
 *
 * ## Streams
 * meshos sends its kad messages over one persistent `/meshos/kad/1.0.0` stream per peer ({@link KadSender}) rather
 * than a new stream per message, which saves the multistream-select round trip on every lookup. The standard kad-dht
 * server answers a stream's messages in a loop, so the wire protocol is unchanged; stock peers may still open a stream
 * per message.
 *
 * ## Find
 * {@link MeshDht.findProviders}, with a deadline (5 s by default; when it runs out the result carries what was found
 * and `timedOut: true`), answers from the first of these that names a live provider:
 * 1. this node's own store, when it is one of the k closest members to the key (so every provider sent it the record)
 *    and has run `REPLICA_WARMUP` (30 s: time for providers to push their records to a node that just started). In a
 *    mesh of up to k + 1 nodes every node is such a replica. `replica: false` (API `?replica=false`) skips this step;
 * 2. the 3 closest members, asked at once over persistent streams; the lookup returns the union of the first 2 answers;
 * 3. the standard GET_PROVIDERS walk.
 * The result's `source` says which one answered and `queried` how many peers were asked.
 *
 * ## Withdrawal and death: the rule
 * kad-dht cannot delete a record on another node, so a provider stops being returned as follows.
 * - **Withdraw** (`withdraw(name)` / `unprovide(key)`): the node stops re-providing, drops its own record, notes the
 *   withdrawal in the data dir, and publishes a signed withdraw notice on the gossipsub topic `/meshos/dht/notices/1`.
 *   Each node that receives it deletes the record from its store and remembers the withdrawal (a tombstone, ordered by
 *   the sender's sequence number) so that stale copies returned by nodes that missed the notice are filtered out of its
 *   own lookups. A later advertise notice with a higher sequence number clears the tombstone; a provide sends one when
 *   the node withdrew the key within a tombstone's lifetime (only then can one exist; other provides send none). So a
 *   withdrawn provider disappears from every lookup as soon as the notice arrives (well under a second), and at the
 *   latest when the records expire (`RECORD_TTL`, 1 h, deleted in kad-dht's next cleanup pass, up to 20 min later). A
 *   tombstone lasts as long as such a record can still be served (`TOMBSTONE_TTL`, 81 min). Provides and withdrawals
 *   of one key run one at a time, in the order asked, so a reprovide round never advertises a name withdrawn during it.
 * - **Death or leave**: lookups return only providers that this node's membership holds `alive` or `suspect`. A
 *   provider declared `dead` or `left` (or unknown to membership) is dropped from results on the membership event,
 *   without waiting for its records to expire; it is also removed from the routing table. When it comes back (join,
 *   same peer id), its records count again, and it re-provides them itself at start-up.
 *
 * @packageDocumentation
 */
export { MeshDht, type MeshDhtInit, type DhtMembership, type DhtPubsub, type Provider, type FindProvidersResult, type ProvideResult, type Advert, type FindOptions } from './dht.js'
export { kadDhtOptions, meshKadDht } from './options.js'
export { KadSender, type KadSenderInit } from './sender.js'
export { resourceKey, validateResourceName, parseKey, parseDuration } from './keys.js'
export * as constants from './constants.js'
