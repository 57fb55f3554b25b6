import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { request as httpRequest } from 'node:http'
import anyTest, { type TestFn } from 'ava'
import { createTestnet, type Testnet } from '../testnet/index.js'
import { KvClient } from '../cli/kv-client.js'
import { seededRandom } from '../lib/clock.js'
import { mesh, waitFor } from './util.js'
import { History, check, parseTs, type Ts } from './checker.js'

const test = anyTest as TestFn<{ net: Testnet }>
const SKEWED = 4

test.before(async t => {
  // Node 4's wall clock runs 5 minutes behind for the whole file: every test also covers clock skew.
  t.context.net = await createTestnet(5, {
    logLevel: 'warn',
    env: { MESH_KV_ANTI_ENTROPY_MS: '500' },
    args: (i) => i === SKEWED ? ['--clock-skew-ms', '-300000'] : []
  })
  await healthy(t.context.net)
})

test.after.always(async t => { await t.context.net?.stop() })

const kv = (net: Testnet, i: number, timeout = 10_000): KvClient => new KvClient(net.client(i, { timeout }))

async function replicasOf (net: Testnet, key: string): Promise<string[]> {
  return (await net.client(0).json('GET', `/v1/storage/replicas?key=${encodeURIComponent(key)}`)).replicas
}

function indexOf (net: Testnet, peerId: string): number {
  return net.nodes.findIndex(n => n.peerId === peerId)
}

async function wipe (net: Testnet, i: number): Promise<void> {
  await net.kill(i, 'SIGKILL')
  const dir = net.nodes[i].dataDir
  for (const f of await readdir(dir)) if (f !== 'identity.key' && f !== 'mesh.log') await rm(join(dir, f), { recursive: true, force: true })
  await net.startNode(i)
}

async function stats (net: Testnet): Promise<Array<{ ready: boolean, rebuilding: boolean, hintsPending: number, hints: Record<string, { pending: number, oldestAgeMs: number }> }>> {
  return await Promise.all(net.nodes.map(async (_, i) => await net.client(i, { timeout: 5000 }).json('GET', '/v1/storage/stats')))
}

/**
 * Every node sees every member alive, no hint is left anywhere (only true once writes have stopped), and no replica is
 * still rebuilding after a wipe (one that is refuses reads, so a read at ALL fails until it is done).
 */
async function healthy (net: Testnet): Promise<void> {
  await net.waitForMembers({ timeout: 90_000 })
  await net.waitFor('every node ready, hints drained, no replica rebuilding', async () => (await stats(net)).every(x => x.ready && x.hintsPending === 0 && !x.rebuilding), 120_000, 250)
}

/**
 * Healed under load: every node sees every member alive, then every hint stored before that moment has been
 * delivered. Hints stored since (a write that timed out on a loaded machine) may come and go, so a threshold on the
 * count is not something that must become true; the age of the oldest hint is.
 */
async function healed (net: Testnet): Promise<void> {
  await net.waitForMembers({ timeout: 90_000 })
  const since = Date.now()
  await net.waitFor('every node ready and hints from before the heal delivered', async () => {
    const asked = Date.now()
    return (await stats(net)).every(x => x.ready && Object.values(x.hints).every(h => h.oldestAgeMs < asked - since))
  }, 90_000, 250)
}

/** A raw HTTP request, for bodies and paths fetch() refuses to send. */
async function raw (api: string, method: string, path: string, body?: Buffer, headers: Record<string, string | number> = {}, endEarly = false): Promise<{ status: number, body: string }> {
  const u = new URL(api)
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, method, path, headers }, (res) => {
      let b = ''
      res.on('data', (c) => { b += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: b }) })
    })
    req.on('error', (err) => { if (endEarly) resolve({ status: 0, body: err.message }); else reject(err) })
    if (endEarly) { req.write(body); setTimeout(() => { req.destroy() }, 100) } else req.end(body)
  })
}

