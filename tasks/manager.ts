import { totalmem } from 'node:os'
import { join } from 'node:path'
import { Counter, Gauge, type Registry } from 'prom-client'
import { systemClock, type Clock, type Random, type TimerHandle } from '../lib/clock.js'
import { deadline, delay, waitAtMost, withDeadline } from '../lib/abort.js'
import { InvalidConfigError, toMeshError } from '../lib/errors.js'
import { MiB, hour } from '../lib/units.js'
import { silentLogger, type Logger } from '../lib/log.js'
import * as C from './constants.js'
import { ExecNotAllowedError, InvalidTaskError, TaskNotFoundError, TasksUnavailableError } from './errors.js'
import { Execution, prepareScratch, removeScratch, type ExecutionResult } from './executor.js'
import { directStarter, Launcher, type ProcessStarter } from './launcher.js'
import type { TaskFiles, TaskStore, TasksMembership, TasksTransport, TaskMember } from './ports.js'
import { adopterFor, backlogOf, chooseVictim, ewma, planSteal, type PeerLoad } from './scheduler.js'
import type { StealRequest, StealResponse } from './tasks.js'
import {
  decodeRecord, encodeRecord, newTaskId, taskIdPrefix, normalizeSpec, terminalStates, taskStates,
  type TaskRecord, type TaskSpec, type TaskState
} from './types.js'

export interface TaskManagerComponents {
  store: TaskStore
  membership: TasksMembership
  transport: TasksTransport
  /** Absent when the node has no file store; tasks with inputs or outputs are then refused. @default none */
  files?: TaskFiles
  /** @default systemClock */
  clock?: Clock
  /** @default Math.random */
  random?: Random
  /** @default silentLogger */
  logger?: Logger
  /** Metrics are registered here when given. @default none */
  registry?: Registry
}

export interface TaskManagerInit {
  /** Where scratch dirs are made. */
  dir: string
  /** Slots: how many cpu units of tasks run at once. @default os.availableParallelism() */
  slots: number
  /** Run commands at all (--allow-exec). Without it the node holds and hands over tasks but never starts one. @default false */
  allowExec?: boolean
  /** Resource tags this node offers (e.g. gpu). @default [] */
  tags?: string[]
  /** Memory (MiB) the tasks running here may take together, by their `mem`; advertised to the mesh. @default the machine's total memory */
  memory?: number
  /** Poll of an idle thief. @default STEAL_IDLE_INTERVAL */
  stealInterval?: number
  /** Backstop sweep for orphaned tasks. @default SWEEP_INTERVAL */
  sweepInterval?: number
  /** Metadata publication limit. @default META_INTERVAL */
  metaInterval?: number
  /** SIGTERM→SIGKILL grace. @default KILL_GRACE */
  killGrace?: number
  /**
   * Start tasks' processes from a small helper process rather than from the daemon, whose size makes each fork dear
   * (see Launcher). @default true
   */
  launcher?: boolean
  /** How long an ended task's record, logs and idempotency key are kept (ms). @default RETENTION (24 h) */
  retention?: number
}

type Phase = 'queued' | 'running' | 'finishing' | 'moving'

/** A task this node holds: its record as last written here, and the run in progress. */
interface Held {
  rec: TaskRecord
  phase: Phase
  /** Writes of this record, in order. */
  write: Promise<void>
  exec?: Execution
  /**
   * Aborted by a cancel, a stop or a drop of the run in progress: cuts short the fetch of its inputs and the storing
   * of its outputs, which have no process to kill and each had only FILES_TIMEOUT (2 minutes).
   */
  abort?: AbortController
  cancelRequested?: boolean
  /** Ownership was lost (another node adopted the task): finish without writing. */
  dropped?: boolean
  /** Adopted or verified late: check the record before writing the end. */
  verify?: boolean
  /** Stopping: put the task back as queued instead of recording an end. */
  requeueOnStop?: boolean
  finished?: Promise<void>
  resolveFinished?: () => void
  /** Holder and attempt of the record as this node last wrote or read it: what the store must still say for a write to go. */
  stored: { node: string, attempt: number }
  /**
   * Holder and attempt of a write sent and not acknowledged (in flight, or failed: it may land yet). The store may say
   * this already: a run's `running` write lands at quorum before its answer comes back, and a check made meanwhile (a
   * revalidation after a stall, the fence before a long run's end) must not take this node's own write for another's.
   */
  sent?: { node: string, attempt: number }
  /**
   * Writes of the record queued or in flight. A task with any is not handed to a thief: its move would wait behind
   * them, land after the thief gave up waiting and looked for it, and leave it named after a node that never got it.
   */
  writing?: number
  /** Its end's record write failed every try and is being written again in the background (see persistEnd). */
  endPending?: boolean
  /** Records `running` if the run outlasts RUNNING_RECORD_AFTER. */
  runTimer?: TimerHandle
}

export interface ListOptions { state?: TaskState, limit?: number, signal?: AbortSignal }
export interface TaskLogs { id: string, state: TaskState, stdout: string, stderr: string, truncated: boolean }

/**
 * One node's share of the distributed task system: a queue, slots and an executor, the thief side of work stealing
 * (a loop while it has free slots), the victim side (the steal handler), adoption of a dead holder's tasks, and the
 * record of every task in the replicated store at quorum.
 *
 * Execution is at-least-once: a task whose node is declared dead while it runs is started again elsewhere, and a
 * frozen node that comes back may have run it too; the attempt number keeps the record consistent (only the holder of
 * the current attempt records an end).
 *
 * What is durable, at quorum, and when: a task's record is written when it is submitted (before its id is returned),
 * when a steal moves it (before the thief is told), once a run has lasted RUNNING_RECORD_AFTER, and when it ends. So a
 * task always has a holder in the store that is alive or will be found dead: if the node that took it crashes, the
 * adopter re-queues it from the record. A run shorter than RUNNING_RECORD_AFTER is recorded only by its end; if its
 * node dies first, the record still says `queued` under that node, and the re-run spends no retry. A node that stalled
 * (a freeze, a long pause) re-reads each record before it writes it again, and drops every task whose record names
 * another holder or attempt, so a stale holder never overwrites a newer one.
 */
export class TaskManager {
  private readonly held = new Map<string, Held>()
  /** Ids of held tasks not started, in order. */
  private queue: string[] = []
  private usedSlots = 0
  private usedMem = 0
  private runSeq = 0
  private readonly memory: number
  private runningCount = 0
  private started = false
  private stopping = false
  private paused = false
  private readonly clock: Clock
  private readonly random: Random
  private readonly log: Logger
  private readonly self: string
  private readonly slots: number
  private readonly allowExec: boolean
  private readonly tags: string[]
  private readonly retention: number
  private readonly offs: Array<() => void> = []
  private timers = new Set<TimerHandle>()
  private stealTimer?: TimerHandle
  private stealing = false
  private stealBackoff: number
  private lastTick = 0
  private gapAt = -Infinity
  private taskDuration?: number
  private stealCost?: number
  /** Tasks that ended here lately: a stale scan must not bring them back. */
  private readonly ended = new Set<string>()
  /** Tasks recorded by a submission still in progress, not yet held (see submit). */
  private readonly submitting = new Set<string>()
  private readonly victimView = new Map<string, { queued: number, running: number, until: number }>()
  private lastMeta = -Infinity
  private metaTimer?: TimerHandle
  private publishedLoad = -1
  private sweeping?: Promise<void>
  private backstopQueued = false
  private readonly starter: ProcessStarter
  private readonly metrics?: {
    steals: Counter<'role' | 'outcome'>
    moved: Counter
    retries: Counter<'kind'>
    finished: Counter<'state'>
    malformed: Counter
  }

