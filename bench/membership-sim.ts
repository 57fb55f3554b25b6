import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { second } from '../lib/units.js'
import { Simulation, type SimNode } from '../membership/sim.js'
import type { MembershipEventName } from '../membership/types.js'

/**
 * Simulation benchmark of the membership protocol at N = 10, 100, 1000 on 1 ms links:
 * join, crash and leave propagation, and the steady-state message and byte rate per node.
 *
 * Usage: node dist/bench/membership-sim.js [--sizes 10,100,1000] [--seed 1] [--window-s 60]
 */

export interface SizeResult {
  n: number
  convergeMs: number
  joinMs: { median: number, max: number }
  crashDetectMs: { first: number, median: number, max: number, undetected: number }
  /** Crash until the first survivor suspected it. */
  firstSuspectMs: number
  leaveMs: { median: number, max: number, sawDead: number }
  falseDeaths: number
  windowS: number
  msgsPerNodePerS: number
  bytesPerNodePerS: number
  maxMsgsPerNodePerS: number
  wallMs: number
}

function quantiles (xs: number[]): { first: number, median: number, max: number } {
  if (xs.length === 0) return { first: NaN, median: NaN, max: NaN }
  const s = xs.map(Math.round).sort((a, b) => a - b)
  return { first: s[0], median: s[Math.floor((s.length - 1) / 2)], max: s[s.length - 1] }
}

/** Time from `start` until each node in `nodes` (except the subject) sees the given event. */
function watch (nodes: SimNode[], subject: string, event: MembershipEventName, sim: Simulation): Map<string, number> {
  const seen = new Map<string, number>()
  for (const n of nodes) {
    if (n.id === subject) continue
    n.membership.events.on(event, ({ member }) => {
      if (member.peerId === subject && !seen.has(n.id)) seen.set(n.id, sim.clock.now())
    })
  }
  return seen
}

export async function runSize (n: number, seed: number, windowS: number): Promise<SizeResult> {
  const wallStart = performance.now()
  const sim = new Simulation({ seed })
  let falseDeaths = 0
  const victims = new Set<string>()
  const countFalse = (node: SimNode): void => {
    node.membership.events.on('dead', ({ member }) => { if (!victims.has(member.peerId)) falseDeaths++ })
  }
  // Joins spread over a few seconds, as a cluster that is brought up by a deploy would.
  const nodes = sim.addNodes(n, { staggerMs: Math.min(5 * second, n * 10) })
  for (const node of nodes) countFalse(node)
  const t0 = sim.clock.now()
  const ok = sim.runUntil(() => sim.converged(sim.nodes), 120 * second, 100)
  if (!ok) throw new Error(`N=${n} did not converge`)
  const convergeMs = sim.clock.now() - t0
  sim.run(10 * second)

  // Steady state.
  sim.resetCounters()
  sim.run(windowS * second)
  const totals = sim.totals()
  const perNode = sim.nodes.map(x => x.counters.messagesSent / windowS)
  const msgsPerNodePerS = totals.messagesSent / n / windowS
  const bytesPerNodePerS = totals.bytesSent / n / windowS

  // A join.
  const joiner = sim.addNode({ seeds: [sim.nodes[1].addr] })
  countFalse(joiner)
  const joinSeen = watch(sim.live(), joiner.id, 'join', sim)
  const tj = sim.clock.now()
  joiner.membership.start()
  sim.runUntil(() => joinSeen.size >= sim.live().length - 1, 10 * second, 5)
  const joinQ = quantiles([...joinSeen.values()].map(t => t - tj))
  sim.run(5 * second)

  // A silent crash.
  const victim = sim.nodes[Math.floor(n / 2)]
  victims.add(victim.id)
  const survivors = sim.live().filter(x => x.id !== victim.id)
  const deadSeen = watch(survivors, victim.id, 'dead', sim)
  const suspectSeen = watch(survivors, victim.id, 'suspect', sim)
  const tc = sim.clock.now()
  sim.crash(victim.id)
  sim.runUntil(() => deadSeen.size >= survivors.length, 60 * second, 5)
  const crashQ = quantiles([...deadSeen.values()].map(t => t - tc))
  const firstSuspectMs = quantiles([...suspectSeen.values()].map(t => t - tc)).first
  sim.run(5 * second)

  // A graceful leave.
  const leaver = sim.nodes[Math.floor(n / 3) + 1]
  victims.add(leaver.id)
  const stay = sim.live().filter(x => x.id !== leaver.id)
  const leftSeen = watch(stay, leaver.id, 'left', sim)
  const deadLeaver = watch(stay, leaver.id, 'dead', sim)
  const tl = sim.clock.now()
  void sim.leave(leaver.id)
  sim.runUntil(() => leftSeen.size >= stay.length, 30 * second, 5)
  const leaveQ = quantiles([...leftSeen.values()].map(t => t - tl))
  sim.run(5 * second)
  sim.stop()

  return {
    n,
    convergeMs,
    joinMs: { median: joinQ.median, max: joinQ.max },
    crashDetectMs: { ...crashQ, undetected: survivors.length - deadSeen.size },
    firstSuspectMs,
    leaveMs: { median: leaveQ.median, max: leaveQ.max, sawDead: deadLeaver.size },
    falseDeaths,
    windowS,
    msgsPerNodePerS,
    bytesPerNodePerS,
    maxMsgsPerNodePerS: Math.max(...perNode),
    wallMs: Math.round(performance.now() - wallStart)
  }
}

function arg (args: string[], name: string): string | undefined {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}

export async function main (args: string[]): Promise<void> {
  const sizes = (arg(args, '--sizes') ?? '10,100,1000').split(',').map(Number)
  const seed = Number(arg(args, '--seed') ?? 1)
  const windowArg = arg(args, '--window-s')
  const results: SizeResult[] = []
  for (const n of sizes) {
    // The big cluster gets a shorter window so the whole run stays within a couple of minutes.
    const windowS = windowArg !== undefined ? Number(windowArg) : n >= 1000 ? 20 : 60
    results.push(await runSize(n, seed, windowS))
  }
  const rows = results.map(r => [
    String(r.n),
    (r.convergeMs / 1000).toFixed(1),
    `${r.joinMs.median}/${r.joinMs.max}`,
    `${r.crashDetectMs.first}/${r.crashDetectMs.median}/${r.crashDetectMs.max}`,
    `${r.leaveMs.median}/${r.leaveMs.max}`,
    String(r.falseDeaths),
    r.msgsPerNodePerS.toFixed(2),
    r.maxMsgsPerNodePerS.toFixed(2),
    Math.round(r.bytesPerNodePerS).toString(),
    (r.wallMs / 1000).toFixed(1)
  ])
  const head = ['N', 'converge s', 'join ms med/max', 'crash→dead ms first/med/max', 'leave ms med/max', 'false dead', 'msg/node/s', 'max msg/node/s', 'B/node/s', 'wall s']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i])).join('  ')
  process.stdout.write(line(head) + '\n' + rows.map(line).join('\n') + '\n')
  const here = dirname(fileURLToPath(import.meta.url))
  // Compiled to dist/bench; results go next to the source, in bench/results.
  const out = join(here, '..', '..', 'bench', 'results', 'membership-sim.json')
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, JSON.stringify({ seed, linkDelayMs: 1, results }, null, 2) + '\n')
  process.stdout.write(`wrote ${out}\n`)
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch(err => {
    console.error(err)
    process.exit(1)
  })
}
