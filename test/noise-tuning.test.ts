import test from 'ava'
import { LengthPrefixedDecoder } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import { uint16BEDecode } from '../node/noise-tuning.js'
import { seededRandom } from '../lib/clock.js'

/** noise's frames: a 2-byte big-endian length, then that many bytes. */
function framed (bodies: Uint8Array[]): Uint8Array {
  const out = new Uint8ArrayList()
  for (const b of bodies) out.append(Uint8Array.of(b.byteLength >> 8, b.byteLength & 0xff), b)
  return out.subarray()
}

function decodeAll (chunks: Uint8Array[]): Uint8Array[] {
  // Set up as js-noise sets up its own decoder, with this decoder in place of its throwing one.
  const decoder = new LengthPrefixedDecoder({ lengthDecoder: uint16BEDecode, encodingLength: () => 2, maxBufferSize: 16 * 1024 * 1024 })
  const out: Uint8Array[] = []
  for (const c of chunks) for (const f of decoder.decode(c)) out.push(f.subarray())
  return out
}

test('the length decoder that does not throw yields every frame however the bytes are split', t => {
  const rand = seededRandom(7)
  const bodies = [300, 1, 0, 65535, 2, 1100, 0, 17].map((n, i) => Uint8Array.from({ length: n }, (_, j) => (i * 31 + j) & 0xff))
  const wire = framed(bodies)
  // js-noise's loop drops empty frames.
  const expected = bodies.filter(b => b.byteLength > 0)

  t.deepEqual(decodeAll([wire]), expected, 'all at once')
  t.deepEqual(decodeAll(Array.from(wire, b => Uint8Array.of(b))), expected, 'one byte at a time, so each length prefix arrives split')
  for (let round = 0; round < 50; round++) {
    const chunks: Uint8Array[] = []
    for (let at = 0; at < wire.byteLength;) {
      const n = Math.min(wire.byteLength - at, 1 + Math.floor(rand() * 2000))
      chunks.push(wire.subarray(at, at + n))
      at += n
    }
    t.deepEqual(decodeAll(chunks), expected, `random split, round ${round}`)
  }
})

test('fewer than two bytes read as a length of 0, which the frame loop waits on', t => {
  t.is(uint16BEDecode(new Uint8Array(0)), 0)
  t.is(uint16BEDecode(Uint8Array.of(0x12)), 0)
  t.is(uint16BEDecode(Uint8Array.of(0x12, 0x34)), 0x1234)
  t.is(uint16BEDecode(new Uint8ArrayList(Uint8Array.of(0xff), Uint8Array.of(0xfe, 9))), 0xfffe)
  // The loop consumes nothing until the prefix is whole.
  const decoder = new LengthPrefixedDecoder({ lengthDecoder: uint16BEDecode, encodingLength: () => 2 })
  t.deepEqual([...decoder.decode(Uint8Array.of(0))], [])
  t.deepEqual([...decoder.decode(Uint8Array.of(3, 1, 2))], [])
  t.deepEqual([...decoder.decode(Uint8Array.of(3))].map(f => f.subarray()), [Uint8Array.of(1, 2, 3)])
})
