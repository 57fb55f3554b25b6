import type { Record as KvRecord, StoredRecord } from './storage.js'
import { compareTimestamps } from './hlc.js'
import { KeyTooLargeError, ValueTooLargeError, InvalidKeyError } from './errors.js'

const fatalDecoder = new TextDecoder('utf-8', { fatal: true })
const encoder = new TextEncoder()

/** Accepts a string or raw UTF-8 bytes (as they arrive from HTTP/RPC) and returns the key, or throws a named error. */
export function validateKey (key: string | Uint8Array, maxBytes: number): string {
  let str: string
  let bytes: number
  if (typeof key === 'string') {
    if (!key.isWellFormed()) throw new InvalidKeyError('not valid UTF-8 (lone surrogate)')
    str = key
    bytes = Buffer.byteLength(key, 'utf8')
  } else if (key instanceof Uint8Array) {
    try { str = fatalDecoder.decode(key) } catch { throw new InvalidKeyError('not valid UTF-8') }
    bytes = key.byteLength
  } else {
    throw new InvalidKeyError('must be a string')
  }
  if (bytes === 0) throw new InvalidKeyError('empty')
  if (bytes > maxBytes) throw new KeyTooLargeError(bytes, maxBytes)
  return str
}

export function validateValue (value: string | Uint8Array, maxBytes: number): Uint8Array<ArrayBuffer> {
  const bytes = typeof value === 'string' ? encoder.encode(value) : value
  if (!(bytes instanceof Uint8Array)) throw new InvalidKeyError('value must be bytes or a string')
  if (bytes.byteLength > maxBytes) throw new ValueTooLargeError(bytes.byteLength, maxBytes)
  return bytes as Uint8Array<ArrayBuffer>
}

/** True when the record hides its key: a tombstone, or a value whose TTL has passed. */
export function isDead (r: KvRecord, nowMs: number): boolean {
  return r.tombstone || (r.expiresAt !== 0n && BigInt(Math.floor(nowMs)) >= r.expiresAt)
}

/** Last writer wins by HLC timestamp. */
export function newer (a: KvRecord | undefined, b: KvRecord | undefined): KvRecord | undefined {
  if (a == null) return b
  if (b == null) return a
  return compareTimestamps(a.ts, b.ts) >= 0 ? a : b
}

export function recordBytes (r: KvRecord): number {
  return r.key.length * 3 + r.value.byteLength + 48
}

export function unwrap (s: StoredRecord): KvRecord {
  if (s.record == null) throw new Error('stored record without record')
  return s.record
}