  constructor (private readonly components: TaskManagerComponents, private readonly init: TaskManagerInit) {
    this.clock = components.clock ?? systemClock
    this.random = components.random ?? Math.random
    this.log = (components.logger ?? silentLogger).child({ component: 'tasks' })
    this.self = components.membership.self
    this.allowExec = init.allowExec ?? false
    this.slots = this.allowExec ? Math.max(1, init.slots) : 0
    this.tags = init.tags ?? []
    this.retention = init.retention ?? C.RETENTION
    if (!(this.retention > 0)) throw new InvalidConfigError(`retention must be positive, got ${this.retention}`)
    this.memory = Math.max(0, Math.floor(init.memory ?? totalmem() / MiB))
    this.stealBackoff = init.stealInterval ?? C.STEAL_IDLE_INTERVAL
    this.starter = init.launcher === false ? directStarter : new Launcher()
    const registers = components.registry != null ? [components.registry] : []
    if (components.registry != null) {
      // eslint-disable-next-line @typescript-eslint/no-this-alias
      const self = this
      new Gauge({
        name: 'meshos_tasks',
        help: 'Tasks held by this node, by state',
        labelNames: ['state'],
        registers,
        collect () { this.set({ state: 'queued' }, self.queue.length); this.set({ state: 'running' }, self.runningCount) }
      })
      new Gauge({ name: 'meshos_tasks_slots', help: 'Task slots of this node', registers, collect () { this.set(self.slots) } })
      this.metrics = {
        steals: new Counter({ name: 'meshos_tasks_steals_total', help: 'Steal attempts, as thief or victim', labelNames: ['role', 'outcome'], registers }),
        moved: new Counter({ name: 'meshos_tasks_stolen_total', help: 'Tasks this node took by stealing', registers }),
        retries: new Counter({ name: 'meshos_tasks_retries_total', help: 'Re-runs, after a dead node or a failure', labelNames: ['kind'], registers }),
        finished: new Counter({ name: 'meshos_tasks_finished_total', help: 'Tasks ended on this node', labelNames: ['state'], registers }),
        malformed: new Counter({ name: 'meshos_tasks_malformed_records_total', help: 'Stored task records skipped by scans because they are not task records', registers })
      }
    }
  }

