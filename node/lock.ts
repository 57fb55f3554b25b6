import { open, readFile, rm, mkdir, stat } from 'node:fs/promises'
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

/** Clock ticks per second of /proc/PID/stat's start time (USER_HZ, 100 on every Linux port that matters). */
const USER_HZ = 100

/**
 * When the process with this pid started (epoch ms), from Linux's /proc; undefined elsewhere or if it is gone. After a
 * crash a pid can be reused by an unrelated process, which then looks like the lock's owner to `kill(pid, 0)`.
 */
async function startedAt (pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
    const btime = Number(/^btime (\d+)$/m.exec(await readFile('/proc/stat', 'utf8'))?.[1])
    if (!Number.isFinite(ticks) || !Number.isFinite(btime)) return undefined
    return btime * 1000 + ticks * 1000 / USER_HZ
  } catch {
    return undefined
  }
}

/** The lock's owner still runs: its pid is alive, and (where /proc tells) that process is older than the lock file. */
async function ownerRuns (pid: number, path: string): Promise<boolean> {
  if (!isRunning(pid)) return false
  const started = await startedAt(pid)
  if (started == null) return true
  const written = (await stat(path).catch(() => undefined))?.mtimeMs
  // btime is whole seconds, so allow a little slack before calling the process younger than its lock.
  return written == null || started <= written + 2000
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
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && await ownerRuns(pid, path)) {
      throw new DataDirLockedError(`data dir ${dataDir} is in use by another mesh daemon (pid ${pid}); stop it or choose another --data-dir`)
    }
    // Stale: its owner is gone (or its pid now belongs to a younger process). Remove it and race for it again.
    await rm(path, { force: true })
  }
  throw new DataDirLockedError(`could not lock data dir ${dataDir}`)
}
