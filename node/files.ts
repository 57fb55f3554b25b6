import { join } from 'node:path'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { BadRequestError, InvalidConfigError, MeshError, UnavailableError } from '../lib/errors.js'
import { releaseBuffer } from '../lib/release.js'
import * as C from './constants.js'
import { Files, parseFileCid, parseRange, type ContentRouting, type FilesInit, type FilesMembership } from '../files/index.js'
import type { CID } from 'multiformats/cid'
import type { ApiServer } from './api.js'
import type { MeshNode } from './node.js'
import type { Subsystem } from './subsystem.js'

/** The DHT as node/dht.ts exposes it on the node; only what files/ adapts. */
interface NodeDht {
  provide: (key: CID, options: { signal?: AbortSignal }) => Promise<unknown>
  findProviders: (key: CID, options: { signal?: AbortSignal }) => Promise<{ providers: Array<{ peerId: string }> }>
  unprovide?: (key: CID) => Promise<void>
}

/**
 * Writes a file's body to an HTTP response, freeing each chunk's memory as soon as the socket has taken it: the
 * chunks are the response's alone (files' `read`), and a freed chunk is one a full collection need not find. On a
 * 200 MiB get this took a quarter off the reading node's CPU (BENCHMARKS.md, files, session 7).
 */
async function sendBody (first: Uint8Array | undefined, body: AsyncGenerator<Uint8Array>, res: ServerResponse, signal: AbortSignal): Promise<void> {
  try {
    if (first != null) {
      const ok = res.write(first, err => { if (err == null) releaseBuffer(first) })
      if (!ok) await drained(res, signal)
    }
    for await (const data of body) {
      if (res.destroyed) throw new UnavailableError('the client closed the connection')
      const ok = res.write(data, err => { if (err == null) releaseBuffer(data) })
      if (!ok) await drained(res, signal)
    }
    res.end()
  } finally {
    // Ends the transfer (its window of fetches) also when the first chunk's write failed before the loop began.
    await body.return(undefined)
  }
}

/**
 * Resolves when `res` can take more; rejects when it closes first, `signal` aborts, or no byte leaves for
 * `apiStreamIdleTimeout`: a client that stopped reading held the chunks in flight (4 MiB or so) for as long as it kept
 * its connection, and enough of them, the node's memory.
 */
async function drained (res: ServerResponse, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    // Re-armed while bytes still leave: a slow client (a throttled link) is not a stopped one.
    let sent = res.socket?.bytesWritten ?? 0
    const check = (): void => {
      const now = res.socket?.bytesWritten ?? 0
      if (now !== sent) {
        sent = now
        stalled = setTimeout(check, C.apiStreamIdleTimeout)
        return
      }
      done(new UnavailableError('the client stopped reading'))
      res.destroy()
    }
    let stalled = setTimeout(check, C.apiStreamIdleTimeout)
    const done = (err?: Error): void => {
      clearTimeout(stalled)
      res.off('drain', onDrain)
      res.off('close', onClose)
      signal.removeEventListener('abort', onAbort)
      if (err == null) resolve()
      else reject(err)
    }
    const onDrain = (): void => { done() }
    const onClose = (): void => { done(new UnavailableError('the client closed the connection')) }
    const onAbort = (): void => { done(signal.reason instanceof Error ? signal.reason : new UnavailableError('aborted')) }
    res.on('drain', onDrain)
    res.on('close', onClose)
    signal.addEventListener('abort', onAbort)
    if (signal.aborted) onAbort()
  })
}

/**
 * Tunables from the environment, for tests and operators: MESH_FILES_CHUNK_SIZE, MESH_FILES_REPLICAS (a file's default
 * copies, else the node's replication factor), MESH_FILES_REPAIR_INTERVAL_MS.
 */
export function filesEnv (env: NodeJS.ProcessEnv = process.env): Partial<FilesInit> {
  const out: Partial<FilesInit> = {}
  const num = (name: string, min: number): number | undefined => {
    const v = env[name]
    if (v == null || v === '') return undefined
    const n = Number(v)
    if (!Number.isInteger(n) || n < min) throw new InvalidConfigError(`${name} must be an integer of at least ${min}, not ${v}`)
    return n
  }
  out.chunkSize = num('MESH_FILES_CHUNK_SIZE', 1)
  out.replicas = num('MESH_FILES_REPLICAS', 1)
  out.repairInterval = num('MESH_FILES_REPAIR_INTERVAL_MS', 100)
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined))
}

/** Adapts the DHT subsystem's service to files/' ContentRouting, or undefined when the node runs without a DHT. */
function contentRouting (node: MeshNode): ContentRouting | undefined {
  const dht = node.subsystems.find(s => s.name === 'dht')?.service as NodeDht | undefined
  if (dht == null || typeof dht.provide !== 'function' || typeof dht.findProviders !== 'function') return undefined
  return {
    provide: async (cid, { signal }) => { await dht.provide(cid, { signal }) },
    findProviders: async (cid, { signal }) => (await dht.findProviders(cid, { signal })).providers.map(p => p.peerId),
    unprovide: dht.unprovide == null ? undefined : async (cid) => { await dht.unprovide?.(cid) }
  }
}

