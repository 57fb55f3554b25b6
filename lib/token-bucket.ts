/**
 * Token buckets by key, refilled continuously at `rate` a second up to `burst`. Past `maxKeys` keys the least limited
 * of the oldest buckets makes room, which bounds memory whoever picks the keys. Dropping them all at once, as before,
 * let a peer cycle through fresh identities to reset the bucket of the one it floods with.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number, at: number }>()

  constructor (private readonly maxKeys: number, private readonly now: () => number = () => performance.now()) {}

  /** Takes one token from `key`'s bucket; false when it has none left. */
  take (key: string, rate: number, burst = rate): boolean {
    const now = this.now()
    let b = this.buckets.get(key)
    if (b == null) {
      if (this.buckets.size >= this.maxKeys) this.evict(now, rate, burst)
      b = { tokens: burst, at: now }
      this.buckets.set(key, b)
    }
    b.tokens = Math.min(burst, b.tokens + (now - b.at) * rate / 1000)
    b.at = now
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }

  /**
   * Drops, among the oldest EVICTION_SCAN keys, the one with the most tokens: the least limited, so never a key that is
   * being held back while others are not.
   */
  private evict (now: number, rate: number, burst: number): void {
    let victim: string | undefined
    let most = -Infinity
    let looked = 0
    for (const [key, b] of this.buckets) {
      const tokens = Math.min(burst, b.tokens + (now - b.at) * rate / 1000)
      if (tokens > most) { most = tokens; victim = key }
      if (tokens >= burst || ++looked >= EVICTION_SCAN) break
    }
    if (victim != null) this.buckets.delete(victim)
  }
}

/** How many of the oldest buckets a new key looks through for one that has refilled. */
const EVICTION_SCAN = 64
