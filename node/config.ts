import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import { InvalidConfigError } from '../lib/errors.js'
import { MiB } from '../lib/units.js'
import { parseDuration } from '../tasks/types.js'

/** The largest KV value any node may be configured to take, and so what every replica takes from its peers. */
export const KV_MAX_VALUE_CEILING = 4 * MiB

const multiaddrString = z.string().refine((s) => {
  try { multiaddr(s); return s.startsWith('/') } catch { return false }
}, { message: 'not a valid multiaddr' })

// The peer id is parsed here, not only when the node dials: a bad one let the daemon start fully and then exit 70
// (INTERNAL, "Incorrect length"), which a supervisor restarts for ever.
const bootstrapAddr = multiaddrString.refine((s) => {
  try {
    const id = multiaddr(s).getComponents().find(c => c.name === 'p2p')?.value
    if (id == null) return false
    peerIdFromString(id)
    return true
  } catch { return false }
}, { message: 'a bootstrap address must end in /p2p/<peerId>, with a valid peer id' })

export const hostPort = z.string().refine((s) => parseHostPort(s) != null, { message: 'expected HOST:PORT with a port from 0 to 65535' })

export function parseHostPort (s: string): { host: string, port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(s)
  if (m == null) return undefined
  const port = Number(m[2])
  if (port > 65535) return undefined
  return { host: m[1].replace(/^\[|\]$/g, ''), port }
}

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/**
 * The daemon's whole configuration. One schema validates the merge of defaults, the config file, MESH_* variables and
 * flags, so every bad field is reported by name, whichever source it came from.
 */
