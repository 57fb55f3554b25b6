import test from 'ava'
import { join } from 'node:path'
import { HybridClock, LevelEngine, MemoryEngine, ReplicaService, compareKeys, tokenOf, validateKey, validateValue, KeyTooLargeError, ValueTooLargeError, InvalidKeyError, type StorageEngine } from '../storage/index.js'
import { systemClock } from '../lib/clock.js'
import { silentLogger } from '../lib/log.js'
import type { Record as KvRecord, WriteResponse } from '../storage/storage.js'
import { tempDir, waitFor } from './storage-helpers.js'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array): string => new TextDecoder().decode(b)

test('level engine: group commit shares fsyncs between concurrent writes', async t => {
  const engine = new LevelEngine({ path: join(await tempDir(t), 'db') })
  await engine.open()
  t.teardown(async () => { await engine.close() })
  const n = 500
  await Promise.all(Array.from({ length: n }, async (_, i) => { await engine.batch([{ type: 'put', key: `k${i}`, value: bytes(`v${i}`) }]) }))
  const s = engine.stats()
  t.is(s.writes, n)
  t.true(s.syncedCommits < n / 10, `${s.syncedCommits} synced batches for ${n} writes`)
  t.log(`${n} concurrent writes -> ${s.syncedCommits} synced batches`)
  for (let i = 0; i < n; i += 97) t.deepEqual(await engine.get(`k${i}`), bytes(`v${i}`))
})

test('level engine: concurrent gets share trips to LevelDB and each gets its own key\'s value', async t => {
  const engine = new LevelEngine({ path: join(await tempDir(t), 'db') })
  await engine.open()
  t.teardown(async () => { await engine.close() })
  await engine.batch(Array.from({ length: 100 }, (_, i) => ({ type: 'put' as const, key: `k${i}`, value: bytes(`v${i}`) })))
  const before = engine.stats().readTrips ?? 0
  // Present, missing and repeated keys, all at once.
  const keys = Array.from({ length: 300 }, (_, i) => `k${(i * 7) % 150}`)
  const values = await Promise.all(keys.map(async k => await engine.get(k)))
  keys.forEach((k, i) => {
    const n = Number(k.slice(1))
    t.deepEqual(values[i], n < 100 ? bytes(`v${n}`) : undefined, k)
  })
  const trips = (engine.stats().readTrips ?? 0) - before
  t.true(trips <= 2, `${trips} trips for ${keys.length} gets`)
  // A get after a write has landed sees it.
  await engine.batch([{ type: 'put', key: 'k1', value: bytes('new') }])
  t.deepEqual(await engine.get('k1'), bytes('new'))
})

test('level engine: relaxed durability never syncs', async t => {
  const engine = new LevelEngine({ path: join(await tempDir(t), 'db'), durability: 'relaxed' })
  await engine.open()
  t.teardown(async () => { await engine.close() })
  await Promise.all(Array.from({ length: 50 }, async (_, i) => { await engine.batch([{ type: 'put', key: `k${i}`, value: bytes('v') }]) }))
  t.is(engine.stats().syncedCommits, 0)
  t.true(engine.stats().commits >= 1)
})

test('level engine: its size on disk counts the latest writes, which LevelDB\'s own estimate leaves out until a flush', async t => {
  const engine = new LevelEngine({ path: join(await tempDir(t), 'db') })
  await engine.open()
  t.teardown(async () => { await engine.close() })
  const before = await engine.sizeOnDisk()
  await engine.batch(Array.from({ length: 100 }, (_, i) => ({ type: 'put' as const, key: `d/${i}`, value: new Uint8Array(1024) })))
  t.true(await engine.sizeOnDisk() >= before + 100 * 1024)
  const mem = new MemoryEngine()
  await mem.open()
  await mem.batch([{ type: 'put', key: 'é', value: new Uint8Array(10) }, { type: 'put', key: '\u{1F600}', value: new Uint8Array(10) }])
  t.is(await mem.sizeOnDisk(), 2 + 4 + 20)
})

