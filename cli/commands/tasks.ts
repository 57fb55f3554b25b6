import type { TaskStatus } from '../../tasks/index.js'
import { normalizeSpec } from '../../tasks/types.js'
import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { BadRequestError, MeshError, toMeshError } from '../../lib/errors.js'
import { parseDuration } from '../../dht/keys.js'
import { delay } from '../../lib/abort.js'
import { clientCommand, action, print, client, collect, type ClientOpts } from '../common.js'
import { formatDuration, printTable } from '../format.js'
import type { MeshClient } from '../client.js'

/** What GET /v1/tasks/:id answers. */
type Status = TaskStatus

const terminal = new Set(['succeeded', 'failed', 'cancelled'])

const int = (name: string, min: number) => (v: string): number => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min) throw new MeshError('BAD_REQUEST', `${name} must be an integer of at least ${min}`)
  return n
}

/** `task wait --timeout`: a duration as the other timeouts take it (30s, 5m), or a whole number of ms as it always took. */
const waitTimeout = (v: string): number => Math.ceil(parseDuration(v, '--timeout'))

const short = (peerId: string): string => peerId.length > 12 ? `…${peerId.slice(-8)}` : peerId

function describe (s: Status): string {
  const exit = s.exitCode != null ? ` exit ${s.exitCode}` : ''
  const where = s.node !== '' ? ` on ${short(s.node)}` : ''
  const why = s.error != null ? `: ${s.error}` : s.reason != null ? ` (${s.reason})` : ''
  return `${s.id} ${s.state}${where}${exit}${why}`
}

/**
 * The exit code `mesh task wait` ends with: the task's own (a cancelled task's process killed by SIGTERM has 143, as a
 * shell reports it, and so has one stopped by its timeout), or one that says how it ended without one: 130 for a task
 * cancelled before it ran, 1 for a failure that has none.
 */
export function waitExitCode (s: Status): number {
  if (s.state === 'succeeded') return 0
  if (s.exitCode != null && s.exitCode > 0) return Math.min(s.exitCode, 255)
  return s.state === 'cancelled' ? 130 : 1
}

async function waitFor (c: MeshClient, id: string, timeoutMs?: number): Promise<Status> {
  const end = timeoutMs != null ? Date.now() + timeoutMs : Infinity
  let pause = 100
  for (;;) {
    const s = await c.json<Status>('GET', `/v1/tasks/${encodeURIComponent(id)}`)
    if (terminal.has(s.state)) return s
    if (Date.now() > end) throw new MeshError('TIMEOUT', `task ${id} is still ${s.state}`)
    await delay(pause)
    pause = Math.min(1000, pause * 1.5)
  }
}

interface SubmitOpts extends ClientOpts {
  cpu?: number
  mem?: number
  tag?: string[]
  retries?: number
  retryFailed?: number
  timeout?: string
  input?: string[]
  output?: string[]
  env?: string[]
  idempotencyKey?: string
  batch?: string
  wait?: boolean
}

function specFrom (argv: string[], o: SubmitOpts): Record<string, unknown> {
  if (argv.length === 0) throw new MeshError('BAD_REQUEST', 'give the command after --, e.g. mesh task submit -- sleep 1')
  const env: Record<string, string> = {}
  for (const e of o.env ?? []) {
    const i = e.indexOf('=')
    if (i <= 0) throw new MeshError('BAD_REQUEST', `--env wants NAME=VALUE, not "${e}"`)
    env[e.slice(0, i)] = e.slice(i + 1)
  }
  const inputs = (o.input ?? []).map(x => {
    const i = x.indexOf(':')
    if (i <= 0 || i === x.length - 1) throw new MeshError('BAD_REQUEST', `--input wants CID:path, not "${x}"`)
    return { cid: x.slice(0, i), path: x.slice(i + 1) }
  })
  return {
    cmd: argv[0],
    args: argv.slice(1),
    ...(Object.keys(env).length > 0 ? { env } : {}),
    ...(o.cpu != null ? { cpu: o.cpu } : {}),
    ...(o.mem != null ? { mem: o.mem } : {}),
    ...(o.tag != null ? { tags: o.tag } : {}),
    ...(o.retries != null ? { retries: o.retries } : {}),
    ...(o.retryFailed != null ? { retryFailed: o.retryFailed } : {}),
    ...(o.timeout != null ? { timeout: o.timeout } : {}),
    ...(inputs.length > 0 ? { inputs } : {}),
    ...(o.output != null ? { outputs: o.output } : {}),
    ...(o.idempotencyKey != null ? { idempotencyKey: o.idempotencyKey } : {})
  }
}