  // ---- lifecycle

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    this.stopping = false
    this.lostReplyLook = false
    this.lastTick = this.clock.now()
    const m = this.components.membership
    this.offs.push(m.on('dead', id => { this.onHolderGone(id) }))
    this.offs.push(m.on('left', id => { this.onHolderGone(id) }))
    // A member that joins or advertises a backlog is worth a steal now rather than at the next poll.
    this.offs.push(m.on('join', () => { this.kickSteal() }))
    // Updates arrive with every gossiped change of any member: only one that shows a backlog is worth waking for.
    this.offs.push(m.on('update', id => {
      if (id === this.self || this.wanted() <= 0 || this.stealTimer == null) return
      const p = this.peerLoads().find(x => x.peerId === id)
      if (p != null && backlogOf(p) > 0) this.kickSteal()
    }))
    m.publish({ capacity: this.slots, load: 0, tags: this.tags, memory: this.memory })
    this.lastMeta = this.clock.now()
    this.publishedLoad = 0
    this.every(C.TICK_INTERVAL, () => { this.tick() })
    this.every(this.init.sweepInterval ?? C.SWEEP_INTERVAL, () => { this.backstopSweep() })
    // Tasks this node held before a crash are in the store under its name: take them back.
    // The store may refuse work while the node is still learning the membership: retry until a sweep goes through, at
    // first often, then (ownOwed) with the backstop sweeps, for as long as it takes.
    this.ownOwed = true
    const recover = (tries: number): void => {
      this.sweep(r => r.node === this.self, 'restart', ok => {
        if (ok) this.ownOwed = false
        else if (tries > 0 && !this.stopping) this.once(C.RECOVERY_RETRY_INTERVAL, () => { recover(tries - 1) })
      })
    }
    recover(C.RECOVERY_TRIES)
    this.kickSteal()
    this.log.info({ slots: this.slots, allowExec: this.allowExec, tags: this.tags }, 'tasks started')
  }

  /**
   * Kills running tasks and records them as queued again under this node's name, without spending a retry, so that
   * the survivor adopting this node's tasks on its `left` runs them; queued tasks are left for the same adoption.
   */
  async stop (): Promise<void> {
    if (!this.started) return
    this.stopping = true
    for (const off of this.offs.splice(0)) off()
    for (const t of this.timers) this.clock.clearTimeout(t)
    this.timers.clear()
    if (this.stealTimer != null) this.clock.clearTimeout(this.stealTimer)
    if (this.metaTimer != null) this.clock.clearTimeout(this.metaTimer)
    const pending: Array<Promise<void>> = []
    for (const h of this.held.values()) {
      if (h.phase === 'running') {
        h.requeueOnStop = true
        h.abort?.abort(new TasksUnavailableError('the node is stopping'))
        h.exec?.kill('killed')
        if (h.finished != null) pending.push(h.finished)
      }
    }
    await waitAtMost(Promise.all(pending), 5 * C.KILL_GRACE)
    if (this.starter instanceof Launcher) this.starter.stop()
    await Promise.allSettled([...this.held.values()].map(async h => { await h.write }))
    await this.sweeping?.catch(() => {})
    this.started = false
    this.log.info({ held: this.held.size }, 'tasks stopped')
  }

  stats (): { tasksRunning: number, tasksQueued: number } {
    return { tasksRunning: this.runningCount, tasksQueued: this.queue.length }
  }

  /** This node's slots, queue and running tasks, for `mesh top`. */
  local (): { node: string, slots: number, freeSlots: number, memory: number, freeMemory: number, allowExec: boolean, tags: string[], queued: number, running: Array<{ id: string, cmd: string, start: number }> } {
    const running = [...this.held.values()].filter(h => h.phase === 'running').map(h => ({ id: h.rec.id, cmd: h.rec.spec.cmd, start: h.rec.attempts.at(-1)?.start ?? 0 }))
    return { node: this.self, slots: this.slots, freeSlots: this.slots - this.usedSlots, memory: this.memory, freeMemory: this.memory - this.usedMem, allowExec: this.allowExec, tags: this.tags, queued: this.queue.length, running }
  }

  // ---- public operations

  /**
   * Records each task at quorum, then queues it here. Returns when every record is durable, so an id handed to the
   * caller always resolves. A spec with an idempotency key seen before returns the first task instead.
   *
   * A batch is all or nothing: no task of it is queued before every record has landed, and when one write fails the
   * others stop and those already recorded are withdrawn (recorded cancelled, as a single failed submission is). The
   * caller told that the batch failed submits it again, and before, the rest of the first batch had run as well.
   */
  async submit (input: unknown[], signal?: AbortSignal): Promise<TaskRecord[]> {
    this.assertRunning()
    if (input.length === 0) throw new InvalidTaskError('no tasks to submit')
    if (input.length > C.MAX_BATCH) throw new InvalidTaskError(`at most ${C.MAX_BATCH} tasks per submission`)
    // A batch's errors name the task, by its index, so that a client can point at the line of its file.
    const inBatch = <T>(i: number, fn: () => T): T => {
      try { return fn() } catch (err) { throw input.length > 1 && toMeshError(err).code === 'BAD_REQUEST' ? new InvalidTaskError(`task ${i}: ${(err as Error).message}`) : err }
    }
    const specs = input.map((x, i) => inBatch(i, () => normalizeSpec(x)))
    specs.forEach((s, i) => { inBatch(i, () => { this.checkFeasible(s) }) })
    // Aborted at the first failure, so that the writes still to go are not made only to be withdrawn.
    const failed = new AbortController()
    const sig = AbortSignal.any([deadline(C.STORE_TIMEOUT + Math.ceil(specs.length / C.SUBMIT_CONCURRENCY) * C.STORE_TIMEOUT, signal), failed.signal])
    // A key repeated within the batch names its first spec's task: submitted side by side, neither finds the other's
    // key in the store, and both ran.
    const firstWithKey = new Map<string, number>()
    const todo: number[] = []
    const sameAs = new Map<number, number>()
    specs.forEach((s, i) => {
      const first = s.idempotencyKey == null ? undefined : firstWithKey.get(s.idempotencyKey)
      if (first != null) { sameAs.set(i, first); return }
      if (s.idempotencyKey != null) firstWithKey.set(s.idempotencyKey, i)
      todo.push(i)
    })
    const out = new Array<TaskRecord>(specs.length)
    const recorded: TaskRecord[] = []
    let error: unknown
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < todo.length && error == null) {
        const i = todo[next++]
        try {
          const r = await this.record(specs[i], sig)
          out[i] = r.rec
          if (r.fresh) recorded.push(r.rec)
        } catch (err) {
          error ??= err
          failed.abort(err)
        }
      }
    }
    try {
      await Promise.all(Array.from({ length: Math.min(C.SUBMIT_CONCURRENCY, todo.length) }, worker))
      if (error != null) {
        for (const rec of recorded) this.withdraw(rec, error)
        throw error
      }
      // Only now may they run: every record of the batch is durable.
      await Promise.all(recorded.map(async rec => { await this.accept(rec, sig) }))
    } finally {
      for (const rec of recorded) this.submitting.delete(rec.id)
    }
    for (const [i, first] of sameAs) out[i] = out[first]
    return out
  }

  async get (id: string, signal?: AbortSignal): Promise<TaskRecord> {
    const b = await withDeadline(C.STORE_TIMEOUT, signal, async sig => await this.components.store.get(C.TASK_PREFIX + id, sig))
    if (b == null) throw new TaskNotFoundError(id)
    return decodeRecord(b)
  }

  /**
   * Task records, newest first. Ids start with their submission time, so with a limit the records of the last hour
   * are read first, then of the last six, and all only if those do not fill it: a dashboard polling the newest
   * thousand does not read a day of tasks each time.
   */
  async list (opts: ListOptions = {}): Promise<TaskRecord[]> {
    if (opts.state != null && !taskStates.includes(opts.state)) throw new InvalidTaskError(`state must be one of ${taskStates.join(', ')}`)
    const signal = deadline(C.SCAN_TIMEOUT, opts.signal)
    const now = this.clock.now()
    const out: TaskRecord[] = []
    // Each window stops at the page that reaches the one before, so past a page it reads again none of what the one
    // before read; within a page the store still hands those over (the scan has no upper bound) and they are dropped.
    let until: string | undefined
    for (const window of opts.limit != null ? [hour, 6 * hour, undefined] : [undefined]) {
      const from = window == null ? undefined : C.TASK_PREFIX + taskIdPrefix(now - window)
      for (const r of await this.scanRecords(signal, from, until)) if (opts.state == null || r.state === opts.state) out.push(r)
      if (window == null || opts.limit == null || out.length >= opts.limit) break
      until = from
    }
    out.sort((a, b) => b.submittedAt - a.submittedAt || (a.id < b.id ? 1 : -1))
    return opts.limit != null ? out.slice(0, opts.limit) : out
  }

  /**
   * Cancels wherever the task is: asks its holder (which kills a run, SIGTERM then SIGKILL), and follows the record
   * when the task moves under it (a steal in flight). A task whose holder is gone is recorded cancelled directly.
   */
  async cancel (id: string, signal?: AbortSignal): Promise<TaskRecord> {
    const sig = deadline(C.STORE_TIMEOUT, signal)
    for (let i = 0; ; i++) {
      const rec = await this.get(id, sig)
      if (terminalStates.has(rec.state)) return rec
      if (rec.node === this.self) {
        const r = await this.cancelLocal(id, sig)
        if (r != null) return r
      } else if (this.isLive(rec.node)) {
        try {
          const r = await this.components.transport.cancel(rec.node, id, sig)
          if (r.found) return decodeRecord(r.task)
        } catch (err) {
          if (sig.aborted) throw err
          this.log.debug({ err, id, node: rec.node }, 'cancel on holder failed; retrying')
        }
      } else {
        const done = { ...rec, state: 'cancelled' as const, error: `cancelled while its node ${rec.node} was down`, updatedAt: this.clock.now() }
        await this.putRecord(done, sig)
        return done
      }
      await delay(Math.min(20 * 2 ** i, 500), sig)
    }
  }

  async logs (id: string, signal?: AbortSignal): Promise<TaskLogs> {
    const sig = deadline(C.STORE_TIMEOUT, signal)
    const rec = await this.get(id, sig)
    // `running` is recorded late (RUNNING_RECORD_AFTER): a `queued` record's holder may be running it already.
    if (rec.state === 'running' || rec.state === 'queued') {
      if (rec.node === this.self) {
        const l = this.localLogs(id)
        if (l != null) return { id, state: rec.state, ...l }
      } else if (this.isLive(rec.node)) {
        const r = await this.components.transport.logs(rec.node, id, sig).catch(() => undefined)
        if (r?.found === true) return { id, state: rec.state, stdout: r.stdout, stderr: r.stderr, truncated: r.truncated }
      }
    }
    const b = await this.components.store.get(C.LOG_PREFIX + id, sig)
    if (b == null) return { id, state: rec.state, stdout: '', stderr: '', truncated: false }
    const l = JSON.parse(new TextDecoder().decode(b)) as { stdout: string, stderr: string, truncated: boolean }
    return { id, state: rec.state, ...l }
  }

  // ---- RPC handlers (the victim and holder side)

  /**
   * The victim side of a steal, as one transaction: the chosen tasks leave the queue before anything awaits, so they
   * cannot start here; each is recorded at quorum as held by the thief before it is handed over; a task whose write
   * fails goes back to the queue. Only tasks not started are ever handed over.
   */
  async handleSteal (req: StealRequest, signal: AbortSignal): Promise<StealResponse> {
    const none = (): StealResponse => ({ tasks: [], queued: this.queue.length, running: this.runningCount })
    // A request may be the first thing a resumed process handles: notice the stall before handing anything over.
    this.checkGap()
    // A thief this node believes dead must not take work: its tasks would be adopted again by a survivor.
    if (!this.started || this.stopping || this.paused || req.thief === this.self || !this.isLive(req.thief)) { this.metrics?.steals.inc({ role: 'victim', outcome: 'refused' }); return none() }
    const queue = this.queue.map(id => {
      const h = this.held.get(id)
      const spec = h?.rec.spec
      return spec == null ? { cpu: 1, mem: 0, tags: [], local: false } : { cpu: spec.cpu, mem: spec.mem, tags: spec.tags, local: this.waitReason(spec) == null, pinned: (h?.writing ?? 0) > 0 }
    })
    const plan = planSteal({
      queue,
      slots: this.slots,
      freeSlots: this.slots - this.usedSlots,
      taskDuration: this.taskDuration ?? C.DEFAULT_TASK_DURATION,
      thief: { slots: req.slots, freeSlots: req.freeSlots, tags: req.tags, mem: req.memMib, costMs: req.costMs }
    })
    if (plan.length === 0) { this.metrics?.steals.inc({ role: 'victim', outcome: 'empty' }); return none() }
    const chosen = new Set(plan.map(i => this.queue[i]))
    this.queue = this.queue.filter(id => !chosen.has(id))
    const moving = [...chosen].map(id => this.held.get(id) as Held)
    const now = this.clock.now()
    for (const h of moving) { h.phase = 'moving'; h.rec = { ...h.rec, node: req.thief, reason: undefined, updatedAt: now } }
    // One try each: the thief is waiting, and a task whose move fails simply stays here.
    const results = await Promise.allSettled(moving.map(async h => { this.persist(h, { tries: 1, timeout: C.STEAL_WRITE_TIMEOUT }); await h.write }))
    const handed: Array<Uint8Array<ArrayBuffer>> = []
    const back: string[] = []
    results.forEach((r, i) => {
      const h = moving[i]
      // The fence found the task adopted elsewhere (this node was declared dead): it is neither ours nor the thief's.
      if (h.dropped === true) { this.held.delete(h.rec.id); return }
      if (r.status === 'fulfilled' && !signal.aborted) {
        this.held.delete(h.rec.id)
        handed.push(encodeRecord(h.rec))
      } else {
        // Not recorded as the thief's (or the thief gave up waiting): it stays here; the next write here wins.
        h.phase = 'queued'
        h.rec = { ...h.rec, node: this.self, updatedAt: this.clock.now() }
        this.persist(h)
        back.push(h.rec.id)
      }
    })
    if (back.length > 0) { this.queue.unshift(...back); this.pump() }
    this.metrics?.steals.inc({ role: 'victim', outcome: handed.length > 0 ? 'gave' : 'failed' })
    if (handed.length > 0) this.log.debug({ thief: req.thief, tasks: handed.length, left: this.queue.length }, 'tasks stolen from here')
    this.publishLoad()
    return { tasks: handed, queued: this.queue.length, running: this.runningCount }
  }

  /** Holder side of cancel: undefined when this node does not hold the task (moved, or mid-steal). */
  async cancelLocal (id: string, signal?: AbortSignal): Promise<TaskRecord | undefined> {
    const h = this.held.get(id)
    if (h == null || h.phase === 'moving') return undefined
    // Cancelled here, but the store still says otherwise: were this node to stop now, the task's adopter would run it.
    if (h.endPending === true) throw new TasksUnavailableError(`the end of ${id} is recorded here but not yet in the store; it is being written again`)
    if (h.phase === 'queued') {
      this.queue = this.queue.filter(x => x !== id)
      h.rec = { ...h.rec, state: 'cancelled', reason: undefined, updatedAt: this.clock.now() }
      h.phase = 'finishing'
      await this.persistEnd(h)
      this.held.delete(id)
      // Adopted elsewhere meanwhile: the caller reads the record again and asks its holder.
      if (h.dropped === true) return undefined
      this.metrics?.finished.inc({ state: 'cancelled' })
      this.publishLoad()
      return h.rec
    }
    h.cancelRequested = true
    h.abort?.abort(new TasksUnavailableError(`task ${id} was cancelled`))
    h.exec?.kill('killed')
    if (h.finished != null) await waitAtMost(h.finished, 5 * C.KILL_GRACE, signal)
    return h.rec
  }

  localLogs (id: string): { stdout: string, stderr: string, truncated: boolean } | undefined {
    const e = this.held.get(id)?.exec
    if (e == null) return undefined
    return { stdout: e.stdout.text(), stderr: e.stderr.text(), truncated: e.stdout.truncated || e.stderr.truncated }
  }

  // ---- submission

  private checkFeasible (s: TaskSpec): void {
    const live = this.liveMembers()
    const runners = live.filter(m => m.capacity > 0)
    if (runners.length === 0) throw new ExecNotAllowedError('no node in the mesh runs commands: start one with --allow-exec')
    const fits = runners.filter(m => m.capacity >= s.cpu)
    if (fits.length === 0) throw new InvalidTaskError(`cpu ${s.cpu} is more than any node offers (the largest has ${Math.max(...runners.map(m => m.capacity))} slots)`)
    // A member that does not advertise memory (an older node) is taken to have enough.
    const memOf = (m: TaskMember): number => m.memory == null || m.memory <= 0 ? Infinity : m.memory
    if (s.mem > Math.max(...runners.map(memOf))) throw new InvalidTaskError(`mem ${s.mem} MiB is more than any node offers (the largest has ${Math.max(...runners.map(memOf))} MiB)`)
    const roomy = fits.filter(m => memOf(m) >= s.mem)
    if (roomy.length === 0) throw new InvalidTaskError(`no live node offers both ${s.cpu} slots and ${s.mem} MiB`)
    if (!roomy.some(m => s.tags.every(t => m.tags.includes(t)))) throw new InvalidTaskError(`no live node offers ${s.cpu} slots and ${s.mem} MiB with tags ${s.tags.join(', ')}`)
    if ((s.inputs.length > 0 || s.outputs.length > 0) && this.components.files == null) throw new InvalidTaskError('this node has no file store: inputs and outputs are unavailable')
    for (const i of s.inputs) this.components.files?.check(i.cid)
  }

  /**
   * Writes a new task's record (not yet queued here: see submit), or finds the task an idempotency key names.
   * `fresh`: the record is new, and the task is in `submitting` until it is queued or withdrawn.
   */
  private async record (spec: TaskSpec, signal: AbortSignal): Promise<{ rec: TaskRecord, fresh: boolean }> {
    const store = this.components.store
    if (spec.idempotencyKey != null) {
      const prior = await store.get(C.IDEMPOTENCY_PREFIX + spec.idempotencyKey, signal)
      if (prior != null) {
        const b = await store.get(C.TASK_PREFIX + new TextDecoder().decode(prior), signal)
        if (b != null) return { rec: decodeRecord(b), fresh: false }
      }
    }
    const now = this.clock.now()
    const rec: TaskRecord = {
      id: newTaskId(now),
      spec,
      state: 'queued',
      node: this.self,
      attempt: 0,
      attempts: [],
      nodeRetries: 0,
      failRetries: 0,
      outputs: [],
      reason: this.waitReason(spec),
      submittedAt: now,
      updatedAt: now,
      submittedTo: this.self
    }
    // Named after this node and held nowhere until it is queued: the sweep that takes back such records must not.
    this.submitting.add(rec.id)
    try {
      await store.put(C.TASK_PREFIX + rec.id, encodeRecord(rec), signal)
    } catch (err) {
      this.withdraw(rec, err)
      this.submitting.delete(rec.id)
      throw err
    }
    return { rec, fresh: true }
  }

  /**
   * Undoes the record of a task whose submission failed. Its write may still land (or has): a queued record that
   * nothing holds waited for this node's next restart and ran then, though the caller was told the submission failed
   * (and had submitted it again). It is recorded cancelled instead (a later write, so it wins), held here as ended and
   * written again until that lands. Without its idempotency key, which the caller's resubmission must not find pointing
   * at this record.
   */
  private withdraw (rec: TaskRecord, err: unknown): void {
    if (this.stopping) return
    const undone: TaskRecord = { ...rec, spec: { ...rec.spec, idempotencyKey: undefined }, state: 'cancelled', reason: undefined, error: `the submission failed: ${toMeshError(err).message}`, updatedAt: this.clock.now() }
    const h: Held = { rec: undone, phase: 'finishing', write: Promise.resolve(), stored: { node: rec.node, attempt: rec.attempt } }
    this.held.set(rec.id, h)
    this.persistEnd(h).then(() => { if (this.held.get(rec.id) === h) this.held.delete(rec.id) }, () => {})
  }

  /** Writes a recorded task's idempotency key, then queues the task here. */
  private async accept (rec: TaskRecord, signal: AbortSignal): Promise<void> {
    const store = this.components.store
    const spec = rec.spec
    // After the record, so the key never names a task that does not exist; two racing resubmissions may both run.
    if (spec.idempotencyKey != null) {
      const key = C.IDEMPOTENCY_PREFIX + spec.idempotencyKey
      const value = new TextEncoder().encode(rec.id)
      try {
        await store.put(key, value, signal)
      } catch (err) {
        // The task is recorded, and is held below: it will run, so its id is the answer (an error would have the caller
        // submit it again, and both would run). The key is written again meanwhile, so that a resubmission finds it.
        this.log.warn({ err, id: rec.id }, 'writing a task\'s idempotency key failed; writing it again in the background')
        // The task's end writes the key itself, with the record's expiry: a rewrite without one after it would keep the
        // key for ever. One that raced the end writes it again with the expiry.
        this.retryLater(async () => {
          if (this.ended.has(rec.id)) return
          await withDeadline(C.STORE_TIMEOUT, undefined, async sig => {
            await store.put(key, value, sig)
            if (this.ended.has(rec.id)) await store.put(key, value, sig, this.retention)
          })
        }, C.WRITE_TRIES)
      }
    }
    if (this.stopping) return
    this.hold(rec)
  }

  private waitReason (spec: TaskSpec): string | undefined {
    if (!this.allowExec) return 'waiting for a node with --allow-exec to take it'
    if (spec.cpu > this.slots) return `needs ${spec.cpu} slots, this node has ${this.slots}: waiting for a larger node to take it`
    if (spec.mem > this.memory) return `needs ${spec.mem} MiB, this node has ${this.memory} MiB: waiting for a larger node to take it`
    const missing = spec.tags.filter(t => !this.tags.includes(t))
    if (missing.length > 0) return `needs tags ${missing.join(', ')}: waiting for a node that has them`
    return undefined
  }

  private hold (rec: TaskRecord, opts: { verify?: boolean } = {}): void {
    const h: Held = { rec, phase: 'queued', write: Promise.resolve(), verify: opts.verify, stored: { node: rec.node, attempt: rec.attempt } }
    this.held.set(rec.id, h)
    this.queue.push(rec.id)
    this.pump()
    this.publishLoad()
  }

  // ---- the local queue and slots

  private canRun (spec: TaskSpec): boolean {
    return spec.cpu <= this.slots - this.usedSlots && (spec.mem ?? 0) <= this.memory - this.usedMem && spec.tags.every(t => this.tags.includes(t))
  }

  private pump (): void {
    if (!this.started || this.stopping || this.paused || !this.allowExec) return
    if (this.clock.now() - this.lastTick > C.GAP_THRESHOLD) { this.tick(); return }
    for (let i = 0; i < this.queue.length && this.usedSlots < this.slots;) {
      const h = this.held.get(this.queue[i])
      if (h == null) { this.queue.splice(i, 1); continue }
      if (!this.canRun(h.rec.spec)) { i++; continue }
      this.queue.splice(i, 1)
      this.startRun(h)
    }
    this.publishLoad()
    // A freed slot is worth a steal, unless one is already scheduled: overriding its back-off would spin an idle mesh.
    if (this.wanted() > 0 && !this.stealing && this.stealTimer == null) this.kickSteal()
  }

  private startRun (h: Held): void {
    const now = this.clock.now()
    const attempt = h.rec.attempt + 1
    h.rec = {
      ...h.rec,
      state: 'running',
      node: this.self,
      attempt,
      reason: undefined,
      attempts: [...h.rec.attempts, { node: this.self, start: now }],
      updatedAt: now
    }
    h.phase = 'running'
    h.abort = new AbortController()
    h.finished = new Promise(resolve => { h.resolveFinished = resolve })
    this.usedSlots += h.rec.spec.cpu
    this.usedMem += h.rec.spec.mem ?? 0
    this.runningCount++
    // A short task's end is its only write after the submission: `running` is recorded only for a run that lasts, so
    // that status shows it and a death of this node spends one of the task's retries.
    h.runTimer = this.clock.setTimeout(() => {
      h.runTimer = undefined
      if (h.phase === 'running' && h.dropped !== true && !this.stopping) this.persist(h, { verify: h.verify === true })
    }, C.RUNNING_RECORD_AFTER)
    void this.runAttempt(h, attempt)
  }

  private async runAttempt (h: Held, attempt: number): Promise<void> {
    const spec = h.rec.spec
    // Unique per run: a dropped run of the same attempt may still be cleaning up its own.
    const dir = join(this.init.dir, `${h.rec.id}-${attempt}-${++this.runSeq}`)
    let result: ExecutionResult & { outputs?: Array<{ path: string, cid: string }> }
    const started = this.clock.now()
    // This run's: a run queued again after it ends has its own.
    const stop = (h.abort as AbortController).signal
    try {
      await prepareScratch(dir, spec.files)
      const files = this.components.files
      for (const input of spec.inputs) {
        if (stop.aborted) break
        try {
          await withDeadline(C.FILES_TIMEOUT, stop, async sig => { await files?.fetch(input.cid, join(dir, input.path), sig) })
        } catch (err) {
          if (stop.aborted) break
          throw new InputError(`input ${input.cid}: ${toMeshError(err).message}`)
        }
      }
      if (stop.aborted) {
        result = { exitCode: 143, outcome: 'killed', error: 'cancelled', durationMs: 0 }
      } else {
        h.exec = new Execution({
          cmd: spec.cmd,
          args: spec.args,
          env: { ...spec.env, MESH_TASK_ID: h.rec.id, MESH_TASK_ATTEMPT: String(attempt) },
          cwd: dir,
          timeout: spec.timeout,
          killGrace: this.init.killGrace,
          clock: this.clock,
          starter: this.starter
        })
        result = await h.exec.done
        if (result.outcome === 'exited' && result.exitCode === 0 && spec.outputs.length > 0) {
          const outputs: Array<{ path: string, cid: string }> = []
          try {
            for (const p of spec.outputs) outputs.push({ path: p, cid: await withDeadline(C.FILES_TIMEOUT, stop, async sig => await (files as TaskFiles).store(join(dir, p), sig)) })
            result.outputs = outputs
          } catch (err) {
            result = stop.aborted
              ? { ...result, outcome: 'killed', error: 'cancelled while storing its outputs' }
              : { ...result, exitCode: result.exitCode, outcome: 'spawn-error', error: `storing outputs: ${toMeshError(err).message}` }
          }
        }
      }
    } catch (err) {
      result = { exitCode: 127, outcome: 'spawn-error', error: err instanceof InputError ? err.message : `preparing the run: ${(err as Error).message}`, durationMs: this.clock.now() - started }
    } finally {
      await removeScratch(dir)
    }
    await this.finish(h, attempt, result)
  }

  private async finish (h: Held, attempt: number, result: ExecutionResult & { outputs?: Array<{ path: string, cid: string }> }): Promise<void> {
    const now = this.clock.now()
    const spec = h.rec.spec
    this.usedSlots -= spec.cpu
    this.usedMem -= spec.mem ?? 0
    this.runningCount--
    if (h.runTimer != null) { this.clock.clearTimeout(h.runTimer); h.runTimer = undefined }
    h.phase = 'finishing'
    // This run's: a task queued again below can start its next run (a new promise) before this one has finished.
    const resolveFinished = h.resolveFinished
    let requeued = false
    if (result.outcome === 'exited') this.taskDuration = ewma(this.taskDuration, result.durationMs)
    const exec = h.exec
    const logs = exec == null ? undefined : { stdout: exec.stdout.text(), stderr: exec.stderr.text(), truncated: exec.stdout.truncated || exec.stderr.truncated }
    h.exec = undefined
    h.abort = undefined
    // Free the slot before the store is written: the next task needs no wait on this one's bookkeeping.
    this.pump()
    try {
      if (h.dropped === true) return
      const startedAt = h.rec.attempts.at(-1)?.start ?? now
      const verify = h.verify === true || now - startedAt > C.VERIFY_AFTER
      // Before the logs too: a run that is no longer ours must not overwrite the logs of the one that is.
      // A check that cannot be made now (the store unreachable) does not give the end up: it is written below, each
      // try fenced by the same check, and again until it lands (persistEnd); only the logs, unchecked, are skipped.
      let unchecked = false
      if ((verify || this.fenced()) && !(await this.checkMine(h).catch(() => { unchecked = true; return true }))) return
      // Logs first: once the record says the task ended, its logs are there to read.
      if (logs != null && !unchecked && (logs.stdout !== '' || logs.stderr !== '')) {
        await withDeadline(C.STORE_TIMEOUT, undefined, async sig => { await this.components.store.put(C.LOG_PREFIX + h.rec.id, new TextEncoder().encode(JSON.stringify(logs)), sig, this.retention) })
          .catch(err => { this.log.warn({ err, id: h.rec.id }, 'storing task logs failed') })
      }
      // The end is decided after the awaits above, and acted on before any other: a cancel that came while they ran
      // (answered once this finishes) had otherwise seen the task queued again, and its next run go ahead.
      const attempts = h.rec.attempts.slice()
      attempts[attempts.length - 1] = { ...attempts[attempts.length - 1], end: now, exitCode: result.exitCode, ...(result.error != null ? { error: result.error } : {}) }
      let state: TaskState
      let failRetries = h.rec.failRetries
      if (h.requeueOnStop === true && h.cancelRequested !== true) {
        attempts[attempts.length - 1].error = 'node stopped'
        state = 'queued'
      } else if (h.cancelRequested === true || result.outcome === 'killed') {
        state = 'cancelled'
      } else if (result.outcome === 'exited' && result.exitCode === 0) {
        state = 'succeeded'
      } else if (result.outcome !== 'spawn-error' && failRetries < spec.retryFailed) {
        failRetries++
        this.metrics?.retries.inc({ kind: 'failure' })
        state = 'queued'
      } else {
        state = 'failed'
      }
      h.rec = {
        ...h.rec,
        state,
        attempts,
        failRetries,
        outputs: result.outputs ?? h.rec.outputs,
        exitCode: state === 'queued' ? undefined : result.exitCode,
        error: state === 'succeeded' || state === 'queued' ? undefined : result.error ?? `exit code ${result.exitCode}`,
        updatedAt: now
      }
      if (state === 'queued' && !this.stopping) {
        h.phase = 'queued'
        this.persist(h, unchecked ? { verify: true } : {})
        this.queue.push(h.rec.id)
        // Started only after the bookkeeping below: started here, its next run was taken for this one and forgotten
        // (nothing could cancel it, and a stop recorded it failed).
        requeued = true
        return
      }
      await this.persistEnd(h, unchecked)
      // The write's own fence may have found the task adopted meanwhile.
      if ((h.dropped as boolean | undefined) === true) return
      this.remember(h.rec.id)
      this.metrics?.finished.inc({ state })
    } catch (err) {
      this.log.warn({ err, id: h.rec.id }, 'recording the end of a task failed')
    } finally {
      // A dropped run may end after the same task came back here (stolen back from its adopter): leave that one be.
      if (!requeued && h.endPending !== true && h.phase !== 'queued' && this.held.get(h.rec.id) === h) this.held.delete(h.rec.id)
      resolveFinished?.()
      this.publishLoad()
      if (requeued) this.pump()
    }
  }

  /**
   * Writes a task's record. An ended task's expires after `retention`, and so does its idempotency key, written again
   * with the same TTL so that it never names a task that is gone.
   */
  private async putRecord (rec: TaskRecord, signal: AbortSignal, bytes = encodeRecord(rec)): Promise<void> {
    const ended = terminalStates.has(rec.state)
    await this.components.store.put(C.TASK_PREFIX + rec.id, bytes, signal, ended ? this.retention : undefined)
    const key = rec.spec.idempotencyKey
    if (ended && key != null) await this.components.store.put(C.IDEMPOTENCY_PREFIX + key, new TextEncoder().encode(rec.id), signal, this.retention)
  }

  /**
   * Writes a task's end (or a queued task's cancel). When every try fails, the task stays held (in `finishing`) and the
   * write is made again every END_RETRY_INTERVAL until it lands or the node stops: dropped, the store kept the task
   * queued or running under this live node, which held nothing, so no sweep would take it, and a restart ran it again
   * (even a cancelled one). Throws the failure for the caller to report.
   */
  private async persistEnd (h: Held, verify = false): Promise<void> {
    this.persist(h, verify ? { verify } : {})
    try {
      await h.write
    } catch (err) {
      if (this.stopping || h.dropped === true) throw err
      if (h.endPending !== true) {
        h.endPending = true
        this.retryLater(async () => {
          if (h.dropped === true || this.held.get(h.rec.id) !== h) { h.endPending = false; return }
          // Checked first: while this node could not write, another may have adopted the task and ended it.
          this.persist(h, { verify: true })
          await h.write
          h.endPending = false
          if (this.held.get(h.rec.id) === h) this.held.delete(h.rec.id)
          if ((h.dropped as boolean | undefined) !== true && terminalStates.has(h.rec.state)) this.remember(h.rec.id)
          this.publishLoad()
        })
      }
      throw err
    }
  }

  /**
   * Appends a write of the record as it is now to the task's chain, so writes land in order. The write is fenced: when
   * asked (`verify`), or while this node may have been declared dead (a stall, see fenced()), it first re-reads the
   * record at quorum and goes ahead only if the store still names the holder and attempt this node last saw, so a
   * stale holder never overwrites a newer attempt or another node's adoption. The check is made when the write goes
   * out, not when it was queued: a freeze may lie between the two.
   */
  private persist (h: Held, opts: { verify?: boolean, tries?: number, timeout?: number } = {}): void {
    const rec = h.rec
    const bytes = encodeRecord(rec)
    h.writing = (h.writing ?? 0) + 1
    h.write = h.write.catch(() => {}).then(async () => {
      for (let i = 1; ; i++) {
        if (h.dropped === true) return
        if ((opts.verify === true || this.fenced()) && !(await this.checkMine(h))) return
        try {
          h.sent = { node: rec.node, attempt: rec.attempt }
          // Ends of tasks come at scattered moments, each a write of its own: the store's coordinator gathers the ones
          // that come while a write to a replica is unanswered into its next request (maxBatchesInFlight).
          await withDeadline(opts.timeout ?? C.STORE_TIMEOUT, undefined, async sig => { await this.putRecord(rec, sig, bytes) })
          h.stored = { node: rec.node, attempt: rec.attempt }
          h.sent = undefined
          return
        } catch (err) {
          if (i >= (opts.tries ?? C.WRITE_TRIES) || this.stopping) throw err
          await delay(C.WRITE_RETRY_BACKOFF * 2 ** (i - 1))
        }
      }
    }).finally(() => { h.writing = (h.writing ?? 1) - 1 })
    h.write.catch(err => { this.log.warn({ err, id: rec.id }, 'task record write failed') })
  }

  /**
   * Whether the store still names the holder and attempt this node last wrote or read for the task; when it does not
   * (the task was adopted, or ended, elsewhere), the task is dropped here: out of the queue, or its run killed and its
   * end not recorded. Throws when the record cannot be read: the caller must not write blind.
   */
  private async checkMine (h: Held): Promise<boolean> {
    let cur: TaskRecord | undefined
    for (let i = 1; ; i++) {
      try {
        const b = await withDeadline(C.STORE_TIMEOUT, undefined, async sig => await this.components.store.get(C.TASK_PREFIX + h.rec.id, sig))
        cur = b == null ? undefined : decodeRecord(b)
        break
      } catch (err) {
        if (i >= C.WRITE_TRIES || this.stopping) throw err
        await delay(C.WRITE_RETRY_BACKOFF * 2 ** (i - 1))
      }
    }
    // No record at all cannot be another holder's, unless it may have expired: the task ended elsewhere at least
    // `retention` ago (RETENTION), and writing it again would bring an ended task back.
    if (cur == null) {
      if (this.clock.now() - h.rec.updatedAt < this.retention) return true
      this.drop(h, undefined)
      return false
    }
    const is = (x?: { node: string, attempt: number }): boolean => x != null && cur?.node === x.node && cur.attempt === x.attempt
    if ((is(h.stored) || is(h.sent)) && !terminalStates.has(cur.state)) return true
    this.drop(h, cur)
    return false
  }

  private drop (h: Held, cur: TaskRecord | undefined): void {
    if (h.dropped === true) return
    h.dropped = true
    this.log.warn({ id: h.rec.id, attempt: h.rec.attempt, holder: cur?.node, currentAttempt: cur?.attempt, state: cur?.state ?? 'expired' }, 'task was adopted or ended elsewhere while this node was stalled; dropping it here')
    if (h.runTimer != null) { this.clock.clearTimeout(h.runTimer); h.runTimer = undefined }
    if (h.phase === 'queued') {
      this.queue = this.queue.filter(x => x !== h.rec.id)
      this.held.delete(h.rec.id)
    } else if (h.phase === 'running') {
      // finish() sees `dropped` and records nothing; the adopter's run is the one that counts.
      h.abort?.abort(new TasksUnavailableError(`task ${h.rec.id} is held elsewhere now`))
      h.exec?.kill('killed')
    }
  }

  // ---- stealing (the thief side)

  private kickSteal (delayMs = 0): void {
    if (!this.started || this.stopping || !this.allowExec) return
    if (this.stealTimer != null) {
      if (delayMs > 0) return
      this.clock.clearTimeout(this.stealTimer)
    }
    this.stealTimer = this.clock.setTimeout(() => { this.stealTimer = undefined; void this.stealOnce() }, delayMs)
  }

  /**
   * How many more tasks this node wants: a few rounds of its slots, so that slots do not idle while the next steal is
   * in flight; what it holds beyond its slots can be stolen back by a node that runs dry.
   */
  private wanted (): number {
    return Math.max(0, C.STEAL_HOLD_ROUNDS * this.slots - this.usedSlots - this.queue.length)
  }

  private peerLoads (): PeerLoad[] {
    const now = this.clock.now()
    return this.liveMembers().filter(m => m.peerId !== this.self).map(m => {
      const v = this.victimView.get(m.peerId)
      return v != null && now < v.until ? { peerId: m.peerId, capacity: m.capacity, load: v.queued + v.running } : { peerId: m.peerId, capacity: m.capacity, load: m.load }
    })
  }

  private async stealOnce (): Promise<void> {
    this.checkGap()
    if (this.stealing || !this.started || this.stopping || this.paused) return
    const want = this.wanted()
    // Holding fewer than two rounds of slots: steal now, so the slots do not idle while the next steal is in flight.
    if (want <= 0) return
    const peers = this.peerLoads()
    let victim = chooseVictim(peers, this.self, this.random)
    // Nobody advertises a backlog (metadata is up to a second old): probe, at the idle pace, one of the members that
    // advertise the most load — a busy node is the likeliest to have queued work by now — or any member.
    const probing = victim == null
    if (probing) {
      const others = peers.filter(p => p.peerId !== this.self && p.capacity >= 0)
      if (others.length === 0) { this.kickSteal(this.init.stealInterval ?? C.STEAL_IDLE_INTERVAL); return }
      const busy = others.filter(p => p.load > 0).sort((a, b) => b.load - a.load).slice(0, C.VICTIM_CANDIDATES)
      const pool = busy.length > 0 && this.random() < 0.75 ? busy : others
      victim = pool[Math.floor(this.random() * pool.length)].peerId
    }
    const target = victim as string
    this.stealing = true
    const t0 = this.clock.now()
    let got = 0
    try {
      const res = await withDeadline(C.STEAL_TIMEOUT, undefined, async sig => await this.components.transport.steal(target, {
        thief: this.self,
        freeSlots: Math.min(this.slots, want),
        slots: this.slots,
        tags: this.tags,
        memMib: this.memory,
        costMs: this.stealCost ?? C.DEFAULT_STEAL_COST
      }, sig))
      // A victim that gave nothing (its backlog would not pay off, or is gone) is left alone for a while, whatever
      // its gossiped load says: asking again at once is the thrash stealing must avoid.
      // A refusal is remembered only briefly: the victim's backlog may be a submission still arriving, and a thief
      // blind to it for long is the idle node that skews the balance. An empty steal costs one round trip, no writes.
      const now = this.clock.now()
      this.victimView.set(target, res.tasks.length > 0
        ? { queued: res.queued, running: res.running, until: now + C.VICTIM_VIEW_TTL }
        : { queued: 0, running: 0, until: now + C.VICTIM_REFUSED_TTL })
      got = res.tasks.length
      if (got > 0) {
        this.stealCost = ewma(this.stealCost, this.clock.now() - t0)
        this.metrics?.moved.inc(got)
        this.log.debug({ victim: target, tasks: got }, 'stole tasks')
      }
      this.metrics?.steals.inc({ role: 'thief', outcome: got > 0 ? 'got' : 'empty' })
      for (const b of res.tasks) {
        const rec = decodeRecord(b)
        // A dropped run of the same task may still be ending here; the new hold replaces it.
        if (this.holds(rec.id)) continue
        this.held.set(rec.id, { rec, phase: 'queued', write: Promise.resolve(), stored: { node: rec.node, attempt: rec.attempt } })
        this.queue.push(rec.id)
      }
    } catch (err) {
      this.metrics?.steals.inc({ role: 'thief', outcome: 'error' })
      const code = toMeshError(err).code
      this.log.debug({ err, victim: target }, 'steal failed')
      // The victim may have recorded tasks as ours and then failed to tell us: find them in the store.
      // A scan is not at quorum and may miss a move that has only just landed: look once more a little later.
      // UNAVAILABLE too: a connection that closed after the victim moved the tasks fails the call that way.
      // One pair of looks at a time: a victim that cannot be dialled fails every steal at once (UNAVAILABLE), and
      // each failure had queued two scans of every task record. A reply lost while a look is pending is found by its
      // second one, which starts after it.
      if ((code === 'TIMEOUT' || code === 'ABORTED' || code === 'NODE_UNREACHABLE' || code === 'INTERNAL' || code === 'UNAVAILABLE') && !this.lostReplyLook) {
        this.lostReplyLook = true
        this.sweep(r => r.node === this.self, 'lost steal reply')
        this.once(C.STEAL_TIMEOUT, () => {
          this.sweep(r => r.node === this.self, 'lost steal reply, second look', ok => { this.lostReplyLook = false; if (!ok) this.ownOwed = true })
        })
      }
    } finally {
      this.stealing = false
    }
    if (got > 0) {
      this.stealBackoff = this.init.stealInterval ?? C.STEAL_IDLE_INTERVAL
      this.kickSteal(C.STEAL_BUSY_INTERVAL)
    } else {
      this.stealBackoff = Math.min(C.STEAL_MAX_BACKOFF, probing ? this.stealBackoff * 2 : this.stealBackoff)
      this.kickSteal(probing ? this.stealBackoff : C.STEAL_BUSY_INTERVAL * 10)
    }
    // After the next steal is scheduled, so that starting the stolen tasks does not re-kick it at once.
    this.pump()
  }

  // ---- failure: adoption of a gone holder's tasks

  private liveMembers (): TaskMember[] {
    const ms = this.components.membership.members().filter(m => m.state === 'alive' || m.state === 'suspect')
    if (!ms.some(m => m.peerId === this.self)) ms.push({ peerId: this.self, state: 'alive', capacity: this.slots, load: this.queue.length + this.runningCount, tags: this.tags, memory: this.memory })
    return ms.map(m => m.peerId === this.self ? { ...m, capacity: this.slots, tags: this.tags, memory: this.memory } : m)
  }

  /** Holds the task and still owns it (a dropped run may linger until its process ends). */
  private holds (id: string): boolean {
    const h = this.held.get(id)
    return h != null && h.dropped !== true
  }

  private isLive (peerId: string): boolean {
    return this.liveMembers().some(m => m.peerId === peerId)
  }

  private onHolderGone (peerId: string): void {
    if (peerId === this.self) return
    this.victimView.delete(peerId)
    const live = this.liveMembers().map(m => m.peerId).filter(p => p !== peerId)
    if (adopterFor(live) !== this.self) return
    this.log.info({ node: peerId }, 'adopting the tasks of a node that is gone')
    this.sweep(r => r.node === peerId, 'declared dead or left')
  }

  /** A lost steal reply's looks in the store are pending (see steal). */
  private lostReplyLook = false
  /**
   * This node's own records are owed a look: its restart recovery has not gone through yet, or a lost steal reply's
   * looks failed. A record under a live node's name that the node does not hold is adopted by nobody else, and stayed
   * queued for good (a store outage longer than the recovery's tries at a restart).
   */
  private ownOwed = false
  private backstopRounds = 0

  /**
   * The adopter of the live members takes the tasks of holders that are gone. Every node takes back the records under
   * its own name that it does not hold: at each round while they are owed a look (ownOwed), else every
   * OWN_SWEEP_ROUNDS rounds, for dead ends nothing reports (a stolen task's record that landed after both looks for a
   * lost reply); the adopter in every round, in the scan it makes anyway.
   */
  private backstopSweep (): void {
    // One waiting at most: a sweep of many records can outlast the interval, and each tick queued another.
    if (this.backstopQueued) return
    const live = this.liveMembers().map(m => m.peerId)
    const adopter = adopterFor(live) === this.self
    const own = adopter || this.ownOwed || ++this.backstopRounds % C.OWN_SWEEP_ROUNDS === 0
    if (!adopter && !own) return
    const set = new Set(live)
    // A record of this node's written only just now may be a steal's move whose reply is on its way: it is left to the
    // next round, which must then look again.
    const settled = this.clock.now() - C.STEAL_TIMEOUT
    let deferred = false
    const mine = (r: TaskRecord): boolean => {
      if (r.updatedAt < settled) return true
      if (!this.holds(r.id) && !this.ended.has(r.id) && !this.submitting.has(r.id)) deferred = true
      return false
    }
    this.backstopQueued = true
    this.sweep(r => r.node === this.self ? own && mine(r) : adopter && !set.has(r.node), 'backstop', ok => {
      this.backstopQueued = false
      if (ok && own && !deferred) this.ownOwed = false
      else if (deferred) this.ownOwed = true
    })
  }

  /** Adopts every unfinished task in the store that matches and is not held here. One sweep at a time. */
  private sweep (match: (r: TaskRecord) => boolean, why: string, done?: (ok: boolean) => void): void {
    if (this.stopping) return
    const prev = this.sweeping ?? Promise.resolve()
    this.sweeping = prev.catch(() => {}).then(async () => {
      if (this.stopping) return
      let adopted = 0
      let failed = 0
      // Page by page: a sweep holds one page at a time, and a deadline that passes loses only the pages not read.
      for await (const records of this.recordPages(deadline(C.SCAN_TIMEOUT))) {
        for (const r of records) {
          if (terminalStates.has(r.state) || !match(r) || this.holds(r.id) || this.submitting.has(r.id)) continue
          if (this.ended.has(r.id)) continue
          // One task whose record cannot be read or written now does not keep the sweep from the others; the sweep
          // then counts as failed, so that its caller runs it again (a restart's recovery had skipped such a task,
          // and it stayed queued under a live node that held nothing).
          try {
            await this.adopt(r, why, match)
            adopted++
          } catch (err) {
            failed++
            this.log.debug({ err, id: r.id, why }, 'could not adopt a task; the sweep will be retried')
          }
        }
      }
      if (adopted > 0) this.log.info({ adopted, why }, 'adopted tasks')
      if (failed > 0) throw new TasksUnavailableError(`${failed} task${failed === 1 ? '' : 's'} could not be adopted (${why})`)
      done?.(true)
    }).catch(err => {
      const e = toMeshError(err)
      // The store not answering yet (a node still learning its ring at start-up, replicas down) is retried, and is
      // no news worth a stack trace.
      if (e.code === 'UNAVAILABLE') this.log.info({ why, reason: e.message }, 'task sweep postponed: the store is not available')
      else this.log.warn({ err, why }, 'task sweep failed')
      done?.(false)
    })
  }

  private async adopt (scanned: TaskRecord, why: string, match: (r: TaskRecord) => boolean): Promise<void> {
    // A scan is a snapshot, and not at quorum: the task may have ended or moved since. Read it again at quorum.
    const r = await this.get(scanned.id).catch(err => { if (err instanceof TaskNotFoundError) return undefined; throw err })
    if (r == null || terminalStates.has(r.state) || !match(r) || this.holds(r.id) || this.ended.has(r.id) || this.submitting.has(r.id)) return
    const now = this.clock.now()
    let rec: TaskRecord = { ...r, node: this.self, updatedAt: now }
    if (r.state === 'running') {
      const attempts = r.attempts.slice()
      const last = attempts.at(-1)
      if (last != null && last.end == null) attempts[attempts.length - 1] = { ...last, end: now, error: `node ${r.node} died (${why})` }
      const nodeRetries = r.nodeRetries + 1
      if (nodeRetries > r.spec.retries) {
        rec = { ...rec, state: 'failed', attempts, nodeRetries: r.nodeRetries, error: `node ${r.node} died and no retries are left (${r.spec.retries})` }
        await this.putRecord(rec, deadline(C.STORE_TIMEOUT))
        return
      }
      this.metrics?.retries.inc({ kind: 'node' })
      rec = { ...rec, state: 'queued', attempts, nodeRetries }
    }
    rec.reason = this.waitReason(rec.spec)
    await this.putRecord(rec, deadline(C.STORE_TIMEOUT))
    if (this.stopping || this.holds(r.id) || this.submitting.has(r.id)) return
    this.hold(rec, { verify: true })
  }

  /**
   * Every task record, a page of SCAN_LIMIT at a time. Task ids start with their submission time, so a single page
   * held the oldest records only: past SCAN_LIMIT records a sweep missed every newer unfinished task, and a list
   * every newer one. Each page has its own deadline; `signal` bounds the whole. `from`, `until`: only keys after the
   * one, and before the other.
   */
  private async * recordPages (signal: AbortSignal, from?: string, until?: string): AsyncGenerator<TaskRecord[]> {
    let after: string | undefined = from
    for (;;) {
      signal.throwIfAborted()
      const start = after
      const page = await withDeadline(C.STORE_TIMEOUT, signal, async s => await this.components.store.scan(C.TASK_PREFIX, C.SCAN_LIMIT, s, start))
      const out: TaskRecord[] = []
      const stop = until == null ? -1 : page.findIndex(e => e.key >= until)
      for (const { value } of stop < 0 ? page : page.slice(0, stop)) {
        try {
          out.push(decodeRecord(value))
        } catch (err) {
          this.metrics?.malformed.inc()
          this.log.debug({ err }, 'skipped a malformed task record')
        }
      }
      yield out
      if (stop >= 0 || page.length < C.SCAN_LIMIT) return
      after = page[page.length - 1].key
    }
  }

  /** `from`, `until`: only keys after the one, and before the other. */
  private async scanRecords (signal: AbortSignal, from?: string, until?: string): Promise<TaskRecord[]> {
    const out: TaskRecord[] = []
    for await (const page of this.recordPages(signal, from, until)) out.push(...page)
    return out
  }

  // ---- heartbeat, freeze detection, metadata

  private tick (): void {
    const now = this.clock.now()
    const gap = now - this.lastTick
    this.lastTick = now
    if (gap > C.GAP_THRESHOLD && !this.paused) {
      this.gapAt = now
      this.log.warn({ gapMs: Math.round(gap) }, 'this node was stalled; checking it still holds its tasks before running more')
      void this.revalidate()
    }
  }

  /**
   * Notices a stall at once, whatever runs first after it. A resumed process handles pending I/O (a child's exit, a
   * steal request, a store reply) before its late timers fire, so the heartbeat alone would notice too late.
   */
  private checkGap (): void {
    if (this.started && this.clock.now() - this.lastTick > C.GAP_THRESHOLD) this.tick()
  }

  /** Whether record writes must re-read the record first: a stall was seen lately, or its revalidation is running. */
  private fenced (): boolean {
    this.checkGap()
    return this.paused || this.clock.now() - this.gapAt < C.FENCE_WINDOW
  }

  /**
   * After a stall others may have declared this node dead and adopted its tasks: nothing starts and nothing is handed
   * over until every held task has been checked against the store, and what is no longer ours is dropped. Writes in
   * the meantime are fenced one by one (persist).
   */
  private async revalidate (): Promise<void> {
    this.paused = true
    try {
      const mine = [...this.held.values()].filter(h => h.phase === 'queued' || h.phase === 'running')
      await Promise.all(mine.map(async h => {
        await this.checkMine(h).catch(err => { this.log.warn({ err, id: h.rec.id }, 'could not check a held task after a stall; its writes stay fenced') })
      }))
    } finally {
      this.paused = false
      this.lastTick = this.clock.now()
      this.pump()
    }
  }

  private publishLoad (): void {
    if (!this.started || this.stopping) return
    const load = this.queue.length + this.runningCount
    if (load === this.publishedLoad) return
    const wait = this.lastMeta + (this.init.metaInterval ?? C.META_INTERVAL) - this.clock.now()
    if (wait <= 0) {
      this.lastMeta = this.clock.now()
      this.publishedLoad = load
      try { this.components.membership.publish({ capacity: this.slots, load }) } catch (err) { this.log.debug({ err }, 'publishing load failed') }
    } else if (this.metaTimer == null) {
      this.metaTimer = this.clock.setTimeout(() => { this.metaTimer = undefined; this.publishLoad() }, wait)
    }
  }

  private remember (id: string): void {
    this.ended.add(id)
    if (this.ended.size > 10_000) for (const x of this.ended) { this.ended.delete(x); if (this.ended.size <= 5_000) break }
  }

  /** Runs `attempt` every END_RETRY_INTERVAL until it resolves, `tries` times at most, or the node stops. */
  private retryLater (attempt: () => Promise<void>, tries = Infinity): void {
    this.once(C.END_RETRY_INTERVAL, () => {
      attempt().catch(() => { if (tries > 1) this.retryLater(attempt, tries - 1) })
    })
  }

  private once (ms: number, fn: () => void): void {
    const t = this.clock.setTimeout(() => { this.timers.delete(t); if (!this.stopping) fn() }, ms)
    this.timers.add(t)
  }

  private every (ms: number, fn: () => void): void {
    const arm = (): void => {
      const t = this.clock.setTimeout(() => { this.timers.delete(t); if (!this.stopping) { fn(); arm() } }, ms)
      this.timers.add(t)
    }
    arm()
  }

  private assertRunning (): void {
    if (!this.started || this.stopping) throw new TasksUnavailableError('tasks are not running on this node')
  }
}

class InputError extends Error {}

