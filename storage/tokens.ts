import { hash } from 'node:crypto'
import type { TokenRange } from './storage.js'

/** Ring tokens are unsigned 64-bit integers. */
export const MAX_TOKEN = (1n << 64n) - 1n
export const TOKEN_SPACE = 1n << 64n

/**
 * The ring position of a key: the first 8 bytes of its SHA-256, big-endian (`hashToken`), remembered for recent keys.
 * One-shot `hash()` rather than a Hash object: it is computed several times per request, and the object cost more
 * than the hashing.
 */
export function tokenOf (label: string): bigint {
  let t = recentTokens.get(label)
  if (t === undefined) {
    t = hashToken(label)
    // Emptied when full rather than kept in LRU order: a lookup must stay cheaper than the hash it saves.
    if (recentTokens.size >= TOKEN_CACHE_SIZE) recentTokens.clear()
    recentTokens.set(label, t)
  }
  return t
}

/** tokenOf without the cache of recent keys: for labels hashed once in a while by the thousand (a ring's vnodes). */
export function hashToken (label: string): bigint {
  return hash('sha256', label, 'buffer').readBigUInt64BE(0)
}

/**
 * A write's key is hashed by its coordinator and again by each replica (placement, the Merkle bucket, the data key):
 * ~2 µs each, 3-4 % of a node's CPU under a KV load. Keys in use repeat, so their tokens are remembered: 4,096
 * entries, at most ~4 MiB with keys of the largest size.
 */
const TOKEN_CACHE_SIZE = 4096
const recentTokens = new Map<string, bigint>()

export function tokenHex (t: bigint): string {
  return t.toString(16).padStart(16, '0')
}

/**
 * On the wire and in these helpers a TokenRange is the inclusive interval [start, end], start <= end.
 * Ring ranges that wrap past the top are split in two. Lists are kept sorted and disjoint.
 */
export function interval (start: bigint, end: bigint): TokenRange { return { start, end } }

export const FULL_RANGE: TokenRange = { start: 0n, end: MAX_TOKEN }

/** The ring-style range (after, upTo], which wraps when after >= upTo, as inclusive intervals. */
export function fromRingRange (after: bigint, upTo: bigint): TokenRange[] {
  if (after === upTo) return [FULL_RANGE]
  if (after < upTo) return [{ start: after + 1n, end: upTo }]
  const out: TokenRange[] = [{ start: 0n, end: upTo }]
  if (after < MAX_TOKEN) out.push({ start: after + 1n, end: MAX_TOKEN })
  return out
}

/** Sorts and merges touching or overlapping intervals. */
export function normalize (ranges: TokenRange[]): TokenRange[] {
  const sorted = ranges.filter(r => r.start <= r.end).sort((a, b) => a.start < b.start ? -1 : a.start > b.start ? 1 : 0)
  const out: TokenRange[] = []
  for (const r of sorted) {
    const last = out[out.length - 1]
    if (last != null && r.start <= last.end + 1n) {
      if (r.end > last.end) last.end = r.end
    } else {
      out.push({ start: r.start, end: r.end })
    }
  }
  return out
}

/** Intersection of two normalized lists. */
export function intersect (a: TokenRange[], b: TokenRange[]): TokenRange[] {
  const out: TokenRange[] = []
  let i = 0
  let j = 0
  while (i < a.length && j < b.length) {
    const start = a[i].start > b[j].start ? a[i].start : b[j].start
    const end = a[i].end < b[j].end ? a[i].end : b[j].end
    if (start <= end) out.push({ start, end })
    if (a[i].end < b[j].end) i++
    else j++
  }
  return out
}

export function contains (ranges: TokenRange[], t: bigint): boolean {
  let lo = 0
  let hi = ranges.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    if (t < ranges[mid].start) hi = mid - 1
    else if (t > ranges[mid].end) lo = mid + 1
    else return true
  }
  return false
}

export function rangeSize (ranges: TokenRange[]): bigint {
  return ranges.reduce((n, r) => n + (r.end - r.start + 1n), 0n)
}

/** Segment i of n equal parts of the token space. */
export function segment (i: number, n: number): TokenRange {
  const size = TOKEN_SPACE / BigInt(n)
  const start = size * BigInt(i)
  return { start, end: i === n - 1 ? MAX_TOKEN : start + size - 1n }
}

export function segmentOf (t: bigint, n: number): number {
  return Math.min(n - 1, Number(t / (TOKEN_SPACE / BigInt(n))))
}
