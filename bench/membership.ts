import { spawn, type ChildProcess } from 'node:child_process'
import { loadavg } from 'node:os'
import { createTestnet, type Testnet } from '../testnet/index.js'
import { machine, summarize, table, writeResult } from './util.js'
import { main as simMain } from './membership-sim.js'

/*
 * Membership on real `mesh start` processes (TCP on 127.0.0.1, libp2p streams, default settings), the
 * scenarios of memberlist's anchor benchmark (/work/shared/anchors/memberlist) so the figures can sit side by side:
 * join convergence, silent-crash (SIGSTOP) detection, SIGKILL detection, graceful leave, false deaths in
 * steady windows (idle, CPU hogs, a 1.5 s freeze) and the message rate per node. Then the simulation part
 * (bench/membership-sim.ts) unless --no-sim.
 *
 * Times come from the observers' own `stateSince` (the wall-clock ms at which each node recorded the change,
 * same machine so the same clock as ours), so they do not include our polling delay; polling at ~20 ms
 * only tells us when everyone has seen it. False deaths and suspicions come from each node's
 * meshos_membership_events_total counter, which also sees a suspicion refuted between two polls.
 *
 * Usage: npm run bench -- membership [--n 5,10,20] [--quick] [--trials 3] [--join-trials 3] [--window-s 60] [--no-sim] [--sim-args "..."]
 */

interface Member { peerId: string, state: string, incarnation: number, stateSince: string, self: boolean }

const POLL_MS = 20

function arg (args: string[], name: string): string | undefined {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** The machine is shared: an API call can stall for seconds under others' load, so retry before giving up. */
async function retry<T> (fn: () => Promise<T>, attempts = 3): Promise<T> {
  for (let k = 1; ; k++) {
    try { return await fn() } catch (err) { if (k >= attempts) throw err }
  }
}

async function members (net: Testnet, i: number): Promise<Member[]> {
  return await retry(async () => (await net.client(i, { timeout: 20_000 }).members()).members as Member[])
}

interface Counters { msgsOut: number, bytesOut: number, msgsIn: number, bytesIn: number, events: Record<string, number>, probes: Record<string, number> }

async function counters (net: Testnet, i: number): Promise<Counters> {
  const text = await retry(async () => await (await net.client(i, { timeout: 20_000 }).request('GET', '/metrics')).text())
  const c: Counters = { msgsOut: 0, bytesOut: 0, msgsIn: 0, bytesIn: 0, events: {}, probes: {} }
  for (const line of text.split('\n')) {
    const m = /^(meshos_membership_\w+)\{(\w+)="([^"]*)"\} (\S+)$/.exec(line)
    if (m == null) continue
    const [, name, , label, value] = m
    const v = Number(value)
    if (name === 'meshos_membership_messages_total') { if (label === 'sent') c.msgsOut = v; else c.msgsIn = v }
    if (name === 'meshos_membership_bytes_total') { if (label === 'sent') c.bytesOut = v; else c.bytesIn = v }
    if (name === 'meshos_membership_events_total') c.events[label] = v
    if (name === 'meshos_membership_probes_total') c.probes[label] = v
  }
  return c
}

async function allCounters (net: Testnet, nodes: number[]): Promise<Map<number, Counters>> {
  return new Map(await Promise.all(nodes.map(async i => [i, await counters(net, i)] as const)))
}

function delta (a: Map<number, Counters>, b: Map<number, Counters>, pick: (c: Counters) => number): number {
  let sum = 0
  for (const [i, cb] of b) { const ca = a.get(i); if (ca != null) sum += pick(cb) - pick(ca) }
  return sum
}

function running (net: Testnet): number[] {
  return net.nodes.map((_, i) => i).filter(i => net.isRunning(i))
}

/**
 * Polls every observer until each sees `subject` in a state accepted by `done`; returns, per observer, the time
 * (its stateSince) at which it recorded that state, relative to t0, plus the states seen on the way.
 */
