import { randomBytes } from 'node:crypto'
import { link, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/**
 * fsync of a directory. On Linux a file's creation, rename or removal is on disk only once its directory is: without
 * this a power loss can take back a file whose write was answered, or bring back one whose removal was.
 */
export async function syncDir (dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

export interface DurableWriteOptions {
  /** File mode of a new file. @default 0o666 (less the umask) */
  mode?: number
  /** Fail with EEXIST, leaving the file as it is, when it already exists. @default false (replace it) */
  exclusive?: boolean
}

/** Suffix of the temp files durable writes use; `removeStaleTemps` clears the ones a crash left. */
const TEMP_SUFFIX = '.durable-tmp'

/**
 * Writes `data` to `file` so that a crash or power loss leaves either the old file or the whole new one, never a torn
 * or empty one, and the new one survives once this resolves: temp file, fsync, then rename (or, for `exclusive`, a
 * hard link, which fails if the name is taken) and an fsync of the directory.
 */
export async function writeFileDurable (file: string, data: string | Uint8Array, options: DurableWriteOptions = {}): Promise<void> {
  const dir = dirname(file)
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`)
  const fh = await open(tmp, 'wx', options.mode)
  try {
    try {
      await fh.writeFile(data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    if (options.exclusive === true) {
      try {
        await link(tmp, file)
      } catch (err) {
        // A file system without hard links (vfat, some network mounts): create the name itself, exclusively. A crash
        // part way can then leave it torn, as the plain exclusive write this replaces could.
        if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err
        const out = await open(file, 'wx', options.mode)
        try {
          await out.writeFile(data)
          await out.sync()
        } catch (err) {
          await out.close()
          await rm(file, { force: true }) // not left half written, to be read at the next start
          throw err
        }
        await out.close()
      }
      await unlink(tmp)
    } else {
      await rename(tmp, file)
    }
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  await syncDir(dir)
}

/** Removes `file` and makes the removal durable; no error if it is not there. */
export async function removeDurable (file: string): Promise<void> {
  await rm(file, { force: true })
  await syncDir(dirname(file))
}

export interface StaleTempOptions {
  /** Only the temp files of the file of this name. @default every durable write's */
  only?: string
  /** Only temp files last modified at least this long ago (ms): where another process may be writing. @default 0 */
  minAgeMs?: number
  /** Temp files of an older naming (writes made before durable ones) to remove in the same pass. @default none */
  legacy?: (name: string) => boolean
}

/**
 * Deletes the temp files that a crash left behind from durable writes into `dir`. Call it before the writers start,
 * or with `minAgeMs` where a writer in another process (a CLI command) may be part way through.
 */
export async function removeStaleTemps (dir: string, options: StaleTempOptions = {}): Promise<number> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw err
  }
  const { only, minAgeMs = 0, legacy } = options
  let removed = 0
  for (const n of names) {
    const current = n.endsWith(TEMP_SUFFIX) && (only == null || n.startsWith(`.${only}.`))
    if (!current && legacy?.(n) !== true) continue
    if (minAgeMs > 0) {
      const s = await stat(join(dir, n)).catch(() => undefined)
      if (s == null || Date.now() - s.mtimeMs < minAgeMs) continue
    }
    await rm(join(dir, n), { force: true })
    removed++
  }
  return removed
}
