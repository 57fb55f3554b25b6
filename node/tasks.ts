import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, rm, stat } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { BadRequestError, MeshError } from '../lib/errors.js'
import { deadline } from '../lib/abort.js'
import { second } from '../lib/units.js'
import * as C from './constants.js'
import {
  TaskManager, tasksService, tasksHandlers, rpcTasksTransport, statusOf, taskStates, isTaskId, constants as TC,
  type TaskStore, type TasksMembership, type TaskFiles, type TaskState, type TaskMember
} from '../tasks/index.js'
import type { Storage } from '../storage/index.js'
import type { Files } from '../files/index.js'
import { parseFileCid } from '../files/index.js'
import type { ApiServer } from './api.js'
import type { MeshNode } from './node.js'
import type { Subsystem } from './subsystem.js'

/** Membership metadata key holding the node's resource tags, comma-separated. */
const TAGS_META_KEY = 'tasks'
/** Membership metadata key holding the memory (MiB) the node offers to tasks, as a decimal string. */
const MEM_META_KEY = 'tasks.mem'

function memOf (tags: Record<string, string>): number | undefined {
  const v = Number(tags[MEM_META_KEY])
  return tags[MEM_META_KEY] != null && Number.isFinite(v) && v >= 0 ? v : undefined
}

function storeAdapter (storage: Storage): TaskStore {
  return {
    put: async (key, value, signal, ttl) => { await storage.put(key, value, { consistency: 'quorum', signal, ttl }) },
    get: async (key, signal) => {
      try {
        return (await storage.get(key, { consistency: 'quorum', signal })).value
      } catch (err) {
        if ((err as MeshError).code === 'NOT_FOUND') return undefined
        throw err
      }
    },
    // Scans read every task record: give them the whole deadline, not the store's per-request default. A store scan
    // stops at its size bound before the limit; sweeps take a short page for the last one, so this one goes on.
    scan: async (prefix, limit, signal, after) => {
      const out: Array<{ key: string, value: Uint8Array }> = []
      for (let from = after; ;) {
        const r = await storage.scan({ prefix, limit: limit - out.length, after: from, signal, timeoutMs: TC.STORE_TIMEOUT })
        for (const e of r.entries) out.push({ key: e.key, value: e.value })
        if (!r.more || r.entries.length === 0 || out.length >= limit) return out
        from = out[out.length - 1].key
      }
    }
  }
}

function membershipAdapter (node: MeshNode): TasksMembership {
  const m = node.membership
  return {
    self: m.peerId,
    members: () => m.members().map((x): TaskMember => ({
      peerId: x.peerId,
      state: x.state,
      capacity: x.meta.capacity,
      load: x.meta.load,
      tags: (x.meta.tags[TAGS_META_KEY] ?? '').split(',').filter(s => s !== ''),
      memory: memOf(x.meta.tags)
    })),
    on: (event, listener) => m.events.on(event, ({ member }: { member: { peerId: string } }) => { listener(member.peerId) }),
    publish: ({ capacity, load, tags, memory }) => {
      const patch: { capacity: number, load: number, tags?: Record<string, string> } = { capacity, load }
      if (tags != null || memory != null) {
        const current = m.member(m.peerId)?.meta.tags ?? {}
        patch.tags = { ...current }
        if (tags != null) patch.tags[TAGS_META_KEY] = tags.join(',')
        if (memory != null) patch.tags[MEM_META_KEY] = String(Math.floor(memory))
      }
      m.setMeta(patch)
    }
  }
}

function filesAdapter (files: Files): TaskFiles {
  return {
    check: (cid) => {
      try { parseFileCid(cid) } catch (err) { throw new BadRequestError(`input ${cid} is not a file CID: ${(err as Error).message}`) }
    },
    fetch: async (cid, dest, signal) => {
      await mkdir(dirname(dest), { recursive: true })
      const r = await files.read(cid, { signal })
      await pipeline(Readable.from(r.body), createWriteStream(dest), { signal })
    },
    store: async (path, signal) => {
      const st = await stat(path).catch(() => undefined)
      if (st == null || !st.isFile()) throw new MeshError('NOT_FOUND', `output ${basename(path)} was not written`)
      if (st.size > TC.MAX_OUTPUT_FILE) throw new MeshError('PAYLOAD_TOO_LARGE', `output ${basename(path)} is larger than ${TC.MAX_OUTPUT_FILE} bytes`)
      const r = await files.importFile(createReadStream(path), { name: basename(path), signal })
      return r.cid
    }
  }
}

function idParam (id: string): string {
  if (!isTaskId(id)) throw new BadRequestError(`"${id}" is not a task id`)
  return id
}