test('level engine: reopen keeps data; a second open of the same dir is DATA_DIR_LOCKED', async t => {
  const path = join(await tempDir(t), 'db')
  const a = new LevelEngine({ path })
  await a.open()
  await a.batch([{ type: 'put', key: 'x', value: bytes('1') }, { type: 'put', key: 'y', value: bytes('2') }])
  await a.batch([{ type: 'del', key: 'y' }])
  const locked = new LevelEngine({ path })
  const err = await t.throwsAsync(locked.open())
  t.is((err as any).code, 'DATA_DIR_LOCKED')
  await a.close()
  const b = new LevelEngine({ path })
  await b.open()
  t.teardown(async () => { await b.close() })
  t.deepEqual(await b.get('x'), bytes('1'))
  t.is(await b.get('y'), undefined)
})

async function collect (e: StorageEngine, range: Parameters<StorageEngine['iterate']>[0]): Promise<string[]> {
  const out: string[] = []
  for await (const [k] of e.iterate(range)) out.push(k)
  return out
}

test('memory and level engines order and bound iteration identically (UTF-8 byte order)', async t => {
  const keys = ['a', 'b', 'ab', '\uffff', '\u{1F600}', 'é', 'z', 'a\u0000', '\ue000x', '']
    .filter(k => k !== '')
  const level = new LevelEngine({ path: join(await tempDir(t), 'db') })
  await level.open()
  t.teardown(async () => { await level.close() })
  const mem = new MemoryEngine()
  for (const e of [level, mem]) await e.batch(keys.map(key => ({ type: 'put' as const, key, value: bytes(key) })))
  const expected = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  t.deepEqual([...keys].sort(compareKeys), expected)
  for (const range of [{}, { gte: 'ab' }, { gt: 'ab', lt: '\u{1F600}' }, { lte: 'é', limit: 3 }, { gt: 'a' }]) {
    t.deepEqual(await collect(mem, range), await collect(level, range), JSON.stringify(range))
  }
  t.true(await mem.approximateSize('a', 'b') > 0)
})

test('key and value validation gives named errors with stable codes', t => {
  t.is(validateKey('ok', 1024), 'ok')
  t.is(validateKey(bytes('bytes ok'), 1024), 'bytes ok')
  const big = t.throws(() => validateKey('x'.repeat(1025), 1024))
  t.true(big instanceof KeyTooLargeError)
  t.is((big as any).code, 'PAYLOAD_TOO_LARGE')
  // 342 three-byte characters is 1026 bytes, over the limit although only 342 UTF-16 units.
  t.throws(() => validateKey('€'.repeat(342), 1024), { instanceOf: KeyTooLargeError })
  const bad = t.throws(() => validateKey(new Uint8Array([0x66, 0xff, 0xfe]), 1024))
  t.true(bad instanceof InvalidKeyError)
  t.is((bad as any).code, 'BAD_REQUEST')
  t.throws(() => validateKey('\ud800', 1024), { instanceOf: InvalidKeyError })
  t.throws(() => validateKey('', 1024), { instanceOf: InvalidKeyError })
  const v = t.throws(() => validateValue(new Uint8Array(11), 10))
  t.true(v instanceof ValueTooLargeError)
  t.is((v as any).code, 'PAYLOAD_TOO_LARGE')
})

