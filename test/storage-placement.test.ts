import test from 'ava'
import { placement, Placement, Ring, tokenOf, contains, MAX_TOKEN, normalize, intersect, fromRingRange } from '../storage/index.js'
import { seededRandom } from '../lib/clock.js'

const members = (n: number, offset = 0): string[] => Array.from({ length: n }, (_, i) => `12D3KooWpeer${i + offset}`)

function randomKeys (n: number, seed: number): string[] {
  const rnd = seededRandom(seed)
  return Array.from({ length: n }, (_, i) => `key-${i}-${Math.floor(rnd() * 1e9).toString(36)}`)
}

test('placement is pure, deterministic and independent of member order', t => {
  const m = members(7)
  const shuffled = [...m].reverse()
  for (const key of ['a', 'b', 'user/42', '\u{1F600}']) {
    const p = placement(key, m, 3)
    t.is(p.length, 3)
    t.is(new Set(p).size, 3)
    t.deepEqual(placement(key, shuffled, 3), p)
    t.deepEqual(new Ring(m).replicas(key, 3), p)
  }
  t.deepEqual(placement('x', ['only'], 3), ['only'])
  t.deepEqual(placement('x', [], 3), [])
})

test('balance: at 20 nodes the busiest holds at most 1.25x the mean (100k keys, RF=3)', t => {
  const m = members(20)
  const ring = Ring.of(m)
  const counts = new Map<string, number>(m.map(x => [x, 0]))
  const keys = randomKeys(100_000, 1)
  for (const k of keys) for (const r of ring.replicas(k, 3)) counts.set(r, (counts.get(r) ?? 0) + 1)
  const mean = (keys.length * 3) / m.length
  const max = Math.max(...counts.values())
  const min = Math.min(...counts.values())
  t.log(`vnodes=${ring.vnodes}: max/mean=${(max / mean).toFixed(3)} min/mean=${(min / mean).toFixed(3)}`)
  t.true(max / mean <= 1.25, `max/mean ${max / mean}`)
  // Shares add up.
  const share = m.reduce((s, x) => s + ring.share(x), 0)
  t.true(Math.abs(share - 1) < 1e-3)
  const replicaShare = m.reduce((s, x) => s + ring.replicaShare(x, 3), 0)
  t.true(Math.abs(replicaShare - 3) < 1e-3)
})

test('a joining member takes about 1/(n+1) of the replicas and nothing else moves between old members', t => {
  const before = members(20)
  const joined = 'newcomer'
  const after = [...before, joined]
  const keys = randomKeys(20_000, 2)
  let moved = 0
  for (const k of keys) {
    const a = placement(k, before, 3)
    const b = placement(k, after, 3)
    const lost = a.filter(x => !b.includes(x))
    const gained = b.filter(x => !a.includes(x))
    t.true(gained.every(x => x === joined))
    t.true(lost.length === gained.length)
    moved += gained.length
  }
  const fraction = moved / (keys.length * 3)
  t.log(`moved ${(fraction * 100).toFixed(2)}% of replicas (ideal ${(100 / 21).toFixed(2)}%)`)
  t.true(fraction < 1.5 / 21)
})

test('token ranges: ring arcs cover the token space exactly once and per-member ranges match placement', t => {
  const m = members(5)
  const ring = new Ring(m, { vnodes: 32 })
  const all = normalize(ring.ranges(3).flatMap(r => r.ranges))
  t.deepEqual(all, [{ start: 0n, end: MAX_TOKEN }])
  const total = ring.ranges(3).reduce((n, r) => n + r.ranges.reduce((s, x) => s + (x.end - x.start + 1n), 0n), 0n)
  t.is(total, MAX_TOKEN + 1n)
  for (const key of randomKeys(200, 3)) {
    const tok = tokenOf(key)
    const replicas = ring.replicas(key, 3)
    for (const member of m) {
      const inRanges = ring.replicaRanges(member, 3).some(r => tok >= r.start && tok <= r.end)
      t.is(inRanges, replicas.includes(member))
    }
    const [a, b] = replicas
    t.true(ring.sharedRanges(a, b, 3).some(r => tok >= r.start && tok <= r.end))
  }
  t.deepEqual(fromRingRange(10n, 5n), [{ start: 0n, end: 5n }, { start: 11n, end: MAX_TOKEN }])
  t.deepEqual(intersect([{ start: 0n, end: 10n }, { start: 20n, end: 30n }], [{ start: 5n, end: 25n }]), [{ start: 5n, end: 10n }, { start: 20n, end: 25n }])
})

test('while members join, every ring of the read members and some of the joiners places each key among its write targets', t => {
  const v = { vnodes: 16 }
  const read = Array.from({ length: 6 }, (_, i) => `m${i}`)
  const joining = ['j0', 'j1', 'j2']
  const p = new Placement(Ring.of([...read, ...joining], v), joining)
  t.deepEqual(p.read.members, read)
  t.false(p.settled)
  // Every subset of the joiners, as their joins end in any order.
  const subsets = [[], ['j0'], ['j1'], ['j2'], ['j0', 'j1'], ['j0', 'j2'], ['j1', 'j2'], joining]
  for (let i = 0; i < 2000; i++) {
    const key = `key/${i}`
    const { replicas, pending } = p.targets(key)
    t.deepEqual(replicas.slice(0, 3), p.read.replicas(key))
    t.is(replicas.length, 3 + pending)
    const required = 2 + pending
    for (const ended of subsets) {
      const later = Ring.of([...read, ...ended], v).replicas(key)
      t.true(later.every(r => replicas.includes(r)), `${key}: ${later.join(',')} not within ${replicas.join(',')}`)
      // Acks that miss as many targets as a write at quorum may still leave a quorum of the later ring holding it.
      t.true(later.length - (replicas.length - required) >= 2)
    }
    for (const j of joining) {
      // Pending just when it is a replica of the key in the ring of the read members and itself; holding the key then.
      t.is(replicas.includes(j), Ring.of([...read, j], v).replicas(key).includes(j), `${key} ${j}`)
      t.is(contains(p.rangesOf(j), tokenOf(key)), replicas.includes(j), `${key} ${j} ranges`)
    }
  }
})

test('pending replicas match the rings they stand for at every replication factor, and with fewer read members than it', t => {
  const v = { vnodes: 8 }
  for (const [readCount, rf] of [[1, 3], [2, 3], [3, 3], [5, 1], [5, 2], [7, 5]]) {
    const read = Array.from({ length: readCount }, (_, i) => `r${i}`)
    const joining = ['ja', 'jb']
    const p = new Placement(Ring.of([...read, ...joining], v), joining)
    for (let i = 0; i < 1500; i++) {
      const key = `k${readCount}-${rf}/${i}`
      const { replicas } = p.targets(key, rf)
      for (const j of joining) {
        const pending = Ring.of([...read, j], v).replicas(key, rf).includes(j)
        t.is(replicas.includes(j), pending)
        t.is(contains(p.rangesOf(j, rf), tokenOf(key)), pending)
      }
    }
  }
})

test('a placement with no joiner, or with every member joining, is one ring', t => {
  const ring = Ring.of(['a', 'b', 'c'], { vnodes: 8 })
  for (const joining of [[], ['x'], ['a', 'b', 'c']]) {
    const p = new Placement(ring, joining)
    t.true(p.settled)
    t.is(p.read, ring)
    t.deepEqual(p.joining, [])
    t.is(p.allJoining, joining.length === 3)
    t.deepEqual(p.targets('k'), { replicas: ring.replicas('k'), pending: 0 })
  }
})
