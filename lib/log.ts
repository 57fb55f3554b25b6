import { pino, type Logger, type LevelWithSilent } from 'pino'

export type { Logger }
export type LogFormat = 'json' | 'pretty'

export interface LoggerInit {
  /** @default 'info' */
  level?: LevelWithSilent
  /** @default 'json' */
  format?: LogFormat
  /** Where JSON lines go; a file descriptor. @default 2 (stderr, so stdout stays for command output) */
  fd?: number
}

export function createLogger (init: LoggerInit = {}): Logger {
  const level = init.level ?? 'info'
  if (init.format === 'pretty') {
    return pino({ level }, pino.transport({ target: 'pino-pretty', options: { destination: init.fd ?? 2, colorize: false } }))
  }
  return pino({ level, base: { pid: process.pid } }, pino.destination({ fd: init.fd ?? 2, sync: false }))
}

/** A logger that drops everything, for tests and simulations. */
export const silentLogger: Logger = pino({ level: 'silent' })

/** Each component logs through its own child, so `component` is a field every line can be filtered on. */
export function componentLogger (root: Logger, component: string): Logger {
  return root.child({ component })
}
