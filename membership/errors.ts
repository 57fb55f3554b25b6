import { MeshError } from '../lib/errors.js'

/** Member metadata whose encoding exceeds the configured limit. */
export class MetaTooLargeError extends MeshError {
  readonly bytes: number
  readonly limit: number
  constructor (bytes: number, limit: number) {
    super('PAYLOAD_TOO_LARGE', `member metadata is ${bytes} bytes encoded, the limit is ${limit}`)
    this.name = 'MetaTooLargeError'
    this.bytes = bytes
    this.limit = limit
  }
}

/** Metadata that is not of the expected shape (a non-string tag, a non-finite number). */
export class InvalidMetaError extends MeshError {
  constructor (message: string) {
    super('BAD_REQUEST', message)
    this.name = 'InvalidMetaError'
  }
}

/** An operation that needs a running membership (join, setMeta, leave) was called while stopped. */
export class MembershipNotRunningError extends MeshError {
  constructor (operation: string) {
    super('UNAVAILABLE', `membership is not running: cannot ${operation}`)
    this.name = 'MembershipNotRunningError'
  }
}

/** No seed answered a join within the deadline. */
export class JoinFailedError extends MeshError {
  constructor (message: string) {
    super('NODE_UNREACHABLE', message)
    this.name = 'JoinFailedError'
  }
}

/** A signer that cannot sign synchronously, which the state machine requires. */
export class AsyncSignerError extends MeshError {
  constructor () {
    super('INTERNAL', 'the private key signs asynchronously; membership needs a synchronous Ed25519 signer')
    this.name = 'AsyncSignerError'
  }
}

/** A starting incarnation that is not an integer in [0, limit]. */
export class InvalidIncarnationError extends MeshError {
  constructor (incarnation: number, limit: number) {
    super('BAD_REQUEST', `a starting incarnation must be an integer from 0 to ${limit}, not ${incarnation}`)
    this.name = 'InvalidIncarnationError'
  }
}
