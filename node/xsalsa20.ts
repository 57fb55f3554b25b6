/**
 * XSalsa20 (Bernstein, "Extending the Salsa20 nonce") as a drop-in for the `xsalsa20` package that @libp2p/pnet
 * ciphers every byte with.
 *
 * The package runs one Salsa20 block at a time in scalar WebAssembly, and on a node moving files that is the largest
 * single CPU cost. Here the bulk goes through a WebAssembly kernel with 128-bit SIMD that computes four consecutive
 * blocks at once: lane k of state vector i holds word i of block counter+k, so the four blocks' rounds are the same
 * instructions on different lanes and the rounds need no shuffles at all; the lanes are transposed back into
 * block order once, when the keystream meets the data.
 *
 * There is no WebAssembly toolchain in the build, so the module is emitted byte by byte below; the emitter knows
 * only the handful of instructions the kernel uses. Where the engine has no SIMD the package is used instead.
 */
import { createRequire } from 'node:module'

/** The object the `xsalsa20` package returns, which pnet drives. */
export interface XorStream {
  /** XORs the next input.length bytes of keystream into input, writing to output (a new buffer by default; may be input itself). */
  update: (input: Uint8Array, output?: Uint8Array) => Uint8Array
  /** Wipes the stream's key material; the stream cannot be used afterwards. */
  finalize: () => void
}

// --- Salsa20 ------------------------------------------------------------------------------------------------------

/** "expand 32-byte k", the constant words of every 256-bit-key Salsa20 input block. */
const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]

/**
 * One double round as the specification lays it out: a column round, then a row round. Each entry [a, b, c, d] is a
 * quarter round: b ^= (a + d) <<< 7, c ^= (b + a) <<< 9, d ^= (c + b) <<< 13, a ^= (d + c) <<< 18. The scalar
 * HSalsa20 and the SIMD kernel are both generated from this one table, so they cannot disagree about it.
 */
const DOUBLE_ROUND = [
  [0, 4, 8, 12], [5, 9, 13, 1], [10, 14, 2, 6], [15, 3, 7, 11],
  [0, 1, 2, 3], [5, 6, 7, 4], [10, 11, 8, 9], [15, 12, 13, 14]
]

/** A quarter round's four steps as [target, x, y, rotation]: target ^= (x + y) <<< rotation, by position in the entry. */
const QUARTER_STEPS = [[1, 0, 3, 7], [2, 1, 0, 9], [3, 2, 1, 13], [0, 3, 2, 18]]

function readLE32 (b: Uint8Array, at: number): number {
  return (b[at] | b[at + 1] << 8 | b[at + 2] << 16 | b[at + 3] << 24) >>> 0
}

function writeLE32 (b: Uint8Array, at: number, v: number): void {
  b[at] = v
  b[at + 1] = v >>> 8
  b[at + 2] = v >>> 16
  b[at + 3] = v >>> 24
}

/**
 * HSalsa20: the Salsa20 rounds without the final addition, keeping words 0, 5, 10, 15, 6, 7, 8, 9. It runs once per
 * stream, so plain scalar code is enough.
 */
function hsalsa20 (key: Uint8Array, nonce16: Uint8Array): Uint8Array {
  const x = new Uint32Array(16)
  x[0] = SIGMA[0]; x[5] = SIGMA[1]; x[10] = SIGMA[2]; x[15] = SIGMA[3]
  for (let i = 0; i < 4; i++) {
    x[1 + i] = readLE32(key, 4 * i)
    x[11 + i] = readLE32(key, 16 + 4 * i)
    x[6 + i] = readLE32(nonce16, 4 * i)
  }
  for (let r = 0; r < 10; r++) {
    for (const q of DOUBLE_ROUND) {
      for (const [t, a, b, n] of QUARTER_STEPS) {
        const u = (x[q[a]] + x[q[b]]) >>> 0
        x[q[t]] ^= (u << n) | (u >>> (32 - n))
      }
    }
  }
  const out = new Uint8Array(32)
  const kept = [0, 5, 10, 15, 6, 7, 8, 9]
  for (let i = 0; i < 8; i++) writeLE32(out, 4 * i, x[kept[i]])
  x.fill(0)
  return out
}

