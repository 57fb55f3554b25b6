#!/usr/bin/env -S node --max-semi-space-size=16 --single-threaded-gc
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { Command, CommanderError, Option } from 'commander'
import { MeshError, toMeshError } from '../lib/errors.js'
import { configFromEnv, configFromFile, durationMs, resolveConfig, type MeshConfig } from '../node/config.js'
import { version } from '../node/version.js'
import { formatBytes, formatDuration, printTable } from './format.js'
import { action, client, clientCommand, collect, fail, localPathError, print, setJsonErrors, type ClientOpts } from './common.js'
import { registerResourceCommands } from './commands/resource.js'
import { registerKvCommands } from './commands/kv.js'
import { registerFileCommands } from './commands/files.js'
import { registerTaskCommands } from './commands/tasks.js'

const program = new Command()
program
  .name('mesh')
  .description('meshos: a peer-to-peer node mesh that makes a group of machines act as one small distributed OS')
  .version(version, '-V, --version')
  .showSuggestionAfterError(true)
  .exitOverride()
  .configureOutput({
    writeErr: (s) => { process.stderr.write(s) },
    outputError: (s, write) => { write(`mesh: ${s.replace(/^error: /, '').trim()}\n`) }
  })

program.command('start')
  .description('run the mesh daemon on this machine')
  .option('--config <file>', 'JSON config file (flags win over it, and MESH_* variables over the file)')
  .option('--data-dir <dir>', 'data directory (default ~/.meshos)')
  .option('--listen <multiaddr>', 'libp2p listen address, repeatable (default /ip4/0.0.0.0/tcp/7946)', collect)
  .option('--announce <multiaddr>', 'address to announce instead, repeatable (NAT, port mapping)', collect)
  .option('--bootstrap <multiaddr>', 'a peer to join through, with /p2p/<peerId>; repeatable', collect)
  .option('--api <host:port>', 'where the HTTP API listens (default 127.0.0.1:7947)')
  .option('--api-token <token>', 'require this bearer token on the API (needed off loopback)')
  .option('--log-level <level>', 'fatal | error | warn | info | debug | trace | silent')
  .option('--log-format <format>', 'json | pretty')
  .option('--network-key <file>', 'pre-shared network key: only peers holding it can connect')
  .option('--allow-exec', 'allow this node to run task commands')
  .option('--durability <mode>', 'strict (fsync before acknowledging, the default) | relaxed (see docs/operations.md)')
  .option('--replication-factor <n>', 'copies of each key and file chunk; the same on every node (default 3)')
  .option('--kv-max-value-bytes <n>', 'largest KV value taken, 1024 to 4194304; the same on every node (default 1048576)')
  .option('--task-slots <n>', 'tasks this node runs at once (default: the number of cores)')
  .option('--task-tag <tag>', 'a resource tag this node offers to tasks, e.g. gpu; repeatable', collect)
  .option('--task-retention <duration>', 'how long ended tasks stay listed, e.g. 12h or 7d; a bare number is seconds (default 24h)')
  .addOption(new Option('--clock-skew-ms <ms>', 'test only: offset this node\'s wall clock').hideHelp())
  .action(action(async (opts: Record<string, unknown>) => {
    const { runDaemon } = await import('../node/daemon.js')
    const file = typeof opts.config === 'string' ? await configFromFile(opts.config) : {}
    const env = configFromEnv(process.env)
    // MESH_API is the clients' URL of a node; the daemon takes the host:port from it when MESH_API_LISTEN is not set.
    if (env.api == null && process.env.MESH_API != null) {
      try { env.api = new URL(process.env.MESH_API).host } catch { env.api = process.env.MESH_API }
    }
    const flags: Partial<Record<keyof MeshConfig, unknown>> = {
      dataDir: opts.dataDir,
      listen: opts.listen,
      announce: opts.announce,
      bootstrap: opts.bootstrap,
      api: opts.api,
      apiToken: opts.apiToken,
      logLevel: opts.logLevel,
      logFormat: opts.logFormat,
      networkKey: opts.networkKey,
      allowExec: opts.allowExec,
      durability: opts.durability,
      replicationFactor: opts.replicationFactor == null ? undefined : Number(opts.replicationFactor),
      kvMaxValueBytes: opts.kvMaxValueBytes == null ? undefined : Number(opts.kvMaxValueBytes),
      taskSlots: opts.taskSlots == null ? undefined : Number(opts.taskSlots),
      taskTags: opts.taskTag,
      taskRetentionMs: durationMs(opts.taskRetention),
      clockSkewMs: opts.clockSkewMs == null ? undefined : Number(opts.clockSkewMs)
    }
    // The daemon's own file errors (its data dir, its stores) are its faults or its disk's, not bad input to a command:
    // made MeshErrors here, they keep their codes rather than become BAD_REQUEST as a client command's paths do.
    await runDaemon(resolveConfig(file, env, flags)).catch(err => { throw toMeshError(err) })
  }))

