import { createHash, randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import test from 'ava'
import { seededRandom } from '../lib/clock.js'
import { simdAvailable, xsalsa20, type XorStream } from '../node/xsalsa20.js'

type Package = ((nonce: Uint8Array, key: Uint8Array) => XorStream) & {
  core_hsalsa20: (out: Uint8Array, nonce16: Uint8Array, key: Uint8Array, sigma: Uint8Array) => void
  SIGMA: Uint8Array
}
const pkg = createRequire(import.meta.url)('xsalsa20') as Package

// The unpatched package detaches its streams' views of its memory whenever one stream grows it (see node/pnet.ts),
// and a stale stream then grows it again on every call until it hits its limit. Growing it once, up front, past
// every input below keeps the reference out of that bug.
pkg(new Uint8Array(24), new Uint8Array(32)).update(new Uint8Array(4 << 20))

const SIZES = [0, 1, 63, 64, 65, 127, 255, 256, 4095, 65536, 65537, (1 << 20) + 3]
const hex = (s: string): Buffer => Buffer.from(s, 'hex')

/** Salsa20 block function written straight from the specification: an independent reference for the kernel. */
function salsa20Block (key: Uint8Array, nonce8: Uint8Array, counter: bigint): Buffer {
  const word = (b: Uint8Array, i: number): number => Buffer.from(b).readUInt32LE(i)
  const ctr = Buffer.alloc(8)
  ctr.writeBigUInt64LE(counter)
  const c = Buffer.from('expand 32-byte k')
  const input = [
    word(c, 0), word(key, 0), word(key, 4), word(key, 8), word(key, 12), word(c, 4), word(nonce8, 0), word(nonce8, 4),
    word(ctr, 0), word(ctr, 4), word(c, 8), word(key, 16), word(key, 20), word(key, 24), word(key, 28), word(c, 12)
  ]
  const x = input.slice()
  const qr = (a: number, b: number, c: number, d: number): void => {
    const rotl = (v: number, n: number): number => ((v << n) | (v >>> (32 - n))) >>> 0
    x[b] = (x[b] ^ rotl((x[a] + x[d]) >>> 0, 7)) >>> 0
    x[c] = (x[c] ^ rotl((x[b] + x[a]) >>> 0, 9)) >>> 0
    x[d] = (x[d] ^ rotl((x[c] + x[b]) >>> 0, 13)) >>> 0
    x[a] = (x[a] ^ rotl((x[d] + x[c]) >>> 0, 18)) >>> 0
  }
  for (let i = 0; i < 10; i++) {
    qr(0, 4, 8, 12); qr(5, 9, 13, 1); qr(10, 14, 2, 6); qr(15, 3, 7, 11)
    qr(0, 1, 2, 3); qr(5, 6, 7, 4); qr(10, 11, 8, 9); qr(15, 12, 13, 14)
  }
  const out = Buffer.alloc(64)
  for (let i = 0; i < 16; i++) out.writeUInt32LE((x[i] + input[i]) >>> 0, 4 * i)
  return out
}

test('the SIMD kernel is what is under test here', t => {
  t.true(simdAvailable, 'Node 24 runs WebAssembly SIMD; without it xsalsa20() is the package and this file tests nothing')
})

test('NaCl test vectors: stream3 (first 32 bytes), stream (SHA-256 of 4 MiB), core1 and core2 (HSalsa20)', t => {
  // From NaCl's tests/: firstkey = HSalsa20(Alice and Bob's shared secret, 0), secondkey = HSalsa20(firstkey, nonce[0..16]).
  const shared = hex('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742')
  const firstkey = hex('1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389')
  const secondkey = hex('dc908dda0b9344a953629b733820778880f3ceb421bb61b91cbd4c3e66256ce4')
  const nonce = hex('69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37')

  t.deepEqual(Buffer.from(xsalsa20(nonce, firstkey).update(new Uint8Array(32))), hex('eea6a7251c1e72916d11c2cb214d3c252539121d8e234e652d651fa4c8cff880'))
  const stream = xsalsa20(nonce, firstkey).update(new Uint8Array(4194304))
  t.is(createHash('sha256').update(stream).digest('hex'), '662b9d0e3463029156069b12f918691a98f7dfb2ca0393c96bbfc6b1fbd630a2')

  // XSalsa20 is Salsa20 under the HSalsa20 subkey, so its first block shows the subkey against the reference block.
  t.deepEqual(Buffer.from(xsalsa20(nonce, firstkey).update(new Uint8Array(64))), salsa20Block(secondkey, nonce.subarray(16), 0n))
  const zeroPrefix = Buffer.concat([Buffer.alloc(16), nonce.subarray(16)])
  t.deepEqual(Buffer.from(xsalsa20(zeroPrefix, shared).update(new Uint8Array(64))), salsa20Block(firstkey, nonce.subarray(16), 0n))
})

test('byte-identical to the xsalsa20 package for random keys, nonces and update() sizes, fresh output and in place', t => {
  const rand = seededRandom(0x5a15a)
  let matched = 0
  for (let s = 0; s < 24; s++) {
    const key = randomBytes(32)
    const nonce = randomBytes(24)
    const ours = xsalsa20(nonce, key)
    const theirs = pkg(nonce, key)
    const inPlace = s % 2 === 1
    // Every size once, in a random order, then random sizes, so each path is entered at every offset in a block.
    const sizes = [...SIZES].sort(() => rand() - 0.5)
    for (let i = 0; i < 6; i++) sizes.push(SIZES[Math.floor(rand() * SIZES.length)])
    let at = 0
    for (const size of sizes) {
      const input = randomBytes(size)
      const expected = Buffer.from(theirs.update(input))
      const got = inPlace ? ours.update(input, input) : ours.update(Buffer.from(input))
      if (inPlace) t.is(got, input, 'update returns the output buffer it was given')
      if (!expected.equals(got)) {
        t.fail(`stream ${s} (${inPlace ? 'in place' : 'fresh output'}): ${size} bytes at offset ${at} differ`)
        return
      }
      matched++
      at += size
    }
    ours.finalize()
    theirs.finalize()
  }
  t.is(matched, 24 * (SIZES.length + 6), 'every call was compared and matched')
})

test('streams sharing the WebAssembly instance do not disturb each other', t => {
  const n = 5
  const keys = Array.from({ length: n }, () => [randomBytes(24), randomBytes(32)])
  const ours = keys.map(([nonce, key]) => xsalsa20(nonce, key))
  const theirs = keys.map(([nonce, key]) => pkg(nonce, key))
  const rand = seededRandom(7)
  for (let r = 0; r < 200; r++) {
    const i = Math.floor(rand() * n)
    const input = randomBytes(SIZES[Math.floor(rand() * (SIZES.length - 1))])
    t.true(Buffer.from(theirs[i].update(input)).equals(ours[i].update(input)), `call ${r} on stream ${i}`)
  }
})

test('the block counter carries into its high word, in the bulk kernel and in tails', t => {
  const key = randomBytes(32)
  const nonce = randomBytes(24)
  const subkey = new Uint8Array(32)
  pkg.core_hsalsa20(subkey, nonce.subarray(0, 16), key, pkg.SIGMA)
  // Reaching 2^32 blocks through the API takes 256 GiB, so the stream's next-block counter is set directly.
  for (const start of [2 ** 32 - 4, 2 ** 32 - 2, 2 ** 32 - 1, 3 * 2 ** 32 - 3]) {
    for (const size of [64, 1000]) {
      const stream = xsalsa20(nonce, key)
      ;(stream as unknown as { counter: number }).counter = start
      const got = Buffer.from(stream.update(new Uint8Array(size)))
      const blocks = Array.from({ length: Math.ceil(size / 64) }, (_, i) => salsa20Block(subkey, nonce.subarray(16), BigInt(start + i)))
      t.true(Buffer.concat(blocks).subarray(0, size).equals(got), `counter ${start}, ${size} bytes`)
    }
  }
})

test('zero-length input, a short key or nonce, and use after finalize()', t => {
  const stream = xsalsa20(randomBytes(24), randomBytes(32))
  t.is(stream.update(new Uint8Array(0)).length, 0)
  t.throws(() => xsalsa20(randomBytes(23), randomBytes(32)), { message: 'nonce must be at least 24 bytes' })
  t.throws(() => xsalsa20(randomBytes(24), randomBytes(31)), { message: 'key must be at least 32 bytes' })
  stream.finalize()
  t.throws(() => stream.update(new Uint8Array(1)))
})
