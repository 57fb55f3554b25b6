import type { Codec } from 'protons-runtime'
import {
  WriteRequest, WriteResponse, ReadRequest, ReadResponse, ReadManyRequest, ReadManyResponse, FetchRequest, FetchResponse,
  MerkleRequest, MerkleResponse, FetchRangeRequest, FetchRangeResponse, ScanRequest, ScanResponse, PurgesRequest, PurgesResponse
} from './storage.js'
import type { ReplicaMethod } from './types.js'

/**
 * The replica RPC surface as data: for each ReplicaTransport/ReplicaService method, its request
 * and response codecs. An RPC adapter registers `storage.<name>` handlers that decode the
 * request, call `service[name](req, signal)` and encode the response, and builds a transport
 * that does the reverse.
 */
export const replicaMethods: { [M in ReplicaMethod]: { request: () => Codec<any>, response: () => Codec<any> } } = {
  write: { request: WriteRequest.codec, response: WriteResponse.codec },
  read: { request: ReadRequest.codec, response: ReadResponse.codec },
  readMany: { request: ReadManyRequest.codec, response: ReadManyResponse.codec },
  fetch: { request: FetchRequest.codec, response: FetchResponse.codec },
  merkle: { request: MerkleRequest.codec, response: MerkleResponse.codec },
  fetchRange: { request: FetchRangeRequest.codec, response: FetchRangeResponse.codec },
  scan: { request: ScanRequest.codec, response: ScanResponse.codec },
  purges: { request: PurgesRequest.codec, response: PurgesResponse.codec }
}
