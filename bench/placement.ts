// `npm run bench -- placement [nodes] [keys]`: balance by vnode count, and what joins cost a lookup (a write's
// targets) and a node when they start or end (building the placement), against a plain ring lookup in the same run.
import { Ring, Placement } from '../storage/placement.js'
import { machine, table, writeResult } from './util.js'

export async function main (args: string[]): Promise<void> {
  const nodes = Number(args[0] ?? 20)
  const keys = Number(args[1] ?? 100_000)
  const members = Array.from({ length: nodes }, (_, i) => `12D3KooWpeer${i}`)
  const keyList = Array.from({ length: keys }, (_, i) => `key-${i}`)

  const balance: Array<{ vnodes: number, maxOverMean: number, minOverMean: number, usPerLookup: number }> = []
  for (const vnodes of [16, 64, 128, 256, 512]) {
    const ring = new Ring(members, { vnodes })
    const counts = new Map<string, number>(members.map(m => [m, 0]))
    for (const k of keyList) ring.replicas(k, 3) // the keys' tokens are cached from here on: lookups alone are timed
    const started = performance.now()
    for (const k of keyList) for (const r of ring.replicas(k, 3)) counts.set(r, (counts.get(r) ?? 0) + 1)
    const ms = performance.now() - started
    const mean = (keys * 3) / nodes
    balance.push({ vnodes, maxOverMean: Math.max(...counts.values()) / mean, minOverMean: Math.min(...counts.values()) / mean, usPerLookup: ms * 1000 / keys })
  }
  console.log(table(['vnodes', 'max/mean', 'min/mean', 'µs/lookup'], balance.map(b => [String(b.vnodes), b.maxOverMean.toFixed(3), b.minOverMean.toFixed(3), b.usPerLookup.toFixed(2)])))

  // Joins: the same members, some of them joining, at the default 256 vnodes.
  const full = Ring.of(members)
  const lookup = (fn: (k: string) => unknown): number => {
    const started = performance.now()
    for (const k of keyList) fn(k)
    return (performance.now() - started) * 1000 / keys
  }
  for (const k of keyList) full.replicas(k, 3)
  const plain = lookup(k => full.replicas(k, 3))
  const joins: Array<{ joining: number, buildMs: number, usPerTargets: number, overPlainLookup: number, joinerRangesMs: number }> = []
  for (const joining of [0, 1, Math.min(5, nodes - 1), Math.floor(nodes / 2)]) {
    const started = performance.now()
    const p = new Placement(full, members.slice(0, joining))
    p.targets('warm')
    const buildMs = performance.now() - started
    const us = lookup(k => p.targets(k, 3))
    const rangesStarted = performance.now()
    if (joining > 0) p.rangesOf(members[0])
    joins.push({ joining, buildMs, usPerTargets: us, overPlainLookup: us / plain, joinerRangesMs: joining > 0 ? performance.now() - rangesStarted : 0 })
  }
  console.log(table(['joining', 'placement build ms', 'µs/targets', '÷ plain lookup', 'a joiner\'s ranges ms'],
    joins.map(j => [String(j.joining), j.buildMs.toFixed(1), j.usPerTargets.toFixed(2), j.overPlainLookup.toFixed(2), j.joinerRangesMs.toFixed(1)])))
  console.log(`plain ring lookup ${plain.toFixed(2)} µs; ${nodes} nodes, ${keys} keys, RF 3`)
  const file = await writeResult('placement', { machine: machine(), nodes, keys, balance, plainLookupUs: plain, joins })
  console.log(`written to ${file}`)
}
