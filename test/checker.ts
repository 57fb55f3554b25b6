/**
 * A Jepsen-style history checker for the KV store, partitioned per key. Operations from several clients are recorded
 * with invoke/complete times (ms, one process clock) and results; check() reports every violation it finds of:
 *
 * - durability: every write acknowledged at quorum is present in the final state unless a write with a higher
 *   timestamp replaced it (the final state is read at quorum after the mesh healed);
 * - read-your-writes and monotonic reads, per client and key, for quorum reads;
 * - for quorum reads with no concurrent writer of the key (a write whose outcome is unknown counts as concurrent
 *   with everything after its invocation), the read returns the latest completed quorum write (or not-found when
 *   there was none).
 */

export interface Ts { wall: number, logical: number, node: string }

export type Op =
  | { type: 'write', client: number, key: string, value: string, invoke: number, complete: number, ok: boolean, ts?: Ts, consistency: string }
  | { type: 'read', client: number, key: string, value: string | null, invoke: number, complete: number, ok: boolean, ts?: Ts, consistency: string }

export function parseTs (s: string | null | undefined): Ts | undefined {
  if (s == null || s === '') return undefined
  const m = /^(\d+)\.(\d+)@(.+)$/.exec(s)
  return m == null ? undefined : { wall: Number(m[1]), logical: Number(m[2]), node: m[3] }
}

export function cmpTs (a: Ts | undefined, b: Ts | undefined): number {
  if (a == null || b == null) return a == null ? (b == null ? 0 : -1) : 1
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0
}

export class History {
  readonly ops: Op[] = []
  private readonly t0 = performance.now()
  now (): number { return performance.now() - this.t0 }
  add (op: Op): void { this.ops.push(op) }
}

export interface CheckResult {
  ops: number
  keys: number
  acknowledgedWrites: number
  checkedReads: number
  strictReads: number
  violations: string[]
}

/** `final`: key → the value and timestamp read at quorum after the run (null when not found). */
export function check (ops: Op[], final: Map<string, { value: string | null, ts?: Ts }>): CheckResult {
  const violations: string[] = []
  const byKey = new Map<string, Op[]>()
  for (const op of ops) {
    let l = byKey.get(op.key)
    if (l == null) byKey.set(op.key, l = [])
    l.push(op)
  }
  let acknowledged = 0
  let checkedReads = 0
  let strict = 0
  for (const [key, list] of byKey) {
    const writes = list.filter(o => o.type === 'write')
    const acked = writes.filter(w => w.ok && w.consistency === 'quorum')
    acknowledged += acked.length
    const valueTs = new Map<string, Ts | undefined>()
    for (const w of writes) if (w.ok) valueTs.set(w.value, w.ts)

    // Durability.
    const f = final.get(key)
    for (const w of acked) {
      if (f == null || f.value == null || f.ts == null) {
        violations.push(`${key}: acknowledged write ${w.value} (ts ${JSON.stringify(w.ts)}) is missing at the end (final: not found)`)
      } else if (f.value !== w.value && cmpTs(f.ts, w.ts) < 0) {
        violations.push(`${key}: acknowledged write ${w.value} lost; final value ${f.value} has older timestamp ${JSON.stringify(f.ts)} < ${JSON.stringify(w.ts)}`)
      }
    }

    // Per client: read-your-writes and monotonic reads (quorum reads only).
    const clients = new Set(list.map(o => o.client))
    for (const c of clients) {
      let floor: Ts | undefined
      let floorWhat = ''
      const mine = list.filter(o => o.client === c && o.ok).sort((a, b) => a.invoke - b.invoke)
      for (const o of mine) {
        if (o.consistency !== 'quorum') continue
        if (o.type === 'write') {
          if (cmpTs(o.ts, floor) > 0) { floor = o.ts; floorWhat = `its write ${o.value}` }
          continue
        }
        checkedReads++
        if (floor != null && cmpTs(o.ts, floor) < 0) {
          violations.push(`${key}: client ${c} read ${o.value ?? 'not-found'} (ts ${JSON.stringify(o.ts)}) at ${o.invoke.toFixed(0)} ms after ${floorWhat} (ts ${JSON.stringify(floor)})`)
        }
        if (cmpTs(o.ts, floor) > 0) { floor = o.ts; floorWhat = `an earlier read of ${o.value}` }
      }
    }

    // Reads without concurrent writers see the latest completed write.
    for (const r of list) {
      if (r.type !== 'read' || !r.ok || r.consistency !== 'quorum') continue
      const concurrent = writes.some(w => w.invoke < r.complete && (!w.ok || w.complete > r.invoke))
      if (concurrent) continue
      strict++
      const before = writes.filter(w => w.ok && w.complete <= r.invoke)
      let latest: Op | undefined
      for (const w of before) if (latest == null || cmpTs(w.ts, latest.ts) > 0) latest = w
      const expected = latest?.value ?? null
      if (r.value !== expected) {
        violations.push(`${key}: read at ${r.invoke.toFixed(0)}-${r.complete.toFixed(0)} ms by client ${r.client} returned ${r.value ?? 'not-found'}, the latest completed write is ${expected ?? 'none'}`)
      }
    }
  }
  return { ops: ops.length, keys: byKey.size, acknowledgedWrites: acknowledged, checkedReads, strictReads: strict, violations }
}