// --- WebAssembly emitter ------------------------------------------------------------------------------------------

/** Unsigned LEB128: sizes, counts, indices, alignments, offsets and SIMD opcodes. */
function uleb (n: number): number[] {
  const out: number[] = []
  do {
    let byte = n & 0x7f
    n >>>= 7
    if (n !== 0) byte |= 0x80
    out.push(byte)
  } while (n !== 0)
  return out
}

/** Signed LEB128, which i32.const's immediate is (a positive value with bit 6 set needs an extra byte). */
function sleb (n: number): number[] {
  const out: number[] = []
  for (;;) {
    const byte = n & 0x7f
    n >>= 7
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) { out.push(byte); return out }
    out.push(byte | 0x80)
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()]
const utf8 = (s: string): number[] => vec([...new TextEncoder().encode(s)].map(b => [b]))
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body]

const I32 = 0x7f
const V128 = 0x7b
const VOID_BLOCK = 0x40

/** Opcodes by the core specification and the fixed-width SIMD proposal's BinarySIMD.md (SIMD ones follow a 0xfd prefix). */
const OP = { block: 0x02, loop: 0x03, end: 0x0b, brIf: 0x0d, localGet: 0x20, localSet: 0x21, localTee: 0x22, i32Load: 0x28, i32Const: 0x41, i32Eqz: 0x45, i32Add: 0x6a, i32Sub: 0x6b, simd: 0xfd }
const SIMD = { load: 0x00, store: 0x0b, const: 0x0c, shuffle: 0x0d, i32x4Splat: 0x11, i32x4LtU: 0x3a, or: 0x50, xor: 0x51, i32x4Shl: 0xab, i32x4ShrU: 0xad, i32x4Add: 0xae, i32x4Sub: 0xb1 }

/** A function body under construction; every method appends one instruction and returns this, to read like the text format. */
class Code {
  readonly bytes: number[] = []
  private emit (...b: number[]): this { this.bytes.push(...b); return this }
  private simd (op: number, ...imm: number[]): this { return this.emit(OP.simd, ...uleb(op), ...imm) }
  get (local: number): this { return this.emit(OP.localGet, ...uleb(local)) }
  set (local: number): this { return this.emit(OP.localSet, ...uleb(local)) }
  tee (local: number): this { return this.emit(OP.localTee, ...uleb(local)) }
  i32 (n: number): this { return this.emit(OP.i32Const, ...sleb(n)) }
  i32Load (offset: number): this { return this.emit(OP.i32Load, 2, ...uleb(offset)) }
  i32Add (): this { return this.emit(OP.i32Add) }
  i32Sub (): this { return this.emit(OP.i32Sub) }
  i32Eqz (): this { return this.emit(OP.i32Eqz) }
  block (): this { return this.emit(OP.block, VOID_BLOCK) }
  loop (): this { return this.emit(OP.loop, VOID_BLOCK) }
  end (): this { return this.emit(OP.end) }
  brIf (depth: number): this { return this.emit(OP.brIf, ...uleb(depth)) }
  // Alignment hint 4 (16 bytes): every v128 access the kernel makes is to a 16-byte-aligned address.
  v128Load (offset: number): this { return this.simd(SIMD.load, 4, ...uleb(offset)) }
  v128Store (offset: number): this { return this.simd(SIMD.store, 4, ...uleb(offset)) }
  i32x4Const (lanes: number[]): this { return this.simd(SIMD.const, ...lanes.flatMap(v => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24])) }
  /** i8x16.shuffle, with the result's four 32-bit lanes picked from the eight of (first, second). */
  i32x4Shuffle (lanes: number[]): this { return this.simd(SIMD.shuffle, ...lanes.flatMap(l => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3])) }
  i32x4Splat (): this { return this.simd(SIMD.i32x4Splat) }
  i32x4LtU (): this { return this.simd(SIMD.i32x4LtU) }
  i32x4Add (): this { return this.simd(SIMD.i32x4Add) }
  i32x4Sub (): this { return this.simd(SIMD.i32x4Sub) }
  i32x4Shl (): this { return this.simd(SIMD.i32x4Shl) }
  i32x4ShrU (): this { return this.simd(SIMD.i32x4ShrU) }
  or (): this { return this.simd(SIMD.or) }
  xor (): this { return this.simd(SIMD.xor) }
}

