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
  /**
   * The victim's queue, head (next to start) first: cpu, memory (MiB) and tags of each task, and whether the victim
   * itself can ever run it (`local`: false for a task that waits for a larger or tagged node). A `pinned` task is not
   * handed over at all (a write of its record is still in flight). @default local true, pinned false
   */
  queue: Array<{ cpu: number, mem?: number, tags: string[], local?: boolean, pinned?: boolean }>
  /** The victim's slots and how many are free now. */
  slots: number
  freeSlots: number
  /** Mean task run time on the victim (ms). */
  taskDuration: number
  /** The thief: its slots, free slots, tags, memory (MiB; 0 or absent: not advertised) and the cost of a hand-over (ms). */
  thief: { slots: number, freeSlots: number, tags: string[], mem?: number, costMs: number }
  /** @default STEAL_MAX_BATCH */
  maxBatch?: number
}

/**
 * Which queued tasks (indices into the queue) a victim hands to a thief, Cilk style: the thief's fair share of the
 * backlog — the tasks that will not start at once on the victim — in proportion to its slots against the victim's
 * (half, between equal nodes), so that a few steals spread a large batch instead of a trickle that keeps every thief
 * coming back. From the tail — the tasks the victim would start last — and only tasks the thief can run. A task that
 * would start on the victim before the hand-over could complete (its wait is below the thief's cost) stays, so a steal
 * never makes a task later, and a short backlog is not moved back and forth: such a steal is refused. Tasks the victim
 * cannot run at all go first, whatever the share.
 */
export function planSteal (input: StealPlanInput): number[] {
  const { queue, slots, thief } = input
  if (queue.length === 0 || thief.freeSlots <= 0) return []
  const max = input.maxBatch ?? C.STEAL_MAX_BATCH
  const fits = (t: { cpu: number, mem?: number, tags: string[], pinned?: boolean }): boolean =>
    t.pinned !== true && t.cpu <= thief.slots && ((thief.mem ?? 0) <= 0 || (t.mem ?? 0) <= (thief.mem as number)) && t.tags.every(x => thief.tags.includes(x))
  // A node without slots never starts anything: nothing it holds is its own to run.
  const local = (t: { local?: boolean }): boolean => slots > 0 && t.local !== false
  const out: number[] = []
  for (let i = queue.length - 1; i >= 0 && out.length < max; i--) if (!local(queue[i]) && fits(queue[i])) out.push(i)
  // cpu of the victim's own tasks ahead of each, so the wait of each is known without a quadratic pass.
  const ahead: number[] = []
  let sum = 0
  let own = 0
  for (const t of queue) { ahead.push(sum); if (local(t)) { sum += t.cpu; own++ } }
  const backlog = Math.max(0, own - Math.max(0, input.freeSlots))
  const share = Math.ceil(backlog * thief.slots / (slots + thief.slots))
  const limit = Math.min(max, out.length + share)
  for (let i = queue.length - 1; i >= 0 && out.length < limit; i--) {
    const t = queue[i]
    if (!local(t) || !fits(t)) continue
    // Tasks ahead of it drain through the victim's slots: a rough wait, good enough to refuse a steal that would not
    // pay off. From the tail on, waits only shrink: once one is too short, so are the rest.
    const waves = Math.max(0, Math.ceil((ahead[i] + t.cpu - input.freeSlots) / slots))
    if (waves * input.taskDuration <= thief.costMs) break
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
