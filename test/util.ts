import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ExecutionContext } from 'ava'

export const meshBin = fileURLToPath(new URL('../cli/bin.js', import.meta.url))

/** A temp dir removed in teardown. */
export async function tempDir (t: ExecutionContext, prefix = 'meshos-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true, maxRetries: 3 }) })
  return dir
}

export interface RunResult { code: number | null, stdout: string, stderr: string }

/** Runs the real `mesh` CLI as a process and collects its output. */
export async function mesh (args: string[], opts: { env?: Record<string, string>, timeout?: number, input?: string } = {}): Promise<RunResult> {
  const child = spawn(process.execPath, [meshBin, ...args], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c) => { stdout += c })
  child.stderr.on('data', (c) => { stderr += c })
  child.stdin.end(opts.input ?? '')
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeout ?? 60_000)
  const code = await new Promise<number | null>(resolve => child.once('close', (c) => { resolve(c) }))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

class DaemonExitedError extends Error {}

/**
 * Polls `check` until it returns a truthy value; never a fixed sleep standing in for an event. An error `fatal`
 * accepts ends the wait at once.
 */
export async function waitFor<T> (what: string, check: () => Promise<T> | T, timeout = 30_000, interval = 50, fatal?: (err: unknown) => boolean): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeout
  let lastErr: unknown
  while (Date.now() < deadline) {
    try {
      const v = await check()
      if (v) return v as NonNullable<T>
    } catch (err) {
      if (fatal?.(err) === true) throw err
      lastErr = err
    }
    await new Promise(resolve => setTimeout(resolve, interval))
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what}${lastErr != null ? `: ${(lastErr as Error).message}` : ''}`)
}

/**
 * Dials until a connection is up: one dial's handshake can time out on a loaded machine (noise's upgrade timed out at
 * load 20 on a fresh-clone CI run), and a test's set-up must not fail on that.
 */
export async function dialUntilConnected (node: { dial: (addr: any) => Promise<unknown> }, addr: unknown, timeout = 60_000): Promise<void> {
  await waitFor('a connection', async () => await node.dial(addr).then(() => true, () => false), timeout, 250)
}

export interface Daemon {
  child: ChildProcess
  exited: Promise<number | null>
  output: () => string
  info: () => Promise<{ peerId: string, api: string, addrs: string[], pid: number }>
}

/** Starts `mesh start` as a real process; it is killed in teardown if still running. */
export function startDaemon (t: ExecutionContext, args: string[], env: Record<string, string> = {}): Daemon {
  // MESH_PARENT_PID: the daemon stops itself if this worker dies before its teardown can (a runner's timeout).
  const child = spawn(process.execPath, [meshBin, 'start', ...args], { env: { ...process.env, MESH_PARENT_PID: String(process.pid), ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (c) => { out += c })
  child.stderr!.on('data', (c) => { out += c })
  const exited = new Promise<number | null>(resolve => child.once('exit', (c) => { resolve(c) }))
  t.teardown(async () => {
    if (child.exitCode == null && child.signalCode == null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  const dataDir = args[args.indexOf('--data-dir') + 1]
  return {
    child,
    exited,
    output: () => out,
    info: async () => await waitFor('node.json', async () => {
      // A daemon that exited will never write it: say so at once, with what it printed.
      if (child.exitCode != null || child.signalCode != null) throw new DaemonExitedError(`the daemon exited (${child.signalCode ?? `code ${child.exitCode}`}) before writing node.json:\n${out.slice(-2000)}`)
      const info = JSON.parse(await readFile(join(dataDir, 'node.json'), 'utf8'))
      return info.pid === child.pid ? info : undefined
    }, 30_000, 50, err => err instanceof DaemonExitedError)
  }
}
