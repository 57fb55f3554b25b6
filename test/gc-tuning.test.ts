import test from 'ava'
import { constants, PerformanceObserver } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { GcHeadroom, YoungBufferCollector, growingPercent } from '../node/gc-tuning.js'
import { MiB } from '../lib/units.js'
import { waitFor } from './util.js'

test('the growing percent spends the headroom on top of what is alive, within its bounds', t => {
  const headroom = 96 * MiB
  t.is(growingPercent(30 * MiB, headroom, 50, 150), 150, 'a small heap is capped at the maximum')
  t.is(growingPercent(96 * MiB, headroom, 50, 150), 100)
  t.is(growingPercent(150 * MiB, headroom, 50, 150), 64)
  t.is(growingPercent(192 * MiB, headroom, 50, 150), 50)
  t.is(growingPercent(400 * MiB, headroom, 50, 150), 0, 'a large heap goes back to V8\'s own factor')
  t.is(growingPercent(0, headroom, 50, 150), 150)
})

test('GcHeadroom applies the percent at start and again after a full collection, only when it changes', async t => {
  const applied: string[] = []
  let live = 40 * MiB
  let reads = 0
  const gov = new GcHeadroom({ headroom: 96 * MiB, softLimit: 280 * MiB, rss: () => 150 * MiB, setFlags: f => { applied.push(f) }, liveBytes: () => { reads++; return live } })
  t.teardown(() => { gov.stop() })
  gov.start()
  t.deepEqual(applied, ['--heap-growing-percent=150'])
  t.is(gov.percent, 150)

  // A real full collection, observed through perf_hooks, makes it look again.
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as (o?: { type: string }) => void
  live = 150 * MiB
  const before = reads
  gc({ type: 'major' })
  await waitFor('the governor to see the collection', async () => reads > before, 10_000, 20)
  t.deepEqual(applied, ['--heap-growing-percent=150', '--heap-growing-percent=64'])

  // Same live size: nothing to change.
  gov.update()
  t.is(applied.length, 2)
  live = 500 * MiB
  gov.update()
  t.is(applied.at(-1), '--heap-growing-percent=0')

  // Stopped, it no longer reacts: a second observer, still attached, sees the next full collection, and the governor
  // has not looked by then.
  gov.stop()
  const after = reads
  let seen = false
  const witness = new PerformanceObserver(list => {
    if (list.getEntries().some(e => (e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) seen = true
  })
  witness.observe({ entryTypes: ['gc'] })
  t.teardown(() => { witness.disconnect() })
  gc({ type: 'major' })
  await waitFor('the witness to see the collection', async () => seen, 10_000, 20)
  t.is(reads, after)
})

test('GcHeadroom spends less headroom as resident memory nears the soft limit, and none past it', t => {
  const applied: string[] = []
  let rss = 100 * MiB
  const gov = new GcHeadroom({ headroom: 96 * MiB, softLimit: 280 * MiB, minPercent: 50, maxPercent: 150, rss: () => rss, liveBytes: () => 64 * MiB, setFlags: f => { applied.push(f) } })
  gov.update()
  t.is(gov.percent, 150, 'far from the limit: the whole headroom (capped)')
  rss = 232 * MiB
  gov.update()
  t.is(gov.percent, 75, '48 MiB left under the limit')
  rss = 260 * MiB
  gov.update()
  t.is(gov.percent, 0, '20 MiB left: under the minimum, V8 decides')
  rss = 300 * MiB
  gov.update()
  t.is(gov.percent, 0)
  t.deepEqual(applied, ['--heap-growing-percent=150', '--heap-growing-percent=75', '--heap-growing-percent=0'])
})

test('YoungBufferCollector collects after each step of buffer growth, follows a shrink, and slows down when quiet', t => {
  let external = 100 * MiB
  let collected = 0
  const young = new YoungBufferCollector({ step: 16 * MiB, externalBytes: () => external, collect: () => { collected++; external -= 12 * MiB } })
  young.start()
  young.stop()
  external += 10 * MiB
  t.true(young.check(), 'buffers are being allocated: look again soon')
  t.is(collected, 0, '10 MiB is under the step')
  external += 6 * MiB
  young.check()
  t.is(collected, 1, '16 MiB since start')
  t.is(young.collections, 1)
  // The collection freed 12 MiB, some of it seen only later (V8 sweeps after it returns): the base follows it down.
  external -= 3 * MiB
  young.check()
  external += 15 * MiB
  young.check()
  t.is(collected, 1, '15 MiB over the lowest point seen')
  external += 1 * MiB
  young.check()
  t.is(collected, 2)
  let quiet = 0
  while (young.check()) quiet++
  t.is(quiet, 19, 'twenty looks without growth and it goes back to the idle pace')
  external += 1 * MiB
  t.true(young.check(), 'a MiB of growth wakes it')
})

test('YoungBufferCollector counts a step only when it comes within its window: slow growth runs no collection', t => {
  let external = 100 * MiB
  let clock = 0
  let collected = 0
  const young = new YoungBufferCollector({ step: 16 * MiB, window: 500, now: () => clock, externalBytes: () => external, collect: () => { collected++; external -= 12 * MiB } })
  young.start()
  young.stop()
  const look = (ms: number, grow: number): void => { clock += ms; external += grow; young.check() }
  // 4 MiB every 200 ms (20 MiB/s), for 10 s: no 500 ms holds more than 12 MiB of it.
  for (let i = 0; i < 50; i++) look(200, 4 * MiB)
  t.is(collected, 0)
  // A second with no growth, then 16 MiB over four looks 25 ms apart: a bulk transfer's pace.
  for (let i = 0; i < 4; i++) look(250, 0)
  for (let i = 0; i < 3; i++) look(25, 4 * MiB)
  t.is(collected, 0, '12 MiB so far')
  look(25, 4 * MiB)
  t.is(collected, 1)
  // The same 16 MiB, arriving between 450 and 550 ms after the last collection (across where a fixed window would end), still counts.
  for (let i = 0; i < 9; i++) look(50, 0)
  for (let i = 0; i < 4; i++) look(25, 4 * MiB)
  t.is(collected, 2)
})

test('YoungBufferCollector runs real young collections while a process churns through buffers, and none after stop', async t => {
  let minors = 0
  const witness = new PerformanceObserver(list => {
    for (const e of list.getEntries()) if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) minors++
  })
  witness.observe({ entryTypes: ['gc'] })
  t.teardown(() => { witness.disconnect() })
  const young = new YoungBufferCollector({ step: 8 * MiB, activeInterval: 5, idleInterval: 5 })
  t.teardown(() => { young.stop() })
  young.start()
  // Short-lived 1 MiB buffers, as a node moving a file makes, with turns of the event loop in between.
  await waitFor('a young collection paced by buffers', async () => {
    for (let i = 0; i < 4; i++) Buffer.allocUnsafeSlow(MiB).fill(i)
    return young.collections > 0
  }, 30_000, 1)
  await waitFor('V8 to report it', async () => minors > 0, 10_000, 20)
  young.stop()
  const after = young.collections
  for (let i = 0; i < 64; i++) {
    Buffer.allocUnsafeSlow(MiB).fill(i)
    await new Promise(resolve => setTimeout(resolve, 1))
  }
  t.is(young.collections, after)
})