test('a replica writes without reading first while it knows every stored key; last writer wins at every cache state', async t => {
  const engine = new MemoryEngine()
  await engine.open()
  let reads = 0
  const get = engine.get.bind(engine)
  const getMany = engine.getMany.bind(engine)
  engine.get = async (k) => { reads++; return await get(k) }
  engine.getMany = async (ks) => { reads += ks.length; return await getMany(ks) }
  const replica = async (): Promise<ReplicaService> => {
    const s = new ReplicaService({ engine, clock: systemClock, hlc: new HybridClock('n', systemClock), logger: silentLogger }, { versionCacheSize: 3 })
    // Counted from here: start() reads the replica's own bookkeeping once, and the claim is about writes.
    const atStart = reads
    await s.start()
    reads = atStart
    return s
  }
  const rec = (key: string, wall: number, value = `${key}@${wall}`): KvRecord => ({ key, value: new TextEncoder().encode(value), ts: { wall: BigInt(wall), logical: 0, node: 'n' }, tombstone: false, expiresAt: 0n })
  const applied = async (s: ReplicaService, r: KvRecord): Promise<boolean> => (await s.write({ records: [r] })).superseded === 0

  let s = await replica()
  t.true(await applied(s, rec('a', 10)))
  t.true(await applied(s, rec('b', 10)))
  t.false(await applied(s, rec('a', 5)), 'an older write loses')
  t.true(await applied(s, rec('a', 20)))
  t.deepEqual(await s.read({ key: 'zz', digestOnly: true }), { found: false })
  t.is(reads, 0, 'no engine read: every stored key is known')

  // After a restart the versions are loaded with the count, so writes to stored keys need no read either.
  s = await replica()
  t.false(await applied(s, rec('b', 9)))
  t.true(await applied(s, rec('c', 1)))
  t.is(reads, 0)

  // Past the bound the cache forgets a key, and a key it lacks is read before it is written.
  t.true(await applied(s, rec('d', 1)))
  t.false(await applied(s, rec('a', 15)), 'older writes lose, whether or not their key is still cached')
  t.false(await applied(s, rec('b', 5)))
  t.false(await applied(s, rec('c', 0)))
  t.true(reads > 0)
  t.is(text((await s.read({ key: 'a', digestOnly: false })).record!.value), 'a@20')
  const before = reads
  t.is((await s.read({ key: 'zz', digestOnly: true })).found, false)
  t.true(reads > before, 'an unknown key is looked up once the cache is partial')
})

test('a Merkle tree is kept while no write touches its span, and built again, the same as a fresh one, after one does', async t => {
  const engine = new MemoryEngine()
  await engine.open()
  let scans = 0
  const iterate = engine.iterate.bind(engine)
  engine.iterate = (range) => { scans++; return iterate(range) }
  const hlc = new HybridClock('n', systemClock)
  const s = new ReplicaService({ engine, clock: systemClock, hlc, logger: silentLogger }, { merkleDepth: 4 })
  await s.start()
  const rec = (key: string): KvRecord => ({ key, value: new TextEncoder().encode(key), ts: hlc.now(), tombstone: false, expiresAt: 0n })
  const keys = Array.from({ length: 200 }, (_, i) => `k${i}`)
  await s.write({ records: keys.map(rec) })
  const half = { start: 0n, end: (1n << 63n) - 1n } // the lower half of the ring
  const all = [{ start: 0n, end: (1n << 64n) - 1n }]
  const fresh = async (): Promise<string> => {
    const other = new ReplicaService({ engine, clock: systemClock, hlc, logger: silentLogger }, { merkleDepth: 4 })
    await other.start()
    return JSON.stringify((await other.tree(half, all)).map(l => [l.count, l.hashes.map(h => Buffer.from(h).toString('hex'))]))
  }
  const tree = async (): Promise<string> => JSON.stringify((await s.tree(half, all)).map(l => [l.count, l.hashes.map(h => Buffer.from(h).toString('hex'))]))

  const first = await tree()
  const scanned = scans
  t.is(await tree(), first)
  t.is(scans, scanned, 'served again without a scan')

  const outside = keys.find(k => tokenOf(k) >= (1n << 63n))!
  await s.write({ records: [rec(outside)] })
  t.is(await tree(), first)
  t.is(scans, scanned, 'a write outside the span keeps it')

  const inside = keys.find(k => tokenOf(k) < (1n << 63n))!
  await s.write({ records: [rec(inside)] })
  const second = await tree()
  t.true(scans > scanned, 'a write inside the span makes it build again')
  t.not(second, first)
  t.is(second, await fresh(), 'and it is the tree a fresh replica builds')
  t.true(await s.purge(inside, (await s.read({ key: inside, digestOnly: true })).version))
  t.is(await tree(), await fresh(), 'a purge too')
})

