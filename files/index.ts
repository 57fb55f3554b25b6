/**
 * The distributed file system: files split into fixed-size chunks addressed by CIDv1 (raw, sha2-256), a manifest
 * (CIDv1, json) listing them whose CID is the file id, a durable verified chunk store, the `/meshos/files/1.0.0`
 * transfer service, parallel verified fetch with retry, replication with repair, pins and garbage collection.
 * See {@link Files} for placement and repair.
 *
 * @packageDocumentation
 */
export {
  Files, type FilesComponents, type FilesInit, type FilesMembership, type FilesMembershipEvent, type ContentRouting, type Placement,
  type OpOptions, type ImportOptions, type ImportResult, type ReadOptions, type ReadResult, type FileStat, type ChunkStat,
  type FileEntry, type RemoveResult
} from './files.js'
export { ChunkStore, PinStore, type ChunkStoreInit, type Pin } from './store.js'
export {
  type Manifest, chunkCid, chunkCidAsync, encodeManifest, decodeManifest, verifyBlock, verifyBlockAsync, parseFileCid, parseChunkCid, cidFromBytes, chunkLength,
  MANIFEST_CODEC, CHUNK_CODEC
} from './manifest.js'
export { chunker } from './chunker.js'
export { filesService, type FilesService } from './service.js'
export { CorruptChunkError, InvalidCidError, FileNotFoundError, RemovalConflictError } from './errors.js'
export { parseRange, type ByteRange } from './range.js'
export * as constants from './constants.js'
