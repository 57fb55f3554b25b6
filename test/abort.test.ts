import test from 'ava'
import { withDeadline } from '../lib/abort.js'
import { MeshError } from '../lib/errors.js'

const timers = (): number => process.getActiveResourcesInfo().filter(r => r === 'Timeout').length

test('withDeadline: the result when in time, TIMEOUT after the deadline, the caller\'s reason on abort; no timer left behind', async t => {
  const before = timers()
  t.is(await withDeadline(60_000, undefined, async () => 42), 42)
  t.is(timers(), before, 'the timer went when the call settled')

  const late = await t.throwsAsync(withDeadline(20, undefined, async signal => await new Promise((resolve, reject) => {
    signal.addEventListener('abort', () => { reject(signal.reason) })
  })))
  t.true(late instanceof MeshError)
  t.is((late as MeshError).code, 'TIMEOUT')

  const outer = new AbortController()
  const reason = new MeshError('ABORTED', 'caller gave up')
  const p = withDeadline(60_000, outer.signal, async signal => await new Promise((resolve, reject) => {
    signal.addEventListener('abort', () => { reject(signal.reason) })
  }))
  outer.abort(reason)
  t.is(await t.throwsAsync(p), reason)
  t.is(timers(), before)
  await t.throwsAsync(withDeadline(60_000, outer.signal, async () => 1), { is: reason }, 'an aborted caller does not start the call')
})