test.serial('put/get/del/scan over HTTP and the CLI; bad input gets a clear 4xx and the node stays healthy', async t => {
  const { net } = t.context
  // A node refuses requests (UNAVAILABLE) until its view of the ring is complete: start when every node is ready.
  await healthy(net)
  const api = net.nodes[1].api
  let r = await mesh(['kv', 'put', 'greeting/en', 'hello world', '--api', api])
  t.is(r.code, 0, r.stderr)
  r = await mesh(['kv', 'get', 'greeting/en', '--api', net.nodes[3].api])
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout, 'hello world')
  r = await mesh(['kv', 'get', 'greeting/en', '--api', net.nodes[SKEWED].api, '--json', '--consistency', 'all'])
  t.is(r.code, 0, r.stderr)
  const j = JSON.parse(r.stdout)
  t.is(Buffer.from(j.value, 'base64').toString(), 'hello world')
  t.is(j.key, 'greeting/en')
  t.truthy(j.timestamp)
  r = await mesh(['kv', 'put', 'greeting/fr', 'bonjour', '--api', api, '--ttl', '1h', '--consistency', 'one'])
  t.is(r.code, 0, r.stderr)
  r = await mesh(['kv', 'scan', '--prefix', 'greeting/', '--api', api, '--json'])
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout).entries.map((e: { key: string }) => e.key), ['greeting/en', 'greeting/fr'])
  r = await mesh(['kv', 'scan', '--prefix', 'greeting/', '--limit', '1', '--api', api, '--json'])
  t.deepEqual(JSON.parse(r.stdout).entries.map((e: { key: string }) => e.key), ['greeting/en'])
  t.true(JSON.parse(r.stdout).more, 'a page cut at its limit says keys follow')
  r = await mesh(['kv', 'scan', '--prefix', 'greeting/', '--limit', '1', '--api', api])
  t.is(r.stdout, 'greeting/en\thello world\n')
  t.regex(r.stderr, /more keys follow; page on with --after "greeting\/en"/)
  r = await mesh(['kv', 'scan', '--prefix', 'greeting/', '--after', 'greeting/en', '--api', api, '--json'])
  t.deepEqual(JSON.parse(r.stdout).entries.map((e: { key: string }) => e.key), ['greeting/fr'], 'the next page')
  // In text, one line per key whatever the value: line breaks are quoted, bytes that are not UTF-8 only counted.
  await mesh(['kv', 'put', 'lines/two', 'a\nb', '--api', api])
  await net.client(1).request('PUT', '/v1/kv/lines%2Fbinary', { body: Buffer.from([0xff, 0x00, 0x0a]), headers: { 'content-type': 'application/octet-stream' } })
  r = await mesh(['kv', 'scan', '--prefix', 'lines/', '--api', api])
  t.is(r.stdout, 'lines/binary\t(3 bytes, not UTF-8; --json has them in base64)\nlines/two\t"a\\nb"\n')
  r = await mesh(['kv', 'del', 'greeting/en', '--api', api])
  t.is(r.code, 0, r.stderr)
  r = await mesh(['kv', 'get', 'greeting/en', '--api', api])
  t.is(r.code, 1)
  t.regex(r.stderr, /NOT_FOUND/)

  // Binary values round-trip as raw octet streams.
  const bin = Buffer.from([0, 255, 1, 254, 10, 13])
  let res = await net.client(2).request('PUT', '/v1/kv/bin%20key?consistency=quorum', { body: bin, headers: { 'content-type': 'application/octet-stream' } })
  t.is(res.status, 200)
  res = await net.client(0).request('GET', '/v1/kv/bin%20key')
  t.deepEqual(Buffer.from(await res.arrayBuffer()), bin)

  // Bad input.
  const cases: Array<[string, Promise<{ status: number, body: string }>, number]> = [
    ['oversized key', raw(api, 'PUT', '/v1/kv/' + 'k'.repeat(2000), Buffer.from('v')), 413],
    ['oversized value', raw(api, 'PUT', '/v1/kv/big', Buffer.alloc(1024 * 1024 + 1)), 413],
    ['bad consistency', raw(api, 'PUT', '/v1/kv/x?consistency=most', Buffer.from('v')), 400],
    ['bad consistency on read', raw(api, 'GET', '/v1/kv/x?consistency=any'), 400],
    ['invalid UTF-8 key', raw(api, 'PUT', '/v1/kv/%ff%fe', Buffer.from('v')), 400],
    ['bad ttl', raw(api, 'PUT', '/v1/kv/x?ttl=soon', Buffer.from('v')), 400],
    // 2^64 ms: it wrapped round the 64-bit expiry and was acknowledged, then the value read as expired.
    ['ttl past 100 years', raw(api, 'PUT', '/v1/kv/x?ttl=18446744073709551616ms', Buffer.from('v')), 400],
    ['bad scan limit', raw(api, 'GET', '/v1/kv?prefix=a&limit=-1'), 400],
    ['replica that is not a peer id', raw(api, 'GET', '/v1/kv/x?consistency=one&replica=garbage'), 400],
    ['truncated body', raw(api, 'PUT', '/v1/kv/trunc', Buffer.from('abc'), { 'content-length': 100 }, true), -1]
  ]
  for (const [what, p, status] of cases) {
    const out = await p
    if (status === -1) { t.true(out.status === 0 || out.status === 400, `${what}: ${out.status}`); continue }
    t.is(out.status, status, `${what}: ${out.body}`)
    const e = JSON.parse(out.body)
    t.truthy(e.error?.code, what)
    t.truthy(e.error?.message, what)
  }
  r = await mesh(['kv', 'get', 'trunc', '--api', api])
  t.is(r.code, 1, 'a truncated PUT stored nothing')
  t.true((await net.client(1).health()).ok)
  r = await mesh(['kv', 'get', 'bin key', '--api', api, '--json'])
  t.is(r.code, 0, r.stderr)
  // Keys a URL path resolves away: a clear BAD_REQUEST, not a NOT_FOUND a script would read as "absent".
  for (const key of ['.', '..']) {
    for (const args of [['get', key], ['put', key, 'v'], ['del', key]]) {
      r = await mesh(['kv', ...args, '--api', api, '--json'])
      t.is(r.code, 64, `kv ${args.join(' ')}: ${r.stderr}`)
      t.is(JSON.parse(r.stdout).error.code, 'BAD_REQUEST')
    }
  }
})