async function watch (net: Testnet, observers: number[], subject: string, t0: number, done: (m: Member | undefined) => boolean, timeoutMs: number): Promise<{ times: number[], seen: Set<string>, firstSuspectPollMs: number, allSeenPollMs: number, missing: number }> {
  const times = new Map<number, number>()
  const seen = new Set<string>()
  let firstSuspectPollMs = NaN
  const deadline = Date.now() + timeoutMs
  while (times.size < observers.length && Date.now() < deadline) {
    const pending = observers.filter(i => !times.has(i))
    await Promise.all(pending.map(async i => {
      let m: Member | undefined
      try { m = (await members(net, i)).find(x => x.peerId === subject) } catch { return }
      if (m != null) seen.add(m.state)
      if (m?.state === 'suspect' && Number.isNaN(firstSuspectPollMs)) firstSuspectPollMs = Date.now() - t0
      if (done(m)) times.set(i, Date.parse(m!.stateSince) - t0)
    }))
    if (times.size < observers.length) await sleep(POLL_MS)
  }
  return { times: [...times.values()], seen, firstSuspectPollMs, allSeenPollMs: Date.now() - t0, missing: observers.length - times.size }
}

interface Dist { first: number, median: number, max: number, mean: number }
function dist (xs: number[]): Dist {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return { first: NaN, median: NaN, max: NaN, mean: NaN }
  return { first: s[0], median: s[Math.ceil(0.5 * s.length) - 1], max: s[s.length - 1], mean: s.reduce((a, b) => a + b, 0) / s.length }
}

/** Cores in use by the whole machine over `ms` (from /proc/stat), to flag disturbed runs. */
async function busyCores (ms: number): Promise<number> {
  const { readFile } = await import('node:fs/promises')
  const read = async (): Promise<[number, number]> => {
    const f = (await readFile('/proc/stat', 'utf8')).split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    const idle = f[3] + f[4]
    return [f.reduce((a, b) => a + b, 0), idle]
  }
  const [t1, i1] = await read()
  await sleep(ms)
  const [t2, i2] = await read()
  const cores = (await import('node:os')).cpus().length
  return cores * (1 - (i2 - i1) / Math.max(1, t2 - t1))
}

interface SteadyResult { windowS: number, settleS: number, deaths: number, suspects: number, alive: number, probeFailures: number, msgsPerNodePerS: number, bytesPerNodePerS: number, maxMsgsPerNodePerS: number, busyCores: number }

/** A steady window: counts deaths and suspicions (events about others) during window + settle. */
async function steady (net: Testnet, windowS: number, settleS: number, during?: () => Promise<void>): Promise<SteadyResult> {
  const nodes = running(net)
  const before = await allCounters(net, nodes)
  const t0 = Date.now()
  const busy = busyCores(windowS * 1000)
  await during?.()
  const busyCoresAvg = await busy
  const atEnd = await allCounters(net, nodes)
  const elapsedS = (Date.now() - t0) / 1000
  // A suspicion raised late in the window plays out in the settle time (its maximum timeout is ~7 s at N=20).
  await sleep(settleS * 1000)
  const after = await allCounters(net, nodes)
  const perNode = nodes.map(i => (atEnd.get(i)!.msgsOut - before.get(i)!.msgsOut) / elapsedS)
  return {
    windowS,
    settleS,
    deaths: delta(before, after, c => c.events.dead ?? 0),
    suspects: delta(before, after, c => c.events.suspect ?? 0),
    alive: delta(before, after, c => c.events.alive ?? 0),
    probeFailures: delta(before, after, c => c.probes.failed ?? 0),
    msgsPerNodePerS: delta(before, atEnd, c => c.msgsOut) / nodes.length / elapsedS,
    bytesPerNodePerS: delta(before, atEnd, c => c.bytesOut) / nodes.length / elapsedS,
    maxMsgsPerNodePerS: Math.max(...perNode),
    busyCores: busyCoresAvg
  }
}

function startHogs (count: number): ChildProcess[] {
  return Array.from({ length: count }, () => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }))
}

async function stopHogs (hogs: ChildProcess[]): Promise<void> {
  await Promise.all(hogs.map(async h => {
    if (h.exitCode != null || h.signalCode != null) return
    const exited = new Promise(resolve => h.once('exit', resolve))
    h.kill('SIGKILL')
    await exited
  }))
}

interface CrashTrial { victim: number, detect: Dist, firstSuspectPollMs: number, missing: number, refuteMs?: number, collateralDeaths: number }

interface SizeResult {
  n: number
  startupMs: number
  join: { fromJoinMs: Dist, trialsMaxMs: number[], fromSpawnMs: number, missing: number }
  steadyIdle: SteadyResult
  steadyHogs: SteadyResult & { hogs: number }
  freeze: Array<{ victim: number, freezeMs: number, deaths: number, suspects: number, victimSuspectedBy: number }>
  crash: CrashTrial[]
  crashAll: { first: Dist, median: Dist, max: Dist }
  kill: CrashTrial
  leave: { fromSigtermMs: Dist, sawDead: boolean, missing: number, seen: string[] }
  loadavgStart: number[]
}

