// The launcher: a small process the daemon forks once, which starts the tasks' processes on its behalf (see
// tasks/launcher.ts). It holds no state beyond the processes it started and exits when the daemon goes away.
import { spawn } from 'node:child_process'
import type { LauncherReply, LauncherRequest } from './launcher.js'

const send = (m: LauncherReply): void => { if (process.connected) process.send?.(m) }

/** Process groups of the tasks' processes still running (each task leads a group of its own). */
const running = new Set<number>()

function groupAlive (pgid: number): boolean {
  try {
    process.kill(-pgid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

process.on('message', (m: LauncherRequest) => {
  if (m?.t !== 'spawn') return
  for (const pgid of running) if (!groupAlive(pgid)) running.delete(pgid)
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
    running.add(pid)
    send({ t: 'pid', id, pid })
  }
  child.stdout.on('data', (b: Buffer) => { send({ t: 'out', id, fd: 1, data: b }) })
  child.stderr.on('data', (b: Buffer) => { send({ t: 'out', id, fd: 2, data: b }) })
  child.once('error', (err: NodeJS.ErrnoException) => {
    // After a start, an error is about signalling or the pipes: 'close' still follows.
    if (child.pid == null) send({ t: 'error', id, code: err.code, message: err.message })
  })
  child.once('close', (code, signal) => {
    // A task's background children may live on in its group after it ends (`nohup x >/dev/null &` holds no pipe):
    // the group is forgotten only once it is empty.
    if (pid != null && !groupAlive(pid)) running.delete(pid)
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
