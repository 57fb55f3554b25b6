import test from 'ava'
import { HybridClock, compareTimestamps } from '../storage/index.js'
import { minute } from '../lib/units.js'
import type { Clock } from '../lib/clock.js'

function manualClock (start: number): Clock & { t: number } {
  const c = {
    t: start,
    now: () => c.t,
    setTimeout: () => ({ id: 0 }),
    clearTimeout: () => {}
  }
  return c
}

test('hlc readings are strictly increasing even when the wall clock stalls or steps back', t => {
  const wall = manualClock(1_000_000)
  const hlc = new HybridClock('a', wall)
  let prev = hlc.now()
  for (let i = 0; i < 1000; i++) {
    if (i % 10 === 0) wall.t += 1
    if (i === 500) wall.t -= 5000
    const ts = hlc.now()
    t.true(compareTimestamps(ts, prev) > 0)
    prev = ts
  }
  t.is(prev.node, 'a')
})

test('a node whose clock is minutes behind orders its writes after timestamps it has seen', t => {
  const now = 1_700_000_000_000
  const fast = new HybridClock('b', manualClock(now))
  const slowWall = manualClock(now - 5 * minute)
  const slow = new HybridClock('a', slowWall)
  const remote = fast.now()
  // Without having seen it, the slow node's write would lose.
  t.true(compareTimestamps(slow.peek(), remote) < 0)
  slow.update(remote)
  const mine = slow.now()
  t.true(compareTimestamps(mine, remote) > 0)
  // And it stays ahead as its own wall clock creeps forward.
  slowWall.t += 1000
  t.true(compareTimestamps(slow.now(), mine) > 0)
})

test('equal wall and counter are tie-broken by node id; far-future readings do not drag the clock', t => {
  t.true(compareTimestamps({ wall: 5n, logical: 1, node: 'a' }, { wall: 5n, logical: 1, node: 'b' }) < 0)
  t.true(compareTimestamps({ wall: 5n, logical: 2, node: 'a' }, { wall: 5n, logical: 1, node: 'b' }) > 0)
  const hlc = new HybridClock('a', manualClock(1000), { maxDrift: minute })
  hlc.update({ wall: 1000n + BigInt(10 * minute), logical: 0, node: 'evil' })
  t.is(hlc.rejected, 1)
  t.true(hlc.now().wall < 1000n + BigInt(minute))
})