/** A MemoryEngine whose commits wait until released, in order, or fail on request; reads can be held as well. */
function gatedEngine (): { engine: MemoryEngine, queued: () => number, release: (fail?: boolean) => void, holdReads: () => () => void, readsWaiting: () => number } {
  const engine = new MemoryEngine()
  const waiting: Array<{ ops: Parameters<MemoryEngine['batch']>[0], resolve: () => void, reject: (err: Error) => void }> = []
  const batch = engine.batch.bind(engine)
  engine.batch = async (ops) => await new Promise<void>((resolve, reject) => { waiting.push({ ops, resolve, reject }) })
  let gate: Promise<void> | undefined
  let readsWaiting = 0
  const getMany = engine.getMany.bind(engine)
  engine.getMany = async (keys) => {
    readsWaiting++
    try {
      await gate
    } finally {
      readsWaiting--
    }
    return await getMany(keys)
  }
  return {
    engine,
    queued: () => waiting.length,
    release: (fail = false) => {
      const w = waiting.shift()
      if (w == null) throw new Error('no commit waiting')
      if (fail) w.reject(new Error('disk failed'))
      else void batch(w.ops).then(w.resolve, w.reject)
    },
    holdReads: () => {
      let open!: () => void
      gate = new Promise<void>(resolve => { open = resolve })
      return () => { gate = undefined; open() }
    },
    readsWaiting: () => readsWaiting
  }
}

/** A record of key at wall-clock time wall, valued `${key}${wall}`. */
const krec = (key: string, wall: number, tombstone = false): KvRecord => ({ key, value: new TextEncoder().encode(`${key}${wall}`), ts: { wall: BigInt(wall), logical: 0, node: 'n' }, tombstone, expiresAt: 0n })

/** A replica on a gated engine, and `seed`, which writes records one by one and lets each commit through. */
async function gatedReplica (init: { versionCacheSize?: number } = {}): Promise<ReturnType<typeof gatedEngine> & { s: ReplicaService, seed: (...records: KvRecord[]) => Promise<void> }> {
  const g = gatedEngine()
  await g.engine.open()
  const s = new ReplicaService({ engine: g.engine, clock: systemClock, hlc: new HybridClock('n', systemClock), logger: silentLogger }, init)
  await s.start()
  const seed = async (...records: KvRecord[]): Promise<void> => {
    for (const r of records) {
      const w = s.write({ records: [r] })
      await waitFor(() => g.queued() === 1, 'a seed commit')
      g.release()
      await w
    }
  }
  return { ...g, s, seed }
}

/**
 * Queues a write of k at `pendingWall`, then a batch of k at `batchWall` and of m, whose engine read of m is held (m is
 * not cached); resolves once that read waits, with both writes and `open`, which lets the read through.
 */
async function batchReadingPastPendingWrite (g: Awaited<ReturnType<typeof gatedReplica>>, pendingWall: number, batchWall: number): Promise<{ pending: Promise<WriteResponse>, batch: Promise<WriteResponse>, open: () => void }> {
  const pending = g.s.write({ records: [krec('k', pendingWall)] })
  await waitFor(() => g.queued() === 1, 'the pending write to be queued')
  const open = g.holdReads()
  const batch = g.s.write({ records: [krec('k', batchWall), krec('m', 1)] })
  await waitFor(() => g.readsWaiting() === 1, 'the batch to read m')
  return { pending, batch, open }
}

test('a write of a key whose last write is still committing is queued behind it, not held until it commits; the newest wins', async t => {
  const { s, queued, release } = await gatedReplica()
  const rec = (wall: number): KvRecord => krec('hot', wall)
  const first = s.write({ records: [rec(10)] })
  await waitFor(() => queued() === 1, 'the first commit to be queued')
  const second = s.write({ records: [rec(20)] })
  // Queued while the first has not committed: before, the key's lock held it until then.
  await waitFor(() => queued() === 2, 'the second commit to be queued')
  const older = s.write({ records: [rec(15)] })
  t.is(queued(), 2, 'a version older than a pending one is not written')
  release()
  release()
  t.is((await first).applied, 1)
  t.is((await second).applied, 1)
  t.is((await older).superseded, 1)
  t.is(text((await s.read({ key: 'hot', digestOnly: false })).record!.value), 'hot20')
})