export function taskRoutes (api: ApiServer, manager: TaskManager, node: MeshNode): void {
  api.route({
    method: 'POST',
    path: '/v1/tasks',
    maxBody: TC.MAX_SUBMIT_BYTES,
    // Body: one spec, or {tasks: [spec, ...]} for a batch. Answers {id, ...status} or {tasks: [{id, ...}]}.
    handler: async ({ json, signal }) => {
      const body = await json() as { tasks?: unknown } | null
      if (body != null && typeof body === 'object' && 'tasks' in body) {
        // A batch is {tasks: [...]} and nothing else: a `cmd` beside it was ignored, and {tasks: {}} ran as one task.
        if (!Array.isArray(body.tasks)) throw new BadRequestError('tasks must be a list of task specs')
        const extra = Object.keys(body).filter(k => k !== 'tasks')
        if (extra.length > 0) throw new BadRequestError(`a batch is {"tasks": [...]} alone; unknown field ${JSON.stringify(extra[0])}`)
        const recs = await manager.submit(body.tasks, signal)
        return { tasks: recs.map(statusOf) }
      }
      const [rec] = await manager.submit([body], signal)
      return statusOf(rec)
    }
  })
  api.route({
    method: 'GET',
    path: '/v1/tasks',
    handler: async ({ query, signal }) => {
      const state = query.get('state') ?? undefined
      if (state != null && state !== '' && !taskStates.includes(state as TaskState)) throw new BadRequestError(`state must be one of ${taskStates.join(', ')}`)
      const limitRaw = query.get('limit')
      const limit = limitRaw == null || limitRaw === '' ? 1000 : Number(limitRaw)
      if (!Number.isInteger(limit) || limit < 1 || limit > TC.SCAN_LIMIT) throw new BadRequestError(`limit must be an integer from 1 to ${TC.SCAN_LIMIT}`)
      const recs = await manager.list({ state: state === '' ? undefined : state as TaskState, limit, signal })
      return { tasks: recs.map(statusOf), count: recs.length }
    }
  })
  api.route({
    method: 'GET',
    path: '/v1/tasks/node',
    handler: () => manager.local()
  })
  api.route({
    method: 'GET',
    path: '/v1/tasks/top',
    // Every member's advertised slots and load, and this node's own queue: what `mesh top` draws.
    handler: () => ({
      self: manager.local(),
      members: node.membership.members().map(m => ({
        peerId: m.peerId,
        state: m.state,
        slots: m.meta.capacity,
        load: m.meta.load,
        tags: (m.meta.tags[TAGS_META_KEY] ?? '').split(',').filter(s => s !== ''),
        memory: memOf(m.meta.tags)
      }))
    })
  })
  api.route({ method: 'GET', path: '/v1/tasks/:id', handler: async ({ params, signal }) => statusOf(await manager.get(idParam(params.id), signal)) })
  api.route({ method: 'POST', path: '/v1/tasks/:id/cancel', handler: async ({ params, signal }) => statusOf(await manager.cancel(idParam(params.id), signal)) })
  api.route({ method: 'GET', path: '/v1/tasks/:id/logs', handler: async ({ params, signal }) => await manager.logs(idParam(params.id), signal) })
}

/** Wires tasks/ into the node: executor, queue, work stealing, state in the replicated store, routes. */
export async function createNodeTasks (node: MeshNode): Promise<Subsystem | undefined> {
  const storage = node.subsystems.find(s => s.name === 'storage')?.service as Storage | undefined
  if (storage == null) {
    node.log.warn({ component: 'tasks' }, 'no replicated store: tasks disabled')
    return undefined
  }
  const files = node.subsystems.find(s => s.name === 'files')?.service as Files | undefined
  // Validated with the rest of the config (--task-slots, --task-tag, or MESH_TASK_SLOTS / MESH_TASK_TAGS).
  const env = { slots: node.config.taskSlots ?? availableParallelism(), tags: node.config.taskTags }
  const dir = join(node.config.dataDir, 'tasks', 'scratch')
  // Scratch dirs are removed when their attempt ends; those still here are from attempts a crash or a cut-short stop
  // ended, which no task will use again (a re-run gets a new dir). The data-dir lock keeps other daemons out. What a
  // task left unremovable (a read-only tree, another user's files) is logged, never a reason not to start.
  await rm(dir, { recursive: true, force: true }).catch(err => { node.log.warn({ component: 'tasks', err, dir }, 'could not clear old task scratch dirs') })
  await mkdir(dir, { recursive: true })
  const manager = new TaskManager({
    store: storeAdapter(storage),
    membership: membershipAdapter(node),
    transport: rpcTasksTransport(node.rpc, 10 * second),
    files: files != null ? filesAdapter(files) : undefined,
    logger: node.log,
    registry: node.registry
  }, { dir, slots: env.slots, allowExec: node.config.allowExec, tags: env.tags, retention: node.config.taskRetentionMs })
  return {
    name: 'tasks',
    service: manager,
    async start () {
      await node.rpc.handle(tasksService, tasksHandlers(manager) as any)
      await manager.start()
    },
    async stop () {
      await Promise.race([manager.stop(), new Promise<void>(resolve => { deadline(C.tasksStopTimeout).addEventListener('abort', () => { resolve() }) })])
    },
    routes (api) { taskRoutes(api, manager, node) },
    stats () { return manager.stats() }
  }
}
