import { MeshError, NodeUnreachableError, isErrorCode } from '../lib/errors.js'
import { second } from '../lib/units.js'

export interface ClientInit {
  /** @default 'http://127.0.0.1:7947' */
  api?: string
  /** Sent as `Authorization: Bearer`. */
  token?: string
  /** Deadline of each request. @default 30 seconds */
  timeout?: number
}

export const defaultApi = 'http://127.0.0.1:7947'

export interface Member {
  peerId: string
  addrs: string[]
  state: 'alive' | 'suspect' | 'dead' | 'left'
  incarnation: number
  meta: { tags: Record<string, string>, capacity: number, load: number }
  stateSince: string
  self?: boolean
}

/**
 * A small typed client of a node's HTTP API; the CLI uses it and so can any TypeScript program. API errors come back as
 * MeshErrors with the server's code.
 */
export class MeshClient {
  readonly api: string
  private readonly token?: string
  private readonly timeout: number

  constructor (init: ClientInit = {}) {
    const api = init.api ?? defaultApi
    try {
      const u = new URL(api)
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http')
    } catch {
      throw new MeshError('BAD_REQUEST', `--api must be an http(s) URL such as ${defaultApi}, not "${api}"`)
    }
    this.api = api.replace(/\/+$/, '')
    this.token = init.token
    this.timeout = init.timeout ?? 30 * second
  }

  /** Sends a request and returns the raw response once its status is 2xx. */
  async request (method: string, path: string, init: { body?: RequestInit['body'], headers?: Record<string, string>, signal?: AbortSignal, timeout?: number | null } = {}): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers }
    if (this.token != null) headers.authorization = `Bearer ${this.token}`
    const signals = [init.signal].filter((s): s is AbortSignal => s != null)
    if (init.timeout !== null) signals.push(AbortSignal.timeout(init.timeout ?? this.timeout))
    let res: Response
    try {
      res = await fetch(this.api + path, { method, body: init.body, headers, signal: signals.length > 0 ? AbortSignal.any(signals) : undefined, duplex: 'half' } as RequestInit)
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } }
      if (e.name === 'TimeoutError') throw new MeshError('TIMEOUT', `the mesh node at ${this.api} did not answer in time`)
      if (e.name === 'AbortError') throw new MeshError('ABORTED', 'request aborted')
      throw new NodeUnreachableError(`cannot reach the mesh node at ${this.api} (${e.cause?.code ?? e.message}); is \`mesh start\` running?`)
    }
    if (res.ok) return res
    let code: string = res.status === 404 ? 'NOT_FOUND' : res.status >= 500 ? 'UNAVAILABLE' : 'BAD_REQUEST'
    let message = `${method} ${path} failed with HTTP ${res.status}`
    try {
      const body = await res.json() as { error?: { code?: string, message?: string } }
      if (isErrorCode(body.error?.code)) code = body.error.code
      if (typeof body.error?.message === 'string') message = body.error.message
    } catch {}
    throw new MeshError(isErrorCode(code) ? code : 'INTERNAL', message)
  }

  async json<T = any>(method: string, path: string, body?: unknown, opts: { signal?: AbortSignal, timeout?: number | null } = {}): Promise<T> {
    const res = await this.request(method, path, {
      ...opts,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' }
    })
    return await res.json() as T
  }

  async status (): Promise<{ peerId: string, addrs: string[], version: string, uptimeMs: number, connections: number }> {
    return await this.json('GET', '/v1/status')
  }

  async cluster (): Promise<{ members: Array<{ peerId: string, addrs: string[], state: string, self: boolean, version?: string, uptimeMs?: number, stats?: Record<string, number>, error?: string }> }> {
    return await this.json('GET', '/v1/cluster')
  }

  async members (): Promise<{ members: Member[] }> {
    return await this.json('GET', '/v1/members')
  }

  async health (): Promise<{ ok: boolean }> {
    return await this.json('GET', '/v1/health')
  }

  async publish (topic: string, data: Uint8Array | string): Promise<{ topic: string, recipients: string[] }> {
    const res = await this.request('POST', `/v1/pubsub/${encodeURIComponent(topic)}`, { body: typeof data === 'string' ? data : Buffer.from(data), headers: { 'content-type': 'application/octet-stream' } })
    return await res.json() as { topic: string, recipients: string[] }
  }

  /** Yields each pub/sub message on the topic until the signal aborts. The first yield is `{subscribed: true}`. */
  async * subscribe (topic: string, signal?: AbortSignal): AsyncGenerator<{ subscribed: true } | { topic: string, from: string, data: string, dataBase64?: string, receivedAt: string }> {
    const res = await this.request('GET', `/v1/pubsub/${encodeURIComponent(topic)}`, { signal, timeout: null })
    if (res.body == null) return
    const decoder = new TextDecoder()
    let buffered = ''
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true })
        let idx
        while ((idx = buffered.indexOf('\n\n')) >= 0) {
          const block = buffered.slice(0, idx)
          buffered = buffered.slice(idx + 2)
          const event = /^event: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (event === 'subscribed') yield { subscribed: true }
          else if (event === 'message' && data != null) yield JSON.parse(data)
        }
      }
    } catch (err) {
      if (signal?.aborted === true) return
      throw err
    }
  }
}
