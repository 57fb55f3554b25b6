import type { Random } from '../lib/clock.js'
import * as C from './constants.js'

/** A member as a thief sees it: advertised (or freshly reported) slots and load. */
export interface PeerLoad {
  peerId: string
  /** Slots; 0 for a node that may not run commands. */
  capacity: number
  /** Queued + running. */
  load: number
}

/** Queued tasks a member holds beyond what its slots are running. */
export function backlogOf (p: PeerLoad): number { return Math.max(0, p.load - p.capacity) }

/**
 * Picks a victim at random among the most loaded members with a backlog (Ray/Dask style). Random among the top few,
 * not the single most loaded, so that several idle thieves spread over victims instead of queueing on one.
 */
export function chooseVictim (peers: PeerLoad[], self: string, random: Random, candidates = C.VICTIM_CANDIDATES): string | undefined {
  const loaded = peers.filter(p => p.peerId !== self && backlogOf(p) > 0).sort((a, b) => backlogOf(b) - backlogOf(a) || (a.peerId < b.peerId ? -1 : 1))
  if (loaded.length === 0) return undefined
  // Among the most loaded only: a member with a fraction of the largest backlog is not worth a hop while a big one waits.
  const max = backlogOf(loaded[0])
  const top = loaded.slice(0, candidates).filter(p => backlogOf(p) * 2 >= max)
  return top[Math.floor(random() * top.length)].peerId
}

export interface StealPlanInput {
  /** The victim's queue, head (next to start) first; cpu and tags of each task. */
  queue: Array<{ cpu: number, tags: string[] }>
  /** The victim's slots and how many are free now. */
  slots: number
  freeSlots: number
  /** Mean task run time on the victim (ms). */
  taskDuration: number
  thief: { slots: number, freeSlots: number, tags: string[], costMs: number }
}

/**
 * Which queued tasks (indices into the queue) a victim hands to a thief. From the tail — the tasks the victim would
 * start last — and only tasks the thief can run, and only as many as even out the expected finish: the thief takes
 * its share of the backlog in proportion to its free slots. A task that would start on the victim before the hand-over
 * could complete (its wait is below the thief's cost) stays, so a steal never makes a task later, and a short backlog
 * is not moved back and forth.
 */
export function planSteal (input: StealPlanInput): number[] {
  const { queue, slots, thief } = input
  if (queue.length === 0 || thief.freeSlots <= 0) return []
  const tagsOk = (t: string[]): boolean => t.every(x => thief.tags.includes(x))
  // A node without slots never starts anything: all its fitting tasks should go.
  const share = slots <= 0
    ? queue.length
    : Math.floor(queue.length * thief.freeSlots / (slots + thief.freeSlots))
  const max = Math.min(Math.max(share, 1), thief.freeSlots * C.STEAL_BATCH_PER_SLOT)
  const out: number[] = []
  for (let i = queue.length - 1; i >= 0 && out.length < max; i--) {
    const t = queue[i]
    if (t.cpu > thief.slots || !tagsOk(t.tags)) continue
    if (slots > 0) {
      // Tasks ahead of it (cpu-weighted) drain through the victim's slots: a rough wait, good enough to refuse a steal
      // that would not pay off.
      let ahead = 0
      for (let j = 0; j < i; j++) ahead += queue[j].cpu
      const waves = Math.max(0, Math.ceil((ahead + t.cpu - input.freeSlots) / slots))
      const wait = waves * input.taskDuration
      if (wait <= thief.costMs) break
    }
    out.push(i)
  }
  return out
}

/**
 * The survivor that adopts a dead holder's tasks: the first of the live members in peer-id order. Every node computes
 * the same answer from the same view; when views differ briefly, the attempt guard keeps a task from being recorded
 * twice (see TaskManager).
 */
export function adopterFor (live: string[]): string | undefined {
  return [...live].sort()[0]
}

/** Exponentially weighted mean: recent runs count more, one outlier does not swing the estimate. */
export function ewma (previous: number | undefined, sample: number, weight = 0.2): number {
  return previous == null ? sample : previous * (1 - weight) + sample * weight
}
