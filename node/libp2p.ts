import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import type { Registry } from 'prom-client'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { silentLogger, type Logger } from '../lib/log.js'
import { guardedPreSharedKey, readNetworkKey } from './pnet.js'
import { tuneYamuxWindowUpdates } from './yamux-tuning.js'
import { coalescingNoise } from './noise-tuning.js'

tuneYamuxWindowUpdates()
import * as C from './constants.js'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { PrivateKey, ServiceMap } from '@libp2p/interface'

export interface MeshLibp2pInit<S extends ServiceMap> {
  privateKey: PrivateKey
  listen: string[]
  announce: string[]
  /** Path of a pre-shared network key file; when set, only peers that hold the same key can connect. */
  networkKey?: string
  /** Where a refused connection is logged. @default silent */
  logger?: Logger
  /** libp2p's own metrics (connections, streams, dials, protocols) go here when given. */
  registry?: Registry
  /** Called for each connection refused for lacking the network key (a metric). */
  onRefused?: () => void
  /** Services the subsystems add (the DHT, for example). */
  services?: { [K in keyof S]: (components: any) => S[K] }
}

export type BaseServices = { identify: Identify, pubsub: GossipSub }

export async function createMeshLibp2p<S extends ServiceMap = Record<string, never>> (init: MeshLibp2pInit<S>): Promise<Libp2p<BaseServices & S>> {
  let connectionProtector
  if (init.networkKey != null) {
    const psk = await readNetworkKey(init.networkKey)
    connectionProtector = guardedPreSharedKey({ psk, logger: (init.logger ?? silentLogger).child({ component: 'pnet' }), onRefused: init.onRefused })
  }
  return await createLibp2p({
    privateKey: init.privateKey,
    start: false,
    addresses: { listen: init.listen, announce: init.announce },
    transports: [tcp()],
    connectionEncrypters: [coalescingNoise()],
    streamMuxers: [yamux()],
    connectionProtector,
    metrics: init.registry == null ? undefined : prometheusMetrics({ registry: init.registry, collectDefaultMetrics: false, preserveExistingMetrics: true }),
    connectionManager: {
      // Loopback is always this machine; a testnet opens many connections from it at once.
      allow: ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128'],
      inboundConnectionThreshold: C.inboundConnectionThreshold,
      maxConnections: C.maxConnections
    },
    services: {
      identify: identify(),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        maxInboundDataLength: C.maxPubsubMessage + 4096,
        fastMsgIdFn: gossipFastMsgId,
        // Several nodes on one host (a testnet, or containers behind one address) must not score each other down.
        scoreParams: { IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1']) }
      }),
      ...(init.services ?? {})
    } as any
  }) as unknown as Libp2p<BaseServices & S>
}

/**
 * gossipsub's duplicate key for a received message before it is validated. Without one, every copy a node receives
 * (one from each mesh peer: four in a 5-node mesh) had its Ed25519 signature checked before the seen-cache dropped it,
 * and the DHT's withdraw notices after an `rm` cost the mesh about 60 verifications (12 ms of CPU) per file.
 *
 * Sender, sequence number and signature: the signature covers the rest of the message, and gossipsub caches the key
 * only once a message with it has passed validation, so a forged copy cannot shadow the real one, and a copy that
 * differs from a valid one in any signed field has another signature, so it is still checked (and its sender
 * penalised).
 */
export function gossipFastMsgId (msg: { from?: Uint8Array, seqno?: Uint8Array, signature?: Uint8Array }): string {
  const part = (b?: Uint8Array): string => b == null ? '' : uint8ArrayToString(b, 'base64')
  return `${part(msg.from)}/${part(msg.seqno)}/${part(msg.signature)}`
}
