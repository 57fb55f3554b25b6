import { kadDHT, passthroughMapper, type KadDHT, type KadDHTInit } from '@libp2p/kad-dht'
import { minute, second } from '../lib/units.js'
import * as C from './constants.js'

/**
 * kad-dht settings for a meshos mesh: server mode on every node (a small private mesh has no "public" address for
 * auto mode to detect), the private protocol `/meshos/kad/1.0.0`, all addresses kept (loopback and private ranges
 * are the norm here), provider records that live `RECORD_TTL`, and queries allowed before the table fills.
 */
export function kadDhtOptions (overrides: KadDHTInit = {}): KadDHTInit {
  return {
    protocol: C.PROTOCOL,
    clientMode: false,
    peerInfoMapper: passthroughMapper,
    kBucketSize: C.K_BUCKET_SIZE,
    alpha: C.ALPHA,
    allowQueryWithZeroPeers: true,
    // MeshDht keeps one stream per peer open across lookups (dht/sender.ts); let it idle longer than the default 10 s.
    incomingMessageTimeout: C.KAD_SERVER_STREAM_IDLE,
    providers: { provideValidity: C.RECORD_TTL / second, cleanupInterval: 5 * minute / second },
    // MeshDht re-provides what it advertises itself (from the data dir, to the k closest members); kad-dht's own
    // reprovider only needs to keep local records from lapsing between those rounds.
    reprovide: { validity: C.RECORD_TTL, threshold: minute, interval: C.REPROVIDE_INTERVAL },
    ...overrides
  }
}

/** The kad-dht service factory to put in libp2p's `services` (as `dht`). */
export function meshKadDht (overrides: KadDHTInit = {}): (components: any) => KadDHT {
  return kadDHT(kadDhtOptions(overrides))
}
