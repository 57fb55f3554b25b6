import { open, readFile, rm, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { DataDirLockedError } from '../lib/errors.js'

export const lockFile = 'mesh.pid'

function isRunning (pid: number): boolean {
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

/** The lock's owner still runs: its pid is alive and (where /proc tells) is a mesh daemon. */
async function ownerRuns (pid: number): Promise<boolean> {
  return isRunning(pid) && await looksLikeMeshDaemon(pid)
}

/**
 * Takes the data dir for this process, so a second daemon fails with a clear error instead of sharing LevelDB files
 * and the identity. A lock left by a process that no longer runs is taken over.
 */
export async function lockDataDir (dataDir: string): Promise<{ release: () => Promise<void> }> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const path = join(dataDir, lockFile)
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o644)
      await fh.writeFile(`${process.pid}\n`)
      await fh.close()
      let released = false
      return {
        release: async () => {
          if (released) return
          released = true
          const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim())
          if (owner === process.pid) await rm(path, { force: true })
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim())
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && await ownerRuns(pid)) {
      throw new DataDirLockedError(`data dir ${dataDir} is in use by another mesh daemon (pid ${pid}); stop it or choose another --data-dir`)
    }
    // Stale: its owner is gone (or its pid now belongs to a process that is not a mesh daemon). Remove it and race again.
    await rm(path, { force: true })
  }
  throw new DataDirLockedError(`could not lock data dir ${dataDir}`)
}