export const configSchema = z.object({
  dataDir: z.string().min(1),
  listen: z.array(multiaddrString).min(1),
  announce: z.array(multiaddrString),
  bootstrap: z.array(bootstrapAddr),
  api: hostPort,
  apiToken: z.string().min(16).optional(),
  logLevel: z.enum(logLevels),
  logFormat: z.enum(['json', 'pretty']),
  networkKey: z.string().min(1).optional(),
  allowExec: z.boolean(),
  /** strict: a write is acknowledged only after fsync (group commit). relaxed: after the OS has it, before fsync. */
  durability: z.enum(['strict', 'relaxed']),
  /** Tasks this node runs at once. @default the number of cores */
  taskSlots: z.number().int().min(1).max(1024).optional(),
  /** How long an ended task's record, logs and idempotency key are kept (ms). @default 24 h (tasks RETENTION) */
  taskRetentionMs: z.number({ error: 'must be a duration such as 12h or 7d' }).int().min(60_000, 'must be at least 1m').max(366 * 86_400_000, 'must be at most 366d').optional(),
  /** Resource tags this node offers to tasks (e.g. gpu). */
  taskTags: z.array(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a tag is 1-64 letters, digits, . _ or -')),
  /** Copies of each key and file chunk; the same on every node of a mesh. */
  replicationFactor: z.number().int().min(1).max(7),
  /**
   * The largest value the KV API takes, in bytes; the same on every node of a mesh (a replica refuses one larger than
   * its own limit, which is this or 1 MiB, whichever is larger). At most 4 MiB, so that one value always fits a
   * replica message (8 MiB) and a range page (4 MiB).
   */
  kvMaxValueBytes: z.number().int().min(1024).max(KV_MAX_VALUE_CEILING),
  /** Test-only: offsets this node's wall clock, to show that a skewed clock loses no writes. */
  clockSkewMs: z.number().int().min(-86_400_000).max(86_400_000)
}).strict()

export type MeshConfig = z.infer<typeof configSchema>

export const defaults: MeshConfig = {
  dataDir: join(homedir(), '.meshos'),
  listen: ['/ip4/0.0.0.0/tcp/7946'],
  announce: [],
  bootstrap: [],
  api: '127.0.0.1:7947',
  logLevel: 'info',
  logFormat: 'json',
  allowExec: false,
  durability: 'strict',
  replicationFactor: 3,
  kvMaxValueBytes: 1 * MiB,
  taskTags: [],
  clockSkewMs: 0
}

/** MESH_* variables and how each maps onto a field; list fields take comma-separated values. */
const envFields: Record<string, { key: keyof MeshConfig, kind: 'string' | 'list' | 'bool' | 'int' | 'duration' }> = {
  MESH_DATA_DIR: { key: 'dataDir', kind: 'string' },
  MESH_LISTEN: { key: 'listen', kind: 'list' },
  MESH_ANNOUNCE: { key: 'announce', kind: 'list' },
  MESH_BOOTSTRAP: { key: 'bootstrap', kind: 'list' },
  MESH_API_LISTEN: { key: 'api', kind: 'string' },
  MESH_API_TOKEN: { key: 'apiToken', kind: 'string' },
  MESH_LOG_LEVEL: { key: 'logLevel', kind: 'string' },
  MESH_LOG_FORMAT: { key: 'logFormat', kind: 'string' },
  MESH_NETWORK_KEY_FILE: { key: 'networkKey', kind: 'string' },
  MESH_ALLOW_EXEC: { key: 'allowExec', kind: 'bool' },
  MESH_DURABILITY: { key: 'durability', kind: 'string' },
  MESH_REPLICATION_FACTOR: { key: 'replicationFactor', kind: 'int' },
  MESH_KV_MAX_VALUE_BYTES: { key: 'kvMaxValueBytes', kind: 'int' },
  MESH_TASK_SLOTS: { key: 'taskSlots', kind: 'int' },
  MESH_TASK_TAGS: { key: 'taskTags', kind: 'list' },
  MESH_TASK_RETENTION: { key: 'taskRetentionMs', kind: 'duration' },
  MESH_CLOCK_SKEW_MS: { key: 'clockSkewMs', kind: 'int' }
}

/** `30s`, `12h`, `7d` or a bare number of seconds, in ms; anything else as it is, for the schema to report by name. */
export function durationMs (v: unknown): unknown {
  if (v == null) return undefined
  try { return parseDuration(v) } catch { return v }
}

export function configFromEnv (env: NodeJS.ProcessEnv): Partial<Record<keyof MeshConfig, unknown>> {
  const out: Partial<Record<keyof MeshConfig, unknown>> = {}
  for (const [name, { key, kind }] of Object.entries(envFields)) {
    const v = env[name]
    if (v == null || v === '') continue
    if (kind === 'list') out[key] = v.split(',').map(s => s.trim()).filter(s => s !== '')
    else if (kind === 'bool') out[key] = /^(1|true|yes|on)$/i.test(v) ? true : /^(0|false|no|off)$/i.test(v) ? false : v
    else if (kind === 'int') out[key] = /^-?\d+$/.test(v) ? Number(v) : v
    else if (kind === 'duration') out[key] = durationMs(v)
    else out[key] = v
  }
  return out
}

export async function configFromFile (path: string): Promise<Record<string, unknown>> {
  let text: string
  let parsed: unknown
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new InvalidConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  try {
    parsed = JSON.parse(text)
    if (parsed == null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('expected a JSON object')
  } catch (err) {
    throw new InvalidConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`)
  }
  return fileFields(parsed as Record<string, unknown>)
}

/**
 * A file's keys are the flags' names in camelCase (README); two flags are named otherwise in the schema. Both
 * spellings are taken, and a duration is written as the flag takes it (`12h`) or in ms.
 */
export function fileFields (file: Record<string, unknown>): Record<string, unknown> {
  const out = { ...file }
  for (const [alias, key] of [['taskRetention', 'taskRetentionMs'], ['taskTag', 'taskTags']] as const) {
    if (!(alias in out)) continue
    if (key in out) throw new InvalidConfigError(`invalid configuration: give ${alias} or ${key}, not both`)
    out[key] = out[alias]
    delete out[alias]
  }
  if (typeof out.taskTags === 'string') out.taskTags = [out.taskTags]
  if (typeof out.taskRetentionMs === 'string') out.taskRetentionMs = durationMs(out.taskRetentionMs)
  return out
}

/** Merges the sources, later ones winning (defaults < file < env < flags), and validates the result. */
export function resolveConfig (...sources: Array<Record<string, unknown>>): MeshConfig {
  const merged: Record<string, unknown> = { ...defaults }
  for (const s of sources) {
    for (const [k, v] of Object.entries(s)) if (v !== undefined) merged[k] = v
  }
  const result = configSchema.safeParse(merged)
  if (!result.success) {
    const problems = result.error.issues.map(i => {
      if (i.code === 'unrecognized_keys') return `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.join(', ')}`
      return `${i.path.length > 0 ? i.path.join('.') : 'config'}: ${i.message}`
    })
    throw new InvalidConfigError(`invalid configuration: ${problems.join('; ')}`)
  }
  const config = result.data
  config.dataDir = resolve(config.dataDir)
  if (config.networkKey != null) config.networkKey = resolve(config.networkKey)
  return config
}
