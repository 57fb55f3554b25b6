import { randomBytes } from 'node:crypto'
import { isAbsolute, normalize } from 'node:path'
import { InvalidTaskError, MalformedRecordError } from './errors.js'
import * as C from './constants.js'

export type TaskState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled'
export const taskStates: readonly TaskState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled']
export const terminalStates: ReadonlySet<TaskState> = new Set(['succeeded', 'failed', 'cancelled'])

/** What to run, as submitted. */
export interface TaskSpec {
  /** The program; looked up on PATH. */
  cmd: string
  /** @default [] */
  args: string[]
  /** Added to a minimal environment (PATH, HOME, MESH_TASK_ID, MESH_TASK_ATTEMPT). @default {} */
  env: Record<string, string>
  /** Small working files written into the scratch dir before the run: relative path → UTF-8 content. @default {} */
  files: Record<string, string>
  /** Slots the task occupies. @default 1 */
  cpu: number
  /** Memory the task needs (MiB): it runs only where that much of the node's advertised memory is free. @default 0 */
  mem: number
  /** Resource tags a node must advertise (e.g. gpu). @default [] */
  tags: string[]
  /** Re-runs after the node running it dies. @default 3 */
  retries: number
  /** Re-runs after a non-zero exit or a timeout. @default 0 */
  retryFailed: number
  /** Kill after this long (ms). @default 1 hour */
  timeout: number
  /** meshos file CIDs fetched to `path` in the scratch dir before the run. @default [] */
  inputs: Array<{ cid: string, path: string }>
  /** Scratch-dir paths stored as files after a successful run. @default [] */
  outputs: string[]
  /** Resubmitting with the same key returns the first task. @default none */
  idempotencyKey?: string
}

/** One start of a task on one node. */
export interface Attempt {
  node: string
  start: number
  end?: number
  exitCode?: number | null
  error?: string
}

/**
 * A task as the replicated store holds it. `node` is the holder: the one node that may start it (queued) or is running
 * it. Only the holder writes the record, except that a steal moves it (the victim writes the thief's name before
 * handing it over) and a survivor adopts the tasks of a dead holder; `attempt` guards those hand-overs.
 */
export interface TaskRecord {
  id: string
  spec: TaskSpec
  state: TaskState
  node: string
  /** Starts so far; the attempt a holder runs is this number. */
  attempt: number
  attempts: Attempt[]
  /** Re-runs spent on dead nodes and on failures. */
  nodeRetries: number
  failRetries: number
  outputs: Array<{ path: string, cid: string }>
  exitCode?: number | null
  /** Why the task failed, or why it waits. */
  error?: string
  reason?: string
  submittedAt: number
  updatedAt: number
  /** The node that took the submission. */
  submittedTo: string
}

/** `mesh task status --json`. */
export interface TaskStatus {
  id: string
  state: TaskState
  node: string
  attempts: Array<{ node: string, start: number, end: number | null, exitCode: number | null, error?: string }>
  outputs: Array<{ path: string, cid: string }>
  exitCode: number | null
  error?: string
  reason?: string
  cmd: string
  args: string[]
  submittedAt: number
  updatedAt: number
}

export function statusOf (r: TaskRecord): TaskStatus {
  return {
    id: r.id,
    state: r.state,
    node: r.node,
    attempts: r.attempts.map(a => ({ node: a.node, start: a.start, end: a.end ?? null, exitCode: a.exitCode ?? null, ...(a.error != null ? { error: a.error } : {}) })),
    outputs: r.outputs,
    exitCode: r.exitCode ?? null,
    ...(r.error != null ? { error: r.error } : {}),
    ...(r.reason != null ? { reason: r.reason } : {}),
    cmd: r.spec.cmd,
    args: r.spec.args,
    submittedAt: r.submittedAt,
    updatedAt: r.updatedAt
  }
}

/** Sortable by submission time, unguessable. */
export function newTaskId (now: number): string {
  return `${taskIdPrefix(now)}${randomBytes(6).toString('hex')}`
}

