// `npm run bench -- tasks [--slots N]`: distributed tasks on a local 4-node testnet (all tasks submitted to node 0, as
// one batch): scheduling overhead, throughput of empty tasks, makespan against the ideal for 1,000 tasks of 10 ms and
// for a skewed mix (90% 10 ms, 10% 1 s), and recovery time after a node freeze.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createTestnet, type Testnet } from '../testnet/index.js'
import { summarize, table, writeResult } from './util.js'

interface Status {
  id: string
  state: string
  node: string
  attempts: Array<{ node: string, start: number, end: number | null, exitCode: number | null }>
  submittedAt: number
  updatedAt: number
}

const NODES = 4

function statCpu (pid: number): { self: number, children: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  // Fields 14-17 of stat(5), counted from the state field (3rd) here; in clock ticks of 10 ms.
  return { self: (Number(f[11]) + Number(f[12])) * 10, children: (Number(f[13]) + Number(f[14])) * 10 }
}

/**
 * CPU time (ms) of a daemon so far: its own (utime + stime) with that of its process launcher (tasks/launcher.ts), a
 * live child whose time its parent's counters do not hold yet; and that of the children they have reaped (cutime +
 * cstime), which are the tasks' processes. So the split is scheduling work against the tasks' own.
 */
function cpuOf (pid: number): { self: number, children: number } {
  try {
    const own = statCpu(pid)
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(x => x !== '').map(Number)
    for (const k of kids) {
      try {
        if (!readFileSync(`/proc/${k}/cmdline`, 'utf8').includes('launcher-process')) continue
        const l = statCpu(k)
        own.self += l.self
        own.children += l.children
      } catch {}
    }
    return own
  } catch {
    return { self: NaN, children: NaN }
  }
}

