import test from 'ava'
import { waitAtMost, withDeadline } from '../lib/abort.js'
import { systemClock, type Clock } from '../lib/clock.js'
import { MeshError } from '../lib/errors.js'

/** The system clock, counting the timers set and not yet fired or cleared. */
function countingClock (): Clock & { pending: () => number } {
  const live = new Set<unknown>()
  return {
    now: () => systemClock.now(),
    setTimeout: (fn, ms) => {
      const h = systemClock.setTimeout(() => { live.delete(h); fn() }, ms)
      live.add(h)
      return h
    },
    clearTimeout: (h) => { live.delete(h); systemClock.clearTimeout(h) },
    pending: () => live.size
  }
}

test('withDeadline: the result when in time, TIMEOUT after the deadline, the caller\'s reason on abort; no timer left behind', async t => {
  // The system clock's timers do not hold the process open (a pending call's own I/O does): hold it for the test.
  const hold = setInterval(() => {}, 1000)
  t.teardown(() => { clearInterval(hold) })
  const clock = countingClock()
  t.is(await withDeadline(60_000, undefined, async () => 42, clock), 42)
  t.is(clock.pending(), 0, 'the timer went when the call settled')

  const late = await t.throwsAsync(withDeadline(20, undefined, async signal => await new Promise((resolve, reject) => {
    signal.addEventListener('abort', () => { reject(signal.reason) })
  }), clock))
  t.true(late instanceof MeshError)
  t.is((late as MeshError).code, 'TIMEOUT')

  const outer = new AbortController()
  const reason = new MeshError('ABORTED', 'caller gave up')
  const p = withDeadline(60_000, outer.signal, async signal => await new Promise((resolve, reject) => {
    signal.addEventListener('abort', () => { reject(signal.reason) })
  }), clock)
  outer.abort(reason)
  t.is(await t.throwsAsync(p), reason)
  t.is(clock.pending(), 0)
  await t.throwsAsync(withDeadline(60_000, outer.signal, async () => 1, clock), { is: reason }, 'an aborted caller does not start the call')
})

// Serial, so that it runs before the concurrent tests: it counts the process's live timers.
test.serial('waitAtMost: ends when the promise settles, either way, or after ms; rejects on abort; leaves no timer', async t => {
  const active = (): number => process.getActiveResourcesInfo().filter(r => r === 'Timeout').length
  const base = active()
  let t0 = performance.now()
  await waitAtMost(Promise.resolve(), 60_000)
  await waitAtMost(Promise.reject(new Error('failed run')), 60_000)
  t.true(performance.now() - t0 < 30_000, 'settled promises end the wait, not the 60 s')
  t.is(active(), base, 'no timer left after an early end')

  t0 = performance.now()
  await waitAtMost(new Promise(() => {}), 50)
  t.true(performance.now() - t0 >= 45, 'a promise that never settles waits the full time')

  const c = new AbortController()
  const waiting = waitAtMost(new Promise(() => {}), 60_000, c.signal)
  c.abort(new Error('caller gone'))
  await t.throwsAsync(waiting, { message: 'caller gone' })
  t.is(active(), base, 'no timer left after an abort')
  await t.throwsAsync(waitAtMost(Promise.resolve(), 10, AbortSignal.abort(new Error('already'))), { message: 'already' })
})
