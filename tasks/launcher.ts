import { fork, spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { LauncherGoneError } from './errors.js'
import { endGroup, groupStarted } from './group.js'

/** A started task process, wherever it was started: what Execution needs of it. */
export interface ProcessHandle {
  /** Undefined until the process is known to have started (a launcher answers asynchronously). */
  readonly pid: number | undefined
  /** The process has exited (or never started). */
  readonly ended: boolean
  onStarted(fn: (pid: number) => void): void
  onOutput(fn: (fd: 1 | 2, data: Uint8Array) => void): void
  /** Output not passed on, past `maxOutput` of the stream: counted only. Absent: the starter passes everything on. */
  onDropped?(fn: (fd: 1 | 2, bytes: number) => void): void
  /** The process could not start; `code` is the errno name (ENOENT, EACCES, ...). */
  onError(fn: (err: { code?: string, message: string }) => void): void
  /** Exit, once the output pipes are closed too. */
  onClose(fn: (code: number | null, signal: NodeJS.Signals | null) => void): void
}

export interface LaunchSpec {
  cmd: string
  args: string[]
  cwd: string
  env: Record<string, string>
  /** Bytes of each of stdout and stderr the caller keeps: a starter may pass on no more, and count the rest. */
  maxOutput: number
  /** Between SIGTERM and SIGKILL for what the process leaves in its group when it exits. */
  killGrace: number
}

/**
 * Starts task processes: in a process group of their own, stdin ignored, stdout and stderr piped. When the process
 * exits, what is left in its group is ended (endGroup).
 */
export interface ProcessStarter { launch(spec: LaunchSpec): ProcessHandle }

/** Messages between the daemon and its launcher process. */
export type LauncherRequest = { t: 'spawn', id: number } & LaunchSpec
export type LauncherReply =
  | { t: 'pid', id: number, pid: number }
  | { t: 'out', id: number, fd: 1 | 2, data: Uint8Array }
  | { t: 'dropped', id: number, fd: 1 | 2, bytes: number }
  | { t: 'error', id: number, code?: string, message: string }
  | { t: 'close', id: number, code: number | null, signal: NodeJS.Signals | null }

class Handle implements ProcessHandle {
  pid: number | undefined
  ended = false
  private started: Array<(pid: number) => void> = []
  private output: Array<(fd: 1 | 2, data: Uint8Array) => void> = []
  private drops: Array<(fd: 1 | 2, bytes: number) => void> = []
  private errors: Array<(err: { code?: string, message: string }) => void> = []
  private closes: Array<(code: number | null, signal: NodeJS.Signals | null) => void> = []
  onStarted (fn: (pid: number) => void): void { if (this.pid != null) fn(this.pid); else this.started.push(fn) }
  onOutput (fn: (fd: 1 | 2, data: Uint8Array) => void): void { this.output.push(fn) }
  onDropped (fn: (fd: 1 | 2, bytes: number) => void): void { this.drops.push(fn) }
  onError (fn: (err: { code?: string, message: string }) => void): void { this.errors.push(fn) }
  onClose (fn: (code: number | null, signal: NodeJS.Signals | null) => void): void { this.closes.push(fn) }
  start (pid: number): void { this.pid = pid; for (const f of this.started.splice(0)) f(pid) }
  out (fd: 1 | 2, data: Uint8Array): void { for (const f of this.output) f(fd, data) }
  dropped (fd: 1 | 2, bytes: number): void { for (const f of this.drops) f(fd, bytes) }
  error (err: { code?: string, message: string }): void { this.ended = true; for (const f of this.errors) f(err) }
  close (code: number | null, signal: NodeJS.Signals | null): void { this.ended = true; for (const f of this.closes) f(code, signal) }
}

/**
 * Starts each process from this process: a fork of the whole daemon per task. Its output is passed on whole: the
 * caller's bounded buffers drop what they do not keep, in this same process.
 */
export const directStarter: ProcessStarter = {
  launch (spec) {
    const h = new Handle()
    const child: ChildProcess = spawn(spec.cmd, spec.args, { cwd: spec.cwd, env: spec.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    const pid = child.pid
    if (pid != null) { groupStarted(pid); h.start(pid) }
    child.stdout?.on('data', (b: Buffer) => { h.out(1, b) })
    child.stderr?.on('data', (b: Buffer) => { h.out(2, b) })
    child.once('exit', (_code, signal) => { if (pid != null) endGroup(pid, spec.killGrace, signal) })
    child.once('error', (err: NodeJS.ErrnoException) => { if (child.pid == null) h.error({ code: err.code, message: err.message }) })
    child.once('close', (code, signal) => { h.close(code, signal) })
    return h
  }
}

const launcherPath = fileURLToPath(new URL('./launcher-process.js', import.meta.url))

/**
 * Starts task processes from a small helper process instead of the daemon. Starting a process forks its parent, and
 * the kernel's share of a fork grows with the parent's memory: measured here, about 0.6 ms of system time per spawn
 * from a 56 MB process against 1.7 ms from a 125 MB one, and a daemon holds 170 MB or more. The helper is forked once,
 * lazily, and again after it dies; the tasks' processes live in their own process groups, so the daemon signals them
 * directly by pid.
 */
export class Launcher implements ProcessStarter {
  private proc?: ChildProcess
  private readonly handles = new Map<number, Handle>()
  private seq = 0

  launch (spec: LaunchSpec): ProcessHandle {
    const proc = this.proc ?? this.startHelper()
    const id = ++this.seq
    const h = new Handle()
    this.handles.set(id, h)
    if (this.handles.size === 1) { proc.ref(); proc.channel?.ref() }
    proc.send({ t: 'spawn', id, ...spec } satisfies LauncherRequest)
    return h
  }

  /** Lets the helper go (the next launch starts another); processes it still watches are killed. */
  stop (): void {
    if (this.proc?.connected === true) this.proc.disconnect()
  }

  private startHelper (): ChildProcess {
    const proc = fork(launcherPath, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'advanced', execArgv: [] })
    this.proc = proc
    proc.on('message', (m: LauncherReply) => {
      const h = this.handles.get(m.id)
      if (h == null) return
      if (m.t === 'pid') h.start(m.pid)
      else if (m.t === 'out') h.out(m.fd, m.data)
      else if (m.t === 'dropped') h.dropped(m.fd, m.bytes)
      else if (m.t === 'error') { this.done(m.id); h.error({ code: m.code, message: m.message }) } else { this.done(m.id); h.close(m.code, m.signal) }
    })
    proc.once('exit', () => {
      if (this.proc === proc) this.proc = undefined
      // Its processes' exits can no longer be seen: end them, so that none runs on unwatched, and report them gone.
      for (const [id, h] of [...this.handles]) {
        this.done(id)
        if (h.pid != null) { try { process.kill(-h.pid, 'SIGKILL') } catch {} }
        h.error({ code: 'ELAUNCHER', message: new LauncherGoneError().message })
      }
    })
    proc.on('error', () => {})
    proc.unref(); proc.channel?.unref()
    return proc
  }

  private done (id: number): void {
    this.handles.delete(id)
    // An idle helper must not keep the daemon (or a test) alive.
    if (this.handles.size === 0 && this.proc != null) { this.proc.unref(); this.proc.channel?.unref() }
  }
}
