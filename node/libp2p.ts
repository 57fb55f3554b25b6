import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import type { Registry } from 'prom-client'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
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
        // Several nodes on one host (a testnet, or containers behind one address) must not score each other down.
        scoreParams: { IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1']) }
      }),
      ...(init.services ?? {})
    } as any
  }) as unknown as Libp2p<BaseServices & S>
}
