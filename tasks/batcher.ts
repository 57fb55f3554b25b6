import * as C from './constants.js'

type Put = (key: string, value: Uint8Array, signal: AbortSignal) => Promise<void>

interface Pending {
  key: string
  value: Uint8Array
  signal: AbortSignal
  resolve: () => void
  reject: (err: unknown) => void
}

export interface WriteBatcherInit {
  /** Waves of writes in the store at once; what arrives meanwhile waits for the next wave. @default RECORD_WRITE_WAVES */
  waves?: number
  /** Most writes in one wave; the rest wait for the next. @default RECORD_WAVE_MAX */
  maxWave?: number
}

/**
 * Group commit for task record writes. The store sends the writes that start in one turn of the event loop to each
 * replica as one request, but a node's tasks end at scattered moments, so their end writes would each pay a request
 * (and a replica fsync) of their own. Here a write that comes while `waves` waves are in the store waits for one of
 * them to land and then leaves with everything else that waited, in one turn: the more a node is writing, the larger
 * its waves, and an idle node's write leaves at once. Each write still lands, fails or times out on its own.
 */
export class WriteBatcher {
  private readonly waves: number
  private readonly maxWave: number
  private inFlight = 0
  private pending: Pending[] = []
  private scheduled = false

  constructor (private readonly put: Put, init: WriteBatcherInit = {}) {
    this.waves = Math.max(1, init.waves ?? C.RECORD_WRITE_WAVES)
    this.maxWave = Math.max(1, init.maxWave ?? C.RECORD_WAVE_MAX)
  }

  /** Writes waiting for a wave. */
  get queued (): number { return this.pending.length }

  async write (key: string, value: Uint8Array, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      // A writer that gives up while its write waits takes it out: it is never sent.
      const onAbort = (): void => {
        const i = this.pending.indexOf(p)
        if (i >= 0) { this.pending.splice(i, 1); reject(signal.reason) }
      }
      const p: Pending = {
        key,
        value,
        signal,
        resolve: () => { signal.removeEventListener('abort', onAbort); resolve() },
        reject: (err) => { signal.removeEventListener('abort', onAbort); reject(err) }
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.pending.push(p)
      this.schedule()
    })
  }

  private schedule (): void {
    if (this.scheduled || this.inFlight >= this.waves || this.pending.length === 0) return
    this.scheduled = true
    // The rest of this turn's writes join the wave: a steal's or a sweep's writes come in one turn.
    setImmediate(() => { this.scheduled = false; this.flush() })
  }

  private flush (): void {
    if (this.inFlight >= this.waves || this.pending.length === 0) return
    const wave = this.pending.splice(0, this.maxWave)
    this.inFlight++
    void Promise.allSettled(wave.map(async p => {
      try {
        await this.put(p.key, p.value, p.signal)
        p.resolve()
      } catch (err) {
        p.reject(err)
      }
    })).then(() => {
      this.inFlight--
      this.schedule()
    })
    this.schedule()
  }
}
