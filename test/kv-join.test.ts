import test from 'ava'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
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

test('a node restarted after a graceful leave joins again: it copies what its ranges took while it was out before it is read from', async t => {
  const net = await createTestnet(4, { logLevel: 'warn', env: { MESH_KV_JOIN_DELAY_MS: '3000' } })
  t.teardown(async () => { await net.stop() })
  const kv = (i: number): KvClient => new KvClient(net.client(i, { timeout: 10_000 }))
  const before = Array.from({ length: 100 }, (_, i) => `leave/before/${i}`)
  for (let i = 0; i < before.length; i += 20) await Promise.all(before.slice(i, i + 20).map(async k => await kv(0).put(k, k)))
  // Out of the ring at once (left, not dead): the writes its ranges take meanwhile go to the other members.
  await net.stopNode(3)
  t.true(existsSync(join(net.dir, 'node-3', 'storage', 'left')), 'the leave is recorded for the next start')
  await net.waitForMembers({ nodes: [0, 1, 2], alive: 3 })
  const during = Array.from({ length: 100 }, (_, i) => `leave/during/${i}`)
  for (let i = 0; i < during.length; i += 20) await Promise.all(during.slice(i, i + 20).map(async k => await kv(1).put(k, k)))

  // Its start asks the members whether they let go of it; they did, and it joins again.
  await net.startNode(3)
  await net.waitFor('node 3 to join again', async () => (await net.client(3).json('GET', '/v1/storage/stats')).joining === true, 30_000, 50)
  await net.waitForMembers({ alive: 4 })
  const misses = async (): Promise<string[]> => {
    const out: string[] = []
    for (let i = 0; i < 4; i++) {
      await Promise.all([...before, ...during].map(async k => {
        try {
          if (Buffer.from((await kv(i).get(k)).value).toString() !== k) out.push(`${k} via ${i}: wrong value`)
        } catch (err) { out.push(`${k} via ${i}: ${(err as { code?: string }).code ?? String(err)}`) }
      }))
    }
    return out
  }
  await net.waitFor('node 3 to coordinate', async () => (await net.client(3).json('GET', '/v1/storage/stats')).ready === true)
  t.deepEqual(await misses(), [])
  await net.waitForJoins()
  for (const f of ['joining', 'left']) t.false(existsSync(join(net.dir, 'node-3', 'storage', f)), `storage/${f} removed`)
  // Every key node 3 replicates is on it now, those written while it was out too.
  const absent: string[] = []
  const peer3 = net.nodes[3].peerId
  for (const k of [...before, ...during]) {
    const { replicas } = await net.client(0).json('GET', `/v1/storage/replicas?key=${encodeURIComponent(k)}`)
    if (!(replicas as string[]).includes(peer3)) continue
    try {
      if (Buffer.from((await kv(0).get(k, { consistency: 'one', replica: peer3 })).value).toString() !== k) absent.push(k)
    } catch { absent.push(k) }
  }
  t.deepEqual(absent, [])
  t.deepEqual(await misses(), [])

  // The whole mesh stopped gracefully and started again: nobody let go of anybody while all were down, so no node joins
  // (each would read its ranges from the first ones back alone), and every key reads as before.
  for (const i of [3, 2, 1, 0]) await net.stopNode(i)
  for (let i = 0; i < 4; i++) await net.startNode(i)
  await net.waitForMembers({ alive: 4 })
  await net.waitFor('every node to coordinate', async () => (await Promise.all([0, 1, 2, 3].map(async i => await net.client(i).json('GET', '/v1/storage/stats')))).every(s => s.ready === true && s.quarantined === false))
  for (let i = 0; i < 4; i++) {
    const st = await net.client(i).json('GET', '/v1/storage/stats')
    t.false(st.joining, `node ${i} not joining`)
    t.deepEqual(st.joiningMembers, [])
  }
  t.deepEqual(await misses(), [])
})
