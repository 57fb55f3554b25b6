import { BadRequestError, MeshError, NotFoundError, PayloadTooLargeError, UnavailableError } from '../lib/errors.js'
import type { ConsistencyLevel } from './types.js'

export class KeyTooLargeError extends PayloadTooLargeError {
  constructor (bytes: number, max: number) {
    super(`key is ${bytes} bytes of UTF-8, the limit is ${max}`)
    this.name = 'KeyTooLargeError'
  }
}

export class ValueTooLargeError extends PayloadTooLargeError {
  constructor (bytes: number, max: number) {
    super(`value is ${bytes} bytes, the limit is ${max}`)
    this.name = 'ValueTooLargeError'
  }
}

export class InvalidKeyError extends BadRequestError {
  constructor (reason: string) {
    super(`invalid key: ${reason}`)
    this.name = 'InvalidKeyError'
  }
}

export class InvalidOptionError extends BadRequestError {
  constructor (message: string) {
    super(message)
    this.name = 'InvalidOptionError'
  }
}

export class KeyNotFoundError extends NotFoundError {
  readonly key: string
  constructor (key: string) {
    super(`key not found: ${JSON.stringify(key.length > 80 ? key.slice(0, 80) + '…' : key)}`)
    this.name = 'KeyNotFoundError'
    this.key = key
  }
}

/** Counts that explain why a consistency level was not met. */
export interface ConsistencyShortfall {
  op: 'read' | 'write'
  level: ConsistencyLevel
  /** Replicas that answered (or were alive, when failing before sending). */
  answered: number
  /** Replicas of the key. */
  replicas: number
  /** Answers the level needs. */
  required: number
}

function describe (s: ConsistencyShortfall, verb: string, suffix = ''): string {
  return `${s.answered} of ${s.replicas} replicas ${verb}, ${s.level.toUpperCase()} needs ${s.required}${suffix}`
}

/** The consistency level cannot be met: too few replicas alive or answering. Nothing is reported as done that was not. */
export class ConsistencyUnavailableError extends UnavailableError {
  readonly shortfall: ConsistencyShortfall
  constructor (s: ConsistencyShortfall, verb = 'answered') {
    super(describe(s, verb, s.op === 'write' && verb === 'answered' && s.answered > 0 ? ' (the write may be applied on the replicas that answered)' : ''))
    this.name = 'ConsistencyUnavailableError'
    this.shortfall = s
  }
}

/** This node has only just started and does not know the mesh's members yet; another node can take the request. */
export class ViewNotReadyError extends UnavailableError {
  constructor () {
    super('this node is still learning the mesh membership after starting; retry shortly or use another node')
    this.name = 'ViewNotReadyError'
  }
}

/**
 * The request deadline passed before the consistency level was met. Its code is `UNAVAILABLE`, as for a level known to
 * be unmeetable up front: to a caller both are an unmet level (503, exit 2), and a replica that stopped answering
 * looks exactly like this until membership declares it dead. The message says which it was and that a write may have
 * been applied on the replicas that answered.
 */
export class ConsistencyTimeoutError extends UnavailableError {
  readonly shortfall: ConsistencyShortfall
  constructor (s: ConsistencyShortfall, ms: number) {
    super(describe(s, `answered within ${ms} ms`, s.op === 'write' && s.answered > 0 ? ' (the write may be applied on the replicas that answered)' : ''))
    this.name = 'ConsistencyTimeoutError'
    this.shortfall = s
  }
}

/**
 * A write that stayed superseded after re-stamping: a replica holds a version of the key stamped beyond the clock drift
 * bound ahead of this node, or refuses this node's timestamps as that far ahead of its own clock. Nothing was
 * acknowledged; the mesh's clocks need fixing.
 */
export class ClockSkewError extends MeshError {
  readonly key: string
  /** `self`: this node's own clock was found ahead, and it coordinates no writes for now. */
  constructor (key: string, why: 'refused' | 'self' = 'refused') {
    const k = JSON.stringify(key.length > 80 ? key.slice(0, 80) + '…' : key)
    super('CLOCK_SKEW', why === 'self'
      ? `write of ${k} refused: replicas found this node's clock over the drift bound ahead of theirs, so it coordinates no writes until its clock is fixed; write through another node`
      : `write of ${k} not applied: replicas refuse its timestamp as too far ahead of their clocks; check the clocks of the mesh's nodes`)
    this.name = 'ClockSkewError'
    this.key = key
  }
}
