import type { Clock } from '../lib/clock.js'

/** Waits on the injected clock so simulations on virtual time work; rejects when the signal aborts. */
export async function sleep (clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => { clock.clearTimeout(h); reject(signal?.reason) }
    const h = clock.setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Resolves or rejects with the promise, or rejects with the signal's reason when it aborts first. */
export async function raceSignal<T> (p: Promise<T>, signal: AbortSignal): Promise<T> {
  // If the signal wins, p may still reject later; that is expected and must not surface as unhandled.
  p.catch(() => {})
  signal.throwIfAborted()
  let onAbort!: () => void
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([p, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}
