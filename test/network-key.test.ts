import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import { MeshClient } from '../cli/client.js'
import { createTestnet } from '../testnet/index.js'
import { mesh, startDaemon, tempDir, waitFor } from './util.js'

const local = ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0']

test('mesh keygen writes an owner-only key and never overwrites one', async t => {
  const dir = await tempDir(t)
  const file = join(dir, 'net.key')
  const r = await mesh(['keygen', '--network-key', file])
  t.is(r.code, 0, r.stderr)
  t.regex(await readFile(file, 'utf8'), /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}$/)
  const again = await mesh(['keygen', '--network-key', file])
  t.is(again.code, 75)
  t.regex(again.stderr, /already exists/)
})

test('a node with the wrong network key, or none, never joins; its connections are refused and logged', async t => {
  const net = await createTestnet(3, { networkKey: true, logLevel: 'info' })
  t.teardown(async () => { await net.stop() })
  const strangers = []
  for (const key of ['other', 'none'] as const) {
    const dir = await tempDir(t)
    const args = ['--data-dir', dir, ...local, '--bootstrap', net.bootstrapAddr]
    if (key === 'other') {
      const keyFile = join(dir, 'other.key')
      t.is((await mesh(['keygen', '--network-key', keyFile])).code, 0)
      args.push('--network-key', keyFile)
    }
    const d = startDaemon(t, args)
    strangers.push({ key, daemon: d, info: await d.info() })
  }
  // Node 0 must have seen and refused each stranger's attempts, several times over (they retry with backoff): each is
  // counted, and logged (at most a line per 10 s, so that a scan of the port cannot flood the log).
  const log = async (): Promise<string> => await readFile(join(net.nodes[0].dataDir, 'mesh.log'), 'utf8')
  const refusals = async (): Promise<number> => {
    const text = await (await fetch(`${net.nodes[0].api}/metrics`)).text()
    return Number(/^meshos_connections_refused_total(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? 0)
  }
  await waitFor('node 0 to count refusals', async () => await refusals() >= 4, 60_000)
  t.regex(await log(), /connection refused: (the peer does not hold this mesh's network key|network key exchange failed)/)
  for (const s of strangers) {
    await waitFor(`the ${s.key}-key stranger to retry its bootstrap`, () => (s.daemon.output().match(/bootstrap peer unreachable/g) ?? []).length >= 2, 60_000)
  }
  for (let i = 0; i < 3; i++) {
    const members = (await net.client(i).members()).members.map(m => m.peerId)
    for (const s of strangers) t.false(members.includes(s.info.peerId), `node ${i} does not list the ${s.key}-key stranger`)
    t.is(members.length, 3)
  }
  for (const s of strangers) {
    const theirs = (await new MeshClient({ api: s.info.api }).members()).members
    t.is(theirs.length, 1, `the ${s.key}-key stranger learned no members`)
    t.is((await new MeshClient({ api: s.info.api }).status()).connections, 0)
  }
})

test('key rotation by rolling restart: the mesh ends whole on the new key', async t => {
  const net = await createTestnet(3, { networkKey: true, logLevel: 'info' })
  t.teardown(async () => { await net.stop() })
  const newKey = join(net.dir, 'network-2.key')
  t.is((await mesh(['keygen', '--network-key', newKey])).code, 0)
  net.networkKeyFile = newKey
  // The procedure in docs/operations.md: pnet holds one key, so a rotation is a rolling restart onto the new key.
  // Until the seed (node 0, restarted last) has the new key, the restarted nodes are cut off; they rejoin by
  // retrying their bootstrap addresses, with no operator action.
  for (const i of [1, 2, 0]) await net.restart(i)
  await net.waitForMembers({ timeout: 90_000 })
  for (let i = 0; i < 3; i++) {
    const alive = (await net.client(i).members()).members.filter(m => m.state === 'alive')
    t.is(alive.length, 3, `node ${i} sees all three alive on the new key`)
  }
})
