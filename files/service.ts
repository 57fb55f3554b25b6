import * as M from './messages.js'
import { MAX_MESSAGE_SIZE } from './constants.js'
import { bytesByReference, type ServiceDef } from '../rpc/index.js'

/** `/meshos/files/1.0.0`: block transfer and the pin bookkeeping replicas need from each other. */
export const filesService = {
  name: 'files',
  version: 1,
  maxMessageSize: MAX_MESSAGE_SIZE,
  methods: {
    /** A verified block (chunk or manifest) this node stores; NOT_FOUND when it has none. */
    getChunk: { request: M.GetChunkRequest, response: bytesByReference(M.GetChunkResponse, 1, 'data') },
    /** Stores a block after verifying it against its CID. */
    putChunk: { request: bytesByReference(M.PutChunkRequest, 2, 'data'), response: M.PutChunkResponse },
    /** Which of the named blocks this node stores. */
    has: { request: M.HasRequest, response: M.HasResponse },
    /** Makes this node a replica of a file: it pins it, pulling what it lacks from the sources in the background. */
    pin: { request: M.PinRequest, response: M.PinResponse },
    /** Drops this node's pin of a file and collects the chunks no other pin references. */
    unpin: { request: M.UnpinRequest, response: M.UnpinResponse },
    /** This node's pins (all, or the named ones) and the removals it remembers. */
    pins: { request: M.PinsRequest, response: M.PinsResponse }
  }
} satisfies ServiceDef<any>

export type FilesService = typeof filesService
