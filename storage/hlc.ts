import type { Clock } from '../lib/clock.js'
import type { Timestamp } from './storage.js'
import { DEFAULT_MAX_CLOCK_DRIFT } from './constants.js'

export interface HybridClockInit {
  /** Remote timestamps more than this ahead of our wall clock do not advance the clock. @default 1 hour */
  maxDrift?: number
}

/**
 * Hybrid logical clock (Kulkarni et al.). Readings are close to wall time but never go
 * backwards and always exceed every timestamp this node has seen, so a node whose wall
 * clock is behind still orders its new writes after the writes it has observed.
 */
export class HybridClock {
  private wall = 0n
  private logical = 0
  private readonly node: string
  private readonly clock: Clock
  private readonly maxDrift: bigint
  /** Remote readings ignored because they were too far ahead. */
  rejected = 0

  constructor (node: string, clock: Clock, init: HybridClockInit = {}) {
    this.node = node
    this.clock = clock
    this.maxDrift = BigInt(Math.floor(init.maxDrift ?? DEFAULT_MAX_CLOCK_DRIFT))
  }

  private physical (): bigint { return BigInt(Math.floor(this.clock.now())) }

  /** A new timestamp for a local event (a write this node coordinates). */
  now (): Timestamp {
    const pt = this.physical()
    if (pt > this.wall) {
      this.wall = pt
      this.logical = 0
    } else {
      this.logical++
      // The counter is a uint32 on the wire; running out means ~4e9 events within one ms.
      if (this.logical > 0xffffffff) { this.wall++; this.logical = 0 }
    }
    return { wall: this.wall, logical: this.logical, node: this.node }
  }

  /** The current reading without ticking, for piggybacking on responses. */
  peek (): Timestamp {
    const pt = this.physical()
    return pt > this.wall ? { wall: pt, logical: 0, node: this.node } : { wall: this.wall, logical: this.logical, node: this.node }
  }

  /** Merge a timestamp seen from another node so our next reading is larger than it. */
  update (remote: Timestamp | undefined): void {
    if (remote == null) return
    const pt = this.physical()
    if (remote.wall > pt + this.maxDrift) { this.rejected++; return }
    if (remote.wall > this.wall) {
      this.wall = remote.wall
      this.logical = remote.logical
    } else if (remote.wall === this.wall && remote.logical > this.logical) {
      this.logical = remote.logical
    }
  }
}

/** Total order of timestamps: wall, then logical, then node id. */
export function compareTimestamps (a: Timestamp | undefined, b: Timestamp | undefined): number {
  if (a == null || b == null) return a == null ? (b == null ? 0 : -1) : 1
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0
}

export function formatTimestamp (ts: Timestamp | undefined): string {
  return ts == null ? '-' : `${ts.wall}.${ts.logical}@${ts.node}`
}