test.serial('a replica down: quorum works, all fails with UNAVAILABLE (exit 2), hints reach it within 10 s of its return', async t => {
  const { net } = t.context
  await healthy(net)
  const keys = Array.from({ length: 20 }, (_, i) => `down/${i}`)
  // A replica of down/0 that is neither the coordinator (node 0) nor the skewed node.
  const reps = await replicasOf(net, keys[0])
  const victim = reps.map(p => indexOf(net, p)).find(i => i !== 0 && i !== SKEWED) as number
  t.true(victim > 0)
  await net.kill(victim, 'SIGKILL')
  await net.waitFor('the victim to be seen down', async () => {
    const m = (await net.client(0).members()).members.find(x => x.peerId === net.nodes[victim].peerId)
    return m?.state === 'dead' || m?.state === 'suspect'
  }, 30_000)
  const c = kv(net, 0)
  for (const k of keys) await c.put(k, `v-${k}`, { consistency: 'quorum' })
  for (const k of keys) t.is(Buffer.from((await c.get(k, { consistency: 'quorum' })).value).toString(), `v-${k}`)
  const r = await mesh(['kv', 'put', keys[0], 'all-value', '--consistency', 'all', '--api', net.nodes[0].api])
  t.is(r.code, 2, r.stderr)
  t.regex(r.stderr, /UNAVAILABLE/)
  const rg = await mesh(['kv', 'get', keys[0], '--consistency', 'all', '--api', net.nodes[0].api])
  t.is(rg.code, 2, rg.stderr)
  // Keys the victim replicates, written while it was down.
  // keys[0] is left out: the failed ALL write above may still have reached the replicas that were up (as in
  // Cassandra, a write that misses its level is not rolled back), so its newest value is not `v-down/0`.
  const mine: string[] = []
  for (const k of keys.slice(1)) if ((await replicasOf(net, k)).includes(net.nodes[victim].peerId)) mine.push(k)
  t.true(mine.length > 0)

  await net.startNode(victim)
  await net.waitForMembers({ nodes: [0], alive: 5 })
  const back = Date.now()
  const peer = net.nodes[victim].peerId
  // Delivery is read off the hint stores: a hint leaves its store only once the replica has acknowledged it. (A CLI
  // process per pinned read takes longer to start than the replay takes, so it cannot time the delivery itself.)
  await waitFor('every node\'s hints for the returned replica to be delivered', async () => {
    const stats = await Promise.all(net.nodes.map(async (_, i) => i === victim ? undefined : await net.client(i).json('GET', '/v1/storage/stats')))
    return stats.every(st => st == null || (st.hints != null && (st.hints[peer]?.pending ?? 0) === 0))
  }, 10_000, 100)
  t.log(`hints delivered ${Date.now() - back} ms after the replica was seen alive`)
  // And the returned replica holds every write it missed, shown by `one` reads pinned to it.
  for (const k of mine) {
    const v = await kv(net, 0).get(k, { consistency: 'one', replica: peer })
    t.is(Buffer.from(v.value).toString(), `v-${k}`, `${k} on the returned replica`)
  }
  const out = await mesh(['kv', 'get', mine[0], '--consistency', 'one', '--replica', peer, '--api', net.nodes[0].api])
  t.is(out.stdout, `v-${mine[0]}`, out.stderr)
})

