import { chmod, mkdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { removeStaleTemps, writeFileDurable } from '../lib/durable.js'
import { InvalidConfigError } from '../lib/errors.js'
import { minute } from '../lib/units.js'
import type { PrivateKey } from '@libp2p/interface'
import type { Logger } from '../lib/log.js'

export const identityFile = 'identity.key'

/**
 * Loads the node's Ed25519 key from the data dir, creating it on first start. The peer id derives from it, so keeping
 * the file keeps the peer id across restarts; it is written owner-only because it is the node's secret.
 */
export async function loadOrCreateIdentity (dataDir: string, log?: Logger): Promise<PrivateKey> {
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
      return privateKeyFromProtobuf(bytes)
    } catch (err) {
      throw new InvalidConfigError(`identity key ${path} is corrupt: ${(err as Error).message}`)
    }
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const key = await generateKeyPair('Ed25519')
  // Exclusive, so that two first starts racing on one data dir cannot overwrite each other's key; durable, since an
  // empty or torn key file found after a power loss stops the node from starting.
  try {
    await writeFileDurable(path, privateKeyToProtobuf(key), { mode: 0o600, exclusive: true })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return await loadOrCreateIdentity(dataDir, log)
  }
  log?.info({ path }, 'created a new node identity')
  return key
}
