import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import test from 'ava'
import '../node/pnet.js'

type Cipher = { update: (b: Uint8Array) => Uint8Array }
const XSalsa20 = createRequire(import.meta.url)('xsalsa20') as (nonce: Uint8Array, key: Uint8Array) => Cipher

test('pnet\'s cipher survives many connections writing large messages, with an unchanged keystream', t => {
  const a = XSalsa20(Buffer.alloc(24, 1), Buffer.alloc(32, 2))
  const ref = XSalsa20(Buffer.alloc(24, 1), Buffer.alloc(32, 2))
  const big = randomBytes(5 << 20)
  const whole = Buffer.from(a.update(big))
  const pieces = Buffer.concat([ref.update(big.subarray(0, 100_001)), ref.update(big.subarray(100_001))])
  t.true(whole.equals(pieces), 'one call and odd-sized pieces give the same ciphertext')
  // Unpatched, each connection's stale view of the shared WASM memory grew it by a whole write again,
  // until "WebAssembly.Memory.grow(): Maximum memory size exceeded" killed the node.
  const conns = Array.from({ length: 50 }, (_, i) => XSalsa20(Buffer.alloc(24, i), Buffer.alloc(32, 7)))
  t.notThrows(() => {
    for (let r = 0; r < 100; r++) for (const c of conns) c.update(randomBytes(1 + (r * 7919) % (2 << 20)))
  })
})
