import { chmod, mkdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { removeStaleTemps, writeFileDurable } from '../lib/durable.js'
import { InvalidConfigError } from '../lib/errors.js'
import { minute } from '../lib/units.js'
import type { PrivateKey } from '@libp2p/interface'
import type { Logger } from '../lib/log.js'

export const identityFile = 'identity.key'

export interface Identity {
  privateKey: PrivateKey
  /** True when no key was stored: this start made it. */
  isNew: boolean
  /**
   * Stores a new key (a no-op for a loaded one). The daemon calls it once the node has started, so that a start that
   * fails (a port in use, an API refused for want of a token) leaves no identity behind: the next start is then a first
   * start as well, and its storage joins as a new member instead of waiting to rebuild a store it never had.
   */
  persist: () => Promise<void>
}

/**
 * Loads the node's Ed25519 key from the data dir, or makes one on first start (stored by `persist`). The peer id
 * derives from it, so keeping the file keeps the peer id across restarts; it is written owner-only because it is the
 * node's secret. The caller holds the data dir's lock.
 */
export async function openIdentity (dataDir: string, log?: Logger): Promise<Identity> {
  const path = join(dataDir, identityFile)
  // A crash between writing the key's temp file and linking it leaves a copy of the key behind.
  await removeStaleTemps(dataDir, { only: identityFile, minAgeMs: minute })
  let bytes: Buffer | undefined
  try {
    bytes = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (bytes != null) {
    const mode = (await stat(path)).mode & 0o777
    if ((mode & 0o077) !== 0) {
      log?.warn({ path, mode: mode.toString(8) }, 'identity key was readable by others; restricting it to 0600')
      await chmod(path, 0o600)
    }
    try {
      return { privateKey: privateKeyFromProtobuf(bytes), isNew: false, persist: async () => {} }
    } catch (err) {
      throw new InvalidConfigError(`identity key ${path} is corrupt: ${(err as Error).message}`)
    }
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const key = await generateKeyPair('Ed25519')
  let stored = false
  return {
    privateKey: key,
    isNew: true,
    persist: async () => {
      if (stored) return
      // Exclusive: the running node uses this key, so one found in its place (which the data dir's lock should make
      // impossible) must not be overwritten, nor silently differ from it. Durable, since an empty or torn key file
      // found after a power loss stops the node from starting.
      try {
        await writeFileDurable(path, privateKeyToProtobuf(key), { mode: 0o600, exclusive: true })
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new InvalidConfigError(`identity key ${path} appeared while this node was starting; another process is using the data dir`)
        throw err
      }
      stored = true
      log?.info({ path }, 'created a new node identity')
    }
  }
}