clientCommand(program.command('status'))
  .description('this node, then one line per member: state, address, data load, ring share, tasks, uptime')
  .action(action(async (opts: ClientOpts) => {
    const c = client(opts)
    const s = await c.status()
    // The per-member view is best effort: a node that cannot reach its peers still reports itself.
    const cluster = await c.cluster().catch(() => undefined)
    print(opts, cluster == null ? s : { ...s, members: cluster.members }, () => {
      console.log(`peer id      ${s.peerId}`)
      console.log(`version      ${s.version}`)
      console.log(`uptime       ${formatDuration(s.uptimeMs)}`)
      console.log(`connections  ${s.connections}`)
      console.log('addresses')
      for (const a of s.addrs) console.log(`  ${a}`)
      if (cluster == null) return
      console.log('')
      const st = (m: { stats?: Record<string, number> }, k: string): number | undefined => m.stats?.[k]
      printTable(['state', 'address', 'load', 'ring share', 'tasks run/queued', 'uptime', 'peer id'], cluster.members.map(m => {
        const tr = st(m, 'tasksRunning')
        const tq = st(m, 'tasksQueued')
        const share = st(m, 'ringShare')
        // A member's data load: its KV store and its file blocks.
        const kvBytes = st(m, 'dataBytes')
        const fileBytes = st(m, 'fileBytes')
        const bytes = kvBytes == null && fileBytes == null ? undefined : (kvBytes ?? 0) + (fileBytes ?? 0)
        return [
          ({ alive: 'UP', suspect: 'SUSPECT', dead: 'DOWN', left: 'LEFT' } as Record<string, string>)[m.state] ?? m.state,
          (m.addrs[0] ?? '-').replace(/\/p2p\/.*$/, ''),
          bytes == null ? '-' : formatBytes(bytes),
          share == null ? '-' : `${(share * 100).toFixed(1)}%`,
          tr == null && tq == null ? '-' : `${tr ?? 0}/${tq ?? 0}`,
          m.uptimeMs == null ? '-' : formatDuration(m.uptimeMs),
          m.peerId + (m.self ? ' (self)' : '')
        ]
      }))
    })
  }))

clientCommand(program.command('members'))
  .description('list the members of the mesh as this node sees them, itself included')
  .action(action(async (opts: ClientOpts) => {
    const r = await client(opts).members()
    print(opts, r, () => {
      const now = Date.now()
      printTable(['peer id', 'address', 'state', 'incarnation', 'tags', 'in state'], r.members.map(m => [
        m.peerId + (m.self === true ? ' (self)' : ''),
        m.addrs[0] ?? '-',
        m.state,
        String(m.incarnation),
        // Empty tags are the tasks subsystem's bookkeeping on a node offering no task tags; --json shows them all.
        Object.entries(m.meta?.tags ?? {}).filter(([, v]) => v !== '').map(([k, v]) => `${k}=${v}`).join(',') || '-',
        formatDuration(now - Date.parse(m.stateSince))
      ]))
    })
  }))

program.command('keygen')
  .description('write a new pre-shared network key; nodes started with --network-key FILE accept only peers that hold it')
  .requiredOption('--network-key <file>', 'where to write the key (must not exist)')
  .option('--json', 'print JSON')
  .action(action(async (opts: { networkKey: string, json?: boolean }) => {
    const { writeNetworkKey } = await import('../node/pnet.js')
    try {
      await writeNetworkKey(opts.networkKey)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new MeshError('CONFLICT', `${opts.networkKey} already exists; a key is never overwritten`)
      throw new MeshError('BAD_REQUEST', `cannot write ${opts.networkKey}: ${(err as Error).message}`)
    }
    print(opts, { networkKey: opts.networkKey }, () => { console.log(`wrote a network key to ${opts.networkKey} (mode 0600); copy it to every node and start them with --network-key`) })
  }))

const token = program.command('token').description('API tokens (needed when the API listens off loopback)')
token.command('create')
  .description('create an API token in a node\'s data dir and print it (it is shown only once)')
  .option('--data-dir <dir>', 'the node\'s data directory', process.env.MESH_DATA_DIR ?? join(homedir(), '.meshos'))
  .option('--read-only', 'a token that can read but not write data, publish or submit tasks')
  .option('--json', 'print JSON')
  .action(action(async (opts: { dataDir: string, readOnly?: boolean, json?: boolean }) => {
    const { createToken } = await import('../node/tokens.js')
    // A token may be made before a node's first start (one that will listen off loopback needs it then), so a new dir is
    // made; but a mistyped --data-dir would go unnoticed, so that case is said.
    const fresh = !existsSync(join(opts.dataDir, 'identity.key'))
    await mkdir(opts.dataDir, { recursive: true, mode: 0o700 })
    const t = await createToken(opts.dataDir, opts.readOnly === true ? 'read' : 'write')
    if (fresh) process.stderr.write(`mesh: no node has started in ${opts.dataDir} yet; the token applies once one does\n`)
    print(opts, t, () => {
      console.log(t.token)
      if (process.stderr.isTTY) process.stderr.write(`${t.access === 'write' ? 'read-write' : 'read-only'} token ${t.id}; clients send it as --token or MESH_TOKEN\n`)
    })
  }))

