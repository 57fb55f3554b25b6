// What is left of a task's process group once its leader has exited. Shared by the daemon's direct starter and the
// launcher helper (tasks/launcher-process.ts), which imports nothing else of the daemon.

/** Groups sent SIGTERM after their leader exited, by id, and the SIGKILL each has pending. */
const ending = new Map<number, ReturnType<typeof setTimeout>>()

/** Signals a process group; false when it has no process left. */
export function signalGroup (pgid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, sig)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Ends what a task left running in its group after its leader exited (`x &`, with its output redirected or not):
 * SIGTERM now, SIGKILL after the grace, as a cancel does. The task is over, and these would otherwise run on outside
 * its slot, its timeout and any cancel; one that holds the output pipes also kept the task's end from being seen. The
 * grace, rather than SIGKILL at once, because the leader may have exited on a cancel's SIGTERM (a `sh -c` does at
 * once) while the program it ran is still cleaning up on the same SIGTERM: that cleanup was promised the grace.
 */
export function endGroup (pgid: number, grace: number, leaderSignal: NodeJS.Signals | null): void {
  // A leader ended by SIGTERM was, nearly always, ended by the cancel or timeout that sent it to the whole group: a
  // second SIGTERM would hurry a program that takes a repeated one to mean "now".
  if (ending.has(pgid) || !signalGroup(pgid, leaderSignal === 'SIGTERM' ? 0 : 'SIGTERM')) return
  ending.set(pgid, setTimeout(() => { ending.delete(pgid); signalGroup(pgid, 'SIGKILL') }, grace))
}

/**
 * A process just started under `pid` leads a new group of that id: the group of the same id that was ending is
 * empty (the kernel reuses no id a group still has), and its pending SIGKILL must not reach the new one.
 */
export function groupStarted (pid: number): void {
  const t = ending.get(pid)
  if (t != null) { clearTimeout(t); ending.delete(pid) }
}
