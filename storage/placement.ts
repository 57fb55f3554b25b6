import type { TokenRange } from './storage.js'
import { tokenOf, hashToken, fromRingRange, normalize, rangeSize, TOKEN_SPACE } from './tokens.js'
import { DEFAULT_REPLICATION_FACTOR, DEFAULT_VNODES } from './constants.js'

export interface RingInit {
  /** Virtual nodes (tokens) per member. More gives better balance and smaller moves, at some memory/CPU cost. @default 256 */
  vnodes?: number
}

/** One arc of the ring: keys with tokens in `ranges` are stored on `replicas`, in preference order. */
export interface RingRange {
  /** Token of the previous vnode (exclusive). */
  after: bigint
  /** Token of the vnode that owns the arc (inclusive). */
  upTo: bigint
  /** The arc as inclusive intervals (two when it wraps). */
  ranges: TokenRange[]
  replicas: string[]
}

/**
 * Consistent-hash ring with virtual nodes. Member m places vnodes at hashToken(`${m}#${i}`)
 * for i < vnodes. A key's token is tokenOf(key); its replicas are the distinct members met
 * walking clockwise from the first vnode at or after that token. Deterministic: every node
 * with the same member list computes the same placement, and adding a member only moves the
 * keys that the new member now holds.
 */
export class Ring {
  readonly members: readonly string[]
  readonly vnodes: number
  /** Sorted vnode tokens. */
  readonly tokens: bigint[]
  /** Member index owning tokens[i]. */
  private readonly owner: Int32Array
  private readonly rangeCache = new Map<number, RingRange[]>()

  constructor (members: Iterable<string>, init: RingInit = {}) {
    this.members = [...new Set(members)].sort()
    this.vnodes = init.vnodes ?? DEFAULT_VNODES
    const points: Array<{ t: bigint, m: number }> = []
    this.members.forEach((m, mi) => {
      for (let i = 0; i < this.vnodes; i++) points.push({ t: hashToken(`${m}#${i}`), m: mi })
    })
    points.sort((a, b) => a.t < b.t ? -1 : a.t > b.t ? 1 : a.m - b.m)
    this.tokens = points.map(p => p.t)
    this.owner = Int32Array.from(points.map(p => p.m))
  }

  private static cache = new Map<string, Ring>()
  /** Rings are immutable; this keeps the last few so hot paths do not rebuild them. */
  static of (members: Iterable<string>, init: RingInit = {}): Ring {
    const list = [...new Set(members)].sort()
    const id = `${init.vnodes ?? DEFAULT_VNODES}|${list.join(',')}`
    let ring = Ring.cache.get(id)
    if (ring == null) {
      ring = new Ring(list, init)
      if (Ring.cache.size >= 16) Ring.cache.delete(Ring.cache.keys().next().value as string)
      Ring.cache.set(id, ring)
    }
    return ring
  }

  /** Index of the first vnode with token >= t, wrapping. */
  private vnodeFor (t: bigint): number {
    let lo = 0
    let hi = this.tokens.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.tokens[mid] < t) lo = mid + 1
      else hi = mid
    }
    return lo === this.tokens.length ? 0 : lo
  }

  private walk (start: number, rf: number): string[] {
    const want = Math.min(rf, this.members.length)
    const out: string[] = []
    const seen = new Set<number>()
    for (let k = 0; k < this.tokens.length && out.length < want; k++) {
      const m = this.owner[(start + k) % this.tokens.length]
      if (!seen.has(m)) { seen.add(m); out.push(this.members[m]) }
    }
    return out
  }

  replicasForToken (t: bigint, rf = DEFAULT_REPLICATION_FACTOR): string[] {
    if (this.tokens.length === 0) return []
    return this.walk(this.vnodeFor(t), rf)
  }

  replicas (key: string, rf = DEFAULT_REPLICATION_FACTOR): string[] {
    return this.replicasForToken(tokenOf(key), rf)
  }

  /** Every arc of the ring with its replicas. */
  ranges (rf = DEFAULT_REPLICATION_FACTOR): RingRange[] {
    let out = this.rangeCache.get(rf)
    if (out == null) {
      const n = this.tokens.length
      out = []
      for (let i = 0; i < n; i++) {
        const after = this.tokens[(i + n - 1) % n]
        const upTo = this.tokens[i]
        // Duplicate tokens would make an empty arc; skip it.
        if (n > 1 && after === upTo) continue
        out.push({ after, upTo, ranges: fromRingRange(after, upTo), replicas: this.walk(i, rf) })
      }
      this.rangeCache.set(rf, out)
    }
    return out
  }

  /** Token ranges a member holds a replica of, normalized. */
  replicaRanges (member: string, rf = DEFAULT_REPLICATION_FACTOR): TokenRange[] {
    return normalize(this.ranges(rf).filter(r => r.replicas.includes(member)).flatMap(r => r.ranges))
  }

  /** Token ranges a member is the first replica (primary owner) of. */
  primaryRanges (member: string): TokenRange[] {
    return this.replicaRanges(member, 1)
  }

  /** Token ranges both members hold replicas of: what anti-entropy between them compares. */
  sharedRanges (a: string, b: string, rf = DEFAULT_REPLICATION_FACTOR): TokenRange[] {
    return normalize(this.ranges(rf).filter(r => r.replicas.includes(a) && r.replicas.includes(b)).flatMap(r => r.ranges))
  }

  /** Fraction of the token space the member is primary for (sums to 1 over members). */
  share (member: string): number {
    return Number((rangeSize(this.primaryRanges(member)) * 1_000_000n) / TOKEN_SPACE) / 1_000_000
  }

  /** Fraction of all data the member holds a copy of at this replication factor (sums to rf over members). */
  replicaShare (member: string, rf = DEFAULT_REPLICATION_FACTOR): number {
    return Number((rangeSize(this.replicaRanges(member, rf)) * 1_000_000n) / TOKEN_SPACE) / 1_000_000
  }
}

/**
 * The preference list of a key: `rf` distinct peer ids (fewer if there are fewer members), first
 * choice first. Pure and deterministic in (key, set of members, rf, vnodes); the order of
 * `members` does not matter. Backed by a small cache of rings.
 */
export function placement (key: string, members: string[], rf = DEFAULT_REPLICATION_FACTOR, init: RingInit = {}): string[] {
  return Ring.of(members, init).replicas(key, rf)
}