/** Waits until no node holds a task (cheap), then reads every record (a scan) until all of `ids` have ended. */
async function waitAll (net: Testnet, ids: string[], timeout: number, onIdle?: () => void): Promise<Status[]> {
  const want = new Set(ids)
  const end = Date.now() + timeout
  for (;;) {
    const held = await Promise.all(net.nodes.map(async (_, i) => await net.client(i, { timeout: 10_000 }).json<{ queued: number, running: unknown[] }>('GET', '/v1/tasks/node').catch(() => ({ queued: 1, running: [] }))))
    if (held.every(h => h.queued === 0 && h.running.length === 0)) break
    if (Date.now() > end) throw new Error(`tasks did not end in ${timeout} ms`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  onIdle?.()
  for (;;) {
    const r = await net.client(1, { timeout: 60_000 }).json<{ tasks: Status[] }>('GET', '/v1/tasks?limit=10000').catch(() => ({ tasks: [] as Status[] }))
    const mine = r.tasks.filter(s => want.has(s.id))
    if (mine.length === want.size && mine.every(s => ['succeeded', 'failed', 'cancelled'].includes(s.state))) return mine
    if (Date.now() > end) throw new Error(`tasks did not end in ${timeout} ms`)
    await new Promise(resolve => setTimeout(resolve, 250))
  }
}

/**
 * The store's work as counters, which unlike times do not depend on the machine's load: coordinated writes (puts) and
 * the write requests they took to remote replicas (each a round trip, a decode and an fsync there), and the fsynced
 * commits of the nodes' engines (group commit makes these fewer than the writes), summed over nodes.
 */
async function storeCounters (net: Testnet): Promise<{ puts: number, requests: number, fsyncs: number }> {
  let puts = 0
  let requests = 0
  let fsyncs = 0
  for (let i = 0; i < net.nodes.length; i++) {
    const text = await (await net.client(i, { timeout: 10_000 }).request('GET', '/metrics')).text()
    for (const line of text.split('\n')) {
      const v = Number(line.slice(line.lastIndexOf(' ') + 1))
      if (line.startsWith('meshos_kv_operations_total{') && line.includes('op="put"')) puts += v
      if (line.startsWith('meshos_kv_replica_write_batch_records_count')) requests += v
      if (line.startsWith('meshos_kv_engine_commits_total{synced="true"}')) fsyncs += v
    }
  }
  return { puts, requests, fsyncs }
}

/**
 * The idle time of a slot before each task: on each node, attempts are laid into its `slots` slots in order of start
 * (each into the slot that freed first), and a task's gap is its start less the later of its submission and the end
 * of the slot's previous run. Waiting behind other tasks is not in it; waiting for a steal while the slot is free, the
 * submission write and the hand-over to the executor are. The end write is not (the record does not say when it
 * landed): its cost is in the daemon CPU.
 */
function slotGaps (ended: Status[], nodes: string[], slots: number): number[] {
  const gaps: number[] = []
  for (const node of nodes) {
    const runs = ended.flatMap(s => s.attempts.filter(a => a.node === node && a.end != null).map(a => ({ start: a.start, end: a.end as number, ready: s.submittedAt })))
      .sort((a, b) => a.start - b.start)
    const free = Array.from({ length: slots }, () => -Infinity)
    for (const r of runs) {
      let i = 0
      for (let j = 1; j < free.length; j++) if (free[j] < free[i]) i = j
      gaps.push(Math.max(0, r.start - Math.max(free[i], r.ready)))
      free[i] = Math.max(free[i], r.end)
    }
  }
  return gaps
}

interface Run {
  name: string
  tasks: number
  submitMs: number
  makespanMs: number
  idealMs: number
  ratio: number
  tasksPerSec: number
  /** Slot time not spent running tasks, per task: (makespan × slots − Σ run time) / tasks. */
  overheadPerTaskMs: number
  submitToStart: ReturnType<typeof summarize>
  /** Per task, how long its slot stood idle before it started while the task was ready: see slotGaps. */
  slotGap: ReturnType<typeof summarize>
  perNode: number[]
  failed: number
  /** CPU of the four daemons themselves during the batch, per task (ms): queue, steals, store, spawning. */
  daemonCpuPerTaskMs: number
  /** Of daemonCpuPerTaskMs, what an idle mesh spends in the same time (gossip, anti-entropy, timers). */
  idleCpuPerTaskMs: number
  /** CPU of the tasks' processes, per task (ms). */
  childCpuPerTaskMs: number
  /** Store writes coordinated, and write requests sent to remote replicas, per task. */
  putsPerTask: number
  replicaRequestsPerTask: number
  /** Fsynced engine commits on all nodes, per task. */
  fsyncsPerTask: number
}

async function batch (net: Testnet, name: string, specs: Array<{ cmd: string, args: string[], ms: number }>, slots: number, idleCpuPerMs = 0): Promise<Run> {
  const store0 = await storeCounters(net)
  const cpu0 = net.nodes.map(n => cpuOf(n.pid))
  const t0 = Date.now()
  const subs: Status[] = []
  for (let i = 0; i < specs.length; i += 1000) {
    const r = await net.client(0, { timeout: 120_000 }).json<{ tasks: Status[] }>('POST', '/v1/tasks', { tasks: specs.slice(i, i + 1000).map(s => ({ cmd: s.cmd, args: s.args })) })
    subs.push(...r.tasks)
  }
  const submitMs = Date.now() - t0
  // Before the scan of every record that reads the results back, which is the bench's cost, not the tasks'. The last
  // end writes may still be landing then: a slight understatement, of a few writes in 1,000.
  let cpu1 = cpu0
  const ended = await waitAll(net, subs.map(s => s.id), 600_000, () => { cpu1 = net.nodes.map(n => cpuOf(n.pid)) })
  // After the results are all recorded (the scan above reads, it does not write).
  const store1 = await storeCounters(net)
  const sum = (k: 'self' | 'children'): number => cpu1.reduce((a, c, i) => a + c[k] - cpu0[i][k], 0)
  const lastEnd = Math.max(...ended.map(s => s.attempts.at(-1)?.end ?? s.updatedAt))
  const makespanMs = lastEnd - t0
  const work = specs.reduce((a, s) => a + s.ms, 0)
  const idealMs = Math.max(work / (slots * NODES), Math.max(...specs.map(s => s.ms)))
  const ran = ended.reduce((a, s) => a + s.attempts.reduce((b, x) => b + ((x.end ?? x.start) - x.start), 0), 0)
  const perNode = net.nodes.map(n => ended.filter(s => s.attempts.at(-1)?.node === n.peerId).length)
  return {
    name,
    tasks: specs.length,
    submitMs,
    makespanMs,
    idealMs,
    ratio: makespanMs / idealMs,
    tasksPerSec: specs.length / (makespanMs / 1000),
    overheadPerTaskMs: (makespanMs * slots * NODES - ran) / specs.length,
    submitToStart: summarize(ended.map(s => (s.attempts[0]?.start ?? s.submittedAt) - s.submittedAt)),
    slotGap: summarize(slotGaps(ended, net.nodes.map(n => n.peerId), slots)),
    perNode,
    failed: ended.filter(s => s.state !== 'succeeded').length,
    daemonCpuPerTaskMs: sum('self') / specs.length,
    idleCpuPerTaskMs: idleCpuPerMs * makespanMs / specs.length,
    childCpuPerTaskMs: sum('children') / specs.length,
    putsPerTask: (store1.puts - store0.puts) / specs.length,
    replicaRequestsPerTask: (store1.requests - store0.requests) / specs.length,
    fsyncsPerTask: (store1.fsyncs - store0.fsyncs) / specs.length
  }
}

async function recovery (net: Testnet): Promise<{ detectAndRequeueMs: number, rerunStartMs: number, tasks: number }> {
  const victim = 3
  const vid = net.nodes[victim].peerId
  const specs = Array.from({ length: 8 }, () => ({ cmd: 'sleep', args: ['4'] }))
  const subs = (await net.client(victim, { timeout: 60_000 }).json<{ tasks: Status[] }>('POST', '/v1/tasks', { tasks: specs })).tasks
  let onVictim: string[] = []
  for (let i = 0; i < 200 && onVictim.length === 0; i++) {
    const st = await Promise.all(subs.map(async s => await net.client(0).json<Status>('GET', `/v1/tasks/${s.id}`)))
    onVictim = st.filter(s => s.state === 'running' && s.node === vid).map(s => s.id)
    if (onVictim.length === 0) await new Promise(resolve => setTimeout(resolve, 100))
  }
  const frozenAt = Date.now()
  net.freeze(victim)
  try {
    let ended: Status[] = []
    for (const stop = Date.now() + 120_000; Date.now() < stop;) {
      ended = await Promise.all(onVictim.map(async id => await net.client(0, { timeout: 10_000 }).json<Status>('GET', `/v1/tasks/${id}`)))
      if (ended.every(s => s.state === 'succeeded' || s.state === 'failed')) break
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    const requeued = ended.map(s => s.attempts.find(a => a.node === vid)?.end ?? NaN).filter(Number.isFinite)
    const restarted = ended.map(s => s.attempts.find(a => a.node !== vid && a.start > frozenAt)?.start ?? NaN).filter(Number.isFinite)
    return { detectAndRequeueMs: Math.max(...requeued) - frozenAt, rerunStartMs: Math.max(...restarted) - frozenAt, tasks: onVictim.length }
  } finally {
    net.resume(victim)
    await net.waitForMembers({ timeout: 60_000 }).catch(() => {})
  }
}

/**
 * The floor that process creation alone sets, without any mesh: `count` runs of the command from this process, `width`
 * at a time, as the executor starts them (detached, stdout and stderr piped). On a small machine this, not scheduling,
 * bounds the makespan of many short tasks.
 */
async function spawnFloor (cmd: string, args: string[], count: number, width: number): Promise<{ run: string, perSpawnMs: number, perSec: number, makespanMs: number }> {
  const one = async (): Promise<void> => await new Promise(resolve => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    c.stdout.resume(); c.stderr.resume()
    c.on('close', () => { resolve() })
    c.on('error', () => { resolve() })
  })
  const t0 = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => { while (next++ < count) await one() }))
  const ms = performance.now() - t0
  return { run: `${[cmd, ...args].join(' ')} ×${count}, ${width} at a time`, perSpawnMs: ms / count, perSec: count / (ms / 1000), makespanMs: ms }
}

