import type { MeshConfig } from './config.js'
import type { MeshNode } from './node.js'
import type { Subsystem } from './subsystem.js'

/** libp2p services the DHT needs, added when libp2p is created. */
export function dhtLibp2pServices (_config: MeshConfig): Record<string, (components: any) => unknown> {
  return {}
}

/** Wires dht/ into the node: seeding from membership, resource advertisement, routes. */
export async function createNodeDht (_node: MeshNode): Promise<Subsystem | undefined> {
  return undefined
}
