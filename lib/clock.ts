/** A handle returned by {@link Clock.setTimeout}. */
export interface TimerHandle { readonly id: unknown }

/**
 * Time as protocol logic sees it. Injected so that a simulator can run many nodes on virtual time.
 */
export interface Clock {
  /** Milliseconds since an arbitrary epoch; monotonic within one clock. */
  now(): number
  setTimeout(fn: () => void, ms: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms)
    t.unref?.()
    return { id: t }
  },
  clearTimeout: (h) => { clearTimeout(h.id as NodeJS.Timeout) }
}

/** A source of randomness in [0, 1), injected for seeded simulations. */
export type Random = () => number

/** mulberry32: a small, fast, seedable PRNG, good enough for protocol choices and tests. */
export function seededRandom (seed: number): Random {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
