// The launcher: a small process the daemon forks once, which starts the tasks' processes on its behalf (see
// tasks/launcher.ts). It holds no state beyond the processes it started and exits when the daemon goes away.
import { spawn } from 'node:child_process'
import type { LauncherReply, LauncherRequest } from './launcher.js'

const send = (m: LauncherReply): void => { if (process.connected) process.send?.(m) }

process.on('message', (m: LauncherRequest) => {
  if (m?.t !== 'spawn') return
  const { id } = m
  let child
  try {
    child = spawn(m.cmd, m.args, { cwd: m.cwd, env: m.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  } catch (err) {
    send({ t: 'error', id, code: (err as NodeJS.ErrnoException).code, message: (err as Error).message })
    return
  }
  if (child.pid != null) send({ t: 'pid', id, pid: child.pid })
  child.stdout.on('data', (b: Buffer) => { send({ t: 'out', id, fd: 1, data: b }) })
  child.stderr.on('data', (b: Buffer) => { send({ t: 'out', id, fd: 2, data: b }) })
  child.once('error', (err: NodeJS.ErrnoException) => {
    // After a start, an error is about signalling or the pipes: 'close' still follows.
    if (child.pid == null) send({ t: 'error', id, code: err.code, message: err.message })
  })
  child.once('close', (code, signal) => { send({ t: 'close', id, code, signal }) })
})

// The daemon is gone (or stopping): the tasks' processes run on in their own groups, as they would without a launcher.
process.on('disconnect', () => { process.exit(0) })