test.serial('a node with its clock 5 minutes behind does not cause later writes to be lost', async t => {
  const { net } = t.context
  await healthy(net)
  const normal = kv(net, 1)
  const skewed = kv(net, SKEWED)
  for (let i = 0; i < 30; i++) {
    const key = `skew/${i}`
    await normal.put(key, 'first')
    await skewed.put(key, 'second')
    t.is(Buffer.from((await normal.get(key)).value).toString(), 'second', `${key}: the later write through the skewed node wins`)
    await normal.put(key, 'third')
    t.is(Buffer.from((await skewed.get(key)).value).toString(), 'third', `${key}: the later write through a normal node wins`)
    await skewed.delete(key)
    await t.throwsAsync(normal.get(key), { code: 'NOT_FOUND' } as any)
  }
})

test.serial('a wiped node converges back to full data through anti-entropy', async t => {
  const { net } = t.context
  await healthy(net)
  const c = kv(net, 0)
  const keys = Array.from({ length: 300 }, (_, i) => `wipe/${i}`)
  for (let i = 0; i < keys.length; i += 20) await Promise.all(keys.slice(i, i + 20).map(async k => await c.put(k, `w-${k}`)))
  const target = 2
  const peer = net.nodes[target].peerId
  const mine: string[] = []
  for (const k of keys) if ((await replicasOf(net, k)).includes(peer)) mine.push(k)
  await wipe(net, target)
  await net.waitForMembers({ alive: 5 })
  const started = Date.now()
  const pinned = kv(net, 0)
  let missing = [...mine]
  await net.waitFor(`the wiped node to hold its ${mine.length} keys again`, async () => {
    const still: string[] = []
    for (const k of missing) {
      try {
        if (Buffer.from((await pinned.get(k, { consistency: 'one', replica: peer })).value).toString() !== `w-${k}`) still.push(k)
      } catch { still.push(k) }
    }
    missing = still
    return missing.length === 0
  }, 120_000, 1000)
  t.log(`anti-entropy restored ${mine.length} keys in ${Date.now() - started} ms`)
  t.is(missing.length, 0)
})

test.serial('the seedless first node, killed and back at once, coordinates only with every member in its ring', async t => {
  const { net } = t.context
  await healthy(net)
  const c = kv(net, 0, 3000)
  const keys = Array.from({ length: 50 }, (_, i) => `restart/${i}`)
  await Promise.all(keys.map(async k => await kv(net, 1).put(k, `r-${k}`)))
  await net.kill(0, 'SIGKILL')
  await net.startNode(0)
  const started = Date.now()
  // Whenever node 0 says it is ready, its ring must hold all five members, and its quorum reads must find every key.
  const partial: string[] = []
  let readySince: number | undefined
  await net.waitFor('node 0 ready with its whole ring for 3 s', async () => {
    const s = await net.client(0, { timeout: 2000 }).json('GET', '/v1/storage/stats').catch(() => undefined)
    if (s?.ready !== true) return false
    if ((s.ring as string[]).length !== net.nodes.length) partial.push(`${Date.now() - started} ms: ready with ${(s.ring as string[]).length} members`)
    for (const k of keys.slice(0, 10)) {
      await c.get(k).catch((err: { code?: string }) => { if (err.code === 'NOT_FOUND') partial.push(`${Date.now() - started} ms: ${k} not found`) })
    }
    readySince ??= Date.now()
    return Date.now() - readySince >= 3000
  }, 90_000, 100)
  t.log(`node 0 ready ${(readySince ?? 0) - started} ms after its restart`)
  t.deepEqual(partial, [])
  await healthy(net)
})

