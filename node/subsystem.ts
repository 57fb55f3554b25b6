import type { ApiServer } from './api.js'

/** What the composition root needs from each subsystem it wires in. */
export interface Subsystem {
  readonly name: string
  /** What the subsystem offers the others (the store, the DHT); the composition root hands it on. */
  readonly service?: unknown
  start (): Promise<void>
  /** Graceful: hand off what should be handed off. Releases every timer, handle and file. */
  stop (): Promise<void>
  /** Adds the subsystem's API routes; called before the API starts listening. */
  routes (api: ApiServer): void
  /** Figures for `mesh status`, e.g. dataBytes, records, ringShare, tasksRunning, tasksQueued. */
  stats?: () => Promise<Record<string, number>> | Record<string, number>
}
