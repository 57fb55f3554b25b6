import { EchoMessage } from './diag.js'
import type { ServiceDef } from '../rpc/index.js'
import { MiB } from '../lib/units.js'

/** `/meshos/diag/1.0.0`: echo, for measuring the RPC path and for health checks between peers. */
export const diagService = {
  name: 'diag',
  version: 1,
  maxMessageSize: 4 * MiB,
  methods: {
    echo: { request: EchoMessage, response: EchoMessage },
    /** Takes a payload and answers with nothing, for one-way bulk throughput. */
    sink: { request: EchoMessage, response: EchoMessage }
  }
} satisfies ServiceDef<any>

export const diagHandlers = {
  echo: async (req: EchoMessage) => req,
  sink: async () => ({ data: new Uint8Array() })
}
