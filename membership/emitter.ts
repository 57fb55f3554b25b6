/**
 * A small typed event emitter. Listeners run synchronously, in order; one that throws is reported
 * to `onError` and does not stop the others (a subscriber bug must never break the protocol).
 */
export class TypedEmitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<(data: any) => void>>()
  private readonly onError: (err: unknown) => void

  constructor (onError: (err: unknown) => void = () => {}) {
    this.onError = onError
  }

  /** Adds a listener and returns a function that removes it. */
  on<K extends keyof Events>(type: K, fn: (data: Events[K]) => void): () => void {
    let set = this.listeners.get(type)
    if (set === undefined) {
      set = new Set()
      this.listeners.set(type, set)
    }
    set.add(fn)
    return () => { this.off(type, fn) }
  }

  off<K extends keyof Events>(type: K, fn: (data: Events[K]) => void): void {
    this.listeners.get(type)?.delete(fn)
  }

  emit<K extends keyof Events>(type: K, data: Events[K]): void {
    const set = this.listeners.get(type)
    if (set === undefined) return
    for (const fn of [...set]) {
      try {
        fn(data)
      } catch (err) {
        this.onError(err)
      }
    }
  }

  listenerCount (type: keyof Events): number {
    return this.listeners.get(type)?.size ?? 0
  }
}