/**
 * Memory layout shared by the kernel and its JS caller. The memory is two pages and cannot grow (maximum = minimum),
 * so the one Uint8Array view of it made at instantiation stays valid for the life of the process.
 */
const LAYOUT = {
  /** Salsa20 input block (64 bytes) of the first block of the call, counter included; written by JS. */
  input: 0,
  /** The input block with each word splatted across four lanes, the counter words as counter+0..3 (16 x 16 bytes). */
  lanes: 64,
  /** Where a tail's 256 bytes of keystream are made, by XOR-ing four blocks into zeroes. */
  keystream: 320,
  /** Data is XOR-ed in place here, at most SCRATCH_SIZE bytes per kernel call. */
  scratch: 1024
}
const SCRATCH_SIZE = 64 * 1024
const GROUP = 256
const PAGES = 2

/**
 * The kernel, `xor(data, groups)`: XORs `groups` runs of four keystream blocks into memory at `data`, starting at the
 * block whose input is at LAYOUT.input.
 */
function emitModule (): Uint8Array {
  // Locals: the two parameters, the round counter, the state x0..x15, transpose temporaries t0..t3, one scratch.
  const data = 0
  const groups = 1
  const rounds = 2
  const x = (i: number): number => 3 + i
  const t = (i: number): number => 19 + i
  const tmp = 23
  const c = new Code()
  const lane = (word: number): number => LAYOUT.lanes + 16 * word

  // Splat the input block; the counter words get counter+k in lane k, the high word carrying where the low one wraps.
  for (let w = 0; w < 16; w++) {
    if (w === 8 || w === 9) continue
    c.i32(0).i32(0).i32Load(LAYOUT.input + 4 * w).i32x4Splat().v128Store(lane(w))
  }
  c.i32(0).i32(0).i32Load(LAYOUT.input + 32).i32x4Splat().i32x4Const([0, 1, 2, 3]).i32x4Add().v128Store(lane(8))
  c.i32(0).i32(0).i32Load(LAYOUT.input + 36).i32x4Splat()
    .i32(0).v128Load(lane(8)).i32(0).i32Load(LAYOUT.input + 32).i32x4Splat().i32x4LtU() // -1 in lanes that wrapped
    .i32x4Sub().v128Store(lane(9))

  c.block().get(groups).i32Eqz().brIf(0).loop()
  for (let w = 0; w < 16; w++) c.i32(0).v128Load(lane(w)).set(x(w))
  c.i32(10).set(rounds).loop()
  for (const round of [DOUBLE_ROUND.slice(0, 4), DOUBLE_ROUND.slice(4)]) {
    // Step by step across the round's four independent quarter rounds, so neighbouring instructions do not wait on
    // each other.
    for (const [target, a, b, n] of QUARTER_STEPS) {
      for (const q of round) {
        c.get(x(q[a])).get(x(q[b])).i32x4Add().tee(tmp).i32(n).i32x4Shl()
          .get(tmp).i32(32 - n).i32x4ShrU().or()
          .get(x(q[target])).xor().set(x(q[target]))
      }
    }
  }
  c.get(rounds).i32(1).i32Sub().tee(rounds).brIf(0).end()
  for (let w = 0; w < 16; w++) c.get(x(w)).i32(0).v128Load(lane(w)).i32x4Add().set(x(w))

  // Words 4m..4m+3 of the four blocks form a 4x4 matrix of lanes; transposed, its row k is 16 bytes of block k.
  for (let m = 0; m < 4; m++) {
    const [a, b, cc, d] = [0, 1, 2, 3].map(i => x(4 * m + i))
    c.get(a).get(b).i32x4Shuffle([0, 4, 1, 5]).set(t(0)) // a0 b0 a1 b1
    c.get(a).get(b).i32x4Shuffle([2, 6, 3, 7]).set(t(1)) // a2 b2 a3 b3
    c.get(cc).get(d).i32x4Shuffle([0, 4, 1, 5]).set(t(2)) // c0 d0 c1 d1
    c.get(cc).get(d).i32x4Shuffle([2, 6, 3, 7]).set(t(3)) // c2 d2 c3 d3
    const rows: Array<[number, number, number[]]> = [[t(0), t(2), [0, 1, 4, 5]], [t(0), t(2), [2, 3, 6, 7]], [t(1), t(3), [0, 1, 4, 5]], [t(1), t(3), [2, 3, 6, 7]]]
    rows.forEach(([lo, hi, pick], k) => {
      const at = 64 * k + 16 * m
      c.get(data).get(data).v128Load(at).get(lo).get(hi).i32x4Shuffle(pick).xor().v128Store(at)
    })
  }

  // Next four blocks: counter += 4, carrying into the high word in lanes where the low word wrapped.
  c.i32(0).i32(0).v128Load(lane(8)).i32x4Const([4, 4, 4, 4]).i32x4Add().tee(tmp).v128Store(lane(8))
  c.i32(0).i32(0).v128Load(lane(9)).get(tmp).i32x4Const([4, 4, 4, 4]).i32x4LtU().i32x4Sub().v128Store(lane(9))

  c.get(data).i32(GROUP).i32Add().set(data)
  c.get(groups).i32(1).i32Sub().tee(groups).brIf(0).end().end()
  c.end()

  const body = [...vec([[...uleb(1), I32], [...uleb(21), V128]]), ...c.bytes]
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, ...vec([[I32], [I32]]), ...vec([])]])), // type 0: (i32, i32) -> ()
    ...section(3, vec([uleb(0)])), // function 0 has type 0
    ...section(5, vec([[0x01, ...uleb(PAGES), ...uleb(PAGES)]])), // one memory, fixed size
    ...section(7, vec([[...utf8('memory'), 0x02, 0], [...utf8('xor'), 0x00, 0]])),
    ...section(10, vec([[...uleb(body.length), ...body]]))
  ])
}

