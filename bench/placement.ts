// Placement balance by vnode count: `npm run build && node dist/bench/placement.js [nodes] [keys]`.
import { Ring } from '../storage/placement.js'

const nodes = Number(process.argv[2] ?? 20)
const keys = Number(process.argv[3] ?? 100_000)
const members = Array.from({ length: nodes }, (_, i) => `12D3KooWpeer${i}`)
for (const vnodes of [16, 64, 128, 256, 512]) {
  const ring = new Ring(members, { vnodes })
  const counts = new Map<string, number>(members.map(m => [m, 0]))
  const started = performance.now()
  for (let i = 0; i < keys; i++) for (const r of ring.replicas(`key-${i}`, 3)) counts.set(r, (counts.get(r) ?? 0) + 1)
  const ms = performance.now() - started
  const mean = (keys * 3) / nodes
  const max = Math.max(...counts.values()) / mean
  const min = Math.min(...counts.values()) / mean
  console.log(`vnodes=${vnodes}\tmax/mean=${max.toFixed(3)}\tmin/mean=${min.toFixed(3)}\t${(ms * 1000 / keys).toFixed(1)} µs/lookup`)
}