async function waitAllAlive (net: Testnet, timeoutMs = 60_000): Promise<void> {
  const nodes = running(net)
  await net.waitFor(`all ${nodes.length} running nodes to see each other alive`, async () => {
    const views = await Promise.all(nodes.map(async i => await members(net, i)))
    const ids = new Set(nodes.map(i => net.nodes[i].peerId))
    return views.every(v => v.filter(m => ids.has(m.peerId) && m.state === 'alive').length === ids.size)
  }, timeoutMs, 100)
}

async function runSize (n: number, opts: { windowS: number, settleS: number, trials: number, freezeTrials: number, joinTrials: number, log: (s: string) => void }): Promise<SizeResult> {
  const { log } = opts
  const loadavgStart = loadavg()
  const tStart = Date.now()
  let net: Testnet | undefined
  // Other engineers rebuild dist/ while we run; a node spawned mid-rewrite fails to load a module. Retry.
  for (let attempt = 1; net === undefined; attempt++) {
    try {
      net = await createTestnet(n - 1, { logLevel: 'warn' })
    } catch (err) {
      if (attempt >= 3) throw err
      log(`N=${n}: testnet start failed (${(err as Error).message.split('\n')[0]}); retrying`)
      await sleep(5000)
    }
  }
  try {
    const startupMs = Date.now() - tStart
    log(`N=${n}: ${n - 1} nodes up in ${startupMs} ms`)
    // Let the start-up traffic (and the other subsystems' start-up) die down before the join is timed.
    await sleep(3000)

    // Join: one more node. t0 is the joiner's own membership start (its self stateSince), so node start-up
    // (libp2p, storage, keys) is not counted; from-spawn is reported too.
    const joiner = n - 1
    const tSpawn = Date.now()
    await net.startNode(joiner)
    const self = (await members(net, joiner)).find(m => m.self)!
    const tJoin = Date.parse(self.stateSince)
    const observers = Array.from({ length: n - 1 }, (_, i) => i)
    const jw = await watch(net, observers, net.nodes[joiner].peerId, tJoin, m => m?.state === 'alive', 30_000)
    const joinTimes = [...jw.times]
    const trialsMaxMs = [Math.max(...jw.times)]
    let joinMissing = jw.missing
    // More joins of the same node: a graceful leave, then a fresh start (a higher incarnation), timed the same way.
    for (let trial = 1; trial < opts.joinTrials; trial++) {
      await net.stopNode(joiner)
      await watch(net, observers, net.nodes[joiner].peerId, Date.now(), m => m?.state === 'left', 30_000)
      await sleep(1000)
      await net.startNode(joiner)
      const me = (await members(net, joiner)).find(m => m.self)!
      const t0 = Date.parse(me.stateSince)
      const w = await watch(net, observers, net.nodes[joiner].peerId, t0, m => m?.state === 'alive', 30_000)
      joinTimes.push(...w.times)
      trialsMaxMs.push(Math.max(...w.times))
      joinMissing += w.missing
    }
    const join = { fromJoinMs: dist(joinTimes), trialsMaxMs, fromSpawnMs: Math.max(...jw.times) + tJoin - tSpawn, missing: joinMissing }
    log(`N=${n}: join seen by all after ${trialsMaxMs.join(', ')} ms in ${trialsMaxMs.length} trial(s), from the joiner's membership start (first trial ${join.fromSpawnMs} ms after spawn)`)
    await waitAllAlive(net)
    await sleep(3000)

    const steadyIdle = await steady(net, opts.windowS, opts.settleS, async () => { await sleep(opts.windowS * 1000) })
    log(`N=${n}: idle ${opts.windowS} s: ${steadyIdle.deaths} deaths, ${steadyIdle.suspects} suspects, ${steadyIdle.msgsPerNodePerS.toFixed(2)} msg/node/s`)

    const hogCount = 4
    let hogs: ChildProcess[] = []
    const steadyHogs = {
      hogs: hogCount,
      ...await steady(net, opts.windowS, opts.settleS, async () => {
        hogs = startHogs(hogCount)
        try { await sleep(opts.windowS * 1000) } finally { await stopHogs(hogs) }
      })
    }
    log(`N=${n}: ${hogCount} CPU hogs ${opts.windowS} s: ${steadyHogs.deaths} deaths, ${steadyHogs.suspects} suspects (busy cores ${steadyHogs.busyCores.toFixed(2)})`)
    await waitAllAlive(net)

    // A 1.5 s stall (GC, swapped out, VM steal): may be suspected, must not be declared dead.
    const freeze: SizeResult['freeze'] = []
    for (let k = 0; k < opts.freezeTrials; k++) {
      const victim = 1 + (k % (n - 1))
      const nodes = running(net)
      const before = await allCounters(net, nodes)
      net.freeze(victim)
      const tf = Date.now()
      await sleep(1500)
      net.resume(victim)
      const freezeMs = Date.now() - tf
      // The longest suspicion timeout (~7 s at N=20) plus room: a death would have happened by then.
      await sleep(opts.settleS * 1000)
      const after = await allCounters(net, nodes)
      const deaths = delta(before, after, c => c.events.dead ?? 0)
      const suspects = delta(before, after, c => c.events.suspect ?? 0)
      const victimSuspectedBy = nodes.filter(i => i !== victim && (after.get(i)!.events.suspect ?? 0) > (before.get(i)!.events.suspect ?? 0)).length
      freeze.push({ victim, freezeMs, deaths, suspects, victimSuspectedBy })
      log(`N=${n}: freeze node ${victim} ${freezeMs} ms: ${deaths} deaths, ${suspects} suspects`)
      await waitAllAlive(net)
    }

    // Silent crash: SIGSTOP for good (until everyone has declared it dead), then resume and let it refute.
    const crash: CrashTrial[] = []
    for (let k = 0; k < opts.trials; k++) {
      const victim = 1 + ((k + opts.freezeTrials) % (n - 1))
      crash.push(await crashTrial(net, victim, 'SIGSTOP'))
      const c = crash[crash.length - 1]
      log(`N=${n}: SIGSTOP node ${victim}: dead first/median/max ${c.detect.first}/${c.detect.median}/${c.detect.max} ms, refuted in ${c.refuteMs} ms`)
      await waitAllAlive(net)
      await sleep(2000)
    }

    const killVictim = 1 + ((opts.trials + opts.freezeTrials) % (n - 1))
    const kill = await crashTrial(net, killVictim, 'SIGKILL')
    log(`N=${n}: SIGKILL node ${killVictim}: dead first/median/max ${kill.detect.first}/${kill.detect.median}/${kill.detect.max} ms`)
    await sleep(2000)

    // Graceful leave, timed from SIGTERM (the node stops its API and subsystems first, then leaves).
    const leaver = 1 + ((opts.trials + opts.freezeTrials + 1) % (n - 1))
    const stay = running(net).filter(i => i !== leaver)
    const subject = net.nodes[leaver].peerId
    const tl = Date.now()
    const stopping = net.stopNode(leaver)
    const lw = await watch(net, stay, subject, tl, m => m?.state === 'left' || m?.state === 'dead', 30_000)
    await stopping
    const leave = { fromSigtermMs: dist(lw.times), sawDead: lw.seen.has('dead'), missing: lw.missing, seen: [...lw.seen] }
    log(`N=${n}: leave seen by all ${leave.fromSigtermMs.max} ms after SIGTERM (states seen: ${leave.seen.join(',')})`)

    const crashAll = { first: dist(crash.map(c => c.detect.first)), median: dist(crash.map(c => c.detect.median)), max: dist(crash.map(c => c.detect.max)) }
    return { n, startupMs, join, steadyIdle, steadyHogs, freeze, crash, crashAll, kill, leave, loadavgStart }
  } finally {
    await net.stop()
  }
}

