import { systemClock, type Clock } from './clock.js'
import { TimeoutError } from './errors.js'

/**
 * A signal that aborts when the caller's does or when `ms` have passed, whichever comes first. Its timer cannot be
 * cancelled: for one awaited call, prefer withDeadline.
 */
export function deadline (ms: number, signal?: AbortSignal): AbortSignal {
  const timeout = AbortSignal.timeout(ms)
  return signal == null ? timeout : AbortSignal.any([signal, timeout])
}

/**
 * Resolves after `ms`, or rejects when the signal aborts. Not for waiting on events: wait for the event. On `clock`'s
 * timers when given (protocol code on virtual time); otherwise on a plain timer, which keeps the process alive.
 */
export async function delay (ms: number, signal?: AbortSignal, clock?: Clock): Promise<void> {
  signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const done = (): void => { signal?.removeEventListener('abort', onAbort); resolve() }
    let cancel: () => void
    if (clock == null) {
      const t = setTimeout(done, ms)
      cancel = () => { clearTimeout(t) }
    } else {
      const h = clock.setTimeout(done, ms)
      cancel = () => { clock.clearTimeout(h) }
    }
    const onAbort = (): void => { cancel(); reject(signal?.reason) }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * Waits for `promise` to settle, at most `ms`, whatever its outcome; rejects when the signal aborts. The timer goes
 * as soon as the wait ends, so a wait that ended early holds nothing (a plain race against delay() kept its timer,
 * and with it the process, for the full `ms`).
 */
export async function waitAtMost (promise: Promise<unknown>, ms: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const end = (): void => { clearTimeout(t); signal?.removeEventListener('abort', onAbort) }
    const onAbort = (): void => { end(); reject(signal?.reason) }
    const t = setTimeout(() => { end(); resolve() }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
    promise.then(() => { end(); resolve() }, () => { end(); resolve() })
  })
}

/**
 * Runs `fn` under a signal that aborts when the caller's does or, with a TimeoutError, after `ms`; the timer and the
 * listener go when `fn` settles. AbortSignal.timeout() fires into finished work: seconds later it builds a DOMException
 * (with its stack) and runs the abort listeners of every signal combined with it, for each call made. The timer runs
 * on `clock`, so protocol code on virtual time gets virtual deadlines.
 */
export async function withDeadline<T> (ms: number, signal: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>, clock: Clock = systemClock): Promise<T> {
  signal?.throwIfAborted()
  const controller = new AbortController()
  const onAbort = (): void => { controller.abort(signal?.reason) }
  const timer = clock.setTimeout(() => { controller.abort(new TimeoutError(`deadline of ${ms} ms passed`)) }, ms)
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    return await fn(controller.signal)
  } finally {
    clock.clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
  }
}

/**
 * Settles with `promise`, or rejects with the signal's reason as soon as it aborts, whichever comes first. For work
 * that may not heed its signal: the caller stops waiting for it, though it may still run to its end.
 */
export async function raceSignal<T> (promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {})
    throw signal.reason
  }
  return await new Promise<T>((resolve, reject) => {
    const onAbort = (): void => { promise.catch(() => {}); reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      v => { signal.removeEventListener('abort', onAbort); resolve(v) },
      e => { signal.removeEventListener('abort', onAbort); reject(e) })
  })
}
