import type { StealRequest, StealResponse } from './tasks.js'

/** The replicated store as tasks use it: every call at quorum, NOT_FOUND as undefined. */
export interface TaskStore {
  /** `ttl` (ms): the key reads as not found that long after this write; absent, it is kept. */
  put(key: string, value: Uint8Array, signal: AbortSignal, ttl?: number): Promise<void>
  get(key: string, signal: AbortSignal): Promise<Uint8Array | undefined>
  /** Up to `limit` entries under `prefix` in key order, starting after the key `after` when given. */
  scan(prefix: string, limit: number, signal: AbortSignal, after?: string): Promise<Array<{ key: string, value: Uint8Array }>>
}

export interface TaskMember {
  peerId: string
  state: 'alive' | 'suspect' | 'dead' | 'left'
  /** Advertised slots (0: does not run commands) and queued + running. */
  capacity: number
  load: number
  tags: string[]
  /** Advertised memory for tasks (MiB); absent when the member does not say (an older node), and then taken to fit any task. */
  memory?: number
}

/** What tasks need from membership. */
export interface TasksMembership {
  readonly self: string
  /** Every member this node knows, itself included. */
  members(): TaskMember[]
  on(event: 'join' | 'update' | 'dead' | 'left', listener: (peerId: string) => void): () => void
  /** Publishes slots and load in the member's metadata; the caller limits the rate. */
  publish(meta: { capacity: number, load: number, tags?: string[], memory?: number }): void
}

/** Calls to the tasks service of another node. */
export interface TasksTransport {
  steal(peer: string, req: StealRequest, signal: AbortSignal): Promise<StealResponse>
  cancel(peer: string, id: string, signal: AbortSignal): Promise<{ found: boolean, task: Uint8Array }>
  logs(peer: string, id: string, signal: AbortSignal): Promise<{ found: boolean, stdout: string, stderr: string, truncated: boolean }>
}

/** meshos files, for task inputs and outputs. */
export interface TaskFiles {
  /** Throws BAD_REQUEST for a malformed CID. */
  check(cid: string): void
  /** Fetches a file into `dest`. */
  fetch(cid: string, dest: string, signal: AbortSignal): Promise<void>
  /** Stores a local file and returns its CID. */
  store(path: string, signal: AbortSignal): Promise<string>
}