async function crashTrial (net: Testnet, victim: number, signal: 'SIGSTOP' | 'SIGKILL'): Promise<CrashTrial> {
  const survivors = running(net).filter(i => i !== victim)
  const subject = net.nodes[victim].peerId
  const before = await allCounters(net, survivors)
  const incarnation = Math.max(...(await Promise.all(survivors.map(async i => (await members(net, i)).find(m => m.peerId === subject)?.incarnation ?? 0))))
  const t0 = Date.now()
  if (signal === 'SIGSTOP') net.freeze(victim)
  else void net.kill(victim, 'SIGKILL')
  const w = await watch(net, survivors, subject, t0, m => m?.state === 'dead', 60_000)
  const after = await allCounters(net, survivors)
  const trial: CrashTrial = { victim, detect: dist(w.times), firstSuspectPollMs: w.firstSuspectPollMs, missing: w.missing, collateralDeaths: delta(before, after, c => c.events.dead ?? 0) - (survivors.length - w.missing) }
  if (signal === 'SIGSTOP') {
    const tr = Date.now()
    net.resume(victim)
    const r = await watch(net, survivors, subject, tr, m => m?.state === 'alive' && m.incarnation > incarnation, 30_000)
    trial.refuteMs = dist(r.times).max
  }
  return trial
}

