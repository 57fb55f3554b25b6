import type { MeshNode } from './node.js'
import type { Subsystem } from './subsystem.js'

/** Wires files/ into the node: chunk store, transfer RPC service, provider records, repair, routes. */
export async function createNodeFiles (_node: MeshNode): Promise<Subsystem | undefined> {
  return undefined
}
