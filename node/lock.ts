import { randomBytes } from 'node:crypto'
import { link, open, readdir, readFile, rm, mkdir, stat, writeFile } from 'node:fs/promises'
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
  // Being written by its owner as it is read, it may be partial: then the pid alone decides, as for an older daemon.
  const recorded = await readFile(ownerPath, 'utf8').then(t => { try { return JSON.parse(t) as { pid?: number, boot?: string, start?: string } } catch { return undefined } }, () => undefined)
  if (recorded?.pid === pid && typeof recorded.boot === 'string' && typeof recorded.start === 'string') {
    const now = await processIdentity(pid)
    if (now != null) return now.boot === recorded.boot && now.start === recorded.start
  }
  return await looksLikeMeshDaemon(pid)
}

/** Beside the lock: the owner's pid, boot id and start tick, so that a reused pid is told apart exactly. */
export const ownerFile = 'mesh.pid.owner'

/** How long a lock file with no pid in it yet counts as being written by a process taking it. */
const FRESH_LOCK = 10_000

/**
 * Creates the lock file with this process's pid already in it, or returns false if a lock exists. The pid is written to
 * a file of its own and hard-linked into place: a lock created empty and written after let another daemon read no pid
 * in that moment, take the lock for stale, and run beside this one. Where the filesystem has no hard links, the lock is
 * created and written in two steps, and an empty one is taken for held while it is young (FRESH_LOCK).
 */
async function createLock (path: string): Promise<boolean> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  await writeFile(tmp, `${process.pid}\n`, { mode: 0o644, flag: 'wx' })
  try {
    await link(tmp, path)
    return true
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return false
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS' && code !== 'EXDEV') throw err
  } finally {
    await rm(tmp, { force: true })
  }
  try {
    const fh = await open(path, 'wx', 0o644)
    try { await fh.writeFile(`${process.pid}\n`) } finally { await fh.close() }
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  }
}

/** Files that processes taking the lock left when they died on the way (`mesh.pid.<pid>.<hex>.tmp`). */
async function sweepLeftovers (dataDir: string): Promise<void> {
  const names = await readdir(dataDir).catch(() => [] as string[])
  for (const name of names) {
    const m = /^mesh\.pid\.(\d+)\.[0-9a-f]+\.tmp$/.exec(name)
    if (m != null && (Number(m[1]) === process.pid || !isRunning(Number(m[1])))) await rm(join(dataDir, name), { force: true })
  }
}

/** Held, for a moment, by the one process removing a stale lock. */
const guardFile = 'mesh.pid.takeover'

/** Takes the takeover guard, or returns false if another process holds it; one left by a crash is removed. */
async function takeGuard (guardPath: string): Promise<boolean> {
  try {
    await writeFile(guardPath, `${process.pid}\n`, { mode: 0o644, flag: 'wx' })
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  const guard = await readLock(guardPath)
  if (guard != null && (guard.ageMs > FRESH_LOCK || (Number.isInteger(guard.pid) && guard.pid > 0 && !isRunning(guard.pid)))) await rm(guardPath, { force: true })
  return false
}

/** The lock's contents and age, or undefined if there is none. */
async function readLock (path: string): Promise<{ text: string, pid: number, ageMs: number } | undefined> {
  try {
    const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)])
    return { text, pid: Number(text.trim()), ageMs: Date.now() - st.mtimeMs }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/**
 * Takes the data dir for this process, so a second daemon fails with a clear error instead of sharing LevelDB files
 * and the identity. A lock left by a process that no longer runs is taken over.
 */
export async function lockDataDir (dataDir: string): Promise<{ release: () => Promise<void> }> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const path = join(dataDir, lockFile)
  const ownerPath = join(dataDir, ownerFile)
  const guardPath = join(dataDir, guardFile)
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await createLock(path)) {
      await sweepLeftovers(dataDir)
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
    }
    const held = await readLock(path)
    if (held == null) continue
    const { pid } = held
    if (!(Number.isInteger(pid) && pid > 0)) {
      // No pid yet: a process is writing it (where hard links are missing), unless the file is old (a crash then).
      if (held.ageMs < FRESH_LOCK) throw new DataDirLockedError(`data dir ${dataDir} is being locked by another mesh daemon; stop it or choose another --data-dir`)
    } else if (pid !== process.pid && await ownerRuns(pid, ownerPath)) {
      throw new DataDirLockedError(`data dir ${dataDir} is in use by another mesh daemon (pid ${pid}); stop it or choose another --data-dir`)
    }
    // Stale: its owner is gone (or its pid now belongs to another process). Only the holder of the takeover guard
    // removes a lock, and only the one it has just read: a lock can be created only where none is, so none can have
    // replaced it meanwhile. (Removing what was judged stale without it deleted the lock another starter had just
    // taken, and both ran.)
    if (!await takeGuard(guardPath)) {
      await new Promise(resolve => setTimeout(resolve, 20 + Math.random() * 30))
      continue
    }
    try {
      const again = await readLock(path)
      if (again?.text === held.text) {
        await rm(ownerPath, { force: true })
        await rm(path, { force: true })
      }
    } finally {
      await rm(guardPath, { force: true })
    }
  }
  throw new DataDirLockedError(`could not lock data dir ${dataDir}`)
}
