import type { TokenRange } from './storage.js'
import { tokenOf, hashToken, fromRingRange, normalize, intersect, rangeSize, TOKEN_SPACE } from './tokens.js'
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
  private readonly walkEndCache = new Map<number, Int32Array>()

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
  vnodeFor (t: bigint): number {
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

  /**
   * For each vnode i, the vnode at which a walk from i meets its `rf`-th distinct member: a token whose walk starts at
   * i has its replicas among the members owning vnodes i up to that one. -1 throughout when the ring has fewer than rf
   * members.
   */
  walkEnds (rf = DEFAULT_REPLICATION_FACTOR): Int32Array {
    let out = this.walkEndCache.get(rf)
    if (out != null) return out
    const n = this.tokens.length
    out = new Int32Array(n).fill(-1)
    if (this.members.length >= rf && rf > 0) {
      const seenAt = new Int32Array(this.members.length).fill(-1)
      for (let i = 0; i < n; i++) {
        let distinct = 0
        for (let k = 0; k < n; k++) {
          const j = (i + k) % n
          const m = this.owner[j]
          if (seenAt[m] === i) continue
          seenAt[m] = i
          if (++distinct === rf) { out[i] = j; break }
        }
      }
    }
    this.walkEndCache.set(rf, out)
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

/**
 * Where keys live while members join (Cassandra's pending ranges). `read` is the ring without the joining members: a
 * key's replicas there (its natural replicas) serve its reads. A joiner is pending for a key when it is a replica of
 * the key in the ring of the read members and itself alone. Adding members to a ring only pushes members out of a
 * key's replicas, never in; so in every ring of the read members and some of the joiners, the full ring among them,
 * the key's replicas are among its natural and pending ones. A write needs the level's answers as counted among the
 * natural replicas, plus one per pending replica: however the acks fall, and whichever joins end first, a quorum of
 * the key's replicas then holds it.
 */
export class Placement {
  /** Every member: the ring once every join has ended. */
  readonly full: Ring
  /** The ring without the joining members. */
  readonly read: Ring
  /** Members of the ring that are joining, sorted; empty when none is, or when every member is (see allJoining). */
  readonly joining: readonly string[]
  /**
   * Every member is joining: the members that held data are gone, or every node was started with seeds. None then
   * holds more than the others, so none is waited for: reads and writes use the full ring.
   */
  readonly allJoining: boolean
  /** Identity of the placement: rings and joiners. */
  readonly key: string
  /** Each joiner's vnode tokens, sorted. */
  private readonly joinerTokens: Array<{ member: string, tokens: bigint[] }>
  private readonly rangesCache = new Map<string, TokenRange[]>()

  constructor (full: Ring, joining: Iterable<string>) {
    const j = new Set(joining)
    const members = full.members.filter(m => !j.has(m))
    this.full = full
    this.allJoining = members.length === 0 && full.members.length > 0
    if (members.length === full.members.length || members.length === 0) {
      this.read = full
      this.joining = []
    } else {
      this.read = Ring.of(members, { vnodes: full.vnodes })
      this.joining = full.members.filter(m => j.has(m))
    }
    // Not a ring per joiner: at 100 members each took 60 ms to build, and a mesh filling with many joiners built one
    // per joiner at each join's end.
    this.joinerTokens = this.joining.map(member => ({ member, tokens: vnodeTokens(member, full.vnodes) }))
    this.key = `${full.members.join(',')}|${this.joining.join(',')}`
  }

  private static settled = new WeakMap<Ring, Placement>()
  /** The placement of a ring with no member joining (one per ring, kept while the ring is). */
  static of (ring: Ring): Placement {
    let p = Placement.settled.get(ring)
    if (p == null) Placement.settled.set(ring, p = new Placement(ring, []))
    return p
  }

  /** No member is pending: reads and writes use one ring. */
  get settled (): boolean { return this.joinerTokens.length === 0 }

  /**
   * A token's natural replicas in preference order, then its pending ones (`pending` of them). A joiner is among the
   * token's replicas in the ring of the read members and itself when its first vnode at or after the token comes
   * before the vnode at which the read ring's walk meets its rf-th member.
   */
  targetsForToken (t: bigint, rf = DEFAULT_REPLICATION_FACTOR): { replicas: string[], pending: number } {
    const natural = this.read.replicasForToken(t, rf)
    if (this.joinerTokens.length === 0) return { replicas: natural, pending: 0 }
    const end = this.read.walkEnds(rf)[this.read.vnodeFor(t)]
    const limit = end < 0 ? undefined : clockwise(t, this.read.tokens[end])
    let out = natural
    for (const { member, tokens } of this.joinerTokens) {
      if (limit != null && clockwise(t, tokens[firstAtOrAfter(tokens, t)]) >= limit) continue
      if (out === natural) out = natural.slice()
      out.push(member)
    }
    return { replicas: out, pending: out.length - natural.length }
  }

  targets (key: string, rf = DEFAULT_REPLICATION_FACTOR): { replicas: string[], pending: number } {
    return this.targetsForToken(tokenOf(key), rf)
  }

  /** The token ranges a member holds: those it is a natural replica of, or for a joiner, those it is pending for. */
  rangesOf (member: string, rf = DEFAULT_REPLICATION_FACTOR): TokenRange[] {
    const id = `${rf} ${member}`
    let out = this.rangesCache.get(id)
    if (out == null) {
      const joiner = this.joinerTokens.find(x => x.member === member)
      out = joiner != null ? this.pendingRanges(joiner.tokens, rf) : this.read.members.includes(member) ? this.read.replicaRanges(member, rf) : []
      this.rangesCache.set(id, out)
    }
    return out
  }

  /** The token ranges both members hold. */
  sharedRanges (a: string, b: string, rf = DEFAULT_REPLICATION_FACTOR): TokenRange[] {
    if (this.joinerTokens.length === 0) return this.read.sharedRanges(a, b, rf)
    return intersect(this.rangesOf(a, rf), this.rangesOf(b, rf))
  }

  /**
   * Where a joiner with these vnodes is pending: in each arc (after, upTo] of the read ring, the tokens up to the
   * joiner's last vnode before the walk's end (every token from which the walk meets that vnode first).
   */
  private pendingRanges (tokens: bigint[], rf: number): TokenRange[] {
    const ring = this.read
    const ends = ring.walkEnds(rf)
    const n = ring.tokens.length
    const out: TokenRange[] = []
    for (let i = 0; i < n; i++) {
      const after = ring.tokens[(i + n - 1) % n]
      const upTo = ring.tokens[i]
      if (n > 1 && after === upTo) continue
      const arc = clockwise(after, upTo) || TOKEN_SPACE
      let end = upTo
      if (ends[i] >= 0) {
        // The joiner's last vnode before the walk's end, if it lies after the arc's start.
        const stop = ring.tokens[ends[i]]
        const span = clockwise(after, stop) || TOKEN_SPACE
        const last = tokens[(firstAtOrAfter(tokens, stop) + tokens.length - 1) % tokens.length]
        const at = clockwise(after, last)
        if (at === 0n || at >= span) continue
        if (at < arc) end = last
      }
      out.push(...fromRingRange(after, end))
    }
    return normalize(out)
  }
}

/** Distance from a to b going clockwise round the ring (0 when equal). */
function clockwise (a: bigint, b: bigint): bigint {
  return b >= a ? b - a : TOKEN_SPACE - a + b
}

/** Index of the first token >= t in a sorted list, wrapping to 0. */
function firstAtOrAfter (tokens: bigint[], t: bigint): number {
  let lo = 0
  let hi = tokens.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (tokens[mid] < t) lo = mid + 1
    else hi = mid
  }
  return lo === tokens.length ? 0 : lo
}

const vnodeTokenCache = new Map<string, bigint[]>()
/** A member's vnode tokens, sorted (the same points a Ring places for it); the last 1,024 members' are kept. */
function vnodeTokens (member: string, vnodes: number): bigint[] {
  const id = `${vnodes} ${member}`
  let out = vnodeTokenCache.get(id)
  if (out == null) {
    out = Array.from({ length: vnodes }, (_, i) => hashToken(`${member}#${i}`)).sort((a, b) => a < b ? -1 : a > b ? 1 : 0)
    if (vnodeTokenCache.size >= 1024) vnodeTokenCache.delete(vnodeTokenCache.keys().next().value as string)
    vnodeTokenCache.set(id, out)
  }
  return out
}
