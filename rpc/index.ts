export { Rpc, bytesByReference, protocolId } from './rpc.js'
export type { Codec, MethodDef, Methods, ServiceDef, Handlers, CallContext, CallOptions, RpcComponents, RpcInit, RequestOf, ResponseOf } from './rpc.js'
export { FrameDecoder, encodeFrameWithBody, encodeLengthPrefixed } from './framing.js'
