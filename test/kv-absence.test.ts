import test, { type ExecutionContext } from 'ava'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { createTestnet } from '../testnet/index.js'
import { KvClient } from '../cli/kv-client.js'
import { waitFor } from './util.js'

interface Stats { ready: boolean, quarantined: boolean, rebuilding: boolean, joining: boolean, ring: string[], antiEntropy: { purged: number } }

// Real processes: the claim is about a node that crashes, stays down past the ring's grace (45 s in a daemon) and
// comes back with its data dir. Tombstones may go at once (MESH_KV_TOMBSTONE_MIN_AGE_MS=0), so the others purge the
// delete the dead node missed as soon as it is out of their ring.
async function killedPastPurge (t: ExecutionContext, losePeersFile: boolean): Promise<void> {
  t.timeout(4 * 60_000)
  const net = await createTestnet(3, { logLevel: 'warn', env: { MESH_KV_ANTI_ENTROPY_MS: '100', MESH_KV_TOMBSTONE_MIN_AGE_MS: '0' } })
  t.teardown(async () => { await net.stop() })
  const stats = async (i: number): Promise<Stats> => await net.client(i, { timeout: 5000 }).json('GET', '/v1/storage/stats')
  await net.waitForMembers({ timeout: 90_000 })
  await waitFor('every node ready', async () => (await Promise.all([0, 1, 2].map(stats))).every(s => s.ready), 60_000, 250)
  const kv = new KvClient(net.client(0, { timeout: 10_000 }))
  await kv.put('zombie', 'old', { consistency: 'all' })
  await kv.put('kept', 'x', { consistency: 'all' })

  await net.kill(2, 'SIGKILL')
  // As if killed before it first saved its ring members: the daemon's hint that its storage may have been wiped.
  if (losePeersFile) await rm(join(net.nodes[2].dataDir, 'storage', 'peers.json'), { force: true })
  const gone = net.nodes[2].peerId
  await kv.delete('zombie', { consistency: 'quorum' })
  await waitFor('node 2 out of the ring of nodes 0 and 1', async () => (await Promise.all([0, 1].map(stats))).every(s => !s.ring.includes(gone)), 120_000, 500)
  await waitFor('the tombstone purged on nodes 0 and 1', async () => (await Promise.all([0, 1].map(stats))).every(s => s.antiEntropy.purged >= 1), 60_000, 250)

  await net.startNode(2)
  // Back in a ring that let go of it, it joins again before it is read from.
  await waitFor('node 2 back in service', async () => { const s = await stats(2); return s.ready && !s.quarantined && !s.rebuilding && !s.joining }, 120_000, 250)
  for (const i of [0, 1, 2]) {
    const err = await t.throwsAsync(new KvClient(net.client(i, { timeout: 10_000 })).get('zombie', { consistency: 'all' }))
    t.is((err as { code?: string }).code, 'NOT_FOUND')
  }
  t.is(Buffer.from((await kv.get('kept', { consistency: 'one', replica: gone })).value).toString(), 'x')
  const log = await readFile(join(net.nodes[2].dataDir, 'mesh.log'), 'utf8')
  t.regex(log, /a member purged a record that died while this replica was away/)
}

test('a node killed and kept away while a delete it missed is purged comes back without the deleted value', async t => {
  await killedPastPurge(t, false)
})

test('a node killed before it saved its ring members, and kept away while a delete it missed is purged, is checked, not rebuilt on its old data', async t => {
  await killedPastPurge(t, true)
})
