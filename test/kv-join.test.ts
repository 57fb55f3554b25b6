import test from 'ava'
import { createTestnet } from '../testnet/index.js'
import { KvClient } from '../cli/kv-client.js'

test('two nodes joining a mesh with data at once: quorum reads find every key while they copy their ranges, and after', async t => {
  // The default join delay (5 s): the window in which the newcomers are members but not yet read from.
  const net = await createTestnet(3, { logLevel: 'warn', env: { MESH_KV_JOIN_DELAY_MS: '5000' } })
  t.teardown(async () => { await net.stop() })
  const kv = (i: number): KvClient => new KvClient(net.client(i, { timeout: 10_000 }))
  const keys = Array.from({ length: 300 }, (_, i) => `join/${i}`)
  for (let i = 0; i < keys.length; i += 20) await Promise.all(keys.slice(i, i + 20).map(async k => await kv(i % 3).put(k, `v-${k}`)))

  const added = await Promise.all([net.addNode(), net.addNode()])
  // A new node says it is joining from its start until it has copied its ranges (after the join delay).
  for (const n of added) t.true((await net.client(n.index).json('GET', '/v1/storage/stats')).joining, `node ${n.index} joining`)
  await net.waitForMembers({ alive: 5 })
  // A node coordinates once its view is whole (a second after it has the member table); the joins take longer.
  await net.waitFor('every node to coordinate', async () => (await Promise.all(net.nodes.map(async (_, i) => await net.client(i).json('GET', '/v1/storage/stats')))).every(s => s.ready === true))

  const misses = async (): Promise<string[]> => {
    const out: string[] = []
    await Promise.all(net.nodes.map(async (_, i) => {
      for (let j = 0; j < keys.length; j += 25) {
        await Promise.all(keys.slice(j, j + 25).map(async k => {
          try {
            if (Buffer.from((await kv(i).get(k)).value).toString() !== `v-${k}`) out.push(`${k} via ${i}: wrong value`)
          } catch (err) { out.push(`${k} via ${i}: ${(err as { code?: string }).code ?? String(err)}`) }
        }))
      }
    }))
    return out
  }
  // Through the newcomers too: their ranges are read from the replicas that hold them.
  t.deepEqual(await misses(), [])

  await net.waitForJoins()
  for (const n of added) {
    const st = await net.client(n.index).json('GET', '/v1/storage/stats')
    t.false(st.joining)
    t.true(st.records > 0, `node ${n.index} holds its share`)
  }
  t.deepEqual(await misses(), [])
  // Each key is held by every replica it has now, the newcomers included.
  const pinned = kv(0)
  const absent: string[] = []
  for (const k of keys) {
    const { replicas } = await net.client(0).json('GET', `/v1/storage/replicas?key=${encodeURIComponent(k)}`)
    for (const p of replicas as string[]) {
      try {
        if (Buffer.from((await pinned.get(k, { consistency: 'one', replica: p })).value).toString() !== `v-${k}`) absent.push(`${k} on ${p}`)
      } catch { absent.push(`${k} on ${p}`) }
    }
  }
  t.deepEqual(absent, [])
})
