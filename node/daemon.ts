import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createLogger, type Logger } from '../lib/log.js'
import { InvalidConfigError, toMeshError } from '../lib/errors.js'
import { parseHostPort } from './config.js'
import { TokenStore, isLoopback } from './tokens.js'
import { openIdentity } from './identity.js'
import { lockDataDir } from './lock.js'
import { MeshNode } from './node.js'
import { GcHeadroom, YoungBufferCollector, tuneGc } from './gc-tuning.js'
import * as C from './constants.js'
import type { MeshConfig } from './config.js'

/** Written into the data dir once the node serves, so that scripts and the testnet can find its API and addresses. */
export const nodeInfoFile = 'node.json'

export interface NodeInfo {
  peerId: string
  pid: number
  api: string
  addrs: string[]
}

/**
 * Runs `mesh start`: lock the data dir, load the identity, start the node, and stop it gracefully on the first
 * SIGINT/SIGTERM. A second signal forces exit, for an operator whose graceful stop is stuck.
 */
export async function runDaemon (config: MeshConfig): Promise<void> {
  tuneGc()
  const gc = new GcHeadroom()
  gc.start()
  const young = new YoungBufferCollector()
  young.start()
  const root = createLogger({ level: config.logLevel, format: config.logFormat })
  const log = root.child({ component: 'daemon' })
  let release: (() => Promise<void>) | undefined
  let node: MeshNode | undefined
  let stopping = false
  let signals = 0

  /** A graceful stop, once, whatever asks for it: a signal, `mesh leave`, the parent's exit. */
  const stop = async (why: string): Promise<void> => {
    if (stopping) return
    stopping = true
    log.info({ signal: why }, 'stopping gracefully (send the signal again to force exit)')
    const force = setTimeout(() => {
      log.error('graceful stop timed out; forcing exit')
      process.exit(1)
    }, C.gracefulStopTimeout)
    force.unref()
    try {
      await node?.stop()
      await rm(join(config.dataDir, nodeInfoFile), { force: true })
    } catch (err) {
      log.error({ err }, 'error during stop')
    } finally {
      await release?.()
      gc.stop()
      young.stop()
      log.info('stopped')
      await flush(root)
      process.exit(0)
    }
  }
  // Only a second signal forces the exit. A stop that began otherwise (`mesh leave`, whose handoff may take seconds)
  // is not cut short by the first signal that follows it, which is how an operator's `mesh leave` then
  // `systemctl stop` arrives.
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++
    if (signals > 1) {
      log.warn({ signal }, 'second signal: forcing exit')
      root.flush()
      process.exit(130)
    }
    if (stopping) log.info({ signal }, 'already stopping gracefully (send the signal again to force exit)')
    void stop(signal)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('unhandledRejection', (err) => { log.warn({ err }, 'unhandled rejection') })
  // A testnet's nodes stop when the process that started them is gone, even if it was killed before it could stop
  // them (a test runner's timeout): otherwise they ran on, holding ports and loading the machine.
  const parent = Number(process.env.MESH_PARENT_PID)
  if (Number.isInteger(parent) && parent > 1) {
    const watch = setInterval(() => {
      if (process.ppid === parent) return
      clearInterval(watch)
      // Already stopping (the parent's SIGTERM): a second stop would force an exit past the graceful one.
      if (stopping) return
      log.warn({ parent }, 'the process that started this node is gone; stopping')
      void stop('parent exited')
    }, C.parentCheckInterval)
    watch.unref()
  }

  try {
    release = (await lockDataDir(config.dataDir)).release
    const identity = await openIdentity(config.dataDir, log)
    const tokens = await apiTokens(config)
    node = new MeshNode({ config, privateKey: identity.privateKey, newIdentity: identity.isNew, logger: root, tokens })
    node.onLeave = () => { void stop('leave request') }
    await node.start()
    await identity.persist()
    // A signal during the start: the stop it began is under way (it waited for the start), and removes node.json.
    if (stopping) return
    const info: NodeInfo = { peerId: node.status().peerId, pid: process.pid, api: node.api.url, addrs: node.addrs() }
    await writeFile(join(config.dataDir, nodeInfoFile), JSON.stringify(info, null, 2) + '\n')
  } catch (err) {
    const e = toMeshError(err)
    log.fatal({ code: e.code, err: e.message }, 'failed to start')
    process.stderr.write(`mesh: ${e.message} (${e.code})\n`)
    await node?.stop().catch(() => {})
    await release?.()
    await flush(root)
    process.exit(e.exitCode)
  }
}

/**
 * An API on loopback may run open; one on any other address refuses to start without a token, since anyone who can
 * reach it could otherwise write data and run commands.
 */
async function apiTokens (config: MeshConfig): Promise<TokenStore | undefined> {
  const api = parseHostPort(config.api)
  const store = new TokenStore(config.dataDir, config.apiToken)
  await store.load()
  if (api != null && isLoopback(api.host)) return config.apiToken != null ? store : undefined
  if (store.size === 0) {
    throw new InvalidConfigError(`the API on ${config.api} is not on loopback and no token exists; create one with \`mesh token create --data-dir ${config.dataDir}\` or pass --api-token`)
  }
  return store
}

async function flush (log: Logger): Promise<void> {
  await new Promise<void>(resolve => { log.flush(() => { resolve() }) })
}
