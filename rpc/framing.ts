import { Uint8ArrayList } from 'uint8arraylist'
import { MalformedMessageError, MessageTooLargeError } from '../lib/errors.js'

/** Unsigned varint length prefix followed by the body, in one buffer so it is one stream write. */
export function encodeLengthPrefixed (body: Uint8Array): Uint8Array {
  const out = new Uint8Array(varintLength(body.byteLength) + body.byteLength)
  out.set(body, writeVarint(out, 0, body.byteLength))
  return out
}

function varintLength (n: number): number {
  let len = 1
  for (let v = n; v >= 0x80; v = Math.floor(v / 128)) len++
  return len
}

function writeVarint (out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80
    n = Math.floor(n / 128)
  }
  out[at++] = n
  return at
}

/** Below this a body is copied into the frame: one buffer is cheaper than a list for small messages. */
const BODY_BY_REFERENCE = 16 * 1024

/**
 * The protobuf message `head` (encoded without field `field`) with the `bytes` field `field` set to `body`, appended.
 * Protobuf decoders accept fields in any order. A large body is not copied: the result is a list [head + key, body].
 * Each copy of a 1 MiB chunk is a buffer outside V8's heap, and those buffers are what drives V8's full collections
 * while a node moves files, so a copy saved per chunk is GC time saved per byte moved.
 */
export function appendBytesField (head: Uint8Array, field: number, body: Uint8Array | Uint8ArrayList, lengthPrefix = false): Uint8Array | Uint8ArrayList {
  const n = body.byteLength
  const tag = (field << 3) | 2
  // proto3 leaves an empty bytes field out, as protons does.
  const keyLen = n === 0 ? 0 : varintLength(tag) + varintLength(n)
  const total = head.byteLength + keyLen + n
  const prefixLen = lengthPrefix ? varintLength(total) : 0
  const small = n < BODY_BY_REFERENCE
  const out = new Uint8Array(prefixLen + head.byteLength + keyLen + (small ? n : 0))
  let at = lengthPrefix ? writeVarint(out, 0, total) : 0
  out.set(head, at)
  at += head.byteLength
  if (n > 0) at = writeVarint(out, writeVarint(out, at, tag), n)
  if (small) {
    if (n > 0) out.set(body instanceof Uint8Array ? body : body.subarray(), at)
    return out
  }
  return new Uint8ArrayList(out, body)
}

/** A length-prefixed frame: `head` with `body` as its `bytes` field `field` (see appendBytesField). */
export function encodeFrameWithBody (head: Uint8Array, field: number, body: Uint8Array | Uint8ArrayList): Uint8Array | Uint8ArrayList {
  return appendBytesField(head, field, body, true)
}

/**
 * Splits a byte stream into length-prefixed frames. It checks the declared length against the limit before
 * buffering the body, so an oversized frame costs the receiver nothing.
 */
export class FrameDecoder {
  private readonly buffer = new Uint8ArrayList()
  constructor (private readonly maxFrameSize: number) {}

  /** Appends a chunk and returns every frame now complete. Throws on a bad prefix or an oversized frame. */
  push (chunk: Uint8Array | Uint8ArrayList): Uint8Array[] {
    this.append(chunk)
    const frames: Uint8Array[] = []
    for (let f = this.next(); f != null; f = this.next()) frames.push(f)
    return frames
  }

  /** Appends a chunk without decoding: a reader that takes frames one at a time (`next`) leaves the rest here. */
  append (chunk: Uint8Array | Uint8ArrayList): void {
    this.buffer.append(chunk)
  }

  /** The next complete frame, or undefined until more bytes arrive. Throws on a bad prefix or an oversized frame. */
  next (): Uint8Array | undefined {
    const header = this.readLength()
    if (header == null) return undefined
    const [length, prefixLen] = header
    if (this.buffer.byteLength < prefixLen + length) return undefined
    const frame = this.buffer.subarray(prefixLen, prefixLen + length)
    this.buffer.consume(prefixLen + length)
    return frame
  }

  /** Drops whatever is buffered, as after a framing error, when nothing more can be read from the stream. */
  clear (): void {
    this.buffer.consume(this.buffer.byteLength)
  }

  get buffered (): number { return this.buffer.byteLength }

  private readLength (): [number, number] | undefined {
    let value = 0
    let shift = 0
    const available = Math.min(this.buffer.byteLength, 5)
    for (let i = 0; i < available; i++) {
      const b = this.buffer.get(i)
      value += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) {
        if (value > this.maxFrameSize) throw new MessageTooLargeError(`frame of ${value} bytes exceeds the limit of ${this.maxFrameSize}`)
        return [value, i + 1]
      }
      shift += 7
    }
    if (this.buffer.byteLength >= 5) throw new MalformedMessageError('invalid length prefix')
    return undefined
  }
}
