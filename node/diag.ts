/* eslint-disable require-yield */

import { decodeMessage, encodeMessage, MaxLengthError, MaxSizeError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface EchoMessage {
  data: Uint8Array<ArrayBuffer>
}

export namespace EchoMessage {
  let _codec: Codec<EchoMessage>

  export const codec = (): Codec<EchoMessage> => {
    if (_codec == null) {
      _codec = message<EchoMessage>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.data != null && obj.data.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.data)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          data: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.data = reader.bytes()
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
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.data`,
                value: reader.bytes()
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

  export interface EchoMessageDataFieldEvent {
    field: '$.data'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<EchoMessage>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, EchoMessage.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<EchoMessage>): EchoMessage {
    return decodeMessage(buf, EchoMessage.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<EchoMessage>): Generator<EchoMessageDataFieldEvent> {
    return streamMessage(buf, EchoMessage.codec(), opts)
  }
}

export interface InfoRequest {}

export namespace InfoRequest {
  let _codec: Codec<InfoRequest>

  export const codec = (): Codec<InfoRequest> => {
    if (_codec == null) {
      _codec = message<InfoRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {}

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
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

  export function encode (obj: Partial<InfoRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, InfoRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<InfoRequest>): InfoRequest {
    return decodeMessage(buf, InfoRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<InfoRequest>): Generator<{}> {
    return streamMessage(buf, InfoRequest.codec(), opts)
  }
}

export interface NodeInfo {
  version: string
  uptimeMs: bigint
  stats: Map<string, number>
}

export namespace NodeInfo {
  export interface NodeInfo$statsEntry {
    key: string
    value: number
  }

  export namespace NodeInfo$statsEntry {
    let _codec: Codec<NodeInfo$statsEntry>

    export const codec = (): Codec<NodeInfo$statsEntry> => {
      if (_codec == null) {
        _codec = message<NodeInfo$statsEntry>((obj, w, opts = {}) => {
          if (opts.lengthDelimited !== false) {
            w.fork()
          }

          if ((obj.key != null && obj.key !== '')) {
            w.uint32(10)
            w.string(obj.key)
          }

          if ((obj.value != null && obj.value !== 0)) {
            w.uint32(17)
            w.double(obj.value)
          }

          if (opts.lengthDelimited !== false) {
            w.ldelim()
          }
        }, (reader, length, opts = {}) => {
          const obj: any = {
            key: '',
            value: 0
          }

          const end = length == null ? reader.len : reader.pos + length

          while (reader.pos < end) {
            const tag = reader.uint32()

            switch (tag >>> 3) {
              case 1: {
                obj.key = reader.string()
                break
              }
              case 2: {
                obj.value = reader.double()
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
          const end = length == null ? reader.len : reader.pos + length

          while (reader.pos < end) {
            const tag = reader.uint32()

            switch (tag >>> 3) {
              case 1: {
                yield {
                  field: `${prefix}.key`,
                  value: reader.string()
                }
                break
              }
              case 2: {
                yield {
                  field: `${prefix}.value`,
                  value: reader.double()
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

    export interface NodeInfo$statsEntryKeyFieldEvent {
      field: '$.key'
      value: string
    }

    export interface NodeInfo$statsEntryValueFieldEvent {
      field: '$.value'
      value: number
    }

    export function encode (obj: Partial<NodeInfo$statsEntry>): Uint8Array<ArrayBuffer> {
      return encodeMessage(obj, NodeInfo$statsEntry.codec())
    }

    export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NodeInfo$statsEntry>): NodeInfo$statsEntry {
      return decodeMessage(buf, NodeInfo$statsEntry.codec(), opts)
    }

    export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NodeInfo$statsEntry>): Generator<NodeInfo$statsEntryKeyFieldEvent | NodeInfo$statsEntryValueFieldEvent> {
      return streamMessage(buf, NodeInfo$statsEntry.codec(), opts)
    }
  }

  let _codec: Codec<NodeInfo>

  export const codec = (): Codec<NodeInfo> => {
    if (_codec == null) {
      _codec = message<NodeInfo>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.version != null && obj.version !== '')) {
          w.uint32(10)
          w.string(obj.version)
        }

        if ((obj.uptimeMs != null && obj.uptimeMs !== 0n)) {
          w.uint32(16)
          w.uint64(obj.uptimeMs)
        }

        if (obj.stats != null && obj.stats.size > 0) {
          for (const [key, value] of obj.stats.entries()) {
            w.uint32(26)
            NodeInfo.NodeInfo$statsEntry.codec().encode({ key, value }, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          version: '',
          uptimeMs: 0n,
          stats: new Map<string, number>()
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.version = reader.string()
              break
            }
            case 2: {
              obj.uptimeMs = reader.uint64()
              break
            }
            case 3: {
              if (opts.limits?.stats != null && obj.stats.size === opts.limits.stats) {
                throw new MaxSizeError('Decode error - map field "stats" had too many elements')
              }

              const entry = NodeInfo.NodeInfo$statsEntry.codec().decode(reader, reader.uint32(), {
                limits: {
                  value: opts.limits?.stats$value
                }
              })
              obj.stats.set(entry.key, entry.value)
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
          stats: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.version`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.uptimeMs`,
                value: reader.uint64()
              }
              break
            }
            case 3: {
              if (opts.limits?.stats != null && obj.stats === opts.limits.stats) {
                throw new MaxLengthError('Decode error - map field "stats" had too many elements')
              }

              yield * NodeInfo.NodeInfo$statsEntry.codec().stream(reader, reader.uint32(), `${prefix}.stats{}`, {
                limits: {
                  value: opts.limits?.stats$value
                }
              })

              obj.stats++

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

  export interface NodeInfoVersionFieldEvent {
    field: '$.version'
    value: string
  }

  export interface NodeInfoUptimeMsFieldEvent {
    field: '$.uptimeMs'
    value: bigint
  }

  export interface NodeInfoStatsFieldEvent {
    field: '$.stats{}'
    key: string
    value: number
  }

  export function encode (obj: Partial<NodeInfo>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, NodeInfo.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NodeInfo>): NodeInfo {
    return decodeMessage(buf, NodeInfo.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NodeInfo>): Generator<NodeInfoVersionFieldEvent | NodeInfoUptimeMsFieldEvent | NodeInfoStatsFieldEvent> {
    return streamMessage(buf, NodeInfo.codec(), opts)
  }
}
