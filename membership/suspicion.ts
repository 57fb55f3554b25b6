import type { Clock, TimerHandle } from '../lib/clock.js'

export interface SuspicionInit {
  clock: Clock
  /** The accuser whose suspicion started this; it does not count as a confirmation. */
  accuser: string
  /** Confirmations after which the timeout reaches its floor (K). */
  confirmations: number
  min: number
  max: number
  onTimeout: () => void
}

/**
 * Lifeguard's dynamic suspicion timeout: it starts at `max` and shrinks towards `min` as independent
 * accusers confirm, max(min, max − (max − min)·log(C + 1)/log(K + 1)), measured from the start.
 */
export function suspicionTimeout (c: number, k: number, min: number, max: number): number {
  if (k < 1) return min
  const frac = Math.log(Math.min(c, k) + 1) / Math.log(k + 1)
  return Math.max(min, Math.floor(max - (max - min) * frac))
}

export class Suspicion {
  private readonly init: SuspicionInit
  private readonly accusers = new Set<string>()
  private readonly start: number
  private timer?: TimerHandle
  private fired = false

  constructor (init: SuspicionInit) {
    this.init = init
    this.accusers.add(init.accuser)
    this.start = init.clock.now()
    this.arm()
  }

  /** Independent confirmations so far (the first accuser excluded). */
  get confirmations (): number { return this.accusers.size - 1 }

  /** The timeout the suspicion is running with now, measured from its start. */
  get timeout (): number {
    return suspicionTimeout(this.confirmations, this.init.confirmations, this.init.min, this.init.max)
  }

  /** When the member will be declared dead (clock time). */
  get deadline (): number { return this.start + this.timeout }

  /** Records an accuser; returns true when it was new and still counted (so worth re-gossiping). */
  confirm (accuser: string): boolean {
    if (this.fired || this.accusers.has(accuser)) return false
    if (this.confirmations >= this.init.confirmations) return false
    this.accusers.add(accuser)
    this.arm()
    return true
  }

  stop (): void {
    if (this.timer !== undefined) this.init.clock.clearTimeout(this.timer)
    this.timer = undefined
  }

  private arm (): void {
    this.stop()
    const remaining = Math.max(0, this.deadline - this.init.clock.now())
    this.timer = this.init.clock.setTimeout(() => {
      this.timer = undefined
      this.fired = true
      this.init.onTimeout()
    }, remaining)
  }
}
