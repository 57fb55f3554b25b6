import test from 'ava'
import type { Clock } from '../lib/clock.js'
import { PeerBatches } from '../storage/peer-batches.js'

/** A clock whose timers never fire, recording the deadlines asked of it. */
function recordingClock (): { clock: Clock, deadlines: number[] } {
  const deadlines: number[] = []
  return { deadlines, clock: { now: () => 1_000, setTimeout: (_fn, ms) => { deadlines.push(ms); return { id: deadlines.length } }, clearTimeout: () => {} } }
}

test('a batch is sent with the longest deadline its items asked for; an Error result fails its item alone', async t => {
  const { clock, deadlines } = recordingClock()
  const sent: string[][] = []
  const batches = new PeerBatches<string, string>({
    send: async (_peer, items) => { sent.push(items); return items.map(i => i === 'bad' ? new Error('bad key') : i.toUpperCase()) },
    size: () => 1,
    maxItems: 100,
    maxBytes: 1000,
    maxInFlight: 1,
    timeout: 50,
    clock
  })
  const signal = new AbortController().signal
  const a = batches.add('p', 'a', signal, 300)
  const bad = batches.add('p', 'bad', signal)
  const c = batches.add('p', 'c', signal, 20)
  t.is(await a, 'A')
  await t.throwsAsync(bad, { message: 'bad key' })
  t.is(await c, 'C')
  t.deepEqual(sent, [['a', 'bad', 'c']], 'one turn, one request')
  t.deepEqual(deadlines, [300], 'the longest deadline of the batch; never shorter than the default')
})

test('a batch that fills up leaves at once; one that waits for the cap leaves when the request ahead is answered', async t => {
  const sent: string[][] = []
  const answers: Array<() => void> = []
  const batches = new PeerBatches<string, string>({
    send: async (_peer, items) => {
      sent.push(items)
      await new Promise<void>(resolve => answers.push(resolve))
      return items
    },
    size: () => 1,
    maxItems: 3,
    maxBytes: 1000,
    maxInFlight: 1,
    timeout: 10_000
  })
  const signal = new AbortController().signal
  const first = batches.add('p', 'x', signal)
  await new Promise(resolve => setImmediate(resolve))
  t.deepEqual(sent, [['x']], 'a lone item leaves at once')
  // The cap is reached: these wait, except that a full batch goes anyway.
  const more = ['a', 'b', 'c', 'd'].map(async i => await batches.add('p', i, signal))
  await new Promise(resolve => setImmediate(resolve))
  t.deepEqual(sent, [['x'], ['a', 'b', 'c']])
  answers.shift()?.()
  await first
  await new Promise(resolve => setImmediate(resolve))
  t.deepEqual(sent, [['x'], ['a', 'b', 'c'], ['d']], 'the waiting batch leaves once a request is answered')
  for (const answer of answers.splice(0)) answer()
  t.deepEqual(await Promise.all(more), ['a', 'b', 'c', 'd'])
})

test('a cap below one batch in flight is refused: no batch would leave before it filled up', t => {
  for (const maxInFlight of [0, -1, 0.5, Number.NaN]) {
    t.throws(() => new PeerBatches<string, string>({ send: async (_p, items) => items, size: () => 1, maxItems: 1, maxBytes: 1, maxInFlight, timeout: 1 }), { message: /at least 1/ })
  }
})
