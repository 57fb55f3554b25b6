import { BadRequestError, MeshError } from '../lib/errors.js'
import { MeshClient, type ClientInit } from './client.js'

export type Consistency = 'any' | 'one' | 'quorum' | 'all'

export interface KvTimestamp { wall: number, logical: number, node: string }

export interface KvWriteResult { key: string, timestamp: KvTimestamp, acks: number, hinted: number }

export interface KvGetResult {
  key: string
  value: Uint8Array
  /** `wall.logical@node` as the node sent it. */
  timestamp: string
}

export interface KvEntry { key: string, value: string /* base64 */, timestamp: KvTimestamp }

export interface KvOptions {
  consistency?: Consistency
  /** Per-request deadline on the coordinator (ms). */
  timeoutMs?: number
  signal?: AbortSignal
}

/** A small typed client of the `/v1/kv` API of any node (the node coordinates the request). */
export class KvClient {
  readonly mesh: MeshClient

  constructor (init: ClientInit | MeshClient = {}) {
    this.mesh = init instanceof MeshClient ? init : new MeshClient(init)
  }

  private static path (key: string, q: Record<string, string | number | undefined>): string {
    // `/v1/kv/` is the scan route: an empty key would be answered as a wrong method on it.
    if (key === '') throw new BadRequestError('the key is empty')
    // URLs resolve a path segment of `.` or `..` (escaped or not) away, so the request would name another route.
    if (key === '.' || key === '..') throw new BadRequestError(`the key ${key} cannot be named in the HTTP API's path; choose another key`)
    const enc = key.split('/').map(encodeURIComponent).join('%2F')
    const qs = new URLSearchParams()
    for (const [k, v] of Object.entries(q)) if (v !== undefined) qs.set(k, String(v))
    const s = qs.toString()
    return `/v1/kv/${enc}${s === '' ? '' : '?' + s}`
  }

  async put (key: string, value: Uint8Array | string, opts: KvOptions & { ttl?: string } = {}): Promise<KvWriteResult> {
    const body = typeof value === 'string' ? new TextEncoder().encode(value) : value
    const res = await this.mesh.request('PUT', KvClient.path(key, { consistency: opts.consistency, ttl: opts.ttl, timeout: opts.timeoutMs }), {
      body, headers: { 'content-type': 'application/octet-stream' }, signal: opts.signal
    })
    return await res.json() as KvWriteResult
  }

  /** Throws a MeshError NOT_FOUND when the key is missing. `replica` pins a `one` read to that peer. */
  async get (key: string, opts: KvOptions & { replica?: string } = {}): Promise<KvGetResult> {
    const res = await this.mesh.request('GET', KvClient.path(key, { consistency: opts.consistency, replica: opts.replica, timeout: opts.timeoutMs }), { signal: opts.signal })
    const timestamp = res.headers.get('x-mesh-timestamp')
    // Every value a node answers with has its version: without one, the server is not a mesh node (a wrong --api), and
    // its page must not pass for the value.
    if (timestamp == null) throw new MeshError('NODE_UNREACHABLE', `the server at ${this.mesh.api} did not answer as a mesh node (no x-mesh-timestamp header); check --api`)
    const value = new Uint8Array(await res.arrayBuffer())
    return { key, value, timestamp }
  }

  async delete (key: string, opts: KvOptions = {}): Promise<KvWriteResult> {
    const res = await this.mesh.request('DELETE', KvClient.path(key, { consistency: opts.consistency, timeout: opts.timeoutMs }), { signal: opts.signal })
    return await res.json() as KvWriteResult
  }

  /**
   * `after`: only keys after this one, to page on from the last key of a page. `more` says keys may follow: the page
   * stopped at its limit, or at the scan's size bound (8 MiB of keys and values) before it.
   */
  async scan (opts: { prefix?: string, limit?: number, after?: string, signal?: AbortSignal } = {}): Promise<{ entries: KvEntry[], unreachable: string[], more: boolean }> {
    const qs = new URLSearchParams()
    if (opts.prefix != null) qs.set('prefix', opts.prefix)
    if (opts.limit != null) qs.set('limit', String(opts.limit))
    if (opts.after != null) qs.set('after', opts.after)
    return await this.mesh.json('GET', `/v1/kv?${qs.toString()}`, undefined, { signal: opts.signal })
  }
}