/** `mesh task ...` and `mesh top`: distributed tasks. */
export function registerTaskCommands (program: Command): void {
  const group = program.command('task').alias('tasks').description('run commands on the mesh')

  clientCommand(group.command('submit').description('queue a command on the node the API belongs to; prints the task id')
    .argument('[command...]', 'the command and its arguments, after --')
    .option('--cpu <n>', 'slots the task occupies', int('--cpu', 1))
    .option('--mem <MiB>', 'memory the task needs (MiB)', int('--mem', 0))
    .option('--tag <tag>', 'a resource tag the node must offer (repeatable)', collect)
    .option('--retries <n>', 're-runs after the node running it dies (default 3)', int('--retries', 0))
    .option('--retry-failed <n>', 're-runs after a non-zero exit or a timeout (default 0)', int('--retry-failed', 0))
    .option('--timeout <duration>', 'kill the task after this long, e.g. 30s, 5m; a bare number is seconds (default 1h)')
    .option('--input <cid:path>', 'fetch a mesh file into the task directory (repeatable)', collect)
    .option('--output <path>', 'store this file as a mesh file after the run (repeatable)', collect)
    .option('--env <NAME=VALUE>', 'set an environment variable (repeatable)', collect)
    .option('--idempotency-key <key>', 'resubmitting with the same key returns the first task')
    .option('--batch <file>', 'submit one task per JSON line of FILE (- for stdin), e.g. {"cmd":"sleep","args":["1"]}')
    .option('--wait', 'wait for the task to end and exit with its exit code'))
    .action(action(async (argv: string[], opts: SubmitOpts) => {
      const c = client(opts)
      if (opts.batch != null) {
        if (argv.length > 0) throw new MeshError('BAD_REQUEST', 'give either --batch or a command, not both')
        const text = opts.batch === '-' ? await readStdin() : await readFile(opts.batch, 'utf8')
        await submitBatch(c, readBatch(text), opts)
        return
      }
      const s = await c.json<Status>('POST', '/v1/tasks', specFrom(argv, opts))
      if (opts.wait === true) {
        const end = await waitFor(c, s.id)
        print(opts, end, () => { process.stdout.write(`${describe(end)}\n`) })
        process.exit(waitExitCode(end))
      }
      print(opts, s, () => { process.stdout.write(`${s.id}\n`) })
    }))

  clientCommand(group.command('status').description('state, node, attempts and outputs of a task')
    .argument('<id>'))
    .action(action(async (id: string, opts: ClientOpts) => {
      const s = await client(opts).json<Status>('GET', `/v1/tasks/${encodeURIComponent(id)}`)
      print(opts, s, () => {
        process.stdout.write(`${describe(s)}\n`)
        for (const [i, a] of s.attempts.entries()) {
          const took = a.end != null ? formatDuration(a.end - a.start) : 'running'
          process.stdout.write(`  attempt ${i + 1}: ${short(a.node)} ${took}${a.exitCode != null ? ` exit ${a.exitCode}` : ''}${a.error != null ? ` (${a.error})` : ''}\n`)
        }
        for (const o of s.outputs) process.stdout.write(`  output ${o.path}: ${o.cid}\n`)
      })
    }))

  clientCommand(group.command('wait').description('block until a task ends; exit with its exit code')
    .argument('<id>')
    .option('--timeout <duration>', 'give up after this long, e.g. 30s or 5m (a bare number is ms)', waitTimeout))
    .action(action(async (id: string, opts: ClientOpts & { timeout?: number }) => {
      const s = await waitFor(client(opts), id, opts.timeout)
      print(opts, s, () => { process.stderr.write(`${describe(s)}\n`) })
      process.exit(waitExitCode(s))
    }))

  clientCommand(group.command('cancel').description('stop a task wherever it runs (SIGTERM, then SIGKILL)')
    .argument('<id>'))
    .action(action(async (id: string, opts: ClientOpts) => {
      const s = await client(opts).json<Status>('POST', `/v1/tasks/${encodeURIComponent(id)}/cancel`)
      print(opts, s, () => { process.stdout.write(`${describe(s)}\n`) })
    }))

  clientCommand(group.command('logs').description("a task's captured stdout and stderr")
    .argument('<id>')
    .option('-f, --follow', 'keep printing until the task ends'))
    .action(action(async (id: string, opts: ClientOpts & { follow?: boolean }) => {
      const c = client(opts)
      type Logs = { state: string, stdout: string, stderr: string, truncated: boolean }
      if (opts.follow !== true || opts.json === true) {
        const l = await c.json<Logs>('GET', `/v1/tasks/${encodeURIComponent(id)}/logs`)
        print(opts, l, () => { process.stdout.write(l.stdout); process.stderr.write(l.stderr) })
        return
      }
      let out = 0
      let err = 0
      for (;;) {
        const l = await c.json<Logs>('GET', `/v1/tasks/${encodeURIComponent(id)}/logs`)
        // Captured output only grows while a run lasts; a retry starts over, so print it whole.
        if (l.stdout.length < out || l.stderr.length < err) { out = 0; err = 0 }
        process.stdout.write(l.stdout.slice(out))
        process.stderr.write(l.stderr.slice(err))
        out = l.stdout.length
        err = l.stderr.length
        if (terminal.has(l.state)) break
        await delay(500)
      }
    }))

  clientCommand(group.command('list').alias('ls').description('tasks, newest first')
    .option('--state <state>', 'only tasks in this state (queued, running, succeeded, failed, cancelled)')
    .option('--limit <n>', 'at most this many', int('--limit', 1)))
    .action(action(async (opts: ClientOpts & { state?: string, limit?: number }) => {
      const q = new URLSearchParams()
      if (opts.state != null) q.set('state', opts.state)
      if (opts.limit != null) q.set('limit', String(opts.limit))
      const r = await client(opts).json<{ tasks: Status[] }>('GET', `/v1/tasks?${q.toString()}`)
      print(opts, r, () => {
        printTable(['id', 'state', 'node', 'attempts', 'exit', 'command'], r.tasks.map(s => [
          s.id, s.state, short(s.node), String(s.attempts.length), s.exitCode == null ? '' : String(s.exitCode), [s.cmd, ...s.args].join(' ').slice(0, 60)
        ]))
      })
    }))

  clientCommand(program.command('top').description("live view of every node's task slots, queue and running tasks")
    .option('--once', 'print one frame and exit')
    .option('--interval <ms>', 'refresh period', int('--interval', 100), 1000))
    .action(action(async (opts: ClientOpts & { once?: boolean, interval: number }) => {
      const c = client(opts)
      for (;;) {
        const [top, running] = await Promise.all([
          c.json<{ members: Array<{ peerId: string, state: string, slots: number, load: number, tags: string[] }> }>('GET', '/v1/tasks/top'),
          c.json<{ tasks: Status[] }>('GET', '/v1/tasks?state=running&limit=1000')
        ])
        const byNode = new Map<string, Status[]>()
        for (const s of running.tasks) byNode.set(s.node, [...(byNode.get(s.node) ?? []), s])
        const frame = top.members.map(m => {
          const run = byNode.get(m.peerId) ?? []
          return { ...m, running: run.length, queued: Math.max(0, m.load - run.length), tasks: run.map(s => ({ id: s.id, cmd: [s.cmd, ...s.args].join(' ') })) }
        })
        if (opts.json === true) {
          process.stdout.write(JSON.stringify({ members: frame }) + '\n')
        } else {
          if (opts.once !== true) process.stdout.write('\x1b[2J\x1b[H')
          printTable(['node', 'state', 'slots', 'running', 'queued', 'tags', 'running tasks'], frame.map(m => [
            short(m.peerId), m.state, String(m.slots), String(m.running), String(m.queued), m.tags.join(','),
            m.tasks.slice(0, 3).map(t => `${t.id.slice(-6)} ${t.cmd.slice(0, 20)}`).join('; ') + (m.tasks.length > 3 ? ` +${m.tasks.length - 3}` : '')
          ]))
        }
        if (opts.once === true) return
        await delay(opts.interval)
      }
    }))
}

