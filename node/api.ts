import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { Counter, type Registry } from 'prom-client'
import { ListenFailedError, MeshError, PayloadTooLargeError, listenReason, toMeshError } from '../lib/errors.js'
import { silentLogger, type Logger } from '../lib/log.js'
import * as C from './constants.js'
import { isLoopback } from './tokens.js'

export type Access = 'read' | 'write'

export interface RouteContext {
  req: IncomingMessage
  res: ServerResponse
  params: Record<string, string>
  query: URLSearchParams
  /** Reads the whole body, refusing more than the route's limit. */
  body: () => Promise<Buffer>
  /** Reads and parses a JSON body. */
  json: () => Promise<unknown>
  /** Aborted when the client goes away. */
  signal: AbortSignal
}

/**
 * A handler returns a value to send as JSON (status 200 unless it sets one), or `undefined` after writing the response
 * itself (streams, server-sent events, raw bytes).
 */
export type RouteHandler = (ctx: RouteContext) => Promise<unknown> | unknown

export interface Route {
  method: string
  /** Segments starting with ':' are parameters, e.g. `/v1/kv/:key`; a final `*name` takes the rest of the path. */
  path: string
  handler: RouteHandler
  /** Write routes need a read-write token when tokens are in force. @default 'read' for GET/HEAD, else 'write' */
  access?: Access | 'public'
  /** @default 1 MiB */
  maxBody?: number
  /**
   * The body is streamed in for as long as it takes (a file's upload): once the route runs, an authorised client, the
   * deadline for the whole request (`requestTimeout`) no longer applies, only the socket's own errors. @default false
   */
  streamsBody?: boolean
}

export interface ApiTokens {
  /** Returns the access a presented bearer token grants, or undefined if it grants none. */
  check: (token: string) => Access | undefined
}

export interface ApiServerInit {
  host: string
  port: number
  /** When set, every request needs a bearer token. */
  tokens?: ApiTokens
  logger?: Logger
  /** For `meshos_api_requests_total` and `meshos_api_malformed_requests_total`. @default none (no metrics) */
  registry?: Registry
  /** Connections held at once; past it new ones are closed at once. @default `apiMaxConnections` (2048) */
  maxConnections?: number
  /** How long an idle keep-alive connection stays open (ms). @default `apiKeepAliveTimeout` (2 minutes) */
  keepAliveTimeout?: number
  /** How long a whole request may take to arrive, but for `streamsBody` routes (ms). @default `apiRequestTimeout` (5 minutes) */
  requestTimeout?: number
  /** How long a `streamsBody` request's connection may carry no bytes either way before it is closed (ms). @default `apiStreamIdleTimeout` (2 minutes) */
  streamIdleTimeout?: number
  /** How often Node looks for requests past their deadlines (ms). @default `apiConnectionsCheckInterval` (5 s) */
  connectionsCheckingInterval?: number
}

interface CompiledRoute extends Route {
  segments: string[]
  /** Positions and text of the literal segments. */
  literals: Array<[number, string]>
  /** Positions and names of the `:name` segments. */
  names: Array<[number, string]>
  /** The name of a trailing `*name` segment, which takes the rest of the path. */
  rest?: string
}

