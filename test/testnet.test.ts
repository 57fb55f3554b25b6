import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import anyTest, { type TestFn } from 'ava'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { MeshClient } from '../cli/client.js'
import { mesh, meshBin, waitFor } from './util.js'
import { sweepStalePorts } from '../testnet/index.js'

interface Ctx { dir: string, stderr: () => string, proc: ChildProcess, exited: Promise<number | null>, nodes: Array<{ index: number, peerId: string, pid: number, api: string, addrs: string[], dataDir: string }> }
const test = anyTest as TestFn<Ctx>
const client = (t: { context: Ctx }, i: number): MeshClient => new MeshClient({ api: t.context.nodes[i].api })

// The real `mesh testnet` command, as a user runs it; the tests read its manifest.
test.before(async t => {
  const dir = await mkdtemp(join(tmpdir(), 'meshos-testnet-cli-'))
  // In a process group of its own, as a shell runs a foreground job, so that a test can signal the group as Ctrl-C does.
  const proc = spawn(process.execPath, [meshBin, 'testnet', '--nodes', '5', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const exited = new Promise<number | null>(resolve => proc.once('exit', (c) => { resolve(c) }))
  let stderr = ''
  proc.stderr!.on('data', (c) => { stderr += c })
  proc.stdout!.resume()
  Object.assign(t.context, { dir, proc, exited, stderr: () => stderr })
  const manifest = await waitFor('testnet.json', async () => JSON.parse(await readFile(join(dir, 'testnet.json'), 'utf8')), 90_000, 200)
  t.context.nodes = manifest.nodes
})

test.after.always(async t => {
  const { proc, exited, dir, nodes } = t.context
  if (proc != null && proc.exitCode == null) {
    proc.kill('SIGINT')
    await exited
  }
  // If the command died without cleaning up, take its nodes down here.
  for (const n of nodes ?? []) { try { process.kill(n.pid, 'SIGKILL') } catch {} }
  if (dir != null) await rm(dir, { recursive: true, force: true })
})

test.serial('testnet.json lists 5 nodes with distinct peer ids', async t => {
  const manifest = JSON.parse(await readFile(join(t.context.dir, 'testnet.json'), 'utf8'))
  t.is(manifest.nodes.length, 5)
  t.is(new Set(manifest.nodes.map((n: { peerId: string }) => n.peerId)).size, 5)
  for (const [i, n] of manifest.nodes.entries()) {
    t.is(n.index, i)
    for (const key of ['peerId', 'pid', 'api', 'addrs', 'dataDir']) t.truthy(n[key], `${key} of node ${i}`)
  }
})

test.serial('every node\'s `mesh status --json` shows at least one connection', async t => {
  for (const n of t.context.nodes) {
    const r = await mesh(['status', '--api', n.api, '--json'])
    t.is(r.code, 0, r.stderr)
    const s = JSON.parse(r.stdout)
    t.is(s.peerId, n.peerId)
    t.true(s.connections >= 1, `node ${n.index} has ${s.connections} connections`)
    for (const key of ['addrs', 'version', 'uptimeMs']) t.true(key in s)
  }
})

test.serial('a message published on node 0 reaches a subscriber on each of nodes 1-4', async t => {
  const nodes = t.context.nodes
  const topic = 'test-topic'
  const aborter = new AbortController()
  t.teardown(() => { aborter.abort() })
  const received = new Map<number, { from: string, data: string, topic: string, receivedAt: string }>()
  const subscriptions = [1, 2, 3, 4].map(async i => {
    for await (const m of client(t, i).subscribe(topic, aborter.signal)) {
      if ('subscribed' in m || 'dropped' in m) continue
      if (m.data === 'hello mesh') { received.set(i, m); return }
    }
  })
  // gossipsub learns subscriptions through its heartbeat: wait until node 0 knows every subscriber, then publish once.
  await waitFor('node 0 to see 4 subscribers', async () => (await client(t, 0).json('GET', `/v1/pubsub/${topic}/peers`)).peers.length === 4, 30_000)
  const r = await mesh(['pubsub', 'publish', topic, 'hello mesh', '--api', nodes[0].api, '--json'])
  t.is(r.code, 0, r.stderr)
  await waitFor('every subscriber to receive the message', () => received.size === 4, 30_000)
  for (const [, m] of received) {
    t.is(m.from, nodes[0].peerId)
    t.is(m.topic, topic)
    t.false(Number.isNaN(Date.parse(m.receivedAt)))
  }
  aborter.abort()
  await Promise.allSettled(subscriptions)
  // The mesh's own topics are not the API's to publish on: a withdrawal notice from this node would be believed.
  const reserved = await mesh(['pubsub', 'publish', '/meshos/dht/notices/1', '{"v":1}', '--api', nodes[0].api, '--json'])
  t.is(reserved.code, 77, reserved.stdout)
  t.is(JSON.parse(reserved.stdout).error.code, 'FORBIDDEN')
})

test.serial('mesh pubsub subscribe prints messages as JSON lines', async t => {
  const nodes = t.context.nodes
  const child = spawn(process.execPath, [meshBin, 'pubsub', 'subscribe', 'cli-topic', '--api', nodes[2].api])
  t.teardown(() => child.kill('SIGKILL'))
  let out = ''
  child.stdout.on('data', (c) => { out += c })
  await waitFor('node 0 to see the CLI subscriber', async () => (await client(t, 0).json('GET', '/v1/pubsub/cli-topic/peers')).peers.length === 1, 30_000)
  await client(t, 0).publish('cli-topic', 'from the cli')
  await waitFor('the line', () => out.includes('\n'))
  const line = JSON.parse(out.split('\n')[0])
  t.like(line, { topic: 'cli-topic', from: nodes[0].peerId, data: 'from the cli' })
  child.kill('SIGINT')
})

test.serial('an API reader of the DHT\'s notice topic leaving does not end the node\'s own subscription to it', async t => {
  const notices = encodeURIComponent('/meshos/dht/notices/1')
  const reader = t.context.nodes[3]
  const peersOf = async (topic: string): Promise<string[]> => (await client(t, 0).json('GET', `/v1/pubsub/${topic}/peers`)).peers
  await waitFor('node 0 to see node 3 on the notice topic', async () => (await peersOf(notices)).includes(reader.peerId), 30_000)
  for (const topic of [notices, 'marker-topic']) {
    const aborter = new AbortController()
    for await (const m of client(t, 3).subscribe(decodeURIComponent(topic), aborter.signal)) if ('subscribed' in m) break
    aborter.abort()
  }
  // Node 3's leaving the marker topic reaches node 0 after anything it did on the notice topic before.
  await waitFor('node 0 to see node 3 leave the marker topic', async () => !(await peersOf('marker-topic')).includes(reader.peerId), 30_000)
  t.true((await peersOf(notices)).includes(reader.peerId))
})

test.serial('a pub/sub subscriber that does not read has messages dropped for it, counted, and is told when it reads', async t => {
  const { connect } = await import('node:net')
  const api = new URL(t.context.nodes[1].api)
  const socket = connect(Number(api.port), api.hostname)
  t.teardown(() => { socket.destroy() })
  let head = ''
  socket.setEncoding('utf8')
  const onData = (c: string): void => { head += c }
  socket.on('data', onData)
  socket.write(`GET /v1/pubsub/slow-topic HTTP/1.1\r\nHost: ${api.host}\r\n\r\n`)
  await waitFor('the subscription', () => head.includes('event: subscribed'), 30_000)
  await waitFor('node 0 to see the subscriber', async () => (await client(t, 0).json('GET', '/v1/pubsub/slow-topic/peers')).peers.length === 1, 30_000)
  // It stops reading; 16 MiB are published to it, far past what the socket and the 1 MiB bound hold.
  socket.off('data', onData)
  socket.pause()
  const chunk = 'x'.repeat(60 * 1024)
  const dropped = async (): Promise<number> => {
    const text = await (await fetch(`${t.context.nodes[1].api}/metrics`)).text()
    return Number(/^meshos_pubsub_dropped_total (\d+)/m.exec(text)?.[1] ?? 0)
  }
  for (let i = 0; i < 280; i++) await client(t, 0).publish('slow-topic', chunk)
  await waitFor('messages dropped for the subscriber', async () => await dropped() > 0, 30_000)
  // Reading again, it hears how many it missed once the next message comes.
  let rest = ''
  socket.on('data', (c: string) => { rest += c })
  socket.resume()
  await waitFor('the backlog to drain', async () => { await client(t, 0).publish('slow-topic', 'after'); return rest.includes('event: dropped') }, 60_000, 500)
  t.regex(rest, /event: dropped\ndata: \{"count":\d+\}/)
})

test.serial('a node that dies unexpectedly is reported on stderr and not restarted', async t => {
  const victim = t.context.nodes[4]
  process.kill(victim.pid, 'SIGKILL')
  await waitFor('the report', () => t.context.stderr().includes('node 4'), 30_000)
  t.regex(t.context.stderr(), /testnet: node 4 \(pid \d+\) exited unexpectedly \(SIGKILL\)/)
  t.is(t.context.proc.exitCode, null, 'the testnet keeps running')
})

test.serial('a node that leaves by `mesh leave` is reported as stopped, not as a failure', async t => {
  const leaver = t.context.nodes[3]
  const r = await mesh(['leave', '--api', leaver.api, '--json'])
  t.is(r.code, 0, r.stderr)
  await waitFor('the report', () => t.context.stderr().includes('node 3 '), 30_000)
  t.regex(t.context.stderr(), /testnet: node 3 \(pid \d+\) stopped \(code 0\)/)
  t.notRegex(t.context.stderr(), /node 3 \(pid \d+\) exited unexpectedly/)
})

test.serial('Ctrl-C (SIGINT to the foreground process group) stops every testnet node gracefully and the command exits 0', async t => {
  const { proc, exited, nodes } = t.context
  // The earlier tests killed some nodes; those that still run are the ones to stop now.
  const running = nodes.filter(n => { try { process.kill(n.pid, 0); return true } catch { return false } })
  t.true(running.length >= 3)
  process.kill(-proc.pid!, 'SIGINT')
  t.is(await exited, 0)
  for (const n of nodes) t.throws(() => process.kill(n.pid, 0), undefined, `node ${n.index} (pid ${n.pid}) is gone`)
  for (const n of running) {
    const log = await readFile(join(n.dataDir, 'mesh.log'), 'utf8')
    // Each node had one signal (the testnet's), not the terminal's as well: a second one forces exit, skipping the leave.
    t.false(log.includes('forcing exit'), `node ${n.index} stopped gracefully`)
    t.true(log.includes('"msg":"stopped"'), `node ${n.index} logged its stop`)
  }
})

test('nodes stop by themselves when the testnet process is killed before it can stop them', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'meshos-testnet-orphan-'))
  const proc = spawn(process.execPath, [meshBin, 'testnet', '--nodes', '2', '--dir', dir], { stdio: ['ignore', 'ignore', 'ignore'] })
  const exited = new Promise(resolve => proc.once('exit', resolve))
  let pids: number[] = []
  t.teardown(async () => {
    if (proc.exitCode == null && proc.signalCode == null) { proc.kill('SIGKILL'); await exited }
    for (const pid of pids) { try { process.kill(pid, 'SIGKILL') } catch {} }
    await rm(dir, { recursive: true, force: true })
    // The killed process's port reservations (its exit hook never ran).
    await sweepStalePorts()
  })
  const manifest = await waitFor('testnet.json', async () => JSON.parse(await readFile(join(dir, 'testnet.json'), 'utf8')), 90_000, 200)
  pids = manifest.nodes.map((n: { pid: number }) => n.pid)
  // Running, not a zombie that nobody has reaped yet (what adopts orphans differs from machine to machine).
  const running = (pid: number): boolean => {
    try {
      return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z'
    } catch {
      return false
    }
  }
  t.true(pids.every(running))
  // As a test runner's timeout kills its worker: no chance to stop the nodes.
  proc.kill('SIGKILL')
  await exited
  await waitFor('the orphaned nodes to stop', () => !pids.some(running), 60_000, 200)
  t.deepEqual(pids.filter(running), [], 'no node outlives the testnet process')
})
