import { EchoMessage, InfoRequest, NodeInfo } from './diag.js'
import type { ServiceDef } from '../rpc/index.js'
import { MiB } from '../lib/units.js'

/** `/meshos/diag/1.0.0`: echo for measuring the RPC path, and `info` for a nodetool-like view of every member. */
export const diagService = {
  name: 'diag',
  version: 1,
  maxMessageSize: 4 * MiB,
  methods: {
    echo: { request: EchoMessage, response: EchoMessage },
    /** Takes a payload and answers with nothing, for one-way bulk throughput. */
    sink: { request: EchoMessage, response: EchoMessage },
    info: { request: InfoRequest, response: NodeInfo }
  }
} satisfies ServiceDef<any>

export function diagHandlers (info: () => Promise<NodeInfo> = async () => ({ version: '', uptimeMs: 0n, stats: new Map() })) {
  return {
    echo: async (req: EchoMessage) => req,
    sink: async () => ({ data: new Uint8Array() }),
    info: async () => await info()
  }
}