/** The start every id of a task submitted at `now` (ms) shares; ids of later tasks sort after it. */
export function taskIdPrefix (now: number): string {
  return `t${Math.floor(Math.max(0, now)).toString(36).padStart(9, '0')}`
}

export function isTaskId (id: string): boolean { return /^t[0-9a-z]{9}[0-9a-f]{12}$/.test(id) }

const encoder = new TextEncoder()
const decoder = new TextDecoder()
export function encodeRecord (r: TaskRecord): Uint8Array<ArrayBuffer> { return encoder.encode(JSON.stringify(r)) }
/**
 * A stored record, checked for the fields scheduling and status rely on: the store holds whatever a KV writer put under
 * the tasks prefix, and one bad value must fail only itself, not every scan that meets it.
 */
export function decodeRecord (b: Uint8Array): TaskRecord {
  let v: any
  try {
    v = JSON.parse(decoder.decode(b))
  } catch {
    throw new MalformedRecordError('a task record is not JSON')
  }
  const spec = v?.spec
  const ok = v != null && typeof v === 'object' && typeof v.id === 'string' && isTaskId(v.id) &&
    taskStates.includes(v.state) && typeof v.node === 'string' && Number.isInteger(v.attempt) &&
    Number.isInteger(v.nodeRetries) && Number.isInteger(v.failRetries) &&
    typeof v.submittedAt === 'number' && typeof v.updatedAt === 'number' && Array.isArray(v.outputs) &&
    Array.isArray(v.attempts) && v.attempts.every((a: any) => a != null && typeof a === 'object' && typeof a.node === 'string' && typeof a.start === 'number') &&
    spec != null && typeof spec === 'object' && typeof spec.cmd === 'string' && Array.isArray(spec.args) &&
    typeof spec.cpu === 'number' && typeof spec.mem === 'number' && Array.isArray(spec.tags)
  if (!ok) throw new MalformedRecordError(`a stored task record${typeof v?.id === 'string' ? ` (${v.id.slice(0, 40)})` : ''} is malformed`)
  return v as TaskRecord
}

/** A relative path that stays inside the scratch dir. */
export function safeRelativePath (p: unknown, what: string): string {
  if (typeof p !== 'string' || p === '' || p.length > 1024 || p.includes('\0')) throw new InvalidTaskError(`${what} must be a non-empty relative path`)
  const n = normalize(p)
  if (isAbsolute(n) || n === '..' || n.startsWith('../') || n === '.') throw new InvalidTaskError(`${what} "${p}" must be a relative path inside the task's directory`)
  return n
}

function int (v: unknown, name: string, min: number, max: number, dflt: number): number {
  if (v == null) return dflt
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new InvalidTaskError(`${name} must be an integer from ${min} to ${max}`)
  return v
}

function strings (v: unknown, name: string): string[] {
  if (v == null) return []
  if (!Array.isArray(v) || v.some(x => typeof x !== 'string')) throw new InvalidTaskError(`${name} must be a list of strings`)
  return v as string[]
}

function stringMap (v: unknown, name: string): Record<string, string> {
  if (v == null) return {}
  if (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some(x => typeof x !== 'string')) throw new InvalidTaskError(`${name} must be an object of strings`)
  return { ...(v as Record<string, string>) }
}

/** A JSON number of ms, or a string: `30s`, `5m`, `2h`, `1500ms`, or a bare number of seconds (as kv's ttl) → ms. */
export function parseDuration (v: unknown, name = 'duration'): number {
  if (typeof v === 'number') return v
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(v.trim()) : null
  if (m == null) throw new InvalidTaskError(`${name} must be a duration such as 30s, 5m or 1h, not "${String(v)}"`)
  return Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const)[(m[2] ?? 's') as 'ms']
}

const SPEC_FIELDS = new Set(['cmd', 'args', 'env', 'files', 'cpu', 'mem', 'tags', 'retries', 'retryFailed', 'timeout', 'inputs', 'outputs', 'idempotencyKey'])

