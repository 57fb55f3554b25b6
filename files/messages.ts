import { decodeMessage, encodeMessage, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface GetChunkRequest {
  cid: Uint8Array<ArrayBuffer>
  verify: boolean
}

export namespace GetChunkRequest {
  let _codec: Codec<GetChunkRequest>

  export const codec = (): Codec<GetChunkRequest> => {
    if (_codec == null) {
      _codec = message<GetChunkRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.cid != null && obj.cid.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.cid)
        }

        if ((obj.verify != null && obj.verify !== false)) {
          w.uint32(16)
          w.bool(obj.verify)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          cid: uint8ArrayAlloc(0),
          verify: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.cid = reader.bytes()
              break
            }
            case 2: {
              obj.verify = reader.bool()
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
                field: `${prefix}.cid`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.verify`,
                value: reader.bool()
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

  export interface GetChunkRequestCidFieldEvent {
    field: '$.cid'
    value: Uint8Array<ArrayBuffer>
  }

  export interface GetChunkRequestVerifyFieldEvent {
    field: '$.verify'
    value: boolean
  }

  export function encode (obj: Partial<GetChunkRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, GetChunkRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<GetChunkRequest>): GetChunkRequest {
    return decodeMessage(buf, GetChunkRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<GetChunkRequest>): Generator<GetChunkRequestCidFieldEvent | GetChunkRequestVerifyFieldEvent> {
    return streamMessage(buf, GetChunkRequest.codec(), opts)
  }
}

export interface GetChunkResponse {
  data: Uint8Array<ArrayBuffer>
}

export namespace GetChunkResponse {
  let _codec: Codec<GetChunkResponse>

  export const codec = (): Codec<GetChunkResponse> => {
    if (_codec == null) {
      _codec = message<GetChunkResponse>((obj, w, opts = {}) => {
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

  export interface GetChunkResponseDataFieldEvent {
    field: '$.data'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<GetChunkResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, GetChunkResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<GetChunkResponse>): GetChunkResponse {
    return decodeMessage(buf, GetChunkResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<GetChunkResponse>): Generator<GetChunkResponseDataFieldEvent> {
    return streamMessage(buf, GetChunkResponse.codec(), opts)
  }
}

export interface PutChunkRequest {
  cid: Uint8Array<ArrayBuffer>
  data: Uint8Array<ArrayBuffer>
  forward: string[]
  pin?: PinRequest
}

export namespace PutChunkRequest {
  let _codec: Codec<PutChunkRequest>

  export const codec = (): Codec<PutChunkRequest> => {
    if (_codec == null) {
      _codec = message<PutChunkRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.cid != null && obj.cid.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.cid)
        }

        if ((obj.data != null && obj.data.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.data)
        }

        if (obj.forward != null && obj.forward.length > 0) {
          for (const value of obj.forward) {
            w.uint32(26)
            w.string(value)
          }
        }

        if (obj.pin != null) {
          w.uint32(34)
          PinRequest.codec().encode(obj.pin, w)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          cid: uint8ArrayAlloc(0),
          data: uint8ArrayAlloc(0),
          forward: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.cid = reader.bytes()
              break
            }
            case 2: {
              obj.data = reader.bytes()
              break
            }
            case 3: {
              if (opts.limits?.forward != null && obj.forward.length === opts.limits.forward) {
                throw new MaxLengthError('Decode error - repeated field "forward" had too many elements')
              }

              obj.forward.push(reader.string())
              break
            }
            case 4: {
              obj.pin = PinRequest.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.pin
              })
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
          forward: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.cid`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.data`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              if (opts.limits?.forward != null && obj.forward === opts.limits.forward) {
                throw new MaxLengthError('Streaming decode error - repeated field "forward" had too many elements')
              }

              yield {
                field: `${prefix}.forward[]`,
                index: obj.forward,
                value: reader.string()
              }

              obj.forward++

              break
            }
            case 4: {
              yield * PinRequest.codec().stream(reader, reader.uint32(), `${prefix}.pin`, {
                limits: opts.limits?.pin
              })

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

  export interface PutChunkRequestCidFieldEvent {
    field: '$.cid'
    value: Uint8Array<ArrayBuffer>
  }

  export interface PutChunkRequestDataFieldEvent {
    field: '$.data'
    value: Uint8Array<ArrayBuffer>
  }

  export interface PutChunkRequestForwardFieldEvent {
    field: '$.forward[]'
    index: number
    value: string
  }

  export interface PutChunkRequestPinCidFieldEvent {
    field: '$.pin.cid'
    value: Uint8Array<ArrayBuffer>
  }

  export interface PutChunkRequestPinNameFieldEvent {
    field: '$.pin.name'
    value: string
  }

  export interface PutChunkRequestPinReplicasFieldEvent {
    field: '$.pin.replicas'
    value: number
  }

  export interface PutChunkRequestPinSourcesFieldEvent {
    field: '$.pin.sources[]'
    index: number
    value: string
  }

  export interface PutChunkRequestPinSizeFieldEvent {
    field: '$.pin.size'
    value: bigint
  }

  export interface PutChunkRequestPinPinnedAtFieldEvent {
    field: '$.pin.pinnedAt'
    value: bigint
  }

  export interface PutChunkRequestPinPutFieldEvent {
    field: '$.pin.put'
    value: boolean
  }

  export function encode (obj: Partial<PutChunkRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PutChunkRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PutChunkRequest>): PutChunkRequest {
    return decodeMessage(buf, PutChunkRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PutChunkRequest>): Generator<PutChunkRequestCidFieldEvent | PutChunkRequestDataFieldEvent | PutChunkRequestForwardFieldEvent | PutChunkRequestPinCidFieldEvent | PutChunkRequestPinNameFieldEvent | PutChunkRequestPinReplicasFieldEvent | PutChunkRequestPinSourcesFieldEvent | PutChunkRequestPinSizeFieldEvent | PutChunkRequestPinPinnedAtFieldEvent | PutChunkRequestPinPutFieldEvent> {
    return streamMessage(buf, PutChunkRequest.codec(), opts)
  }
}

export interface ForwardFailure {
  peer: string
  message: string
}

export namespace ForwardFailure {
  let _codec: Codec<ForwardFailure>

  export const codec = (): Codec<ForwardFailure> => {
    if (_codec == null) {
      _codec = message<ForwardFailure>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.peer != null && obj.peer !== '')) {
          w.uint32(10)
          w.string(obj.peer)
        }

        if ((obj.message != null && obj.message !== '')) {
          w.uint32(18)
          w.string(obj.message)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          peer: '',
          message: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.peer = reader.string()
              break
            }
            case 2: {
              obj.message = reader.string()
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
                field: `${prefix}.peer`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.message`,
                value: reader.string()
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

  export interface ForwardFailurePeerFieldEvent {
    field: '$.peer'
    value: string
  }

  export interface ForwardFailureMessageFieldEvent {
    field: '$.message'
    value: string
  }

  export function encode (obj: Partial<ForwardFailure>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ForwardFailure.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ForwardFailure>): ForwardFailure {
    return decodeMessage(buf, ForwardFailure.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ForwardFailure>): Generator<ForwardFailurePeerFieldEvent | ForwardFailureMessageFieldEvent> {
    return streamMessage(buf, ForwardFailure.codec(), opts)
  }
}

export interface PutChunkResponse {
  stored: boolean
  forwarded: string[]
  failed: ForwardFailure[]
  pins: PinOutcome[]
}

export namespace PutChunkResponse {
  let _codec: Codec<PutChunkResponse>

  export const codec = (): Codec<PutChunkResponse> => {
    if (_codec == null) {
      _codec = message<PutChunkResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.stored != null && obj.stored !== false)) {
          w.uint32(8)
          w.bool(obj.stored)
        }

        if (obj.forwarded != null && obj.forwarded.length > 0) {
          for (const value of obj.forwarded) {
            w.uint32(18)
            w.string(value)
          }
        }

        if (obj.failed != null && obj.failed.length > 0) {
          for (const value of obj.failed) {
            w.uint32(26)
            ForwardFailure.codec().encode(value, w)
          }
        }

        if (obj.pins != null && obj.pins.length > 0) {
          for (const value of obj.pins) {
            w.uint32(34)
            PinOutcome.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          stored: false,
          forwarded: [],
          failed: [],
          pins: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.stored = reader.bool()
              break
            }
            case 2: {
              if (opts.limits?.forwarded != null && obj.forwarded.length === opts.limits.forwarded) {
                throw new MaxLengthError('Decode error - repeated field "forwarded" had too many elements')
              }

              obj.forwarded.push(reader.string())
              break
            }
            case 3: {
              if (opts.limits?.failed != null && obj.failed.length === opts.limits.failed) {
                throw new MaxLengthError('Decode error - repeated field "failed" had too many elements')
              }

              obj.failed.push(ForwardFailure.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.failed$
              }))
              break
            }
            case 4: {
              if (opts.limits?.pins != null && obj.pins.length === opts.limits.pins) {
                throw new MaxLengthError('Decode error - repeated field "pins" had too many elements')
              }

              obj.pins.push(PinOutcome.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.pins$
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
          forwarded: 0,
          failed: 0,
          pins: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.stored`,
                value: reader.bool()
              }
              break
            }
            case 2: {
              if (opts.limits?.forwarded != null && obj.forwarded === opts.limits.forwarded) {
                throw new MaxLengthError('Streaming decode error - repeated field "forwarded" had too many elements')
              }

              yield {
                field: `${prefix}.forwarded[]`,
                index: obj.forwarded,
                value: reader.string()
              }

              obj.forwarded++

              break
            }
            case 3: {
              if (opts.limits?.failed != null && obj.failed === opts.limits.failed) {
                throw new MaxLengthError('Streaming decode error - repeated field "failed" had too many elements')
              }

              for (const evt of ForwardFailure.codec().stream(reader, reader.uint32(), `${prefix}.failed[]`, {
                limits: opts.limits?.failed$
              })) {
                yield {
                  ...evt,
                  index: obj.failed
                }
              }

              obj.failed++

              break
            }
            case 4: {
              if (opts.limits?.pins != null && obj.pins === opts.limits.pins) {
                throw new MaxLengthError('Streaming decode error - repeated field "pins" had too many elements')
              }

              for (const evt of PinOutcome.codec().stream(reader, reader.uint32(), `${prefix}.pins[]`, {
                limits: opts.limits?.pins$
              })) {
                yield {
                  ...evt,
                  index: obj.pins
                }
              }

              obj.pins++

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

  export interface PutChunkResponseStoredFieldEvent {
    field: '$.stored'
    value: boolean
  }

  export interface PutChunkResponseForwardedFieldEvent {
    field: '$.forwarded[]'
    index: number
    value: string
  }

  export interface PutChunkResponseFailedPeerFieldEvent {
    field: '$.failed[].peer'
    value: string
    index: number
  }

  export interface PutChunkResponseFailedMessageFieldEvent {
    field: '$.failed[].message'
    value: string
    index: number
  }

  export interface PutChunkResponsePinsPeerFieldEvent {
    field: '$.pins[].peer'
    value: string
    index: number
  }

  export interface PutChunkResponsePinsCompleteFieldEvent {
    field: '$.pins[].complete'
    value: boolean
    index: number
  }

  export function encode (obj: Partial<PutChunkResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PutChunkResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PutChunkResponse>): PutChunkResponse {
    return decodeMessage(buf, PutChunkResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PutChunkResponse>): Generator<PutChunkResponseStoredFieldEvent | PutChunkResponseForwardedFieldEvent | PutChunkResponseFailedPeerFieldEvent | PutChunkResponseFailedMessageFieldEvent | PutChunkResponsePinsPeerFieldEvent | PutChunkResponsePinsCompleteFieldEvent> {
    return streamMessage(buf, PutChunkResponse.codec(), opts)
  }
}

export interface PinOutcome {
  peer: string
  complete: boolean
}

export namespace PinOutcome {
  let _codec: Codec<PinOutcome>

  export const codec = (): Codec<PinOutcome> => {
    if (_codec == null) {
      _codec = message<PinOutcome>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.peer != null && obj.peer !== '')) {
          w.uint32(10)
          w.string(obj.peer)
        }

        if ((obj.complete != null && obj.complete !== false)) {
          w.uint32(16)
          w.bool(obj.complete)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          peer: '',
          complete: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.peer = reader.string()
              break
            }
            case 2: {
              obj.complete = reader.bool()
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
                field: `${prefix}.peer`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.complete`,
                value: reader.bool()
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

  export interface PinOutcomePeerFieldEvent {
    field: '$.peer'
    value: string
  }

  export interface PinOutcomeCompleteFieldEvent {
    field: '$.complete'
    value: boolean
  }

  export function encode (obj: Partial<PinOutcome>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PinOutcome.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PinOutcome>): PinOutcome {
    return decodeMessage(buf, PinOutcome.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PinOutcome>): Generator<PinOutcomePeerFieldEvent | PinOutcomeCompleteFieldEvent> {
    return streamMessage(buf, PinOutcome.codec(), opts)
  }
}

export interface HasRequest {
  cids: Uint8Array<ArrayBuffer>[]
}

export namespace HasRequest {
  let _codec: Codec<HasRequest>

  export const codec = (): Codec<HasRequest> => {
    if (_codec == null) {
      _codec = message<HasRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.cids != null && obj.cids.length > 0) {
          for (const value of obj.cids) {
            w.uint32(10)
            w.bytes(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          cids: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.cids != null && obj.cids.length === opts.limits.cids) {
                throw new MaxLengthError('Decode error - repeated field "cids" had too many elements')
              }

              obj.cids.push(reader.bytes())
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
          cids: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.cids != null && obj.cids === opts.limits.cids) {
                throw new MaxLengthError('Streaming decode error - repeated field "cids" had too many elements')
              }

              yield {
                field: `${prefix}.cids[]`,
                index: obj.cids,
                value: reader.bytes()
              }

              obj.cids++

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

  export interface HasRequestCidsFieldEvent {
    field: '$.cids[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<HasRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, HasRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<HasRequest>): HasRequest {
    return decodeMessage(buf, HasRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<HasRequest>): Generator<HasRequestCidsFieldEvent> {
    return streamMessage(buf, HasRequest.codec(), opts)
  }
}

export interface HasResponse {
  present: boolean[]
}

export namespace HasResponse {
  let _codec: Codec<HasResponse>

  export const codec = (): Codec<HasResponse> => {
    if (_codec == null) {
      _codec = message<HasResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.present != null && obj.present.length > 0) {
          for (const value of obj.present) {
            w.uint32(8)
            w.bool(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          present: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.present != null && obj.present.length === opts.limits.present) {
                throw new MaxLengthError('Decode error - repeated field "present" had too many elements')
              }

              obj.present.push(reader.bool())
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
          present: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.present != null && obj.present === opts.limits.present) {
                throw new MaxLengthError('Streaming decode error - repeated field "present" had too many elements')
              }

              yield {
                field: `${prefix}.present[]`,
                index: obj.present,
                value: reader.bool()
              }

              obj.present++

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

  export interface HasResponsePresentFieldEvent {
    field: '$.present[]'
    index: number
    value: boolean
  }

  export function encode (obj: Partial<HasResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, HasResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<HasResponse>): HasResponse {
    return decodeMessage(buf, HasResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<HasResponse>): Generator<HasResponsePresentFieldEvent> {
    return streamMessage(buf, HasResponse.codec(), opts)
  }
}

export interface PinRequest {
  cid: Uint8Array<ArrayBuffer>
  name: string
  replicas: number
  sources: string[]
  size: bigint
  pinnedAt: bigint
  put: boolean
}

export namespace PinRequest {
  let _codec: Codec<PinRequest>

  export const codec = (): Codec<PinRequest> => {
    if (_codec == null) {
      _codec = message<PinRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.cid != null && obj.cid.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.cid)
        }

        if ((obj.name != null && obj.name !== '')) {
          w.uint32(18)
          w.string(obj.name)
        }

        if ((obj.replicas != null && obj.replicas !== 0)) {
          w.uint32(24)
          w.uint32(obj.replicas)
        }

        if (obj.sources != null && obj.sources.length > 0) {
          for (const value of obj.sources) {
            w.uint32(34)
            w.string(value)
          }
        }

        if ((obj.size != null && obj.size !== 0n)) {
          w.uint32(40)
          w.uint64(obj.size)
        }

        if ((obj.pinnedAt != null && obj.pinnedAt !== 0n)) {
          w.uint32(48)
          w.uint64(obj.pinnedAt)
        }

        if ((obj.put != null && obj.put !== false)) {
          w.uint32(56)
          w.bool(obj.put)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          cid: uint8ArrayAlloc(0),
          name: '',
          replicas: 0,
          sources: [],
          size: 0n,
          pinnedAt: 0n,
          put: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.cid = reader.bytes()
              break
            }
            case 2: {
              obj.name = reader.string()
              break
            }
            case 3: {
              obj.replicas = reader.uint32()
              break
            }
            case 4: {
              if (opts.limits?.sources != null && obj.sources.length === opts.limits.sources) {
                throw new MaxLengthError('Decode error - repeated field "sources" had too many elements')
              }

              obj.sources.push(reader.string())
              break
            }
            case 5: {
              obj.size = reader.uint64()
              break
            }
            case 6: {
              obj.pinnedAt = reader.uint64()
              break
            }
            case 7: {
              obj.put = reader.bool()
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
          sources: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.cid`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.name`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.replicas`,
                value: reader.uint32()
              }
              break
            }
            case 4: {
              if (opts.limits?.sources != null && obj.sources === opts.limits.sources) {
                throw new MaxLengthError('Streaming decode error - repeated field "sources" had too many elements')
              }

              yield {
                field: `${prefix}.sources[]`,
                index: obj.sources,
                value: reader.string()
              }

              obj.sources++

              break
            }
            case 5: {
              yield {
                field: `${prefix}.size`,
                value: reader.uint64()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.pinnedAt`,
                value: reader.uint64()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.put`,
                value: reader.bool()
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

  export interface PinRequestCidFieldEvent {
    field: '$.cid'
    value: Uint8Array<ArrayBuffer>
  }

  export interface PinRequestNameFieldEvent {
    field: '$.name'
    value: string
  }

  export interface PinRequestReplicasFieldEvent {
    field: '$.replicas'
    value: number
  }

  export interface PinRequestSourcesFieldEvent {
    field: '$.sources[]'
    index: number
    value: string
  }

  export interface PinRequestSizeFieldEvent {
    field: '$.size'
    value: bigint
  }

  export interface PinRequestPinnedAtFieldEvent {
    field: '$.pinnedAt'
    value: bigint
  }

  export interface PinRequestPutFieldEvent {
    field: '$.put'
    value: boolean
  }

  export function encode (obj: Partial<PinRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PinRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PinRequest>): PinRequest {
    return decodeMessage(buf, PinRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PinRequest>): Generator<PinRequestCidFieldEvent | PinRequestNameFieldEvent | PinRequestReplicasFieldEvent | PinRequestSourcesFieldEvent | PinRequestSizeFieldEvent | PinRequestPinnedAtFieldEvent | PinRequestPutFieldEvent> {
    return streamMessage(buf, PinRequest.codec(), opts)
  }
}

export interface PinResponse {
  complete: boolean
}

export namespace PinResponse {
  let _codec: Codec<PinResponse>

  export const codec = (): Codec<PinResponse> => {
    if (_codec == null) {
      _codec = message<PinResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.complete != null && obj.complete !== false)) {
          w.uint32(8)
          w.bool(obj.complete)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          complete: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.complete = reader.bool()
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
                field: `${prefix}.complete`,
                value: reader.bool()
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

  export interface PinResponseCompleteFieldEvent {
    field: '$.complete'
    value: boolean
  }

  export function encode (obj: Partial<PinResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PinResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PinResponse>): PinResponse {
    return decodeMessage(buf, PinResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PinResponse>): Generator<PinResponseCompleteFieldEvent> {
    return streamMessage(buf, PinResponse.codec(), opts)
  }
}

export interface UnpinRequest {
  cid: Uint8Array<ArrayBuffer>
  trim: boolean
  removedAt: bigint
  seenPinnedAt: bigint
}

export namespace UnpinRequest {
  let _codec: Codec<UnpinRequest>

  export const codec = (): Codec<UnpinRequest> => {
    if (_codec == null) {
      _codec = message<UnpinRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.cid != null && obj.cid.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.cid)
        }

        if ((obj.trim != null && obj.trim !== false)) {
          w.uint32(16)
          w.bool(obj.trim)
        }

        if ((obj.removedAt != null && obj.removedAt !== 0n)) {
          w.uint32(24)
          w.uint64(obj.removedAt)
        }

        if ((obj.seenPinnedAt != null && obj.seenPinnedAt !== 0n)) {
          w.uint32(32)
          w.uint64(obj.seenPinnedAt)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          cid: uint8ArrayAlloc(0),
          trim: false,
          removedAt: 0n,
          seenPinnedAt: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.cid = reader.bytes()
              break
            }
            case 2: {
              obj.trim = reader.bool()
              break
            }
            case 3: {
              obj.removedAt = reader.uint64()
              break
            }
            case 4: {
              obj.seenPinnedAt = reader.uint64()
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
                field: `${prefix}.cid`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.trim`,
                value: reader.bool()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.removedAt`,
                value: reader.uint64()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.seenPinnedAt`,
                value: reader.uint64()
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

  export interface UnpinRequestCidFieldEvent {
    field: '$.cid'
    value: Uint8Array<ArrayBuffer>
  }

  export interface UnpinRequestTrimFieldEvent {
    field: '$.trim'
    value: boolean
  }

  export interface UnpinRequestRemovedAtFieldEvent {
    field: '$.removedAt'
    value: bigint
  }

  export interface UnpinRequestSeenPinnedAtFieldEvent {
    field: '$.seenPinnedAt'
    value: bigint
  }

  export function encode (obj: Partial<UnpinRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, UnpinRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<UnpinRequest>): UnpinRequest {
    return decodeMessage(buf, UnpinRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<UnpinRequest>): Generator<UnpinRequestCidFieldEvent | UnpinRequestTrimFieldEvent | UnpinRequestRemovedAtFieldEvent | UnpinRequestSeenPinnedAtFieldEvent> {
    return streamMessage(buf, UnpinRequest.codec(), opts)
  }
}

export interface UnpinResponse {
  removed: boolean
  collected: number
  kept: boolean
}

export namespace UnpinResponse {
  let _codec: Codec<UnpinResponse>

  export const codec = (): Codec<UnpinResponse> => {
    if (_codec == null) {
      _codec = message<UnpinResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.removed != null && obj.removed !== false)) {
          w.uint32(8)
          w.bool(obj.removed)
        }

        if ((obj.collected != null && obj.collected !== 0)) {
          w.uint32(16)
          w.uint32(obj.collected)
        }

        if ((obj.kept != null && obj.kept !== false)) {
          w.uint32(24)
          w.bool(obj.kept)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          removed: false,
          collected: 0,
          kept: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.removed = reader.bool()
              break
            }
            case 2: {
              obj.collected = reader.uint32()
              break
            }
            case 3: {
              obj.kept = reader.bool()
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
                field: `${prefix}.removed`,
                value: reader.bool()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.collected`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.kept`,
                value: reader.bool()
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

  export interface UnpinResponseRemovedFieldEvent {
    field: '$.removed'
    value: boolean
  }

  export interface UnpinResponseCollectedFieldEvent {
    field: '$.collected'
    value: number
  }

  export interface UnpinResponseKeptFieldEvent {
    field: '$.kept'
    value: boolean
  }

  export function encode (obj: Partial<UnpinResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, UnpinResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<UnpinResponse>): UnpinResponse {
    return decodeMessage(buf, UnpinResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<UnpinResponse>): Generator<UnpinResponseRemovedFieldEvent | UnpinResponseCollectedFieldEvent | UnpinResponseKeptFieldEvent> {
    return streamMessage(buf, UnpinResponse.codec(), opts)
  }
}

export interface PinsRequest {
  cids: Uint8Array<ArrayBuffer>[]
  after: string
  limit: number
}

export namespace PinsRequest {
  let _codec: Codec<PinsRequest>

  export const codec = (): Codec<PinsRequest> => {
    if (_codec == null) {
      _codec = message<PinsRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.cids != null && obj.cids.length > 0) {
          for (const value of obj.cids) {
            w.uint32(10)
            w.bytes(value)
          }
        }

        if ((obj.after != null && obj.after !== '')) {
          w.uint32(18)
          w.string(obj.after)
        }

        if ((obj.limit != null && obj.limit !== 0)) {
          w.uint32(24)
          w.uint32(obj.limit)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          cids: [],
          after: '',
          limit: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.cids != null && obj.cids.length === opts.limits.cids) {
                throw new MaxLengthError('Decode error - repeated field "cids" had too many elements')
              }

              obj.cids.push(reader.bytes())
              break
            }
            case 2: {
              obj.after = reader.string()
              break
            }
            case 3: {
              obj.limit = reader.uint32()
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
          cids: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.cids != null && obj.cids === opts.limits.cids) {
                throw new MaxLengthError('Streaming decode error - repeated field "cids" had too many elements')
              }

              yield {
                field: `${prefix}.cids[]`,
                index: obj.cids,
                value: reader.bytes()
              }

              obj.cids++

              break
            }
            case 2: {
              yield {
                field: `${prefix}.after`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.limit`,
                value: reader.uint32()
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

  export interface PinsRequestCidsFieldEvent {
    field: '$.cids[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface PinsRequestAfterFieldEvent {
    field: '$.after'
    value: string
  }

  export interface PinsRequestLimitFieldEvent {
    field: '$.limit'
    value: number
  }

  export function encode (obj: Partial<PinsRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PinsRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PinsRequest>): PinsRequest {
    return decodeMessage(buf, PinsRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PinsRequest>): Generator<PinsRequestCidsFieldEvent | PinsRequestAfterFieldEvent | PinsRequestLimitFieldEvent> {
    return streamMessage(buf, PinsRequest.codec(), opts)
  }
}

export interface PinInfo {
  cid: Uint8Array<ArrayBuffer>
  name: string
  size: bigint
  chunks: number
  replicas: number
  pinnedAt: bigint
  complete: boolean
}

export namespace PinInfo {
  let _codec: Codec<PinInfo>

  export const codec = (): Codec<PinInfo> => {
    if (_codec == null) {
      _codec = message<PinInfo>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.cid != null && obj.cid.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.cid)
        }

        if ((obj.name != null && obj.name !== '')) {
          w.uint32(18)
          w.string(obj.name)
        }

        if ((obj.size != null && obj.size !== 0n)) {
          w.uint32(24)
          w.uint64(obj.size)
        }

        if ((obj.chunks != null && obj.chunks !== 0)) {
          w.uint32(32)
          w.uint32(obj.chunks)
        }

        if ((obj.replicas != null && obj.replicas !== 0)) {
          w.uint32(40)
          w.uint32(obj.replicas)
        }

        if ((obj.pinnedAt != null && obj.pinnedAt !== 0n)) {
          w.uint32(48)
          w.uint64(obj.pinnedAt)
        }

        if ((obj.complete != null && obj.complete !== false)) {
          w.uint32(56)
          w.bool(obj.complete)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          cid: uint8ArrayAlloc(0),
          name: '',
          size: 0n,
          chunks: 0,
          replicas: 0,
          pinnedAt: 0n,
          complete: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.cid = reader.bytes()
              break
            }
            case 2: {
              obj.name = reader.string()
              break
            }
            case 3: {
              obj.size = reader.uint64()
              break
            }
            case 4: {
              obj.chunks = reader.uint32()
              break
            }
            case 5: {
              obj.replicas = reader.uint32()
              break
            }
            case 6: {
              obj.pinnedAt = reader.uint64()
              break
            }
            case 7: {
              obj.complete = reader.bool()
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
                field: `${prefix}.cid`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.name`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.size`,
                value: reader.uint64()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.chunks`,
                value: reader.uint32()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.replicas`,
                value: reader.uint32()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.pinnedAt`,
                value: reader.uint64()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.complete`,
                value: reader.bool()
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

  export interface PinInfoCidFieldEvent {
    field: '$.cid'
    value: Uint8Array<ArrayBuffer>
  }

  export interface PinInfoNameFieldEvent {
    field: '$.name'
    value: string
  }

  export interface PinInfoSizeFieldEvent {
    field: '$.size'
    value: bigint
  }

  export interface PinInfoChunksFieldEvent {
    field: '$.chunks'
    value: number
  }

  export interface PinInfoReplicasFieldEvent {
    field: '$.replicas'
    value: number
  }

  export interface PinInfoPinnedAtFieldEvent {
    field: '$.pinnedAt'
    value: bigint
  }

  export interface PinInfoCompleteFieldEvent {
    field: '$.complete'
    value: boolean
  }

  export function encode (obj: Partial<PinInfo>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PinInfo.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PinInfo>): PinInfo {
    return decodeMessage(buf, PinInfo.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PinInfo>): Generator<PinInfoCidFieldEvent | PinInfoNameFieldEvent | PinInfoSizeFieldEvent | PinInfoChunksFieldEvent | PinInfoReplicasFieldEvent | PinInfoPinnedAtFieldEvent | PinInfoCompleteFieldEvent> {
    return streamMessage(buf, PinInfo.codec(), opts)
  }
}

export interface Tombstone {
  cid: Uint8Array<ArrayBuffer>
  removedAt: bigint
}

export namespace Tombstone {
  let _codec: Codec<Tombstone>

  export const codec = (): Codec<Tombstone> => {
    if (_codec == null) {
      _codec = message<Tombstone>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.cid != null && obj.cid.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.cid)
        }

        if ((obj.removedAt != null && obj.removedAt !== 0n)) {
          w.uint32(16)
          w.uint64(obj.removedAt)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          cid: uint8ArrayAlloc(0),
          removedAt: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.cid = reader.bytes()
              break
            }
            case 2: {
              obj.removedAt = reader.uint64()
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
                field: `${prefix}.cid`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.removedAt`,
                value: reader.uint64()
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

  export interface TombstoneCidFieldEvent {
    field: '$.cid'
    value: Uint8Array<ArrayBuffer>
  }

  export interface TombstoneRemovedAtFieldEvent {
    field: '$.removedAt'
    value: bigint
  }

  export function encode (obj: Partial<Tombstone>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Tombstone.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Tombstone>): Tombstone {
    return decodeMessage(buf, Tombstone.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Tombstone>): Generator<TombstoneCidFieldEvent | TombstoneRemovedAtFieldEvent> {
    return streamMessage(buf, Tombstone.codec(), opts)
  }
}

export interface PinsResponse {
  pins: PinInfo[]
  removed: Tombstone[]
  more: boolean
}

export namespace PinsResponse {
  let _codec: Codec<PinsResponse>

  export const codec = (): Codec<PinsResponse> => {
    if (_codec == null) {
      _codec = message<PinsResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.pins != null && obj.pins.length > 0) {
          for (const value of obj.pins) {
            w.uint32(10)
            PinInfo.codec().encode(value, w)
          }
        }

        if (obj.removed != null && obj.removed.length > 0) {
          for (const value of obj.removed) {
            w.uint32(18)
            Tombstone.codec().encode(value, w)
          }
        }

        if ((obj.more != null && obj.more !== false)) {
          w.uint32(24)
          w.bool(obj.more)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          pins: [],
          removed: [],
          more: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.pins != null && obj.pins.length === opts.limits.pins) {
                throw new MaxLengthError('Decode error - repeated field "pins" had too many elements')
              }

              obj.pins.push(PinInfo.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.pins$
              }))
              break
            }
            case 2: {
              if (opts.limits?.removed != null && obj.removed.length === opts.limits.removed) {
                throw new MaxLengthError('Decode error - repeated field "removed" had too many elements')
              }

              obj.removed.push(Tombstone.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.removed$
              }))
              break
            }
            case 3: {
              obj.more = reader.bool()
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
          pins: 0,
          removed: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.pins != null && obj.pins === opts.limits.pins) {
                throw new MaxLengthError('Streaming decode error - repeated field "pins" had too many elements')
              }

              for (const evt of PinInfo.codec().stream(reader, reader.uint32(), `${prefix}.pins[]`, {
                limits: opts.limits?.pins$
              })) {
                yield {
                  ...evt,
                  index: obj.pins
                }
              }

              obj.pins++

              break
            }
            case 2: {
              if (opts.limits?.removed != null && obj.removed === opts.limits.removed) {
                throw new MaxLengthError('Streaming decode error - repeated field "removed" had too many elements')
              }

              for (const evt of Tombstone.codec().stream(reader, reader.uint32(), `${prefix}.removed[]`, {
                limits: opts.limits?.removed$
              })) {
                yield {
                  ...evt,
                  index: obj.removed
                }
              }

              obj.removed++

              break
            }
            case 3: {
              yield {
                field: `${prefix}.more`,
                value: reader.bool()
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

  export interface PinsResponsePinsCidFieldEvent {
    field: '$.pins[].cid'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface PinsResponsePinsNameFieldEvent {
    field: '$.pins[].name'
    value: string
    index: number
  }

  export interface PinsResponsePinsSizeFieldEvent {
    field: '$.pins[].size'
    value: bigint
    index: number
  }

  export interface PinsResponsePinsChunksFieldEvent {
    field: '$.pins[].chunks'
    value: number
    index: number
  }

  export interface PinsResponsePinsReplicasFieldEvent {
    field: '$.pins[].replicas'
    value: number
    index: number
  }

  export interface PinsResponsePinsPinnedAtFieldEvent {
    field: '$.pins[].pinnedAt'
    value: bigint
    index: number
  }

  export interface PinsResponsePinsCompleteFieldEvent {
    field: '$.pins[].complete'
    value: boolean
    index: number
  }

  export interface PinsResponseRemovedCidFieldEvent {
    field: '$.removed[].cid'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface PinsResponseRemovedRemovedAtFieldEvent {
    field: '$.removed[].removedAt'
    value: bigint
    index: number
  }

  export interface PinsResponseMoreFieldEvent {
    field: '$.more'
    value: boolean
  }

  export function encode (obj: Partial<PinsResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PinsResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PinsResponse>): PinsResponse {
    return decodeMessage(buf, PinsResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PinsResponse>): Generator<PinsResponsePinsCidFieldEvent | PinsResponsePinsNameFieldEvent | PinsResponsePinsSizeFieldEvent | PinsResponsePinsChunksFieldEvent | PinsResponsePinsReplicasFieldEvent | PinsResponsePinsPinnedAtFieldEvent | PinsResponsePinsCompleteFieldEvent | PinsResponseRemovedCidFieldEvent | PinsResponseRemovedRemovedAtFieldEvent | PinsResponseMoreFieldEvent> {
    return streamMessage(buf, PinsResponse.codec(), opts)
  }
}