/** A spec of a batch file and its line number there (from 1; blank lines count). */
interface BatchLine { line: number, spec: unknown }

/**
 * Parses and checks every line of a batch before anything is sent: a bad line found by the node after earlier requests
 * had been accepted left those tasks running and the rest unsent. Errors name the line of the file.
 */
export function readBatch (text: string): BatchLine[] {
  const out: BatchLine[] = []
  for (const [i, raw] of text.split('\n').entries()) {
    const l = raw.trim()
    if (l === '') continue
    let spec: unknown
    try { spec = JSON.parse(l) } catch { throw new BadRequestError(`line ${i + 1} of the batch is not JSON`) }
    try { normalizeSpec(spec) } catch (err) { throw new BadRequestError(`line ${i + 1} of the batch: ${(err as Error).message}`) }
    out.push({ line: i + 1, spec })
  }
  return out
}

/** `task N: ...` in a node's answer to a batch: the task's index in that request. */
const TASK_INDEX = /^task (\d+): /

/**
 * Sends a batch in requests of at most 1,000 specs and 8 MiB, well inside the API's limits (MAX_BATCH,
 * MAX_SUBMIT_BYTES). A node takes each request whole or not at all; when one fails after earlier ones were taken, the
 * ids of the tasks taken are printed before the error, with the line the rest starts at, so that a caller does not
 * resubmit (and run twice) what was taken.
 */