test('a pending write that commits while a batch reads other keys is still the version that batch decides its key against', async t => {
  // One cached version: past it the cache is partial, and keys it lacks are read before they are written.
  const g = await gatedReplica({ versionCacheSize: 1 })
  const { s, queued, release } = g
  await g.seed(krec('a', 1), krec('b', 1))
  const { pending: newer, batch: mixed, open } = await batchReadingPastPendingWrite(g, 20, 15)
  release()
  t.is((await newer).applied, 1)
  open()
  await waitFor(() => queued() === 1, 'the batch\'s commit to be queued')
  release()
  const r = await mixed
  t.deepEqual([r.applied, r.superseded], [1, 1], 'k@15 is refused, m@1 applied')
  t.is(text((await s.read({ key: 'k', digestOnly: false })).record!.value), 'k20')
  t.is((await s.read({ key: 'k', digestOnly: true })).version?.wall, 20n)
  t.is((await s.stats()).records, 4)
})

test('a record refused for a pending version that then fails to commit is answered as a failure, not as superseded', async t => {
  const { s, queued, release } = await gatedReplica()
  const rec = (wall: number): KvRecord => krec('k', wall)
  const newer = s.write({ records: [rec(20)] })
  await waitFor(() => queued() === 1, 'the newer commit to be queued')
  const older = s.write({ records: [rec(10)] })
  // The older write waits on the newer one's commit.
  release(true)
  await t.throwsAsync(newer, { message: /disk failed/ })
  await t.throwsAsync(older, { message: /disk failed/ })
  // Nothing pending or cached claims the failed version: the older write now lands.
  const retry = s.write({ records: [rec(10)] })
  await waitFor(() => queued() === 1, 'the retried commit to be queued')
  release()
  t.is((await retry).applied, 1)
  t.is(text((await s.read({ key: 'k', digestOnly: false })).record!.value), 'k10')

  // A write decided against a pending first write of a key that then fails still counts the key as a new record.
  const first = s.write({ records: [krec('n', 30)] })
  await waitFor(() => queued() === 1, 'the first write of n to be queued')
  const second = s.write({ records: [krec('n', 40)] })
  await waitFor(() => queued() === 2, 'the second write of n to be queued')
  release(true)
  release()
  await t.throwsAsync(first, { message: /disk failed/ })
  t.is((await second).applied, 1)
  t.is((await s.stats()).records, 2)
})

test('a purge stands back while a newer write of its key is committing, which it would otherwise delete', async t => {
  const { s, seed, queued, release } = await gatedReplica()
  const rec = (wall: number, tombstone = false): KvRecord => krec('k', wall, tombstone)
  await seed(rec(10, true))
  const live = s.write({ records: [rec(20)] })
  await waitFor(() => queued() === 1, 'the live write to be queued')
  // The tombstone is what the engine holds, but its delete would be queued behind the live write and remove that.
  t.is(await s.purgeIfUnchanged('k', rec(10).ts), 'pending')
  release()
  t.is((await live).applied, 1)
  t.is(text((await s.read({ key: 'k', digestOnly: false })).record!.value), 'k20')
  t.is(await s.purgeIfUnchanged('k', rec(10).ts), 'changed')
})

test('the record count holds when a pending write fails while a batch reads other keys', async t => {
  const g = await gatedReplica({ versionCacheSize: 1 })
  const { s, queued, release } = g
  await g.seed(krec('k', 1), krec('a', 1))
  const { pending: failing, batch: mixed, open } = await batchReadingPastPendingWrite(g, 20, 25)
  release(true)
  await t.throwsAsync(failing, { message: /disk failed/ })
  open()
  await waitFor(() => queued() === 1, 'the batch\'s commit to be queued')
  release()
  t.is((await mixed).applied, 2)
  t.is(text((await s.read({ key: 'k', digestOnly: false })).record!.value), 'k25')
  t.is((await s.stats()).records, 3, 'k, a and m')
})
