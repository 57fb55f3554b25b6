import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import anyTest, { type TestFn } from 'ava'
import { createTestnet, type Testnet } from '../testnet/index.js'
import { mesh, waitFor } from './util.js'

const test = anyTest as TestFn<{ net: Testnet, dir: string }>

test.before(async t => {
  // The testnet owns its temp dir and removes it in stop().
  t.context.net = await createTestnet(5)
  t.context.dir = t.context.net.dir
})

test.after.always(async t => {
  await t.context.net?.stop()
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
  for (const n of t.context.net.nodes) {
    const r = await mesh(['status', '--api', n.api, '--json'])
    t.is(r.code, 0, r.stderr)
    const s = JSON.parse(r.stdout)
    t.is(s.peerId, n.peerId)
    t.true(s.connections >= 1, `node ${n.index} has ${s.connections} connections`)
    for (const key of ['addrs', 'version', 'uptimeMs']) t.true(key in s)
  }
})

test.serial('a message published on node 0 reaches a subscriber on each of nodes 1-4', async t => {
  const net = t.context.net
  const topic = 'test-topic'
  const aborter = new AbortController()
  t.teardown(() => { aborter.abort() })
  const received = new Map<number, { from: string, data: string, topic: string, receivedAt: string }>()
  const subscriptions = [1, 2, 3, 4].map(async i => {
    for await (const m of net.client(i).subscribe(topic, aborter.signal)) {
      if ('subscribed' in m) continue
      if (m.data === 'hello mesh') { received.set(i, m); return }
    }
  })
  // gossipsub learns subscriptions through its heartbeat: wait until node 0 knows every subscriber, then publish once.
  await waitFor('node 0 to see 4 subscribers', async () => (await net.client(0).json('GET', `/v1/pubsub/${topic}/peers`)).peers.length === 4, 30_000)
  const r = await mesh(['pubsub', 'publish', topic, 'hello mesh', '--api', net.nodes[0].api, '--json'])
  t.is(r.code, 0, r.stderr)
  await waitFor('every subscriber to receive the message', () => received.size === 4, 30_000)
  for (const [, m] of received) {
    t.is(m.from, net.nodes[0].peerId)
    t.is(m.topic, topic)
    t.false(Number.isNaN(Date.parse(m.receivedAt)))
  }
  aborter.abort()
  await Promise.allSettled(subscriptions)
})

test.serial('mesh pubsub subscribe prints messages as JSON lines', async t => {
  const net = t.context.net
  const { spawn } = await import('node:child_process')
  const { meshBin } = await import('./util.js')
  const child = spawn(process.execPath, [meshBin, 'pubsub', 'subscribe', 'cli-topic', '--api', net.nodes[2].api])
  t.teardown(() => child.kill('SIGKILL'))
  let out = ''
  child.stdout.on('data', (c) => { out += c })
  await waitFor('node 0 to see the CLI subscriber', async () => (await net.client(0).json('GET', '/v1/pubsub/cli-topic/peers')).peers.length === 1, 30_000)
  await net.client(0).publish('cli-topic', 'from the cli')
  await waitFor('the line', () => out.includes('\n'))
  const line = JSON.parse(out.split('\n')[0])
  t.like(line, { topic: 'cli-topic', from: net.nodes[0].peerId, data: 'from the cli' })
  child.kill('SIGINT')
})
