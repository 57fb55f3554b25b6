import { mkdir, rm, rmdir, writeFile } from 'node:fs/promises'
import { constants } from 'node:os'
import { dirname, join } from 'node:path'
import { systemClock, type Clock, type TimerHandle } from '../lib/clock.js'
import * as C from './constants.js'
import { directStarter, type ProcessHandle, type ProcessStarter } from './launcher.js'

export interface ExecutionInit {
  cmd: string
  /** @default [] */
  args?: string[]
  /** Added to PATH and HOME of the daemon. @default {} */
  env?: Record<string, string>
  /** The scratch dir; must exist. */
  cwd: string
  /** @default DEFAULT_TIMEOUT */
  timeout?: number
  /** @default MAX_OUTPUT_BYTES per stream */
  maxOutput?: number
  /** @default KILL_GRACE */
  killGrace?: number
  /** @default systemClock */
  clock?: Clock
  /** Starts the process. @default directStarter (a spawn from this process) */
  starter?: ProcessStarter
}

/** How a run ended. `exitCode` is 128+signal for a signalled process (the shell's convention), 127 when it did not start. */
export interface ExecutionResult {
  exitCode: number
  outcome: 'exited' | 'timeout' | 'killed' | 'spawn-error'
  error?: string
  durationMs: number
}

/** Keeps the first `max` bytes of a stream and counts the rest, so a chatty task cannot exhaust the daemon's memory. */
export class BoundedBuffer {
  private readonly chunks: Buffer[] = []
  private kept = 0
  dropped = 0
  constructor (private readonly max: number) {}
  push (b: Buffer): void {
    const room = this.max - this.kept
    if (room <= 0) { this.dropped += b.byteLength; return }
    const piece = b.byteLength > room ? b.subarray(0, room) : b
    this.chunks.push(piece)
    this.kept += piece.byteLength
    this.dropped += b.byteLength - piece.byteLength
  }

  /** Counts bytes dropped before they got here (a launcher passes on no more than it is told is kept). */
  skip (bytes: number): void { this.dropped += bytes }

  text (): string { return Buffer.concat(this.chunks).toString('utf8') }
  get truncated (): boolean { return this.dropped > 0 }
}

/**
 * One child process in its own process group, so that a kill reaches whatever the command spawned. Ends on exit,
 * timeout or kill(); a kill is SIGTERM, then SIGKILL after the grace. What the process leaves in its group when it
 * exits is ended the same way, by the starter.
 */
export class Execution {
  readonly stdout: BoundedBuffer
  readonly stderr: BoundedBuffer
  readonly done: Promise<ExecutionResult>
  private readonly child: ProcessHandle
  private readonly clock: Clock
  private readonly killGrace: number
  private killReason?: 'timeout' | 'killed'
  private timer?: TimerHandle
  private graceTimer?: TimerHandle
  private readonly started: number

  constructor (init: ExecutionInit) {
    this.clock = init.clock ?? systemClock
    this.killGrace = init.killGrace ?? C.KILL_GRACE
    const max = init.maxOutput ?? C.MAX_OUTPUT_BYTES
    this.stdout = new BoundedBuffer(max)
    this.stderr = new BoundedBuffer(max)
    this.started = this.clock.now()
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: init.cwd, ...(init.env ?? {}) }
    this.child = (init.starter ?? directStarter).launch({ cmd: init.cmd, args: init.args ?? [], cwd: init.cwd, env, maxOutput: max, killGrace: this.killGrace })
    this.child.onOutput((fd, b) => { (fd === 1 ? this.stdout : this.stderr).push(Buffer.from(b.buffer, b.byteOffset, b.byteLength)) })
    this.child.onDropped?.((fd, bytes) => { (fd === 1 ? this.stdout : this.stderr).skip(bytes) })
    // A kill asked for before a launcher reported the pid goes out as soon as it does, and its grace counts from
    // then: a helper slow to answer (forked lazily on a loaded host) must not cost the process its SIGTERM.
    this.child.onStarted(() => { if (this.killReason != null) this.terminate() })
    this.done = new Promise<ExecutionResult>(resolve => {
      let settled = false
      const finish = (r: Omit<ExecutionResult, 'durationMs'>): void => {
        if (settled) return
        settled = true
        if (this.timer != null) this.clock.clearTimeout(this.timer)
        if (this.graceTimer != null) this.clock.clearTimeout(this.graceTimer)
        resolve({ ...r, durationMs: this.clock.now() - this.started })
      }
      this.child.onError(err => {
        const why = err.code === 'ENOENT' ? `command not found: ${init.cmd}` : err.code === 'EACCES' ? `permission denied: ${init.cmd}` : err.message
        finish({ exitCode: 127, outcome: 'spawn-error', error: why })
      })
      // 'close' rather than 'exit': the captured output is complete only once the pipes are closed.
      this.child.onClose((code, signal) => {
        const exitCode = code ?? (128 + (signal != null ? (constants.signals[signal] ?? 0) : 0))
        const outcome = this.killReason ?? 'exited'
        const error = outcome === 'timeout' ? `timed out after ${init.timeout ?? C.DEFAULT_TIMEOUT} ms` : outcome === 'killed' ? 'cancelled' : undefined
        finish({ exitCode, outcome, ...(error != null ? { error } : {}) })
      })
    })
    this.timer = this.clock.setTimeout(() => { this.kill('timeout') }, init.timeout ?? C.DEFAULT_TIMEOUT)
  }

  get pid (): number | undefined { return this.child.pid }

  /** SIGTERM to the process group, SIGKILL after the grace. Idempotent. */
  kill (reason: 'timeout' | 'killed' = 'killed'): void {
    if (this.killReason != null || this.child.ended) return
    this.killReason = reason
    // Without a pid yet, onStarted sends it.
    if (this.child.pid != null) this.terminate()
  }

  /** SIGTERM now, SIGKILL once the grace is over: the grace starts when the process can be signalled. */
  private terminate (): void {
    if (this.graceTimer != null || this.child.ended) return
    this.signal('SIGTERM')
    this.graceTimer = this.clock.setTimeout(() => { this.signal('SIGKILL') }, this.killGrace)
  }

  private signal (sig: NodeJS.Signals): void {
    const pid = this.child.pid
    if (pid == null || this.child.ended) return
    try { process.kill(-pid, sig) } catch { try { process.kill(pid, sig) } catch {} }
  }
}

/** Makes a fresh scratch dir with the inline working files. */
export async function prepareScratch (dir: string, files: Record<string, string>): Promise<void> {
  // One call when the dir is new, as it nearly always is (names are unique per run); leftovers of a crash are cleared.
  try {
    await mkdir(dir)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') await rm(dir, { recursive: true, force: true })
    else if (code !== 'ENOENT') throw err
    await mkdir(dir, { recursive: true })
  }
  for (const [p, content] of Object.entries(files)) {
    const full = join(dir, p)
    await mkdir(dirname(full), { recursive: true })
    await writeFile(full, content)
  }
}

export async function removeScratch (dir: string): Promise<void> {
  // Most tasks leave their dir empty: one rmdir then, instead of the walk a recursive rm makes.
  try { await rmdir(dir) } catch { await rm(dir, { recursive: true, force: true }).catch(() => {}) }
}