/** Checks a submitted spec and fills in the defaults; throws InvalidTaskError with the first problem. */
export function normalizeSpec (input: unknown): TaskSpec {
  if (input == null || typeof input !== 'object' || Array.isArray(input)) throw new InvalidTaskError('a task must be a JSON object')
  const s = input as Record<string, unknown>
  // A misspelt field used to be dropped in silence: `timout` ran the task with the default hour, `retires` with the
  // default retries.
  const unknown = Object.keys(s).filter(k => !SPEC_FIELDS.has(k))
  if (unknown.length > 0) throw new InvalidTaskError(`unknown field ${JSON.stringify(unknown[0])}; a task takes ${[...SPEC_FIELDS].join(', ')}`)
  if (typeof s.cmd !== 'string' || s.cmd.trim() === '' || s.cmd.includes('\0')) throw new InvalidTaskError('cmd must be a non-empty string')
  if (encoder.encode(JSON.stringify(s)).byteLength > C.MAX_SPEC_BYTES) throw new InvalidTaskError(`a task spec may be at most ${C.MAX_SPEC_BYTES} bytes`)
  const files = stringMap(s.files, 'files')
  let fileBytes = 0
  const safeFiles: Record<string, string> = {}
  for (const [p, content] of Object.entries(files)) { safeFiles[safeRelativePath(p, 'file path')] = content; fileBytes += encoder.encode(content).byteLength }
  if (fileBytes > C.MAX_INLINE_FILES_BYTES) throw new InvalidTaskError(`inline files may hold at most ${C.MAX_INLINE_FILES_BYTES} bytes; use inputs for more`)
  const inputs = s.inputs == null ? [] : s.inputs
  if (!Array.isArray(inputs)) throw new InvalidTaskError('inputs must be a list of {cid, path}')
  const timeout = s.timeout == null ? C.DEFAULT_TIMEOUT : parseDuration(s.timeout, 'timeout')
  if (!(timeout >= 1 && timeout <= C.MAX_TIMEOUT)) throw new InvalidTaskError(`timeout must be from 1 ms to ${C.MAX_TIMEOUT / 86_400_000} days`)
  const key = s.idempotencyKey
  if (key != null && (typeof key !== 'string' || key === '' || key.length > 256)) throw new InvalidTaskError('idempotencyKey must be a string of 1 to 256 characters')
  const mem = s.mem == null ? 0 : s.mem
  if (typeof mem !== 'number' || !(mem >= 0)) throw new InvalidTaskError('mem must be a non-negative number of MiB')
  const tags = strings(s.tags, 'tags')
  for (const t of tags) if (!/^[A-Za-z0-9_.-]{1,64}$/.test(t)) throw new InvalidTaskError(`tag "${t}" must be 1 to 64 letters, digits, _ . or -`)
  return {
    cmd: s.cmd,
    args: strings(s.args, 'args'),
    env: stringMap(s.env, 'env'),
    files: safeFiles,
    cpu: int(s.cpu, 'cpu', 1, 1024, 1),
    mem,
    tags,
    retries: int(s.retries, 'retries', 0, C.MAX_RETRIES, C.DEFAULT_RETRIES),
    retryFailed: int(s.retryFailed, 'retryFailed', 0, C.MAX_RETRIES, 0),
    timeout,
    inputs: inputs.map((x: unknown, i: number) => {
      const o = x as { cid?: unknown, path?: unknown } | null
      if (o == null || typeof o.cid !== 'string' || o.cid === '') throw new InvalidTaskError(`inputs[${i}].cid must be a file CID`)
      return { cid: o.cid, path: safeRelativePath(o.path, `inputs[${i}].path`) }
    }),
    outputs: strings(s.outputs, 'outputs').map((p, i) => safeRelativePath(p, `outputs[${i}]`)),
    ...(key != null ? { idempotencyKey: key as string } : {})
  }
}
