import { MeshError } from '../lib/errors.js'

/** A stored or received chunk whose bytes do not hash to its CID. */
export class CorruptChunkError extends MeshError {
  /** `code`: what the caller should hear. Bytes a peer sent that do not match their id are a bad request of its own. @default 'UNAVAILABLE' */
  constructor (readonly cid: string, where: string, code: 'UNAVAILABLE' | 'BAD_REQUEST' = 'UNAVAILABLE') {
    super(code, `chunk ${cid} is corrupt (${where})`)
    this.name = 'CorruptChunkError'
  }
}

/** A string that is not a CID, or a CID that is not a file's manifest. */
export class InvalidCidError extends MeshError {
  constructor (message: string) {
    super('BAD_REQUEST', message)
    this.name = 'InvalidCidError'
  }
}

/** No node that answered holds the file or chunk. */
export class FileNotFoundError extends MeshError {
  constructor (message: string) {
    super('NOT_FOUND', message)
    this.name = 'FileNotFoundError'
  }
}

/** An `rm` that removed no copy because every holder it reached had the file put again while the removal ran. */
export class RemovalConflictError extends MeshError {
  constructor (message: string) {
    super('CONFLICT', message)
    this.name = 'RemovalConflictError'
  }
}
