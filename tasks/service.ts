import { MiB, second } from '../lib/units.js'
import type { Rpc, ServiceDef } from '../rpc/index.js'
import type { TaskManager } from './manager.js'
import type { TasksTransport } from './ports.js'
import { CancelRequest, CancelResponse, LogsRequest, LogsResponse, StealRequest, StealResponse } from './tasks.js'
import { encodeRecord } from './types.js'

/** `/meshos/tasks/1.0.0`. */
export const tasksService = {
  name: 'tasks',
  version: 1,
  maxMessageSize: 8 * MiB,
  methods: {
    steal: { request: StealRequest, response: StealResponse },
    cancel: { request: CancelRequest, response: CancelResponse },
    logs: { request: LogsRequest, response: LogsResponse }
  }
} satisfies ServiceDef<any>

export function tasksHandlers (manager: TaskManager) {
  return {
    steal: async (req: StealRequest, ctx: { signal: AbortSignal, peer: { toString: () => string } }) =>
      // The thief is the caller, whatever the request says: a peer cannot have tasks recorded as someone else's.
      await manager.handleSteal({ ...req, thief: ctx.peer.toString() }, ctx.signal),
    cancel: async (req: CancelRequest, ctx: { signal: AbortSignal }): Promise<CancelResponse> => {
      const rec = await manager.cancelLocal(req.id, ctx.signal)
      return rec == null ? { found: false, task: new Uint8Array() } : { found: true, task: encodeRecord(rec) }
    },
    logs: async (req: LogsRequest): Promise<LogsResponse> => {
      const l = manager.localLogs(req.id)
      return l == null ? { found: false, stdout: '', stderr: '', truncated: false } : { found: true, ...l }
    }
  }
}

export function rpcTasksTransport (rpc: Rpc, timeout = 10 * second): TasksTransport {
  return {
    steal: async (peer, req, signal) => await rpc.call(peer, tasksService, 'steal', req, { signal, timeout }),
    cancel: async (peer, id, signal) => await rpc.call(peer, tasksService, 'cancel', { id }, { signal, timeout }),
    logs: async (peer, id, signal) => await rpc.call(peer, tasksService, 'logs', { id }, { signal, timeout })
  }
}
