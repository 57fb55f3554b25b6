import { decodeMessage, encodeMessage, enumeration, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export enum KadMessageType {
  PUT_VALUE = 'PUT_VALUE',
  GET_VALUE = 'GET_VALUE',
  ADD_PROVIDER = 'ADD_PROVIDER',
  GET_PROVIDERS = 'GET_PROVIDERS',
  FIND_NODE = 'FIND_NODE',
  PING = 'PING'
}

enum __KadMessageTypeValues {
  PUT_VALUE = 0,
  GET_VALUE = 1,
  ADD_PROVIDER = 2,
  GET_PROVIDERS = 3,
  FIND_NODE = 4,
  PING = 5
}

export namespace KadMessageType {
  export const codec = (): Codec<KadMessageType> => {
    return enumeration<KadMessageType>(__KadMessageTypeValues)
  }
}

export interface KadPeer {
  id: Uint8Array<ArrayBuffer>
  multiaddrs: Uint8Array<ArrayBuffer>[]
  connection?: number
}

export namespace KadPeer {
  let _codec: Codec<KadPeer>

  export const codec = (): Codec<KadPeer> => {
    if (_codec == null) {
      _codec = message<KadPeer>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.id != null && obj.id.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.id)
        }

        if (obj.multiaddrs != null && obj.multiaddrs.length > 0) {
          for (const value of obj.multiaddrs) {
            w.uint32(18)
            w.bytes(value)
          }
        }

        if (obj.connection != null) {
          w.uint32(24)
          w.int32(obj.connection)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          id: uint8ArrayAlloc(0),
          multiaddrs: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.id = reader.bytes()
              break
            }
            case 2: {
              if (opts.limits?.multiaddrs != null && obj.multiaddrs.length === opts.limits.multiaddrs) {
                throw new MaxLengthError('Decode error - repeated field "multiaddrs" had too many elements')
              }

              obj.multiaddrs.push(reader.bytes())
              break
            }
            case 3: {
              obj.connection = reader.int32()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          multiaddrs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.id`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              if (opts.limits?.multiaddrs != null && obj.multiaddrs === opts.limits.multiaddrs) {
                throw new MaxLengthError('Streaming decode error - repeated field "multiaddrs" had too many elements')
              }

              yield {
                field: `${prefix}.multiaddrs[]`,
                index: obj.multiaddrs,
                value: reader.bytes()
              }

              obj.multiaddrs++

              break
            }
            case 3: {
              yield {
                field: `${prefix}.connection`,
                value: reader.int32()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface KadPeerIdFieldEvent {
    field: '$.id'
    value: Uint8Array<ArrayBuffer>
  }

  export interface KadPeerMultiaddrsFieldEvent {
    field: '$.multiaddrs[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface KadPeerConnectionFieldEvent {
    field: '$.connection'
    value: number
  }

  export function encode (obj: Partial<KadPeer>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, KadPeer.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<KadPeer>): KadPeer {
    return decodeMessage(buf, KadPeer.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<KadPeer>): Generator<KadPeerIdFieldEvent | KadPeerMultiaddrsFieldEvent | KadPeerConnectionFieldEvent> {
    return streamMessage(buf, KadPeer.codec(), opts)
  }
}

export interface KadMessage {
  type: KadMessageType
  clusterLevel?: number
  key?: Uint8Array<ArrayBuffer>
  closer: KadPeer[]
  providers: KadPeer[]
}

export namespace KadMessage {
  let _codec: Codec<KadMessage>

  export const codec = (): Codec<KadMessage> => {
    if (_codec == null) {
      _codec = message<KadMessage>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.type != null && __KadMessageTypeValues[obj.type] !== 0) {
          w.uint32(8)
          KadMessageType.codec().encode(obj.type, w)
        }

        if (obj.clusterLevel != null) {
          w.uint32(80)
          w.int32(obj.clusterLevel)
        }

        if (obj.key != null) {
          w.uint32(18)
          w.bytes(obj.key)
        }

        if (obj.closer != null && obj.closer.length > 0) {
          for (const value of obj.closer) {
            w.uint32(66)
            KadPeer.codec().encode(value, w)
          }
        }

        if (obj.providers != null && obj.providers.length > 0) {
          for (const value of obj.providers) {
            w.uint32(74)
            KadPeer.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          type: KadMessageType.PUT_VALUE,
          closer: [],
          providers: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.type = KadMessageType.codec().decode(reader)
              break
            }
            case 10: {
              obj.clusterLevel = reader.int32()
              break
            }
            case 2: {
              obj.key = reader.bytes()
              break
            }
            case 8: {
              if (opts.limits?.closer != null && obj.closer.length === opts.limits.closer) {
                throw new MaxLengthError('Decode error - repeated field "closer" had too many elements')
              }

              obj.closer.push(KadPeer.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.closer$
              }))
              break
            }
            case 9: {
              if (opts.limits?.providers != null && obj.providers.length === opts.limits.providers) {
                throw new MaxLengthError('Decode error - repeated field "providers" had too many elements')
              }

              obj.providers.push(KadPeer.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.providers$
              }))
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          closer: 0,
          providers: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.type`,
                value: KadMessageType.codec().decode(reader)
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.clusterLevel`,
                value: reader.int32()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.key`,
                value: reader.bytes()
              }
              break
            }
            case 8: {
              if (opts.limits?.closer != null && obj.closer === opts.limits.closer) {
                throw new MaxLengthError('Streaming decode error - repeated field "closer" had too many elements')
              }

              for (const evt of KadPeer.codec().stream(reader, reader.uint32(), `${prefix}.closer[]`, {
                limits: opts.limits?.closer$
              })) {
                yield {
                  ...evt,
                  index: obj.closer
                }
              }

              obj.closer++

              break
            }
            case 9: {
              if (opts.limits?.providers != null && obj.providers === opts.limits.providers) {
                throw new MaxLengthError('Streaming decode error - repeated field "providers" had too many elements')
              }

              for (const evt of KadPeer.codec().stream(reader, reader.uint32(), `${prefix}.providers[]`, {
                limits: opts.limits?.providers$
              })) {
                yield {
                  ...evt,
                  index: obj.providers
                }
              }

              obj.providers++

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface KadMessageTypeFieldEvent {
    field: '$.type'
    value: KadMessageType
  }

  export interface KadMessageClusterLevelFieldEvent {
    field: '$.clusterLevel'
    value: number
  }

  export interface KadMessageKeyFieldEvent {
    field: '$.key'
    value: Uint8Array<ArrayBuffer>
  }

  export interface KadMessageCloserIdFieldEvent {
    field: '$.closer[].id'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface KadMessageCloserMultiaddrsFieldEvent {
    field: '$.closer[].multiaddrs[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface KadMessageCloserConnectionFieldEvent {
    field: '$.closer[].connection'
    value: number
    index: number
  }

  export interface KadMessageProvidersIdFieldEvent {
    field: '$.providers[].id'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface KadMessageProvidersMultiaddrsFieldEvent {
    field: '$.providers[].multiaddrs[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface KadMessageProvidersConnectionFieldEvent {
    field: '$.providers[].connection'
    value: number
    index: number
  }

  export function encode (obj: Partial<KadMessage>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, KadMessage.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<KadMessage>): KadMessage {
    return decodeMessage(buf, KadMessage.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<KadMessage>): Generator<KadMessageTypeFieldEvent | KadMessageClusterLevelFieldEvent | KadMessageKeyFieldEvent | KadMessageCloserIdFieldEvent | KadMessageCloserMultiaddrsFieldEvent | KadMessageCloserConnectionFieldEvent | KadMessageProvidersIdFieldEvent | KadMessageProvidersMultiaddrsFieldEvent | KadMessageProvidersConnectionFieldEvent> {
    return streamMessage(buf, KadMessage.codec(), opts)
  }
}
