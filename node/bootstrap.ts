import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { silentLogger, type Logger } from '../lib/log.js'
import * as C from './constants.js'
import type { Libp2p, PeerId } from '@libp2p/interface'

export interface BootstrapperInit {
  addrs: string[]
  /** @default 500 ms */
  initialBackoff?: number
  /** @default 30 seconds */
  maxBackoff?: number
  logger?: Logger
}

interface Target {
  addr: Multiaddr
  peer: PeerId
  backoff: number
  timer?: NodeJS.Timeout
  attempts: number
}

/**
 * Keeps a connection to each bootstrap peer. One that is down is retried with exponential backoff and jitter, for as
 * long as the node runs: a seed that is late to start must not leave a node alone, and must never make it exit.
 */
export class Bootstrapper {
  private readonly targets: Target[]
  private readonly log: Logger
  private readonly initialBackoff: number
  private readonly maxBackoff: number
  private running = false
  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    const t = this.targets.find(t => t.peer.equals(evt.detail))
    if (t != null && this.running) this.schedule(t, t.backoff)
  }

  constructor (private readonly libp2p: Pick<Libp2p, 'dial' | 'getConnections' | 'addEventListener' | 'removeEventListener' | 'peerId'>, init: BootstrapperInit) {
    this.log = (init.logger ?? silentLogger).child({ component: 'bootstrap' })
    this.initialBackoff = init.initialBackoff ?? C.bootstrapInitialBackoff
    this.maxBackoff = init.maxBackoff ?? C.bootstrapMaxBackoff
    this.targets = init.addrs.map(a => {
      const addr = multiaddr(a)
      const id = addr.getComponents().findLast(c => c.name === 'p2p')?.value
      return { addr, peer: peerIdFromString(id ?? ''), backoff: this.initialBackoff, attempts: 0 }
    }).filter(t => !t.peer.equals(libp2p.peerId))
  }

  start (): void {
    this.running = true
    this.libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    for (const t of this.targets) this.schedule(t, 0)
  }

  stop (): void {
    this.running = false
    this.libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    for (const t of this.targets) clearTimeout(t.timer)
  }

  /** True once at least one bootstrap peer is connected, or when there are none. */
  get connected (): boolean {
    return this.targets.length === 0 || this.targets.some(t => this.libp2p.getConnections(t.peer).length > 0)
  }

  private schedule (t: Target, ms: number): void {
    clearTimeout(t.timer)
    const jittered = ms === 0 ? 0 : ms * (0.75 + Math.random() * 0.5)
    t.timer = setTimeout(() => { void this.attempt(t) }, jittered)
    t.timer.unref()
  }

  private async attempt (t: Target): Promise<void> {
    if (!this.running) return
    if (this.libp2p.getConnections(t.peer).length > 0) {
      t.backoff = this.initialBackoff
      return
    }
    t.attempts++
    try {
      await this.libp2p.dial(t.addr, { signal: AbortSignal.timeout(C.bootstrapDialTimeout) })
      this.log.info({ peer: t.peer.toString(), attempts: t.attempts }, 'connected to bootstrap peer')
      t.backoff = this.initialBackoff
      t.attempts = 0
    } catch (err) {
      this.log.warn({ addr: t.addr.toString(), attempts: t.attempts, retryInMs: Math.round(t.backoff), err: (err as Error).message }, 'bootstrap peer unreachable; will retry')
      if (this.running) this.schedule(t, t.backoff)
      t.backoff = Math.min(t.backoff * 2, this.maxBackoff)
    }
  }
}