async function submitBatch (c: MeshClient, lines: BatchLine[], opts: ClientOpts): Promise<void> {
  const groups: BatchLine[][] = lines.length > 0 ? [[]] : []
  let bytes = 0
  for (const l of lines) {
    const size = Buffer.byteLength(JSON.stringify(l.spec))
    const g = groups[groups.length - 1]
    if (g.length >= 1000 || (g.length > 0 && bytes + size > 8 * 1024 * 1024)) { groups.push([]); bytes = 0 }
    groups[groups.length - 1].push(l)
    bytes += size
  }
  const out: Status[] = []
  for (const g of groups) {
    try {
      const r = await c.json<{ tasks: Status[] }>('POST', '/v1/tasks', { tasks: g.map(l => l.spec) })
      out.push(...r.tasks)
    } catch (err) {
      const e = toMeshError(err)
      const m = TASK_INDEX.exec(e.message)
      const at = m != null ? g[Number(m[1])] : undefined
      const reason = at != null ? `line ${at.line} of the batch: ${e.message.slice(m?.[0].length)}` : e.message
      if (out.length === 0) throw new MeshError(e.code, reason)
      const message = `${reason}; the tasks of lines ${lines[0].line}-${lines[out.length - 1].line} were submitted (${out.length}, ids printed), those from line ${g[0].line} on were not`
      // Written out before the exit: a pipe's writes are asynchronous, and an exit cut the list short.
      // With --json, one document: the tasks taken beside the error, with the error's exit code.
      if (opts.json === true) {
        await writeOut(JSON.stringify({ tasks: out, ...new MeshError(e.code, message).toJSON() }, null, 2) + '\n')
        process.exit(e.exitCode)
      }
      await writeOut(out.map(s => `${s.id}\n`).join(''))
      throw new MeshError(e.code, message)
    }
  }
  print(opts, { tasks: out }, () => { for (const s of out) process.stdout.write(`${s.id}\n`) })
}

async function writeOut (text: string): Promise<void> {
  await new Promise<void>((resolve, reject) => { process.stdout.write(text, err => { if (err != null) reject(err); else resolve() }) })
}

async function readStdin (): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
