import { Uint8ArrayList } from 'uint8arraylist'
import { MalformedMessageError, MessageTooLargeError } from '../lib/errors.js'

/** Unsigned varint length prefix followed by the body, in one buffer so it is one stream write. */
export function encodeLengthPrefixed (body: Uint8Array): Uint8Array {
  let n = body.byteLength
  let prefixLen = 1
  for (let v = n; v >= 0x80; v >>>= 7) prefixLen++
  const out = new Uint8Array(prefixLen + n)
  let i = 0
  while (n >= 0x80) {
    out[i++] = (n & 0x7f) | 0x80
    n >>>= 7
  }
  out[i++] = n
  out.set(body, i)
  return out
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
    this.buffer.append(chunk)
    const frames: Uint8Array[] = []
    for (;;) {
      const header = this.readLength()
      if (header == null) return frames
      const [length, prefixLen] = header
      if (this.buffer.byteLength < prefixLen + length) return frames
      frames.push(this.buffer.subarray(prefixLen, prefixLen + length))
      this.buffer.consume(prefixLen + length)
    }
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
