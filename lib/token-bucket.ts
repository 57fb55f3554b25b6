/**
 * Token buckets by key, refilled continuously at `rate` a second up to `burst`. Past `maxKeys` keys the state is
 * dropped wholesale, which bounds its memory whoever picks the keys (a fresh key starts with a full bucket, so that
 * costs only one extra burst).
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number, at: number }>()

  constructor (private readonly maxKeys: number, private readonly now: () => number = () => performance.now()) {}

  /** Takes one token from `key`'s bucket; false when it has none left. */
  take (key: string, rate: number, burst = rate): boolean {
    const now = this.now()
    let b = this.buckets.get(key)
    if (b == null) {
      if (this.buckets.size >= this.maxKeys) this.buckets.clear()
      b = { tokens: burst, at: now }
      this.buckets.set(key, b)
    }
    b.tokens = Math.min(burst, b.tokens + (now - b.at) * rate / 1000)
    b.at = now
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }
}
