import { connect, type Socket } from 'node:net'

const CRLF2 = Buffer.from('\r\n\r\n')

interface Conn {
  socket: Socket
  buf?: Buffer
  waiter?: { resolve: (status: number) => void, reject: (err: Error) => void }
  dead: boolean
  /** The server said `connection: close` on the last response. */
  closing: boolean
}

/**
 * A lean HTTP/1.1 client for load generation, as wrk is: keep-alive connections to one origin, one request in flight on
 * each, idle ones reused last-in first-out, at most `maxSockets` of them (requests beyond wait, first come first served,
 * as with Node's agent). It reads the status and skips the body (content-length or chunked).
 *
 * Node's `http.request` costs the load generator 50-70 µs of CPU per request, and the generator shares the machine with
 * the nodes it measures; this costs a fraction of that (BENCHMARKS.md, kv, session 18).
 */
export class HttpPool {
  private readonly idle: Conn[] = []
  private readonly all = new Set<Conn>()
  /** Connections open or opening. */
  private open = 0
  private readonly waiting: Array<{ resolve: (c: Conn | undefined) => void }> = []

  /** `maxSockets`: connections at most, as Node's agent's option. @default 256 */
  constructor (private readonly host: string, private readonly port: number, private readonly maxSockets = 256) {}

  /** Sends one request and resolves with the response's status once its body is in. */
  async request (method: string, path: string, body?: Uint8Array): Promise<number> {
    const c = await this.take()
    const head = `${method} ${path} HTTP/1.1\r\nhost: ${this.host}:${this.port}\r\n` +
      (body != null ? `content-type: application/octet-stream\r\ncontent-length: ${body.byteLength}\r\n` : '') + '\r\n'
    const status = await new Promise<number>((resolve, reject) => {
      c.waiter = { resolve, reject }
      if (body != null) c.socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]))
      else c.socket.write(head, 'latin1')
    })
    if (c.closing) this.drop(c)
    else this.release(c)
    return status
  }

  /** Hands a finished connection to the next waiting request, or keeps it idle. */
  private release (c: Conn): void {
    const w = this.waiting.shift()
    if (w != null) w.resolve(c)
    else this.idle.push(c)
  }

  close (): void {
    for (const c of this.all) c.socket.destroy()
    this.all.clear()
    this.idle.length = 0
  }

  private async take (): Promise<Conn> {
    for (;;) {
      for (let c = this.idle.pop(); c != null; c = this.idle.pop()) if (!c.dead) return c
      if (this.open < this.maxSockets) break
      // A connection handed over, or undefined when one closed and a new one may be opened.
      const c = await new Promise<Conn | undefined>(resolve => { this.waiting.push({ resolve }) })
      if (c != null && !c.dead) return c
    }
    this.open++
    let socket: Socket
    try {
      socket = await this.connect()
    } catch (err) {
      this.closed()
      throw err
    }
    const c: Conn = { socket, dead: false, closing: false }
    this.all.add(c)
    socket.on('data', (d: Buffer) => {
      c.buf = c.buf == null ? d : Buffer.concat([c.buf, d])
      try {
        parse(c)
      } catch (err) {
        fail(err as Error)
      }
    })
    const fail = (err: Error): void => {
      this.drop(c)
      const w = c.waiter
      c.waiter = undefined
      w?.reject(err)
    }
    socket.on('error', fail)
    // Dead from the server's FIN on, so that the pool does not hand it out in the moment before 'close'.
    socket.on('end', () => { fail(new Error('connection closed by the server')) })
    socket.on('close', () => { fail(new Error('connection closed')) })
    return c
  }

  private async connect (): Promise<Socket> {
    const socket = connect(this.port, this.host)
    socket.setNoDelay(true)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    return socket
  }

  private drop (c: Conn): void {
    if (c.dead) return
    c.dead = true
    this.all.delete(c)
    c.socket.destroy()
    this.closed()
  }

  /** A connection is gone: a waiting request may open another. */
  private closed (): void {
    this.open--
    this.waiting.shift()?.resolve(undefined)
  }
}

/** Completes the response in c.buf, if it is whole. */
function parse (c: Conn): void {
  const buf = c.buf
  if (buf == null || c.waiter == null) return
  const end = buf.indexOf(CRLF2)
  if (end < 0) return
  const head = buf.toString('latin1', 0, end)
  const status = Number(head.slice(9, 12))
  const length = /\r\ncontent-length: *(\d+)/i.exec(head)
  let next: number
  if ((status >= 100 && status < 200) || status === 204 || status === 304) {
    // No body by definition (the client sends no HEAD).
    next = end + 4
  } else if (length != null) {
    next = end + 4 + Number(length[1])
    if (buf.length < next) return
  } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
    let at = end + 4
    for (;;) {
      const nl = buf.indexOf('\r\n', at)
      if (nl < 0) return
      const size = parseInt(buf.toString('latin1', at, nl), 16)
      if (!Number.isInteger(size) || size < 0) throw new Error('malformed chunk size')
      at = nl + 2 + size + 2
      if (buf.length < at) return
      if (size === 0) break
    }
    next = at
  } else {
    throw new Error(`response without a length: ${head.split('\r\n')[0]}`)
  }
  c.closing = /\r\nconnection: *close/i.test(head)
  c.buf = next === buf.length ? undefined : buf.subarray(next)
  const w = c.waiter
  c.waiter = undefined
  w.resolve(status)
}
