import * as http from 'node:http'
import * as https from 'node:https'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
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
    let res: Response
    try {
      res = await fetch(this.api + path, { method, body: init.body, headers, signal: this.deadline(init), duplex: 'half' } as RequestInit)
    } catch (err) {
      throw this.transportError(err)
    }
    if (res.ok) return res
    throw await apiError(method, path, res.status, async () => await res.text())
  }

  /**
   * A request whose body and answer are Node streams, through node:http rather than fetch: for bulk transfers (a file's
   * bytes). fetch's web streams cost more CPU per byte, and a 10 MiB body reached the server 10-45 ms after the call
   * against about 2 ms for node:http, on a machine whose cores the nodes need. The answer is returned once its status
   * is 2xx, unread; `timeout` bounds the whole exchange, as with request().
   */
  async stream (method: string, path: string, init: { body?: Readable | Uint8Array, headers?: Record<string, string>, signal?: AbortSignal, timeout?: number | null } = {}): Promise<http.IncomingMessage> {
    const headers: Record<string, string> = { ...init.headers }
    if (this.token != null) headers.authorization = `Bearer ${this.token}`
    const signal = this.deadline(init)
    const url = new URL(this.api + path)
    const send = url.protocol === 'https:' ? https.request : http.request
    let res: http.IncomingMessage
    try {
      res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = send(url, { method, headers, signal })
        req.once('response', resolve)
        req.on('error', reject)
        const body = init.body
        if (body == null) req.end()
        else if (body instanceof Uint8Array) req.end(body)
        // A body the server refused early (an error answer) or a dropped connection shows as the request's error.
        else pipeline(body, req).catch(() => {})
      })
    } catch (err) {
      throw this.transportError(err)
    }
    const status = res.statusCode ?? 0
    if (status >= 200 && status < 300) return res
    throw await apiError(method, path, status, async () => await readText(res))
  }

  private deadline (init: { signal?: AbortSignal, timeout?: number | null }): AbortSignal | undefined {
    const signals = [init.signal].filter((s): s is AbortSignal => s != null)
    if (init.timeout !== null) signals.push(AbortSignal.timeout(init.timeout ?? this.timeout))
    return signals.length > 0 ? AbortSignal.any(signals) : undefined
  }

  private transportError (err: unknown): MeshError {
    const e = err as Error & { cause?: { code?: string }, code?: string }
    if (e.name === 'TimeoutError' || (e.cause as Error | undefined)?.name === 'TimeoutError') return new MeshError('TIMEOUT', `the mesh node at ${this.api} did not answer in time`)
    if (e.name === 'AbortError') return new MeshError('ABORTED', 'request aborted')
    return new NodeUnreachableError(`cannot reach the mesh node at ${this.api} (${e.cause?.code ?? e.code ?? e.message}); is \`mesh start\` running?`)
  }

  async json<T = any>(method: string, path: string, body?: unknown, opts: { signal?: AbortSignal, timeout?: number | null } = {}): Promise<T> {
    const res = await this.request(method, path, {
      ...opts,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' }
    })
    const text = await res.text()
    try {
      return JSON.parse(text) as T
    } catch {
      // A node always answers JSON here: anything else is another server (a wrong --api), not a fault of this program.
      throw new MeshError('NODE_UNREACHABLE', `the server at ${this.api} did not answer ${method} ${path} as a mesh node (not JSON); check --api`)
    }
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

  /**
   * Yields each pub/sub message on the topic until the signal aborts. The first yield is `{subscribed: true}`;
   * `{dropped: N}` says the node dropped N messages while this subscriber was not reading.
   */
  async * subscribe (topic: string, signal?: AbortSignal): AsyncGenerator<{ subscribed: true } | { dropped: number } | { topic: string, from: string, data: string, dataBase64?: string, receivedAt: string }> {
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
          else if (event === 'dropped' && data != null) yield { dropped: Number(JSON.parse(data).count) }
        }
      }
    } catch (err) {
      if (signal?.aborted === true) return
      if (err instanceof SyntaxError) throw new MeshError('MALFORMED_MESSAGE', `a malformed event on ${topic}: ${err.message}`)
      // The node closed the stream under us (it stopped or restarted): the node's availability, not a bug here.
      throw new MeshError('NODE_UNREACHABLE', `the subscription to ${topic} ended: the node closed it (${(err as Error).message})`)
    }
  }
}

/** The JSON body of an answer from `MeshClient.stream`. */
export async function readJson (res: http.IncomingMessage): Promise<unknown> {
  const text = await readText(res)
  try {
    return JSON.parse(text)
  } catch {
    // A node always answers JSON here: anything else is another server (a wrong --api), not a fault of this program.
    throw new MeshError('NODE_UNREACHABLE', 'the server did not answer as a mesh node (not JSON); check --api')
  }
}

async function readText (res: http.IncomingMessage): Promise<string> {
  const parts: Buffer[] = []
  for await (const p of res) parts.push(p as Buffer)
  return Buffer.concat(parts).toString('utf8')
}

/** The MeshError for a non-2xx answer: the server's `{"error":{"code","message"}}` when it sent one. */
async function apiError (method: string, path: string, status: number, text: () => Promise<string>): Promise<MeshError> {
  let code: string = status === 404 ? 'NOT_FOUND' : status >= 500 ? 'UNAVAILABLE' : 'BAD_REQUEST'
  let message = `${method} ${path} failed with HTTP ${status}`
  try {
    const body = JSON.parse(await text()) as { error?: { code?: string, message?: string } }
    if (isErrorCode(body.error?.code)) code = body.error.code
    if (typeof body.error?.message === 'string') message = body.error.message
  } catch {}
  return new MeshError(isErrorCode(code) ? code : 'INTERNAL', message)
}
