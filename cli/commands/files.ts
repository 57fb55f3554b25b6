import { createReadStream, createWriteStream } from 'node:fs'
import { lstat, readFile, readlink, realpath, rename, rm, stat, writeFile } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Option, type Command } from 'commander'
import { CID } from 'multiformats/cid'
import { BadRequestError, MeshError } from '../../lib/errors.js'
import { readJson } from '../client.js'
import { action, client, clientCommand, print, type ClientOpts } from '../common.js'
import { formatBytes, formatDuration, printTable } from '../format.js'

const enc = encodeURIComponent

const int = (name: string) => (v: string): number => {
  if (!/^\d+$/.test(v)) throw new BadRequestError(`--${name} must be a non-negative integer`)
  return Number(v)
}

/** A one-line progress bar on stderr (bytes, rate, ETA), redrawn at most 10 times a second; silent off a TTY. */
class Progress {
  private readonly started = Date.now()
  private last = 0
  done = 0
  private readonly on = process.stderr.isTTY === true

  constructor (private readonly label: string, private readonly total?: number, private readonly base = 0) {}

  add (n: number): void {
    this.done += n
    if (!this.on) return
    const now = Date.now()
    if (now - this.last < 100) return
    this.last = now
    this.draw()
  }

  private draw (): void {
    const secs = Math.max(0.001, (Date.now() - this.started) / 1000)
    const rate = this.done / secs
    const have = this.base + this.done
    let line = `${this.label} ${formatBytes(have)}`
    if (this.total != null && this.total > 0) {
      const frac = Math.min(1, have / this.total)
      const width = 24
      const filled = Math.round(frac * width)
      const eta = rate > 0 ? (this.total - have) / rate * 1000 : Infinity
      line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${formatBytes(have)}/${formatBytes(this.total)} ${formatBytes(rate)}/s ETA ${Number.isFinite(eta) ? formatDuration(eta) : '?'}`
    } else {
      line += ` ${formatBytes(rate)}/s`
    }
    process.stderr.write(`\r${line}\x1b[K`)
  }

  end (): void {
    if (!this.on) return
    this.draw()
    process.stderr.write('\n')
  }

  counter (): Transform {
    return new Transform({ transform: (chunk: Buffer, _enc, cb) => { this.add(chunk.byteLength); cb(null, chunk) } })
  }
}

interface PartState { cid: string, offset: number, length: number | null }

/** `mesh file ...`: the distributed file system. */
export function registerFileCommands (program: Command): void {
  const file = program.command('file').description('store and fetch files on the mesh (content-addressed, replicated)')

  clientCommand(file.command('put <path>').description('store a file on the mesh; prints its id (CID)'))
    .option('--replicas <n>', 'copies to keep (default: the node\'s replication factor, 3 unless set)', int('replicas'))
    .option('--name <name>', 'a name to list it under (default: the file name)')
    .addOption(new Option('--chunk-size <bytes>', 'chunk size in bytes (default 1 MiB)').argParser(int('chunk-size')))
    .action(action(async (path: string, opts: ClientOpts & { replicas?: number, name?: string, chunkSize?: number }) => {
      const info = await stat(path).catch(() => { throw new BadRequestError(`cannot read ${path}`) })
      if (!info.isFile()) throw new BadRequestError(`${path} is not a file`)
      const q = new URLSearchParams({ name: opts.name ?? basename(path) })
      if (opts.replicas != null) q.set('replicas', String(opts.replicas))
      if (opts.chunkSize != null) q.set('chunkSize', String(opts.chunkSize))
      const progress = new Progress('put', info.size)
      const body = createReadStream(path, { highWaterMark: 1024 * 1024 }).pipe(progress.counter())
      const res = await client(opts).stream('POST', `/v1/files?${q.toString()}`, {
        body,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(info.size) },
        timeout: null
      })
      const out = await readJson(res) as { cid: string, size: number, chunks: number, replicas: number, wanted?: number }
      progress.end()
      // Stored is not always as many copies as asked: replicas that failed during the put are added by repair, and
      // until then the file has fewer. Say so rather than let a 0 exit imply it.
      const wanted = out.wanted ?? opts.replicas
      if (wanted != null && out.replicas < wanted) process.stderr.write(`mesh: stored ${out.replicas} of ${wanted} replicas; repair adds the rest while enough members are alive\n`)
      print(opts, { cid: out.cid, size: out.size, chunks: out.chunks, replicas: out.replicas }, () => { process.stdout.write(`${out.cid}\n`) })
    }))

  /** The form a node writes a file id in (its ETag), whatever base the user gave it in. */
  const canonicalCid = (cid: string): string => { try { return CID.parse(cid).toString() } catch { return cid } }

  clientCommand(file.command('get <cid>').description('fetch a file; an interrupted get resumes where it stopped'))
    .requiredOption('-o, --output <path>', 'where to write it ("-" for stdout)')
    .option('--offset <bytes>', 'first byte to fetch', int('offset'))
    .option('--length <bytes>', 'bytes to fetch', int('length'))
    .action(action(async (cid: string, opts: ClientOpts & { output: string, offset?: number, length?: number }) => {
      const offset = opts.offset ?? 0
      const length = opts.length ?? null
      const api = client(opts)
      const toStdout = opts.output === '-'
      // The file a symlink names is the one written, not the link replaced by the rename below. Something that is not a
      // regular file (a FIFO, /dev/null, a terminal) is written straight into, as stdout is: renaming a finished part
      // over it replaced it with a regular file.
      let output = opts.output
      let direct = toStdout
      if (!toStdout) {
        if ((await lstat(output).catch(() => undefined))?.isSymbolicLink() === true) {
          output = await realpath(output).catch(async () => resolve(dirname(output), await readlink(output)))
        }
        const existing = await stat(output).catch(() => undefined)
        if (existing != null && !existing.isFile() && !existing.isDirectory()) direct = true
      }
      // Bytes arrive in order and each chunk was verified before it was sent, so any prefix already written is
      // good: a re-run asks only for the rest. The state file ties the partial file to this cid and range.
      const part = `${output}.part`
      const stateFile = `${output}.part.json`
      const want: PartState = { cid, offset, length }
      let have = 0
      let written = 0
      // Written once the node answers with bytes: a get that fails first (no such file, a bad range) leaves nothing.
      let fresh = false
      if (!direct) {
        // Found only at the rename, after the whole download, and with the parts left beside the directory.
        if ((await stat(output).catch(() => undefined))?.isDirectory() === true) throw new BadRequestError(`${opts.output} is a directory; give the path of the file to write`)
        if ((await stat(dirname(output)).catch(() => undefined))?.isDirectory() !== true) throw new BadRequestError(`cannot write ${opts.output}: ${dirname(output)} is not a directory`)
        const prev = await readFile(stateFile, 'utf8').then(t => JSON.parse(t) as PartState, () => undefined)
        if (prev != null && prev.cid === want.cid && prev.offset === want.offset && prev.length === want.length) {
          have = await stat(part).then(s => s.size, () => 0)
        } else {
          await rm(part, { force: true })
          await rm(stateFile, { force: true })
          fresh = true
        }
      }
      const from = offset + have
      if (length !== null && have >= length && have > 0) {
        // Everything arrived before; only the rename was missed.
      } else {
        // An empty range has no Range header form (bytes=N-(N-1)); the query asks for it, and still checks the file.
        const path = length === 0 ? `/v1/files/${enc(cid)}?offset=${offset}&length=0` : `/v1/files/${enc(cid)}`
        const headers: Record<string, string> = {}
        if (length !== 0 && (from > 0 || length !== null)) headers.range = `bytes=${from}-${length !== null ? offset + length - 1 : ''}`
        let res
        try {
          res = await api.stream('GET', path, { headers, timeout: null })
        } catch (err) {
          // To the end of the file, with every byte already here (a re-run after only the rename was missed): the
          // range past the end is empty, which the node answers with 416.
          if (!(err instanceof MeshError && err.code === 'RANGE_NOT_SATISFIABLE' && length === null && have > 0)) throw err
          const head = await api.stream('HEAD', `/v1/files/${enc(cid)}`, { timeout: 60_000 })
          head.resume()
          if (Number(head.headers['content-length']) !== from) throw err
        }
        if (res != null) {
          // A node names the file it sends (its ETag) and the range it starts at. Another server (a wrong --api) would
          // have its page saved as the file, or, ignoring the range, its whole body appended to a resumed part.
          if (res.headers.etag?.replace(/^(W\/)?"|"$/g, '') !== canonicalCid(cid)) {
            res.resume()
            throw new MeshError('NODE_UNREACHABLE', `the server at ${api.api} did not answer as a mesh node (no ETag naming the file); check --api`)
          }
          if (headers.range != null && (res.statusCode !== 206 || !(res.headers['content-range'] ?? '').startsWith(`bytes ${from}-`))) {
            res.resume()
            throw new MeshError('NODE_UNREACHABLE', `the server at ${api.api} did not answer the range asked for (bytes ${from}-); check --api`)
          }
          if (fresh) await writeFile(stateFile, JSON.stringify(want))
          const total = Number(res.headers['content-length'] ?? NaN)
          const progress = new Progress('get', Number.isFinite(total) ? have + total : undefined, have)
          // A 1 MiB queue lets the socket's pieces gather while a write is in the thread pool, and leave in one writev:
          // with the default 16 KiB each 64 KiB piece was a write of its own, and a 200 MiB get took 0.8-1.0 s of this
          // process's CPU against 0.63-0.65.
          const sink = toStdout ? process.stdout : createWriteStream(direct ? output : part, { flags: have > 0 ? 'a' : 'w', highWaterMark: 1024 * 1024 })
          try {
            await pipeline(res, progress.counter(), sink)
          } catch (err) {
            progress.end()
            const code = (err as { code?: string }).code
            // This machine's disk, not the node's.
            if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS') throw new MeshError('INSUFFICIENT_STORAGE', `cannot write ${opts.output}: ${(err as Error).message}`)
            // The node ends the response early when it cannot fetch the rest (its providers went away): that is the
            // mesh's availability, not a bug here, and the bytes so far are kept. (A reader of stdout that went away
            // is not the node's doing.)
            // A reader of stdout that stopped (`| head`) wanted no more: that ends the get as it ends `cat`, quietly.
            if (toStdout && (code === 'EPIPE' || process.stdout.destroyed)) return
            if (res.complete || (code !== 'ECONNRESET' && code !== 'ERR_STREAM_PREMATURE_CLOSE')) throw err
            throw new MeshError('UNAVAILABLE', `the transfer was interrupted after ${progress.done} bytes${direct ? '' : '; run the same get again to resume'}`)
          }
          progress.end()
          written = progress.done
        }
      }
      let size = written
      if (!direct) {
        size = (await stat(part)).size
        await rename(part, output)
        await rm(stateFile, { force: true })
      }
      if (!toStdout) print(opts, { cid, path: opts.output, size, resumedFrom: have }, () => {})
    }))

  clientCommand(file.command('stat <cid>').description('size, chunks, and replicas of each chunk'))
    .action(action(async (cid: string, opts: ClientOpts) => {
      const s = await client(opts).json('GET', `/v1/files/${enc(cid)}/stat`)
      print(opts, s, () => {
        process.stdout.write(`cid       ${s.cid}\nname      ${s.name}\nsize      ${s.size} (${formatBytes(s.size)})\nchunks    ${s.chunks} of ${formatBytes(s.chunkSize)}\nreplicas  ${s.replicas} wanted; held by ${s.holders.length}: ${s.holders.join(' ')}\n`)
        if (s.underReplicated > 0) process.stdout.write(`under-replicated chunks: ${s.underReplicated}\n`)
        process.stdout.write('\n')
        printTable(['#', 'CHUNK', 'SIZE', 'REPLICAS'], s.chunkReplicas.map((c: any) => [String(c.index), c.cid, String(c.size), String(c.replicas)]))
      })
    }))

  clientCommand(file.command('ls').description('files this mesh holds'))
    .action(action(async (opts: ClientOpts) => {
      const r = await client(opts).json('GET', '/v1/files')
      print(opts, r, () => {
        printTable(['CID', 'NAME', 'SIZE', 'CHUNKS', 'REPLICAS'], r.files.map((f: any) => [f.cid, f.name, formatBytes(f.size), String(f.chunks), `${f.holders}/${f.replicas}`]))
      })
    }))

  clientCommand(file.command('rm <cid>').description('unpin a file; chunks no other file uses are collected on every replica'))
    .action(action(async (cid: string, opts: ClientOpts) => {
      const r = await client(opts).json('DELETE', `/v1/files/${enc(cid)}`)
      print(opts, r, () => { process.stdout.write(`removed ${r.cid} from ${r.removed} node(s); ${r.collected} block(s) collected\n`) })
    }))
}
