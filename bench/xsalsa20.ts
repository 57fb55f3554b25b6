// `npm run bench -- xsalsa20 [rounds]`: pnet's cipher, the `xsalsa20` package against node/xsalsa20.ts (WebAssembly
// SIMD), in milliseconds per MiB ciphered in place as pnet does, on 1 MiB and 64 KiB inputs.
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { simdAvailable, xsalsa20, type XorStream } from '../node/xsalsa20.js'
import { table, writeResult } from './util.js'

const pkg = createRequire(import.meta.url)('xsalsa20') as (nonce: Uint8Array, key: Uint8Array) => XorStream

/** Bytes ciphered per timed round, whatever the input size, so every round takes about as long. */
const ROUND_BYTES = 8 << 20
const MiB = 1 << 20

function msPerMiB (stream: XorStream, input: Uint8Array): number {
  const calls = ROUND_BYTES / input.length
  const t0 = performance.now()
  for (let i = 0; i < calls; i++) stream.update(input, input)
  return (performance.now() - t0) / (ROUND_BYTES / MiB)
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

export async function main (args: string[]): Promise<void> {
  const rounds = Number(args[0] ?? 15)
  const key = randomBytes(32)
  const nonce = randomBytes(24)

  // Same keystream from both before anything is timed: a fast wrong answer would be no result.
  const probe = randomBytes(MiB + 3)
  if (!Buffer.from(pkg(nonce, key).update(probe)).equals(xsalsa20(nonce, key).update(probe))) throw new Error('node/xsalsa20.ts disagrees with the xsalsa20 package')

  const results = []
  for (const size of [MiB, 64 << 10]) {
    const input = randomBytes(size)
    const old = pkg(nonce, key)
    const simd = xsalsa20(nonce, key)
    for (let i = 0; i < 3; i++) { msPerMiB(old, input); msPerMiB(simd, input) } // warm-up: tier-up and memory growth
    // Alternate the two within each round, so a noisy neighbour on a shared machine weighs on both alike.
    const oldMs: number[] = []
    const simdMs: number[] = []
    for (let r = 0; r < rounds; r++) {
      oldMs.push(msPerMiB(old, input))
      simdMs.push(msPerMiB(simd, input))
    }
    old.finalize()
    simd.finalize()
    results.push({ inputBytes: size, packageMsPerMiB: median(oldMs), simdMsPerMiB: median(simdMs), speedup: median(oldMs) / median(simdMs) })
  }

  process.stdout.write(`xsalsa20, ms per MiB ciphered in place (median of ${rounds} rounds of ${ROUND_BYTES / MiB} MiB; WebAssembly SIMD ${simdAvailable ? 'available' : 'NOT available: both rows are the package'})\n`)
  process.stdout.write(table(['input', 'xsalsa20 package', 'node/xsalsa20.ts', 'speed-up'],
    results.map(r => [r.inputBytes >= MiB ? `${r.inputBytes / MiB} MiB` : `${r.inputBytes >> 10} KiB`, r.packageMsPerMiB, r.simdMsPerMiB, `${r.speedup.toFixed(2)}x`])) + '\n')
  const file = await writeResult('xsalsa20', { simdAvailable, rounds, roundBytes: ROUND_BYTES, results })
  process.stdout.write(`wrote ${file}\n`)
}