/** The part of the WebAssembly JS API used here: the repo compiles without lib.dom, where TypeScript declares it. */
declare const WebAssembly: {
  validate: (bytes: Uint8Array) => boolean
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object) => { exports: unknown }
}

const moduleBytes = emitModule()

/** Whether this engine runs WebAssembly SIMD; without it, xsalsa20() hands out the package's streams. */
export const simdAvailable: boolean = typeof WebAssembly !== 'undefined' && WebAssembly.validate(moduleBytes)

interface Kernel { memory: Uint8Array, xor: (data: number, groups: number) => void }
let kernel: Kernel | undefined

/** One instance for the process: every call runs to completion before another can start, so streams can share it. */
function getKernel (): Kernel {
  if (kernel == null) {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(moduleBytes))
    const exports = instance.exports as { memory: { buffer: ArrayBuffer }, xor: (data: number, groups: number) => void }
    kernel = { memory: new Uint8Array(exports.memory.buffer), xor: exports.xor }
  }
  return kernel
}

// --- Streams ------------------------------------------------------------------------------------------------------

class SimdXsalsa20 implements XorStream {
  /** Salsa20 input block under the HSalsa20 subkey; bytes 32..40 (the block counter) are filled in at each use. */
  private readonly input = new Uint8Array(64)
  /** Index of the next block the kernel will make. */
  private counter = 0
  /** Four blocks of keystream made for a tail, of which the first `spent` bytes are used. */
  private readonly keystream = new Uint8Array(GROUP)
  private spent = GROUP
  private finalized = false