clientCommand(program.command('leave'))
  .description('leave the mesh gracefully: hand off this node\'s data, tell the others, and stop the daemon')
  .action(action(async (opts: ClientOpts) => {
    const r = await client(opts).json('POST', '/v1/leave')
    print(opts, r, () => { console.log(`${r.peerId as string} is leaving: it hands its data off, announces the leave, and exits`) })
  }))

const pubsub = program.command('pubsub').description('publish and subscribe to mesh-wide topics (gossipsub)')
clientCommand(pubsub.command('publish <topic> <message>'))
  .description('publish a message on a topic')
  .action(action(async (topic: string, message: string, opts: ClientOpts) => {
    const r = await client(opts).publish(topic, message)
    print(opts, r, () => { console.log(`published to ${r.recipients.length} peer(s)`) })
  }))
clientCommand(pubsub.command('subscribe <topic>'))
  .description('print each message on a topic as a JSON line until interrupted')
  .action(action(async (topic: string, opts: ClientOpts) => {
    const aborter = new AbortController()
    process.once('SIGINT', () => { aborter.abort() })
    process.once('SIGTERM', () => { aborter.abort() })
    for await (const m of client(opts).subscribe(topic, aborter.signal)) {
      if ('subscribed' in m) {
        if (process.stderr.isTTY) process.stderr.write(`subscribed to ${topic}; Ctrl-C to stop\n`)
        continue
      }
      if ('dropped' in m) {
        process.stderr.write(`mesh: the node dropped ${m.dropped} message(s) on ${topic} while this subscriber was behind\n`)
        continue
      }
      process.stdout.write(JSON.stringify(m) + '\n')
    }
  }))

program.command('testnet')
  .description('run a local multi-node mesh of separate processes on 127.0.0.1 until interrupted')
  .option('--nodes <n>', 'number of nodes', '5')
  .option('--dir <dir>', 'parent of the nodes\' data dirs (default: a fresh temp dir)')
  .option('--base-port <port>', 'node i listens on port P+2i and serves its API on P+2i+1 (default: free ports)')
  .option('--json', 'print testnet.json instead of a table')
  .action(action(async (opts: { nodes: string, dir?: string, basePort?: string, json?: boolean }) => {
    const n = Number(opts.nodes)
    if (!Number.isInteger(n) || n < 1 || n > 200) throw new MeshError('BAD_REQUEST', '--nodes must be an integer from 1 to 200')
    const basePort = opts.basePort == null ? undefined : Number(opts.basePort)
    if (basePort != null && (!Number.isInteger(basePort) || basePort < 1024 || basePort + 2 * n > 65535)) throw new MeshError('BAD_REQUEST', '--base-port must be at least 1024 and leave room for 2 ports per node below 65536')
    const { createTestnet } = await import('../testnet/index.js')
    if (process.stderr.isTTY) process.stderr.write(`starting ${n} nodes...\n`)
    const net = await createTestnet(n, { dir: opts.dir, basePort })
    print(opts, { nodes: net.nodes }, () => {
      printTable(['index', 'peer id', 'api'], net.nodes.map(x => [String(x.index), x.peerId, x.api]))
      console.log(`\ndata dirs under ${net.dir}; manifest ${net.dir}/testnet.json`)
      // `mesh` is on the PATH only once installed (npm link, the package, the container); from a clone it is npm run mesh.
      console.log(`try:  npm run -s mesh -- status --api ${net.nodes[0].api}\n  or: export MESH_API=${net.nodes[0].api}; npm run -s mesh -- kv put hello world\nCtrl-C stops every node.`)
    })
    await new Promise<void>(resolve => {
      const stop = (): void => { resolve() }
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
    if (process.stderr.isTTY) process.stderr.write('stopping the testnet...\n')
    await net.stop()
    process.exit(0)
  }))

registerResourceCommands(program)
registerKvCommands(program)
registerFileCommands(program)
registerTaskCommands(program)

// Option values are checked while Commander parses, before any action runs: their errors honour --json too. (What
// follows `--` is a task's own command line.)
const ownArgs = process.argv.slice(2)
const wantsJson = (ownArgs.includes('--') ? ownArgs.slice(0, ownArgs.indexOf('--')) : ownArgs).includes('--json')
setJsonErrors(wantsJson)

try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0)
    // Commander has already printed its one-line message on stderr; with --json a script reads the error on stdout,
    // as it does every other one.
    if (wantsJson) process.stdout.write(JSON.stringify(new MeshError('BAD_REQUEST', err.message.replace(/^error: /, '').trim()).toJSON()) + '\n')
    process.exit(64)
  }
  fail(localPathError(err) ?? toMeshError(err))
}