function membership (node: MeshNode): FilesMembership {
  const m = node.membership
  return {
    get peerId () { return m.peerId },
    aliveMembers: () => m.aliveMembers(),
    suspectMembers: () => m.members().filter(x => x.state === 'suspect'),
    on: (event, fn) => m.events.on(event, ({ member }) => { fn(member.peerId) })
  }
}

function intParam (query: URLSearchParams, name: string): number | undefined {
  const v = query.get(name)
  if (v == null || v === '') return undefined
  if (!/^\d+$/.test(v)) throw new BadRequestError(`${name} must be a non-negative integer`)
  return Number(v)
}

/** The request body, failing instead of ending quietly when the client goes away mid-upload. */
async function * requestBody (req: IncomingMessage): AsyncGenerator<Uint8Array> {
  for await (const piece of req) yield piece as Uint8Array
  if (!req.complete) throw new BadRequestError('request body was truncated')
}

/** Wires files/ into the node: chunk store, transfer RPC service, provider records, repair, routes. */
export async function createNodeFiles (node: MeshNode): Promise<Subsystem | undefined> {
  const files = new Files({
    rpc: node.rpc,
    membership: membership(node),
    contentRouting: contentRouting(node),
    logger: node.log,
    registry: node.registry
  }, { dir: join(node.config.dataDir, 'files'), replicas: node.config.replicationFactor, ...filesEnv() })
  return {
    name: 'files',
    service: files,
    start: async () => { await files.start() },
    stop: async () => { await files.stop() },
    stats: () => ({ filePins: files.pins.pins.size, fileBlocks: files.store.stats.blocks, fileBytes: files.store.stats.bytes }),
    routes: (api: ApiServer) => {
      api.route({
        method: 'POST',
        path: '/v1/files',
        // The body is streamed into chunks, never buffered, so there is no size limit to enforce here, nor a deadline
        // for all of it to arrive: a large file on a slow link takes what it takes.
        maxBody: Number.MAX_SAFE_INTEGER,
        streamsBody: true,
        handler: async ({ req, query, signal }) => {
          const replicas = intParam(query, 'replicas')
          const chunkSize = intParam(query, 'chunkSize')
          // Node's parser holds the body to a declared length, so the size is known ahead when there is one.
          const length = Number(req.headers['content-length'] ?? NaN)
          const size = Number.isSafeInteger(length) && length >= 0 ? length : undefined
          return await files.importFile(requestBody(req), { name: query.get('name') ?? '', replicas, chunkSize, size, signal })
        }
      })
      api.route({ method: 'GET', path: '/v1/files', handler: async ({ signal }) => ({ files: await files.list({ signal }) }) })
      api.route({ method: 'GET', path: '/v1/files/:cid/stat', handler: async ({ params, signal }) => await files.stat(params.cid, { signal }) })
      api.route({ method: 'DELETE', path: '/v1/files/:cid', handler: async ({ params, signal }) => await files.remove(params.cid, { signal }) })
      api.route({
        method: 'GET',
        path: '/v1/files/:cid',
        handler: async ({ params, query, req, res, signal }) => {
          parseFileCid(params.cid)
          // Size first (the manifest only), so that the Range header can be checked before any byte is promised.
          const head = await files.read(params.cid, { signal, length: 0 })
          let offset = intParam(query, 'offset') ?? 0
          let length = intParam(query, 'length')
          const range = parseRange(req.headers.range, head.size)
          if (range === 'unsatisfiable') {
            res.writeHead(416, { 'content-range': `bytes */${head.size}`, 'content-type': 'application/json' })
            res.end(JSON.stringify(new MeshError('RANGE_NOT_SATISFIABLE', `range not satisfiable for ${head.size} bytes`).toJSON()))
            return undefined
          }
          if (range != null) ({ offset, length } = range)
          const r = await files.read(params.cid, { signal, offset, length })
          const headers: Record<string, string | number> = {
            'content-type': 'application/octet-stream',
            'content-length': r.length,
            'accept-ranges': 'bytes',
            etag: `"${r.cid}"`,
            'cache-control': 'public, max-age=31536000, immutable'
          }
          if (range != null) headers['content-range'] = `bytes ${r.offset}-${r.offset + r.length - 1}/${r.size}`
          if (req.method === 'HEAD') {
            res.writeHead(range != null ? 206 : 200, headers)
            await r.body.return(undefined)
            res.end()
            return undefined
          }
          // The first chunk before the status line: a file that no provider has any more (removed, or its holders all
          // gone) is a 404 or 503 with its error, rather than a 200 and a connection dropped.
          const first = r.length > 0 ? (await r.body.next()).value ?? undefined : undefined
          res.writeHead(range != null ? 206 : 200, headers)
          await sendBody(first, r.body, res, signal)
          return undefined
        }
      })
    }
  }
}