export async function main (args: string[]): Promise<void> {
  const slotsArg = args.indexOf('--slots')
  const slots = slotsArg >= 0 ? Number(args[slotsArg + 1]) : 2
  // Before the testnet, so the figures are the machine's alone.
  const floors = [
    await spawnFloor('true', [], 400, 1),
    await spawnFloor('true', [], 1000, slots * NODES),
    await spawnFloor('sleep', ['0.01'], 1000, slots * NODES)
  ]
  const net = await createTestnet(NODES, { logLevel: 'warn', env: { MESH_TASK_SLOTS: String(slots) } })
  try {
    await net.waitForMembers()
    // What the four daemons spend with nothing to run, so that it can be told apart from the cost of the tasks.
    await new Promise(resolve => setTimeout(resolve, 3_000))
    const idle0 = net.nodes.map(n => cpuOf(n.pid).self)
    const idleStart = Date.now()
    await new Promise(resolve => setTimeout(resolve, 5_000))
    const idleCpuPerMs = net.nodes.reduce((a, n, i) => a + cpuOf(n.pid).self - idle0[i], 0) / (Date.now() - idleStart)
    const runs: Run[] = []
    // Warm-up: spawn paths, RPC channels, store ranges.
    await batch(net, 'warm-up', Array.from({ length: 40 }, () => ({ cmd: 'true', args: [], ms: 0 })), slots)
    runs.push(await batch(net, 'empty ×1000', Array.from({ length: 1000 }, () => ({ cmd: 'true', args: [], ms: 0 })), slots, idleCpuPerMs))
    runs.push(await batch(net, '10 ms ×1000', Array.from({ length: 1000 }, () => ({ cmd: 'sleep', args: ['0.01'], ms: 10 })), slots, idleCpuPerMs))
    runs.push(await batch(net, 'skewed ×1000', Array.from({ length: 1000 }, (_, i) => i % 10 === 9 ? { cmd: 'sleep', args: ['1'], ms: 1000 } : { cmd: 'sleep', args: ['0.01'], ms: 10 }), slots, idleCpuPerMs))
    const rec = await recovery(net)
    process.stdout.write('\nprocess creation alone, from one Node process (no mesh)\n\n')
    process.stdout.write(table(['spawn', 'ms per spawn (wall)', 'spawns/s', 'makespan ms'], floors.map(f => [f.run, f.perSpawnMs, f.perSec, f.makespanMs])) + '\n')
    process.stdout.write(`\n${NODES} nodes × ${slots} slots, all tasks submitted to node 0 in one batch\n\n`)
    process.stdout.write(table(['run', 'tasks', 'submit ms', 'makespan ms', 'ideal ms', 'ratio', 'tasks/s', 'overhead ms/task', 'submit→start p50', 'p99', 'per node', 'failed'],
      runs.map(r => [r.name, r.tasks, r.submitMs, r.makespanMs, r.idealMs, r.ratio, r.tasksPerSec, r.overheadPerTaskMs, r.submitToStart.p50, r.submitToStart.p99, r.perNode.join('/'), r.failed])) + '\n\n')
    process.stdout.write('Idle time of a slot before each task while the task was ready (ms)\n\n')
    process.stdout.write(table(['run', 'slot gap p50', 'p99', 'mean', 'max'], runs.map(r => [r.name, r.slotGap.p50, r.slotGap.p99, r.slotGap.mean, r.slotGap.max])) + '\n\n')
    process.stdout.write(`Per task, summed over the four daemons: their CPU (idle mesh: ${(idleCpuPerMs * 1000).toFixed(0)} ms/s), their tasks' processes' CPU, store writes, replica write requests and fsyncs\n\n`)
    process.stdout.write(table(['run', 'daemon CPU ms/task', 'of which idle mesh', 'task processes CPU ms/task', 'store puts/task', 'replica write requests/task', 'fsyncs/task'],
      runs.map(r => [r.name, r.daemonCpuPerTaskMs, r.idleCpuPerTaskMs, r.childCpuPerTaskMs, r.putsPerTask, r.replicaRequestsPerTask, r.fsyncsPerTask])) + '\n\n')
    process.stdout.write(table(['recovery', 'tasks', 'freeze → re-queued ms', 'freeze → re-run started ms'], [['freeze node 3', rec.tasks, rec.detectAndRequeueMs, rec.rerunStartMs]]) + '\n')
    const file = await writeResult('tasks', { nodes: NODES, slots, spawnFloor: floors, idleCpuMsPerSec: idleCpuPerMs * 1000, runs, recovery: rec })
    process.stdout.write(`\nwrote ${file}\n`)
  } finally {
    await net.stop()
  }
}
