import type { Clock, TimerHandle } from './clock.js'

interface Timer {
  at: number
  /** Tie-breaker so timers due at the same instant run in the order they were set. */
  order: number
  fn: () => void
  cancelled: boolean
}

export interface VirtualClockInit {
  /**
   * The time the clock starts at, in milliseconds.
   * @default 0
   */
  start?: number
}

/**
 * A Clock whose time only moves when told to, so that simulations of many nodes are deterministic
 * and run as fast as the CPU allows. Timers live in a binary min-heap ordered by (due time, order set).
 */
export class VirtualClock implements Clock {
  private time: number
  private readonly heap: Timer[] = []
  private nextOrder = 0
  private live = 0

  constructor (init: VirtualClockInit = {}) {
    this.time = init.start ?? 0
  }

  now (): number { return this.time }

  setTimeout (fn: () => void, ms: number): TimerHandle {
    const timer: Timer = { at: this.time + Math.max(0, ms), order: this.nextOrder++, fn, cancelled: false }
    this.push(timer)
    this.live++
    return { id: timer }
  }

  clearTimeout (handle: TimerHandle): void {
    const timer = handle.id as Timer
    if (!timer.cancelled) {
      timer.cancelled = true
      this.live--
    }
  }

  /** Timers set and not yet fired or cleared. */
  get pending (): number { return this.live }

  /** When the next live timer is due, or undefined when none is set. */
  nextAt (): number | undefined {
    this.dropCancelled()
    return this.heap[0]?.at
  }

  /** Runs every timer due up to and including `t`, in order, then sets the time to `t`. */
  runUntil (t: number): void {
    for (;;) {
      this.dropCancelled()
      const top = this.heap[0]
      if (top === undefined || top.at > t) break
      this.pop()
      top.cancelled = true
      this.live--
      // A timer may be due in the past when it was set with a negative delay; time never goes back.
      if (top.at > this.time) this.time = top.at
      top.fn()
    }
    if (t > this.time) this.time = t
  }

  /** Moves time forward by `ms`, running every timer that falls due on the way. */
  advance (ms: number): void {
    this.runUntil(this.time + ms)
  }

  /**
   * Advances in steps until `predicate()` holds or `limit` ms have passed; returns whether it held.
   * The predicate is checked after every timer, so the time it returns at is exact.
   */
  runUntilTrue (predicate: () => boolean, limit: number): boolean {
    const end = this.time + limit
    if (predicate()) return true
    for (;;) {
      const next = this.nextAt()
      if (next === undefined || next > end) {
        this.runUntil(end)
        return predicate()
      }
      this.runUntil(next)
      if (predicate()) return true
    }
  }

  private dropCancelled (): void {
    while (this.heap.length > 0 && this.heap[0].cancelled) this.pop()
  }

  private less (a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order)
  }

  private push (timer: Timer): void {
    const h = this.heap
    h.push(timer)
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.less(h[i], h[parent])) break
      ;[h[i], h[parent]] = [h[parent], h[i]]
      i = parent
    }
  }

  private pop (): Timer | undefined {
    const h = this.heap
    const top = h[0]
    const last = h.pop()
    if (h.length > 0 && last !== undefined) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && this.less(h[l], h[m])) m = l
        if (r < h.length && this.less(h[r], h[m])) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m], h[i]]
        i = m
      }
    }
    return top
  }
}
