import type { MeshNode } from './node.js'
import type { Subsystem } from './subsystem.js'

/** Wires tasks/ into the node: executor, queue, work stealing, state in the replicated store, routes. */
export async function createNodeTasks (_node: MeshNode): Promise<Subsystem | undefined> {
  return undefined
}
