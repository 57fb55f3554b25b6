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
 * each, idle ones reused last-in first-out. It reads the status and skips the body (content-length or chunked).
 *
 * Node's `http.request` costs the load generator 50-70 µs of CPU per request, and the generator shares the machine with
 * the nodes it measures; this costs a fraction of that (BENCHMARKS.md, kv, session 18).
 */
export class HttpPool {
  private readonly idle: Conn[] = []
  private readonly all = new Set<Conn>()

  constructor (private readonly host: string, private readonly port: number) {}

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
    else this.idle.push(c)
    return status
  }

  close (): void {
    for (const c of this.all) c.socket.destroy()
    this.all.clear()
    this.idle.length = 0
  }

  private async take (): Promise<Conn> {
    for (let c = this.idle.pop(); c != null; c = this.idle.pop()) if (!c.dead) return c
    const socket = connect(this.port, this.host)
    socket.setNoDelay(true)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
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
    socket.on('close', () => { fail(new Error('connection closed')) })
    return c
  }

  private drop (c: Conn): void {
    c.dead = true
    this.all.delete(c)
    c.socket.destroy()
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
  if (length != null) {
    next = end + 4 + Number(length[1])
    if (buf.length < next) return
  } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
    let at = end + 4
    for (;;) {
      const nl = buf.indexOf('\r\n', at)
      if (nl < 0) return
      const size = parseInt(buf.toString('latin1', at, nl), 16)
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
