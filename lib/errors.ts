/**
 * Every error that crosses a boundary (API, CLI, RPC) is a MeshError with a stable `code`.
 * The code decides the HTTP status and the CLI exit code, so scripts can rely on them.
 */
export const errorCodes = {
  BAD_REQUEST: { status: 400, exit: 64 },
  INVALID_CONFIG: { status: 400, exit: 78 },
  UNAUTHORIZED: { status: 401, exit: 77 },
  FORBIDDEN: { status: 403, exit: 77 },
  NOT_FOUND: { status: 404, exit: 1 },
  METHOD_NOT_ALLOWED: { status: 405, exit: 64 },
  CONFLICT: { status: 409, exit: 75 },
  CLOCK_SKEW: { status: 409, exit: 75 },
  PAYLOAD_TOO_LARGE: { status: 413, exit: 64 },
  RANGE_NOT_SATISFIABLE: { status: 416, exit: 64 },
  HEADERS_TOO_LARGE: { status: 431, exit: 64 },
  REQUEST_TIMEOUT: { status: 408, exit: 2 },
  MESSAGE_TOO_LARGE: { status: 413, exit: 64 },
  MALFORMED_MESSAGE: { status: 400, exit: 64 },
  RATE_LIMITED: { status: 429, exit: 75 },
  INTERNAL: { status: 500, exit: 70 },
  NOT_IMPLEMENTED: { status: 501, exit: 70 },
  UNAVAILABLE: { status: 503, exit: 2 },
  TIMEOUT: { status: 504, exit: 2 },
  ABORTED: { status: 499, exit: 130 },
  NODE_UNREACHABLE: { status: 502, exit: 69 },
  DATA_DIR_LOCKED: { status: 409, exit: 73 },
  LISTEN_FAILED: { status: 500, exit: 71 },
  UNKNOWN_METHOD: { status: 404, exit: 64 },
  /** A node's disk is full or read-only (ENOSPC, EDQUOT, EROFS): not a bug, and another node may have room. */
  INSUFFICIENT_STORAGE: { status: 507, exit: 74 }
} as const

export type ErrorCode = keyof typeof errorCodes

export function isErrorCode (code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(errorCodes, code)
}

export class MeshError extends Error {
  readonly code: ErrorCode
  constructor (code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'MeshError'
  }

  get status (): number { return errorCodes[this.code].status }
  get exitCode (): number { return errorCodes[this.code].exit }

  toJSON (): { error: { code: ErrorCode, message: string } } {
    return { error: { code: this.code, message: this.message } }
  }
}

export class BadRequestError extends MeshError {
  constructor (message: string) { super('BAD_REQUEST', message); this.name = 'BadRequestError' }
}
export class NotFoundError extends MeshError {
  constructor (message: string) { super('NOT_FOUND', message); this.name = 'NotFoundError' }
}
export class UnavailableError extends MeshError {
  constructor (message: string) { super('UNAVAILABLE', message); this.name = 'UnavailableError' }
}
export class TimeoutError extends MeshError {
  constructor (message: string) { super('TIMEOUT', message); this.name = 'TimeoutError' }
}
export class PayloadTooLargeError extends MeshError {
  constructor (message: string) { super('PAYLOAD_TOO_LARGE', message); this.name = 'PayloadTooLargeError' }
}
export class MessageTooLargeError extends MeshError {
  constructor (message: string) { super('MESSAGE_TOO_LARGE', message); this.name = 'MessageTooLargeError' }
}
export class MalformedMessageError extends MeshError {
  constructor (message: string) { super('MALFORMED_MESSAGE', message); this.name = 'MalformedMessageError' }
}
export class InvalidConfigError extends MeshError {
  constructor (message: string) { super('INVALID_CONFIG', message); this.name = 'InvalidConfigError' }
}
export class DataDirLockedError extends MeshError {
  constructor (message: string) { super('DATA_DIR_LOCKED', message); this.name = 'DataDirLockedError' }
}
export class NodeUnreachableError extends MeshError {
  constructor (message: string) { super('NODE_UNREACHABLE', message); this.name = 'NodeUnreachableError' }
}
/** An address the node was told to listen on (peer or API) cannot be bound: in use, not local, or not permitted. */
export class ListenFailedError extends MeshError {
  constructor (message: string, options?: { cause?: unknown }) { super('LISTEN_FAILED', message, options); this.name = 'ListenFailedError' }
}

/** Why a bind failed, in words, from its errno code. */
export function listenReason (err: { code?: string, message?: string }): string {
  switch (err.code) {
    case 'EADDRINUSE': return 'the address is already in use (by another process, or another node on this machine)'
    case 'EADDRNOTAVAIL': return 'the address is not one of this machine\'s'
    case 'EACCES': return 'permission denied (ports below 1024 need privileges)'
    default: return err.message ?? String(err)
  }
}

/** Converts anything thrown into a MeshError, keeping the code of one that already is. */
export function toMeshError (err: unknown): MeshError {
  if (err instanceof MeshError) return err
  const e = err as { name?: string, message?: string, code?: unknown } | undefined
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError') return new MeshError('TIMEOUT', e.message ?? 'deadline exceeded', { cause: err })
  if (isErrorCode(e?.code)) return new MeshError(e.code, e?.message ?? String(err), { cause: err })
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT' || e?.code === 'EROFS') return new MeshError('INSUFFICIENT_STORAGE', `the node cannot store more: ${e.message ?? String(err)}`, { cause: err })
  return new MeshError('INTERNAL', e?.message ?? String(err), { cause: err })
}