test.serial('checker: concurrent clients under freeze, kill -9 and wipe keep every acknowledged quorum write', async t => {
  const { net } = t.context
  await healthy(net)
  const seed = Number(process.env.KV_CHECKER_SEED ?? Math.floor(Math.random() * 2 ** 31))
  t.log(`checker seed ${seed} (replay with KV_CHECKER_SEED=${seed})`)
  const rand = seededRandom(seed)
  const history = new History()
  const keys = Array.from({ length: 40 }, (_, i) => `chk/${i}`)
  const clients = 10
  const minOps = 5000
  let stop = false
  let nemesisDone = false

  const worker = async (client: number): Promise<void> => {
    const node = client % net.nodes.length
    const c = kv(net, node, 3000)
    let seq = 0
    const r = seededRandom(seed + client + 1)
    while (!stop) {
      const key = keys[Math.floor(r() * r() * keys.length)]
      const invoke = history.now()
      if (r() < 0.5) {
        const value = `c${client}-${seq++}`
        try {
          const w = await c.put(key, value, { consistency: 'quorum', timeoutMs: 2000 })
          history.add({ type: 'write', client, key, value, invoke, complete: history.now(), ok: true, ts: w.timestamp as Ts, consistency: 'quorum' })
        } catch {
          history.add({ type: 'write', client, key, value, invoke, complete: history.now(), ok: false, consistency: 'quorum' })
          await new Promise(resolve => setTimeout(resolve, 50))
        }
      } else {
        try {
          const g = await c.get(key, { consistency: 'quorum', timeoutMs: 2000 })
          history.add({ type: 'read', client, key, value: Buffer.from(g.value).toString(), invoke, complete: history.now(), ok: true, ts: parseTs(g.timestamp), consistency: 'quorum' })
        } catch (err) {
          const nf = (err as { code?: string }).code === 'NOT_FOUND'
          history.add({ type: 'read', client, key, value: null, invoke, complete: history.now(), ok: nf, consistency: 'quorum' })
          if (!nf) await new Promise(resolve => setTimeout(resolve, 50))
        }
      }
    }
  }

  const nemesis = async (): Promise<void> => {
    const steps: Array<'freeze' | 'kill' | 'wipe'> = ['freeze', 'kill', 'wipe', 'freeze', 'kill']
    for (const step of steps) {
      const i = Math.floor(rand() * net.nodes.length)
      t.log(`${history.now().toFixed(0)} ms: nemesis ${step} node ${i}`)
      if (step === 'freeze') {
        net.freeze(i)
        await new Promise(resolve => setTimeout(resolve, 3000 + rand() * 3000))
        net.resume(i)
      } else if (step === 'kill') {
        await new Promise(resolve => setTimeout(resolve, 500 + rand() * 1500))
        await net.kill(i, 'SIGKILL')
        await new Promise(resolve => setTimeout(resolve, 1000 + rand() * 2000))
        await net.startNode(i)
      } else {
        await wipe(net, i)
      }
      await healed(net)
      t.log(`${history.now().toFixed(0)} ms: healed after ${step}`)
    }
    nemesisDone = true
  }

  // Each node's ring and read gate over time, kept as changes only: when the checker finds a violation, the log says
  // which node placed keys differently from the others, and when.
  const views: string[] = []
  const monitor = async (i: number): Promise<void> => {
    let last = ''
    while (!stop) {
      try {
        const s = await net.client(i, { timeout: 1000 }).json('GET', '/v1/storage/stats')
        const ring = (s.ring as string[]).map(p => indexOf(net, p)).join('')
        const now = `ring ${ring} ready ${String(s.ready)} rebuilding ${String(s.rebuilding)}`
        if (now !== last) { views.push(`${history.now().toFixed(0)} ms: node ${i} ${now}`); last = now }
      } catch {}
      await new Promise(resolve => setTimeout(resolve, 200))
    }
  }

  const workers = Array.from({ length: clients }, async (_, i) => { await worker(i) })
  const monitors = net.nodes.map(async (_, i) => { await monitor(i) })
  try {
    await nemesis()
    await waitFor(`${minOps} operations`, () => nemesisDone && history.ops.length >= minOps, 180_000, 200)
  } finally {
    stop = true
    await Promise.all([...workers, ...monitors])
  }
  await healthy(net)

  const final = new Map<string, { value: string | null, ts?: Ts }>()
  const reader = kv(net, 0)
  for (const k of keys) {
    try {
      const g = await reader.get(k, { consistency: 'all' })
      final.set(k, { value: Buffer.from(g.value).toString(), ts: parseTs(g.timestamp) })
    } catch (err) {
      if ((err as { code?: string }).code !== 'NOT_FOUND') throw err
      final.set(k, { value: null })
    }
  }
  const result = check(history.ops, final)
  const failed = history.ops.filter(o => !o.ok).length
  t.log(`checker: ${result.ops} ops (${failed} failed/indeterminate), ${result.acknowledgedWrites} acknowledged quorum writes, ${result.checkedReads} session-checked reads, ${result.strictReads} strict reads, ${result.violations.length} violations, seed ${seed}`)
  for (const v of result.violations.slice(0, 20)) t.log(v)
  if (result.violations.length > 0) for (const v of views) t.log(v)
  t.true(result.ops >= minOps)
  t.deepEqual(result.violations, [], `seed ${seed}`)
})
