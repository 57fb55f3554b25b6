import test from 'ava'
import { releaseBuffer } from '../lib/release.js'

const KiB = 1024

test('a large buffer of its own is freed: every view of it becomes empty', t => {
  const buffer = new ArrayBuffer(1024 * KiB)
  const frame = new Uint8Array(buffer)
  const chunk = frame.subarray(40)
  t.true(releaseBuffer(chunk))
  t.true(buffer.detached)
  t.is(chunk.byteLength, 0)
  t.is(frame.byteLength, 0)
  t.false(releaseBuffer(chunk), 'already freed')
})

test('shared or small buffers are left alone', t => {
  // Node's pool: small Buffers are views of one 8 KiB slab.
  const pooled = Buffer.from('a chunk of a small file')
  t.false(releaseBuffer(pooled))
  t.is(pooled.toString(), 'a chunk of a small file')
  // A socket or cipher piece (at most 64 KiB) that several small messages are views of.
  const piece = new Uint8Array(64 * KiB)
  t.false(releaseBuffer(piece.subarray(0, 60 * KiB)))
  t.is(piece.byteLength, 64 * KiB)
  // A view that is only a small part of a large buffer: another part may belong to someone else.
  const big = new Uint8Array(1024 * KiB)
  t.false(releaseBuffer(big.subarray(0, 256 * KiB)))
  t.is(big.byteLength, 1024 * KiB)
  // A buffer that cannot be detached (WebAssembly memory) is left to the collector, without an error.
  const { WebAssembly: wasm } = globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } } }
  const memory = new wasm.Memory({ initial: 4 })
  t.false(releaseBuffer(new Uint8Array(memory.buffer)))
  t.is(memory.buffer.byteLength, 4 * 64 * KiB)
})
