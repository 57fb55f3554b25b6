// The launcher: a small process the daemon forks once, which starts the tasks' processes on its behalf (see
// tasks/launcher.ts). It holds no state beyond the processes it started and exits when the daemon goes away.
import { spawn } from 'node:child_process'
import type { Readable } from 'node:stream'
import { endGroup, groupStarted, signalGroup } from './group.js'
import type { LauncherReply, LauncherRequest } from './launcher.js'

/** Sends a reply; `then` runs once it is written out (or cannot be). Returns false while the channel has a backlog. */
const send = (m: LauncherReply, then?: () => void): boolean => {
  if (process.connected && process.send != null) return process.send(m, undefined, {}, () => { then?.() })
  then?.()
  return true
}

/**
 * Passes a task's stream on to the daemon: its first `max` bytes, and a count of the rest, as the daemon's bounded
 * buffer keeps it. The daemon keeps no more, and a chatty task (`yes`) had this process hold all of it, in messages
 * queued faster than the daemon read them: 3.9 GiB in 40 s. While the channel has a backlog the child's pipe is not
 * read, so the child waits on its writes rather than this process's memory growing. Returns a flush of the count not
 * yet reported, for before the task's end is.
 */
function forward (id: number, fd: 1 | 2, stream: Readable, max: number): () => void {
  let passed = 0
  let dropped = 0
  let reporting = false
  // One count in flight at a time: a flood of output past the cap is reported at the pace the channel takes it.
  const report = (): void => {
    if (dropped === 0 || reporting) return
    reporting = true
    const bytes = dropped
    dropped = 0
    send({ t: 'dropped', id, fd, bytes }, () => { reporting = false; report() })
  }
  stream.on('data', (b: Buffer) => {
    const room = max - passed
    if (room <= 0) {
      dropped += b.byteLength
      report()
      return
    }
    const piece = b.byteLength > room ? b.subarray(0, room) : b
    passed += piece.byteLength
    dropped += b.byteLength - piece.byteLength
    const full = !send({ t: 'out', id, fd, data: piece }, () => { if (full) stream.resume() })
    if (full) stream.pause()
    report()
  })
  return () => {
    if (dropped > 0) send({ t: 'dropped', id, fd, bytes: dropped })
    dropped = 0
  }
}

/** Process groups of the tasks' processes still running (each task leads a group of its own). */
const running = new Set<number>()

process.on('message', (m: LauncherRequest) => {
  if (m?.t !== 'spawn') return
  for (const pgid of running) if (!signalGroup(pgid, 0)) running.delete(pgid)
  const { id } = m
  let child
  try {
    child = spawn(m.cmd, m.args, { cwd: m.cwd, env: m.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  } catch (err) {
    send({ t: 'error', id, code: (err as NodeJS.ErrnoException).code, message: (err as Error).message })
    return
  }
  const pid = child.pid
  if (pid != null) {
    groupStarted(pid)
    running.add(pid)
    send({ t: 'pid', id, pid })
  }
  const flushOut = forward(id, 1, child.stdout, m.maxOutput)
  const flushErr = forward(id, 2, child.stderr, m.maxOutput)
  child.once('exit', (_code, signal) => { if (pid != null) endGroup(pid, m.killGrace, signal) })
  child.once('error', (err: NodeJS.ErrnoException) => {
    // After a start, an error is about signalling or the pipes: 'close' still follows.
    if (child.pid == null) send({ t: 'error', id, code: err.code, message: err.message })
  })
  child.once('close', (code, signal) => {
    // A task's background children may live on in its group for the grace after it ends (endGroup): the group is
    // forgotten only once it is empty.
    if (pid != null && !signalGroup(pid, 0)) running.delete(pid)
    flushOut()
    flushErr()
    send({ t: 'close', id, code, signal })
  })
})

// The daemon is gone. A daemon that stopped gracefully has already ended its tasks; one that crashed or was killed
// has not, and its tasks will run again, after a restart or on the node that adopts them: a run left going here would
// then be a second run of the same task at the same time (seen: a killed node, restarted, ran a task again beside the
// orphan of its first run). So every group still running is killed, at once, before this process exits.
process.on('disconnect', () => {
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {}
  }
  process.exit(0)
})