  constructor (nonce: Uint8Array, key: Uint8Array) {
    const subkey = hsalsa20(key, nonce.subarray(0, 16))
    const sigma = new Uint8Array(16)
    SIGMA.forEach((w, i) => { writeLE32(sigma, 4 * i, w) })
    this.input.set(sigma.subarray(0, 4), 0)
    this.input.set(subkey.subarray(0, 16), 4)
    this.input.set(sigma.subarray(4, 8), 20)
    this.input.set(nonce.subarray(16, 24), 24)
    this.input.set(sigma.subarray(8, 12), 40)
    this.input.set(subkey.subarray(16, 32), 44)
    this.input.set(sigma.subarray(12, 16), 60)
    subkey.fill(0)
  }

  update (input: Uint8Array, output?: Uint8Array): Uint8Array {
    if (this.finalized) throw new Error('xsalsa20 stream used after finalize()')
    if (input == null) throw new Error('input must be Uint8Array or Buffer')
    output ??= new Uint8Array(input.length)
    if (output.length < input.length) throw new RangeError('output is shorter than input')
    const n = input.length
    let off = 0

    // Keystream left over from a previous call's tail comes first, so the stream continues byte for byte.
    if (this.spent < GROUP) {
      const ks = this.keystream
      const take = Math.min(GROUP - this.spent, n)
      for (let i = 0, j = this.spent; i < take; i++, j++) output[i] = input[i] ^ ks[j]
      this.spent += take
      off = take
    }
    if (off === n) return output

    const { memory, xor } = getKernel()
    while (n - off >= GROUP) {
      const piece = Math.min(SCRATCH_SIZE, (n - off) - (n - off) % GROUP)
      this.load(memory)
      // Copy in before anything is written out, so ciphering a buffer in place reads only plaintext.
      memory.set(input.subarray(off, off + piece), LAYOUT.scratch)
      xor(LAYOUT.scratch, piece / GROUP)
      output.set(memory.subarray(LAYOUT.scratch, LAYOUT.scratch + piece), off)
      this.counter += piece / 64
      off += piece
    }
    if (off < n) {
      this.load(memory)
      memory.fill(0, LAYOUT.keystream, LAYOUT.keystream + GROUP)
      xor(LAYOUT.keystream, 1)
      this.counter += GROUP / 64
      const ks = this.keystream
      ks.set(memory.subarray(LAYOUT.keystream, LAYOUT.keystream + GROUP))
      const take = n - off
      for (let i = 0; i < take; i++) output[off + i] = input[off + i] ^ ks[i]
      this.spent = take
    }
    // The memory is every stream's: leave no subkey or keystream of this one in it between calls.
    memory.fill(0, 0, LAYOUT.scratch)
    return output
  }

  finalize (): void {
    this.input.fill(0)
    this.keystream.fill(0)
    this.finalized = true
  }

  private load (memory: Uint8Array): void {
    // A Number counts blocks exactly far beyond any stream's life (2^53 blocks is 512 PiB); split it into 32-bit halves.
    writeLE32(this.input, 32, this.counter >>> 0)
    writeLE32(this.input, 36, Math.floor(this.counter / 2 ** 32) >>> 0)
    memory.set(this.input, LAYOUT.input)
  }
}

type PackageXsalsa20 = (nonce: Uint8Array, key: Uint8Array) => XorStream
let fallback: PackageXsalsa20 | undefined

/**
 * An XSalsa20 keystream XOR-er with the `xsalsa20` package's semantics: 24-byte nonce, 32-byte key (only the first
 * 24 and 32 bytes of longer ones are used), block counter from 0, keystream continuing across update() calls at byte
 * granularity. Output may be the input buffer itself, but must not otherwise overlap it.
 */
export function xsalsa20 (nonce: Uint8Array, key: Uint8Array): XorStream {
  if (nonce == null || nonce.length < 24) throw new Error('nonce must be at least 24 bytes')
  if (key == null || key.length < 32) throw new Error('key must be at least 32 bytes')
  if (simdAvailable) return new SimdXsalsa20(nonce, key)
  fallback ??= createRequire(import.meta.url)('xsalsa20') as PackageXsalsa20
  return fallback(nonce, key)
}
