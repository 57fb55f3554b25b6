/**
 * Runs `task(i)` for i in [0, count) with at most `window` running, and yields the results in index order. At most
 * `window` results are buffered. The first failure aborts the rest and is thrown. With `first`, only that many run at
 * the start, and one more may each time a result is yielded, until `window`: the first results come sooner when the
 * tasks share a bottleneck.
 */
export async function * ordered<T> (count: number, window: number, task: (i: number, signal: AbortSignal) => Promise<T>, signal?: AbortSignal, first = window): AsyncGenerator<T> {
  const controller = new AbortController()
  const inner = signal == null ? controller.signal : AbortSignal.any([signal, controller.signal])
  const pending = new Map<number, Promise<T>>()
  let next = 0
  let limit = Math.max(1, Math.min(first, window))
  const launch = (): void => {
    while (next < count && pending.size < limit) {
      const p = task(next, inner)
      // Observed here so a failure that is not awaited yet is not reported as unhandled.
      p.catch(() => {})
      pending.set(next, p)
      next++
    }
  }
  try {
    for (let i = 0; i < count; i++) {
      launch()
      const p = pending.get(i)!
      const value = await p
      pending.delete(i)
      limit = Math.min(window, limit + 1)
      yield value
    }
  } finally {
    controller.abort(new Error('transfer ended'))
  }
}

/** Runs `task(i)` for i in [0, count) with at most `window` running, and resolves when all have. */
export async function parallel (count: number, window: number, task: (i: number, signal: AbortSignal) => Promise<void>, signal?: AbortSignal): Promise<void> {
  for await (const _ of ordered(count, window, task, signal)) { /* results are side effects */ }
}