/** The raw query's percent-escapes and bytes, read as UTF-8 strictly (a lone '%' is left as URLSearchParams leaves it). */
function isUtf8Query (raw: string): boolean {
  const bytes = Buffer.from(raw.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1')
  try {
    utf8.decode(bytes)
    return true
  } catch {
    return false
  }
}
const utf8 = new TextDecoder('utf-8', { fatal: true })

export class ApiServer {
  private readonly routes: CompiledRoute[] = []
  private server?: Server
  private readonly log: Logger
  private readonly sockets = new Set<import('node:net').Socket>()
  /** Connections carrying a `streamsBody` request now. */
  private readonly streaming = new WeakSet<Socket>()
  onRequest?: (method: string, route: string, status: number) => void

  private readonly requests?: Counter<'method' | 'route' | 'status'>
  private readonly malformed?: Counter<'reason'>

  constructor (private readonly init: ApiServerInit) {
    this.log = (init.logger ?? silentLogger).child({ component: 'api' })
    if (init.registry != null) {
      const registers = [init.registry]
      const counted = this.counted
      this.requests = new Counter({
        name: 'meshos_api_requests_total',
        help: 'HTTP API requests answered, by method, route and status',
        labelNames: ['method', 'route', 'status'],
        registers,
        collect () {
          this.reset()
          for (const c of counted.values()) this.inc(c.labels, c.n)
        }
      })
      this.malformed = new Counter({ name: 'meshos_api_malformed_requests_total', help: 'HTTP requests refused by the parser before any route saw them, by the parser\'s reason', labelNames: ['reason'], registers })
    }
  }

  /**
   * Requests answered, by method, route and status, counted here and handed to the counter when it is scraped: prom-
   * client hashes and checks a label set on every increment, which a KV request would pay each time.
   */
  private readonly counted = new Map<string, { labels: { method: string, route: string, status: string }, n: number }>()
  private count (method: string, route: string, status: number): void {
    if (this.requests == null) return
    const key = `${method} ${route} ${status}`
    const c = this.counted.get(key)
    if (c != null) c.n++
    else this.counted.set(key, { labels: { method, route, status: String(status) }, n: 1 })
  }

  /**
   * Requests Node's parser refuses (malformed, headers too large, a body cut short, too slow) get the API's JSON error
   * like any other, rather than Node's bare status line, and are counted.
   */
  private readonly onClientError = (err: NodeJS.ErrnoException, socket: Socket): void => {
    const reason = err.code ?? 'unknown'
    // An upload still streaming in past the request deadline: left to go on (Node asks once per request).
    if (reason === 'ERR_HTTP_REQUEST_TIMEOUT' && this.streaming.has(socket)) return
    // A client that went away is not a malformed request.
    if (reason !== 'ECONNRESET') this.malformed?.inc({ reason })
    // As Node's own handler: once a response on this connection has begun, another status line cannot follow it, and
    // only closing the connection is left.
    const inFlight = (socket as unknown as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true
    if (reason === 'ECONNRESET' || !socket.writable || inFlight) {
      socket.destroy()
      return
    }
    const e = reason === 'HPE_HEADER_OVERFLOW'
      ? new MeshError('HEADERS_TOO_LARGE', 'request headers are too large')
      : reason === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new MeshError('REQUEST_TIMEOUT', 'the request did not arrive in time')
        : new MeshError('BAD_REQUEST', `malformed HTTP request (${reason})`)
    const body = JSON.stringify(e.toJSON())
    socket.end(`HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
    socket.destroySoon()
  }

  /** Method and path of every route, for `GET /v1/routes` and the fuzz test. */
  list (): Array<{ method: string, path: string }> {
    return this.routes.map(r => ({ method: r.method, path: r.path }))
  }

  route (r: Route): void {
    const segments = r.path.split('/').filter(s => s !== '')
    const literals: Array<[number, string]> = []
    const names: Array<[number, string]> = []
    let rest: string | undefined
    segments.forEach((seg, i) => {
      if (seg.startsWith('*')) {
        if (i !== segments.length - 1) throw new Error(`route ${r.path}: a *segment must come last`)
        rest = seg.slice(1)
      } else if (seg.startsWith(':')) names.push([i, seg.slice(1)])
      else literals.push([i, seg])
    })
    const route: CompiledRoute = { ...r, segments, literals, names, rest }
    this.routes.push(route)
    const head = segments.slice(0, 2)
    if (head.every(seg => !seg.startsWith(':') && !seg.startsWith('*'))) {
      const key = head.join('/')
      this.byHead.set(key, [...(this.byHead.get(key) ?? []), route])
    } else {
      this.anyHead.push(route)
    }
  }

  /** Routes by their first two segments, when both are literal; the others (`anyHead`) may fit any path. */
  private readonly byHead = new Map<string, CompiledRoute[]>()
  private readonly anyHead: CompiledRoute[] = []

  /** The routes that may fit a path, in the order they were added. */
  private candidates (parts: string[]): CompiledRoute[] {
    const bucket = this.byHead.get(parts.length > 2 ? `${parts[0]}/${parts[1]}` : parts.join('/')) ?? []
    if (this.anyHead.length === 0) return bucket
    return this.routes.filter(r => bucket.includes(r) || this.anyHead.includes(r))
  }

  get address (): { host: string, port: number } {
    const a = this.server?.address()
    if (a == null || typeof a === 'string') return { host: this.init.host, port: this.init.port }
    return { host: a.address, port: a.port }
  }

  get url (): string {
    const { host, port } = this.address
    return `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  }

  async start (): Promise<void> {
    const server = createServer({ connectionsCheckingInterval: this.init.connectionsCheckingInterval ?? C.apiConnectionsCheckInterval }, (req, res) => { void this.dispatch(req, res) })
    server.requestTimeout = this.init.requestTimeout ?? C.apiRequestTimeout
    // Node applies the request deadline only when it is longer than the headers' one.
    server.headersTimeout = server.requestTimeout > 0 ? Math.min(C.apiHeadersTimeout, server.requestTimeout / 2) : C.apiHeadersTimeout
    const maxConnections = this.init.maxConnections ?? C.apiMaxConnections
    const keepAlive = this.init.keepAliveTimeout ?? C.apiKeepAliveTimeout
    const crowded = Math.floor(maxConnections * C.apiCrowdedShare)
    // Node reads this when a request's headers arrive, for the response's Keep-Alive header, and again when the
    // connection goes idle, for its timer: a request in flight as crowding begins may advertise the long timeout and
    // still be closed after the short one.
    const pace = (): void => { server.keepAliveTimeout = this.sockets.size >= crowded ? Math.min(keepAlive, C.apiCrowdedKeepAliveTimeout) : keepAlive }
    server.maxConnections = maxConnections
    pace()
    server.on('clientError', this.onClientError)
    server.on('connection', (s) => {
      this.sockets.add(s)
      pace()
      s.on('close', () => { this.sockets.delete(s); pace() })
    })
    await new Promise<void>((resolve, reject) => {
      const fail = (err: NodeJS.ErrnoException): void => {
        reject(new ListenFailedError(`cannot serve the API on ${this.init.host}:${this.init.port}: ${listenReason(err)}`, { cause: err }))
      }
      server.once('error', fail)
      server.listen(this.init.port, this.init.host, () => { server.off('error', fail); resolve() })
    })
    this.server = server
    this.log.info({ url: this.url }, 'api listening')
  }

  async stop (): Promise<void> {
    const server = this.server
    if (server == null) return
    this.server = undefined
    const closed = new Promise<void>(resolve => server.close(() => { resolve() }))
    server.closeIdleConnections()
    // Long-lived responses (event streams) would hold close() open forever.
    for (const s of this.sockets) s.destroy()
    await closed
  }

  /**
   * The first route whose path and method fit; `pathMatched` when some route's path fit but not its method. Each
   * request looks only at the routes that share its first two segments, and passes over those on their segment count
   * and literal segments before anything is decoded for them.
   */
  private match (method: string, path: string): { route?: CompiledRoute, params: Record<string, string>, pathMatched: boolean } {
    const parts = path.split('/').filter(s => s !== '')
    let pathMatched = false
    for (const r of this.candidates(parts)) {
      if (r.rest != null ? parts.length < r.segments.length : parts.length !== r.segments.length) continue
      let fits = true
      for (const [i, seg] of r.literals) if (parts[i] !== seg) { fits = false; break }
      if (!fits) continue
      pathMatched = true
      if (r.method !== method && !(method === 'HEAD' && r.method === 'GET')) continue
      const params: Record<string, string> = {}
      for (const [i, name] of r.names) params[name] = decodeURIComponent(parts[i])
      if (r.rest != null) params[r.rest] = parts.slice(r.segments.length - 1).map(decodeURIComponent).join('/')
      return { route: r, params, pathMatched }
    }
    return { params: {}, pathMatched }
  }

  private authorise (req: IncomingMessage, access: Access | 'public'): void {
    const tokens = this.init.tokens
    if (tokens == null) {
      // A tokenless API trusts whoever can reach loopback. A web page the operator browses can reach it too, through
      // DNS rebinding (a foreign Host) or a cross-origin request (a foreign Origin): refuse both.
      const host = hostOf(req.headers.host)
      if (host != null && !isLoopback(host)) throw new MeshError('FORBIDDEN', `requests for host ${host} are refused; this API answers loopback names only`)
      const origin = req.headers.origin
      if (origin != null && origin !== 'null') {
        let originHost: string | undefined
        try { originHost = new URL(origin).hostname.replace(/^\[|\]$/g, '') } catch {}
        if (originHost == null || !isLoopback(originHost)) throw new MeshError('FORBIDDEN', `cross-origin requests from ${origin} are refused`)
      } else if (origin === 'null') {
        throw new MeshError('FORBIDDEN', 'requests from an opaque origin are refused')
      }
      return
    }
    if (access === 'public') return
    const header = req.headers.authorization ?? ''
    const m = /^Bearer\s+(\S+)$/i.exec(header)
    if (m == null) throw new MeshError('UNAUTHORIZED', 'this API needs a bearer token (Authorization: Bearer <token>)')
    const granted = tokens.check(m[1])
    if (granted == null) throw new MeshError('UNAUTHORIZED', 'the bearer token is not valid')
    if (access === 'write' && granted !== 'write') throw new MeshError('FORBIDDEN', 'this token is read-only; the request needs a read-write token')
  }

  private async dispatch (req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A target that URL cannot parse (`//[`, a port past 65535) is answered like any bad request. Thrown out here, it went
    // unanswered and held its connection open: 2,048 of them took every connection the API allows.
    let url: URL
    let badTarget = false
    try {
      url = new URL(req.url ?? '/', 'http://localhost')
    } catch {
      url = new URL('http://localhost/')
      badTarget = true
    }
    const method = req.method ?? 'GET'
    const aborter = new AbortController()
    // Only a response closed before it finished means the client left; building an error (and its stack) for every
    // completed request cost 5% of a node's CPU under load.
    res.on('close', () => { if (!res.writableFinished) aborter.abort(new MeshError('ABORTED', 'client went away')) })
    let routeName = 'unmatched'
    try {
      if (badTarget) throw new MeshError('BAD_REQUEST', 'the request target is not a valid URL')
      let m: ReturnType<ApiServer['match']>
      try {
        m = this.match(method, url.pathname)
      } catch {
        throw new MeshError('BAD_REQUEST', 'malformed percent-encoding in the path')
      }
      if (m.route == null) {
        if (m.pathMatched) throw new MeshError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${url.pathname}`)
        throw new MeshError('NOT_FOUND', `no route for ${method} ${url.pathname}`)
      }
      const route = m.route
      routeName = route.path
      // URLSearchParams turns bytes that are not UTF-8 into U+FFFD, so a bad prefix or name would be used as something
      // else; the path already refuses them.
      const rawQuery = (req.url ?? '').split('?', 2)[1] ?? ''
      if (/[%\u0080-\u00ff]/.test(rawQuery) && !isUtf8Query(rawQuery)) throw new MeshError('BAD_REQUEST', 'the query string is not UTF-8')
      this.authorise(req, route.access ?? (route.method === 'GET' ? 'read' : 'write'))
      if (route.streamsBody === true) {
        const socket = req.socket
        this.streaming.add(socket)
        // No overall deadline, but one for silence: a client gone without a word (a dropped link, a suspended laptop)
        // would otherwise hold the connection and its half-imported file for the daemon's life.
        socket.setTimeout(this.init.streamIdleTimeout ?? C.apiStreamIdleTimeout, () => { socket.destroy() })
        res.once('close', () => {
          this.streaming.delete(socket)
          socket.setTimeout(0)
        })
      }
      const maxBody = route.maxBody ?? C.apiMaxBody
      const declared = Number(req.headers['content-length'] ?? 0)
      if (declared > maxBody) throw new PayloadTooLargeError(`request body of ${declared} bytes exceeds the limit of ${maxBody}`)
      let bodyPromise: Promise<Buffer> | undefined
      const body = async (): Promise<Buffer> => (bodyPromise ??= readBody(req, maxBody))
      const ctx: RouteContext = {
        req,
        res,
        params: m.params,
        query: url.searchParams,
        body,
        json: async () => {
          const b = await body()
          if (b.byteLength === 0) return {}
          try {
            return JSON.parse(b.toString('utf8'))
          } catch {
            throw new MeshError('BAD_REQUEST', 'request body is not valid JSON')
          }
        },
        signal: aborter.signal
      }
      const result = await route.handler(ctx)
      if (result !== undefined && !res.headersSent) sendJson(res, res.statusCode === 200 ? 200 : res.statusCode, result)
      this.onRequest?.(method, routeName, res.statusCode)
      this.count(method, routeName, res.statusCode)
    } catch (err) {
      const e = toMeshError(err)
      if (e.code === 'INTERNAL') this.log.error({ err, method, path: url.pathname }, 'api request failed')
      this.onRequest?.(method, routeName, e.status)
      this.count(method, routeName, e.status)
      if (!res.headersSent) {
        sendJson(res, e.status, e.toJSON())
      } else {
        res.destroy()
      }
      // Unread request bytes would otherwise hang a client that is still sending.
      if (!req.complete) req.resume()
    }
  }
}

function hostOf (header: string | undefined): string | undefined {
  if (header == null || header === '') return undefined
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(header) ?? /^([^:]+)(?::\d+)?$/.exec(header)
  return (m?.[1] ?? header).toLowerCase()
}

export function sendJson (res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

async function readBody (req: IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  return await new Promise<Buffer>((resolve, reject) => {
    req.on('data', (c: Buffer) => {
      size += c.byteLength
      if (size > max) {
        reject(new PayloadTooLargeError(`request body exceeds the limit of ${max} bytes`))
        req.removeAllListeners('data')
        req.resume()
        return
      }
      chunks.push(c)
    })
    req.on('end', () => { resolve(Buffer.concat(chunks)) })
    req.on('aborted', () => { reject(new MeshError('BAD_REQUEST', 'request body was truncated')) })
    req.on('error', (err) => { reject(new MeshError('BAD_REQUEST', `request body could not be read: ${err.message}`)) })
  })
}