export async function main (args: string[]): Promise<void> {
  const quick = args.includes('--quick')
  const sizes = (arg(args, '--n') ?? '5,10,20').split(',').map(Number)
  const windowS = Number(arg(args, '--window-s') ?? (quick ? 15 : 60))
  const trials = Number(arg(args, '--trials') ?? (quick ? 2 : 3))
  const freezeTrials = Number(arg(args, '--freeze-trials') ?? (quick ? 1 : 3))
  const joinTrials = Number(arg(args, '--join-trials') ?? (quick ? 1 : 3))
  const settleS = Number(arg(args, '--settle-s') ?? 10)
  const log = (s: string): void => { process.stderr.write(`[membership ${new Date().toISOString().slice(11, 23)}] ${s}\n`) }

  const results: SizeResult[] = []
  for (const n of sizes) {
    log(`N=${n}: starting (loadavg ${loadavg().map(x => x.toFixed(2)).join(' ')})`)
    results.push(await runSize(n, { windowS, settleS, trials, freezeTrials, joinTrials, log }))
    // Written after every size, so a later failure does not lose what was measured.
    await writeResult('membership', { args, quick, windowS, settleS, trials, freezeTrials, joinTrials, pollMs: POLL_MS, partial: results.length < sizes.length, results })
  }

  const f = (x: number): string => Number.isFinite(x) ? String(Math.round(x)) : '-'
  const d = (x: Dist): string => `${f(x.first)} / ${f(x.median)} / ${f(x.max)}`
  process.stdout.write(`\nmembership, real processes (mesh start, TCP 127.0.0.1, default settings); times in ms\n\n`)
  process.stdout.write(table(
    ['N', 'join: seen by all (first / median / max)', `SIGSTOP → dead, ${trials} trials: max over survivors (min / median / max of trials)`, 'SIGSTOP: first / median survivor (median of trials)', 'SIGKILL → dead (first / median / max)', 'leave from SIGTERM (first / median / max)', 'leave ever dead'],
    results.map(r => [String(r.n), d(r.join.fromJoinMs), d(r.crashAll.max), `${f(r.crashAll.first.median)} / ${f(r.crashAll.median.median)}`, d(r.kill.detect), d(r.leave.fromSigtermMs), r.leave.sawDead ? 'YES' : 'no'])
  ) + '\n\n')
  process.stdout.write(table(
    ['N', `idle ${windowS} s: dead / suspect`, `4 CPU hogs ${windowS} s: dead / suspect (busy cores)`, `1.5 s freeze ×${freezeTrials}: dead / suspect`, 'msg/node/s (max node)', 'B/node/s'],
    results.map(r => [
      String(r.n),
      `${r.steadyIdle.deaths} / ${r.steadyIdle.suspects}`,
      `${r.steadyHogs.deaths} / ${r.steadyHogs.suspects} (${r.steadyHogs.busyCores.toFixed(1)})`,
      `${r.freeze.reduce((a, x) => a + x.deaths, 0)} / ${r.freeze.reduce((a, x) => a + x.suspects, 0)}`,
      `${r.steadyIdle.msgsPerNodePerS.toFixed(2)} (${r.steadyIdle.maxMsgsPerNodePerS.toFixed(2)})`,
      f(r.steadyIdle.bytesPerNodePerS)
    ])
  ) + '\n')
  const file = await writeResult('membership', { args, quick, windowS, settleS, trials, freezeTrials, joinTrials, pollMs: POLL_MS, machine: machine(), summary: results.map(r => ({ n: r.n, crashMaxMs: summarize(r.crash.map(c => c.detect.max)) })), results })
  process.stdout.write(`wrote ${file}\n`)

  if (!args.includes('--no-sim')) {
    process.stdout.write('\nmembership simulation (bench/membership-sim.ts, 1 ms links)\n\n')
    const simArgs = arg(args, '--sim-args')?.split(' ').filter(s => s !== '') ?? (quick ? ['--window-s', '10'] : [])
    await simMain(simArgs)
  }
}
