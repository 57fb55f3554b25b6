import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as json from 'multiformats/codecs/json'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { z } from 'zod'
import { PayloadTooLargeError } from '../lib/errors.js'
import { InvalidCidError } from './errors.js'
import { MAX_MANIFEST_BYTES } from './constants.js'

/**
 * A file is its manifest: the ordered chunk CIDs plus the sizes needed to locate a byte. The manifest is encoded as
 * JSON (multicodec `json`, 0x0200) so that a file id is told apart from a chunk id (multicodec `raw`) by its CID alone,
 * and so that one can read it. The name given at put time is not in it: the same bytes always get the same id.
 */
export interface Manifest {
  version: 1
  /** Bytes in the file. */
  size: number
  /** Size of every chunk but the last. */
  chunkSize: number
  /** Chunk CIDs (CIDv1, raw, sha2-256) in file order. */
  chunks: string[]
}

const manifestSchema = z.object({
  version: z.literal(1),
  size: z.number().int().nonnegative(),
  chunkSize: z.number().int().positive(),
  chunks: z.array(z.string())
}).strict()

export const MANIFEST_CODEC = json.code
export const CHUNK_CODEC = raw.code

/** sha2-256 through node:crypto, which is what multiformats' sha256 uses too, without the async wrapper. */
export function sha256Digest (data: Uint8Array): Uint8Array {
  return createHash('sha256').update(data).digest()
}

function cidOf (code: number, digest: Uint8Array): CID {
  return CID.createV1(code, Digest.create(sha256.code, digest))
}

export function chunkCid (data: Uint8Array): CID {
  return cidOf(CHUNK_CODEC, sha256Digest(data))
}

/** True when `data` hashes to `cid` (either codec). */
export function verifyBlock (cid: CID, data: Uint8Array): boolean {
  if (cid.multihash.code !== sha256.code) return false
  return sameDigest(sha256Digest(data), cid.multihash.digest)
}

function sameDigest (d: Uint8Array, want: Uint8Array): boolean {
  if (d.byteLength !== want.byteLength) return false
  for (let i = 0; i < d.byteLength; i++) if (d[i] !== want[i]) return false
  return true
}

/**
 * sha256Digest as a promise. Hashing ran on libuv's thread pool (WebCrypto's digest) until measured: with the CPU's SHA
 * extensions a 1 MiB chunk hashes in 0.54 ms in place, while WebCrypto's digest cost 0.8-1.4 ms of CPU per chunk in all
 * (the copy into the job, the hand-off) and 1.5 ms of the event loop's own time per chunk in a profile of a get; on 2
 * cores shared by a whole testnet, total CPU is what limits a transfer. The module hashes in place now; these
 * promise forms remain for callers of the public API.
 */
export async function sha256DigestAsync (data: Uint8Array): Promise<Uint8Array> {
  return sha256Digest(data)
}

export async function chunkCidAsync (data: Uint8Array): Promise<CID> {
  return chunkCid(data)
}

/** verifyBlock as a promise (see sha256DigestAsync). */
export async function verifyBlockAsync (cid: CID, data: Uint8Array): Promise<boolean> {
  return verifyBlock(cid, data)
}

export function encodeManifest (m: Manifest): { cid: CID, bytes: Uint8Array } {
  // Fixed key order: the encoding, and so the id, must not depend on how the object was built.
  const bytes = json.encode({ version: m.version, size: m.size, chunkSize: m.chunkSize, chunks: m.chunks })
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new PayloadTooLargeError(`the file needs ${m.chunks.length} chunks, more than one manifest holds; put it with a larger chunk size`)
  }
  return { cid: cidOf(MANIFEST_CODEC, sha256Digest(bytes)), bytes }
}

export function decodeManifest (cid: CID, bytes: Uint8Array): Manifest {
  let parsed: unknown
  try {
    parsed = json.decode(bytes)
  } catch {
    throw new InvalidCidError(`${cid.toString()} is not a file manifest`)
  }
  const r = manifestSchema.safeParse(parsed)
  if (!r.success) throw new InvalidCidError(`${cid.toString()} is not a valid file manifest`)
  const m = r.data
  const expected = m.size === 0 ? 0 : Math.ceil(m.size / m.chunkSize)
  if (m.chunks.length !== expected) throw new InvalidCidError(`${cid.toString()} is not a valid file manifest (chunk count)`)
  for (const c of m.chunks) parseChunkCid(c)
  return m
}

/** Bytes in chunk `i` of the manifest. */
export function chunkLength (m: Manifest, i: number): number {
  return i < m.chunks.length - 1 ? m.chunkSize : m.size - m.chunkSize * (m.chunks.length - 1)
}

function parseAny (text: string): CID {
  let cid: CID
  try {
    cid = CID.parse(text.trim())
  } catch {
    throw new InvalidCidError(`"${text.length > 80 ? text.slice(0, 80) + '...' : text}" is not a CID`)
  }
  if (cid.version !== 1 || cid.multihash.code !== sha256.code) throw new InvalidCidError(`${text} is not a meshos CID (CIDv1, sha2-256)`)
  return cid
}

/** Parses a file id, refusing anything that is not a CIDv1 sha2-256 manifest id, with a message that says why. */
export function parseFileCid (text: string): CID {
  const cid = parseAny(text)
  if (cid.code === CHUNK_CODEC) throw new InvalidCidError(`${text} is a chunk id, not a file id`)
  if (cid.code !== MANIFEST_CODEC) throw new InvalidCidError(`${text} is not a file id (codec 0x${cid.code.toString(16)})`)
  return cid
}

export function parseChunkCid (text: string): CID {
  const cid = parseAny(text)
  if (cid.code !== CHUNK_CODEC) throw new InvalidCidError(`${text} is not a chunk id`)
  return cid
}

/** Decodes a CID received over RPC. */
export function cidFromBytes (bytes: Uint8Array): CID {
  let cid: CID
  try {
    cid = CID.decode(bytes)
  } catch {
    throw new InvalidCidError('malformed CID')
  }
  if (cid.version !== 1 || cid.multihash.code !== sha256.code || (cid.code !== CHUNK_CODEC && cid.code !== MANIFEST_CODEC)) throw new InvalidCidError(`${cid.toString()} is not a meshos block id`)
  return cid
}
