import { rmSync, rmdirSync } from 'node:fs'
import { mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hour } from '../lib/units.js'
import { isRunning } from '../node/lock.js'

/** Below the range, ports no service of a developer's machine is likely to hold. */
const LOWEST = 10_000
/** Ports fetch() refuses to connect to (the Fetch standard's "bad ports") in the range used here. */
const BAD_PORTS = new Set([10080])
/** A reservation this old is taken for one its process left behind, whatever its pid says (pids are reused). */
const STALE_AFTER = 24 * hour

/** Where reservations are kept: shared by every process of this user on the machine (test workers run in parallel). */
const lockDir = (): string => join(tmpdir(), `meshos-ports-${process.getuid?.() ?? 'user'}`)
const lockPath = (port: number): string => join(lockDir(), String(port))

const mine = new Set<number>()
let exitHook = false

/**
 * A free loopback port below the kernel's ephemeral range, reserved for this process until releasePort() or its
 * exit; 0 (the kernel's choice) if there is no room below the range.
 *
 * A testnet node that is restarted keeps its ports, as a real node keeps its address. A port the kernel chose lies in
 * the ephemeral range, where any outgoing connection on the machine may take it as its local port while the node is
 * down; the restart then failed with LISTEN_FAILED (seen in CI). Below the range only listeners take ports, and the
 * reservation (a file per port, made with O_EXCL) keeps other test processes from choosing the same one between this
 * probe and the node's own bind, and while the node is down.
 */
export async function reservePort (): Promise<number> {
  const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').then(t => Number(t.trim().split(/\s+/)[0]), () => NaN)
  const ephemeral = Number.isInteger(range) && range > 0 ? range : process.platform === 'linux' ? 32_768 : 49_152
  if (ephemeral - LOWEST < 1000) return 0
  if (!exitHook) {
    exitHook = true
    await sweepStalePorts()
    process.once('exit', () => {
      for (const port of mine) rmSync(lockPath(port), { force: true })
      removeDirIfEmpty()
    })
  }
  await mkdir(lockDir(), { recursive: true })
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (ephemeral - LOWEST))
    if (BAD_PORTS.has(port) || mine.has(port) || !await lock(port)) continue
    mine.add(port)
    if (await listenable(port)) return port
    releasePort(port)
  }
  throw new Error(`no free port between ${LOWEST} and ${ephemeral}`)
}

/** Gives a port back (a no-op for one this process did not reserve, or 0). */
export function releasePort (port: number): void {
  if (!mine.delete(port)) return
  rmSync(lockPath(port), { force: true })
  // (An ava worker thread may end without an exit event.)
  if (mine.size === 0) removeDirIfEmpty()
}

/** Other processes' reservations stay, and so does the directory that holds them. */
function removeDirIfEmpty (): void {
  try { rmdirSync(lockDir()) } catch {}
}

/**
 * Removes the reservations of processes that exited without giving them back (killed: a test runner's timeout, or a
 * test of exactly that). Each process sweeps once, at its first reservation.
 */
export async function sweepStalePorts (): Promise<void> {
  const names = await readdir(lockDir()).catch(() => [] as string[])
  for (const name of names) {
    const port = Number(name)
    if (Number.isInteger(port) && !mine.has(port) && await stale(port)) await rm(lockPath(port), { force: true })
  }
  if (mine.size === 0) removeDirIfEmpty()
}

async function lock (port: number, retry = true): Promise<boolean> {
  try {
    const f = await open(lockPath(port), 'wx')
    await f.writeFile(String(process.pid))
    await f.close()
    return true
  } catch (err) {
    // The directory removed by a process that exited just now, when it held the last reservation.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && retry) {
      await mkdir(lockDir(), { recursive: true })
      return await lock(port, false)
    }
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !retry || !await stale(port)) return false
    await rm(lockPath(port), { force: true })
    return await lock(port, false)
  }
}

/** Left by a process that has exited (killed before its exit hook ran), or very old. */
async function stale (port: number): Promise<boolean> {
  const found = await Promise.all([readFile(lockPath(port), 'utf8'), stat(lockPath(port))]).catch(() => undefined)
  // Given back meanwhile: not a reservation to take over.
  if (found == null) return false
  const [text, info] = found
  if (Date.now() - info.mtimeMs > STALE_AFTER) return true
  const pid = Number(text)
  // Being written this moment by its owner: not stale.
  if (!Number.isInteger(pid) || pid <= 0) return false
  return !isRunning(pid)
}

async function listenable (port: number): Promise<boolean> {
  return await new Promise<boolean>(resolve => {
    const server = createServer()
    server.once('error', () => { resolve(false) })
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => { server.close(() => { resolve(true) }) })
  })
}
