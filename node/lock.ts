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
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isRunning(pid)) {
      throw new DataDirLockedError(`data dir ${dataDir} is in use by another mesh daemon (pid ${pid}); stop it or choose another --data-dir`)
    }
    // Stale: its owner is gone. Remove it and race for it again.
    await rm(path, { force: true })
  }
  throw new DataDirLockedError(`could not lock data dir ${dataDir}`)
}
