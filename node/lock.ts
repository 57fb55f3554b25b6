import { open, readFile, rm, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DataDirLockedError } from '../lib/errors.js'

export const lockFile = 'mesh.pid'

/** A process with this pid exists (one of another user's counts). */
export function isRunning (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Whether the process with this pid looks like a mesh daemon (`... bin.js start ...` or `mesh start ...`), from
 * Linux's /proc; true where that cannot be read. After a crash the pid in a lock can be reused by an unrelated process,
 * which `kill(pid, 0)` alone takes for the lock's owner. (Not a start-time check: that compares with the lock file's
 * wall-clock mtime, and a clock step after the daemon started made a live daemon's lock look stale.)
 */
async function looksLikeMeshDaemon (pid: number): Promise<boolean> {
  let args: string[]
  try {
    args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')
  } catch {
    return true
  }
  if (args.length <= 1 && args[0] === '') return true // a zombie, or /proc hides it: do not guess
  return args.includes('start') && args.some(a => /(^|\/)(mesh|bin\.js)$/.test(a))
}

/** This boot of the machine and when in it the process started (clock ticks since boot), from Linux's /proc. */
async function processIdentity (pid: number | 'self'): Promise<{ boot: string, start: string } | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
    const boot = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim()
    return start != null && start !== '' && boot !== '' ? { boot, start } : undefined
  } catch {
    return undefined
  }
}

/**
 * The lock's owner still runs. Where the owner recorded its identity (`ownerFile`), only that same process counts: a
 * reused pid is a different process, started at another tick or in another boot, with no clock to go wrong. A lock
 * without it (an older daemon's) falls back to the pid being alive and looking like a mesh daemon.
 */
async function ownerRuns (pid: number, ownerPath: string): Promise<boolean> {
  if (!isRunning(pid)) return false
  const recorded = await readFile(ownerPath, 'utf8').then(t => JSON.parse(t) as { pid?: number, boot?: string, start?: string }, () => undefined)
  if (recorded?.pid === pid && typeof recorded.boot === 'string' && typeof recorded.start === 'string') {
    const now = await processIdentity(pid)
    if (now != null) return now.boot === recorded.boot && now.start === recorded.start
  }
  return await looksLikeMeshDaemon(pid)
}

/** Beside the lock: the owner's pid, boot id and start tick, so that a reused pid is told apart exactly. */
export const ownerFile = 'mesh.pid.owner'

/**
 * Takes the data dir for this process, so a second daemon fails with a clear error instead of sharing LevelDB files
 * and the identity. A lock left by a process that no longer runs is taken over.
 */
export async function lockDataDir (dataDir: string): Promise<{ release: () => Promise<void> }> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const path = join(dataDir, lockFile)
  const ownerPath = join(dataDir, ownerFile)
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o644)
      await fh.writeFile(`${process.pid}\n`)
      await fh.close()
      const me = await processIdentity('self')
      if (me != null) await writeFile(ownerPath, JSON.stringify({ pid: process.pid, ...me }) + '\n', { mode: 0o644 })
      let released = false
      return {
        release: async () => {
          if (released) return
          released = true
          const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim())
          if (owner === process.pid) {
            await rm(ownerPath, { force: true })
            await rm(path, { force: true })
          }
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim())
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && await ownerRuns(pid, ownerPath)) {
      throw new DataDirLockedError(`data dir ${dataDir} is in use by another mesh daemon (pid ${pid}); stop it or choose another --data-dir`)
    }
    // Stale: its owner is gone (or its pid now belongs to another process). Remove it and race again.
    await rm(ownerPath, { force: true })
    await rm(path, { force: true })
  }
  throw new DataDirLockedError(`could not lock data dir ${dataDir}`)
}
