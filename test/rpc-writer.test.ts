import test from 'ava'
import type { Stream } from '@libp2p/interface'
import { FrameWriter } from '../rpc/rpc.js'
import { Frame } from '../rpc/frame.js'

/**
 * The stream side FrameWriter uses: its backpressure flags, `send`, and the drain/close events. A stand-in for a
 * libp2p stream whose peer is not reading, so that backpressure lasts exactly as long as the test says.
 */
class BlockedStream extends EventTarget {
  writableNeedsDrain = true
  status = 'open'
  writeStatus = 'writable'
  sent = 0
  readonly listeners = { drain: 0, close: 0 }
  override addEventListener (type: string, fn: any, opts?: any): void { if (type === 'drain' || type === 'close') this.listeners[type]++; super.addEventListener(type, fn, opts) }
  override removeEventListener (type: string, fn: any, opts?: any): void { if (type === 'drain' || type === 'close') this.listeners[type]--; super.removeEventListener(type, fn, opts) }
  send (): boolean { this.sent++; return !this.writableNeedsDrain }
  drain (): void { this.writableNeedsDrain = false; this.dispatchEvent(new Event('drain')) }
  close (): void { this.status = 'closed'; this.writeStatus = 'closed'; this.dispatchEvent(new Event('close')) }
}

const frame = { id: 1, kind: Frame.Kind.REQUEST, method: 'm', body: new Uint8Array(4), code: '', message: '' }
const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }
const outcome = async (p: Promise<void>): Promise<string> => await p.then(() => 'sent', (e: Error) => `failed: ${e.message}`)
const waiting = (w: FrameWriter): number => (w as unknown as { drainWaiters: Set<unknown> }).drainWaiters.size

test('writes held back by a blocked stream share one drain listener; one whose signal aborts leaves at once', async t => {
  const s = new BlockedStream()
  const w = new FrameWriter(s as unknown as Stream)
  const controllers = Array.from({ length: 3 }, () => new AbortController())
  const writes = [...controllers.map(c => w.write(frame, c.signal)), w.write(frame), w.write(frame)].map(outcome)
  await turn()
  t.is(waiting(w), 5)
  t.deepEqual(s.listeners, { drain: 1, close: 1 }, 'one listener of each for all five')
  controllers[0].abort(new Error('gave up'))
  controllers[1].abort(new Error('gave up'))
  await turn()
  t.is(waiting(w), 3, 'the two that gave up are gone before any drain')
  s.drain()
  t.deepEqual(await Promise.all(writes), ['failed: gave up', 'failed: gave up', 'sent', 'sent', 'sent'])
  t.deepEqual(s.listeners, { drain: 0, close: 0 })
  t.is(waiting(w), 0)
})

test('a stream that stays blocked does not gather the writes that gave up on it', async t => {
  const s = new BlockedStream()
  const w = new FrameWriter(s as unknown as Stream)
  for (let i = 0; i < 1000; i++) {
    const c = new AbortController()
    const p = outcome(w.write(frame, c.signal))
    await turn()
    c.abort(new Error('timed out'))
    t.is(await p, 'failed: timed out')
  }
  t.is(waiting(w), 0)
  t.true(s.listeners.drain <= 1 && s.listeners.close <= 1, `listeners: ${JSON.stringify(s.listeners)}`)
  // A write that already gave up adds nothing either.
  t.is(await outcome(w.write(frame, AbortSignal.abort(new Error('already gone')))), 'failed: already gone')
  t.is(waiting(w), 0)
})

test('a close wakes every held-back write, which fails; a write on a closed stream fails without waiting', async t => {
  const s = new BlockedStream()
  const w = new FrameWriter(s as unknown as Stream)
  const writes = [w.write(frame), w.write(frame, new AbortController().signal)].map(outcome)
  await turn()
  s.close()
  t.deepEqual(await Promise.all(writes), ['failed: rpc stream closed', 'failed: rpc stream closed'])
  t.deepEqual(s.listeners, { drain: 0, close: 0 })
  t.is(await outcome(w.write(frame)), 'failed: rpc stream closed')
  t.is(waiting(w), 0)
})

test('a write woken by a drain that finds the stream blocked again waits for the next one', async t => {
  const s = new BlockedStream()
  const w = new FrameWriter(s as unknown as Stream)
  const first = outcome(w.write(frame))
  const second = outcome(w.write(frame))
  await turn()
  // The drain is over before the woken writes run: the stream needs draining again.
  s.writableNeedsDrain = false
  s.dispatchEvent(new Event('drain'))
  s.writableNeedsDrain = true
  await turn()
  t.is(waiting(w), 2, 'both wait again')
  t.deepEqual(s.listeners, { drain: 1, close: 1 })
  s.drain()
  t.deepEqual(await Promise.all([first, second]), ['sent', 'sent'])
})

test('a write past its deadline leaves the queue: it is not sent when the peer reads again', async t => {
  const s = new BlockedStream()
  const w = new FrameWriter(s as unknown as Stream)
  // As a call without a signal of its own passes its deadline (Channel.call), the usual case.
  const writes = Array.from({ length: 50 }, async () => await outcome(w.write(frame, undefined, false, performance.now() + 20)))
  t.true((await Promise.all(writes)).every(o => o.startsWith('failed: rpc write timed out')))
  t.is(waiting(w), 0, 'nothing held for the writes that gave up')
  s.drain()
  await turn()
  t.is(s.sent, 0, 'no stale request reaches the peer')
})
