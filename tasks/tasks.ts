import { decodeMessage, encodeMessage, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface StealRequest {
  thief: string
  freeSlots: number
  slots: number
  tags: string[]
  costMs: number
  memMib: number
}

export namespace StealRequest {
  let _codec: Codec<StealRequest>

  export const codec = (): Codec<StealRequest> => {
    if (_codec == null) {
      _codec = message<StealRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.thief != null && obj.thief !== '')) {
          w.uint32(10)
          w.string(obj.thief)
        }

        if ((obj.freeSlots != null && obj.freeSlots !== 0)) {
          w.uint32(16)
          w.uint32(obj.freeSlots)
        }

        if ((obj.slots != null && obj.slots !== 0)) {
          w.uint32(24)
          w.uint32(obj.slots)
        }

        if (obj.tags != null && obj.tags.length > 0) {
          for (const value of obj.tags) {
            w.uint32(34)
            w.string(value)
          }
        }

        if ((obj.costMs != null && obj.costMs !== 0)) {
          w.uint32(41)
          w.double(obj.costMs)
        }

        if ((obj.memMib != null && obj.memMib !== 0)) {
          w.uint32(49)
          w.double(obj.memMib)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          thief: '',
          freeSlots: 0,
          slots: 0,
          tags: [],
          costMs: 0,
          memMib: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.thief = reader.string()
              break
            }
            case 2: {
              obj.freeSlots = reader.uint32()
              break
            }
            case 3: {
              obj.slots = reader.uint32()
              break
            }
            case 4: {
              if (opts.limits?.tags != null && obj.tags.length === opts.limits.tags) {
                throw new MaxLengthError('Decode error - repeated field "tags" had too many elements')
              }

              obj.tags.push(reader.string())
              break
            }
            case 5: {
              obj.costMs = reader.double()
              break
            }
            case 6: {
              obj.memMib = reader.double()
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
          tags: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.thief`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.freeSlots`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.slots`,
                value: reader.uint32()
              }
              break
            }
            case 4: {
              if (opts.limits?.tags != null && obj.tags === opts.limits.tags) {
                throw new MaxLengthError('Streaming decode error - repeated field "tags" had too many elements')
              }

              yield {
                field: `${prefix}.tags[]`,
                index: obj.tags,
                value: reader.string()
              }

              obj.tags++

              break
            }
            case 5: {
              yield {
                field: `${prefix}.costMs`,
                value: reader.double()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.memMib`,
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

  export interface StealRequestThiefFieldEvent {
    field: '$.thief'
    value: string
  }

  export interface StealRequestFreeSlotsFieldEvent {
    field: '$.freeSlots'
    value: number
  }

  export interface StealRequestSlotsFieldEvent {
    field: '$.slots'
    value: number
  }

  export interface StealRequestTagsFieldEvent {
    field: '$.tags[]'
    index: number
    value: string
  }

  export interface StealRequestCostMsFieldEvent {
    field: '$.costMs'
    value: number
  }

  export interface StealRequestMemMibFieldEvent {
    field: '$.memMib'
    value: number
  }

  export function encode (obj: Partial<StealRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, StealRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StealRequest>): StealRequest {
    return decodeMessage(buf, StealRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StealRequest>): Generator<StealRequestThiefFieldEvent | StealRequestFreeSlotsFieldEvent | StealRequestSlotsFieldEvent | StealRequestTagsFieldEvent | StealRequestCostMsFieldEvent | StealRequestMemMibFieldEvent> {
    return streamMessage(buf, StealRequest.codec(), opts)
  }
}

export interface StealResponse {
  tasks: Uint8Array<ArrayBuffer>[]
  queued: number
  running: number
}

export namespace StealResponse {
  let _codec: Codec<StealResponse>

  export const codec = (): Codec<StealResponse> => {
    if (_codec == null) {
      _codec = message<StealResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.tasks != null && obj.tasks.length > 0) {
          for (const value of obj.tasks) {
            w.uint32(10)
            w.bytes(value)
          }
        }

        if ((obj.queued != null && obj.queued !== 0)) {
          w.uint32(16)
          w.uint32(obj.queued)
        }

        if ((obj.running != null && obj.running !== 0)) {
          w.uint32(24)
          w.uint32(obj.running)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          tasks: [],
          queued: 0,
          running: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.tasks != null && obj.tasks.length === opts.limits.tasks) {
                throw new MaxLengthError('Decode error - repeated field "tasks" had too many elements')
              }

              obj.tasks.push(reader.bytes())
              break
            }
            case 2: {
              obj.queued = reader.uint32()
              break
            }
            case 3: {
              obj.running = reader.uint32()
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
          tasks: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.tasks != null && obj.tasks === opts.limits.tasks) {
                throw new MaxLengthError('Streaming decode error - repeated field "tasks" had too many elements')
              }

              yield {
                field: `${prefix}.tasks[]`,
                index: obj.tasks,
                value: reader.bytes()
              }

              obj.tasks++

              break
            }
            case 2: {
              yield {
                field: `${prefix}.queued`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.running`,
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

  export interface StealResponseTasksFieldEvent {
    field: '$.tasks[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface StealResponseQueuedFieldEvent {
    field: '$.queued'
    value: number
  }

  export interface StealResponseRunningFieldEvent {
    field: '$.running'
    value: number
  }

  export function encode (obj: Partial<StealResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, StealResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StealResponse>): StealResponse {
    return decodeMessage(buf, StealResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StealResponse>): Generator<StealResponseTasksFieldEvent | StealResponseQueuedFieldEvent | StealResponseRunningFieldEvent> {
    return streamMessage(buf, StealResponse.codec(), opts)
  }
}

export interface CancelRequest {
  id: string
}

export namespace CancelRequest {
  let _codec: Codec<CancelRequest>

  export const codec = (): Codec<CancelRequest> => {
    if (_codec == null) {
      _codec = message<CancelRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.id != null && obj.id !== '')) {
          w.uint32(10)
          w.string(obj.id)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          id: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.id = reader.string()
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
                field: `${prefix}.id`,
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

  export interface CancelRequestIdFieldEvent {
    field: '$.id'
    value: string
  }

  export function encode (obj: Partial<CancelRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, CancelRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<CancelRequest>): CancelRequest {
    return decodeMessage(buf, CancelRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<CancelRequest>): Generator<CancelRequestIdFieldEvent> {
    return streamMessage(buf, CancelRequest.codec(), opts)
  }
}

export interface CancelResponse {
  found: boolean
  task: Uint8Array<ArrayBuffer>
}

export namespace CancelResponse {
  let _codec: Codec<CancelResponse>

  export const codec = (): Codec<CancelResponse> => {
    if (_codec == null) {
      _codec = message<CancelResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.found != null && obj.found !== false)) {
          w.uint32(8)
          w.bool(obj.found)
        }

        if ((obj.task != null && obj.task.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.task)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          found: false,
          task: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.found = reader.bool()
              break
            }
            case 2: {
              obj.task = reader.bytes()
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
                field: `${prefix}.found`,
                value: reader.bool()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.task`,
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

  export interface CancelResponseFoundFieldEvent {
    field: '$.found'
    value: boolean
  }

  export interface CancelResponseTaskFieldEvent {
    field: '$.task'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<CancelResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, CancelResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<CancelResponse>): CancelResponse {
    return decodeMessage(buf, CancelResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<CancelResponse>): Generator<CancelResponseFoundFieldEvent | CancelResponseTaskFieldEvent> {
    return streamMessage(buf, CancelResponse.codec(), opts)
  }
}

export interface LogsRequest {
  id: string
}

export namespace LogsRequest {
  let _codec: Codec<LogsRequest>

  export const codec = (): Codec<LogsRequest> => {
    if (_codec == null) {
      _codec = message<LogsRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.id != null && obj.id !== '')) {
          w.uint32(10)
          w.string(obj.id)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          id: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.id = reader.string()
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
                field: `${prefix}.id`,
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

  export interface LogsRequestIdFieldEvent {
    field: '$.id'
    value: string
  }

  export function encode (obj: Partial<LogsRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, LogsRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<LogsRequest>): LogsRequest {
    return decodeMessage(buf, LogsRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<LogsRequest>): Generator<LogsRequestIdFieldEvent> {
    return streamMessage(buf, LogsRequest.codec(), opts)
  }
}

export interface LogsResponse {
  found: boolean
  stdout: string
  stderr: string
  truncated: boolean
}

export namespace LogsResponse {
  let _codec: Codec<LogsResponse>

  export const codec = (): Codec<LogsResponse> => {
    if (_codec == null) {
      _codec = message<LogsResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.found != null && obj.found !== false)) {
          w.uint32(8)
          w.bool(obj.found)
        }

        if ((obj.stdout != null && obj.stdout !== '')) {
          w.uint32(18)
          w.string(obj.stdout)
        }

        if ((obj.stderr != null && obj.stderr !== '')) {
          w.uint32(26)
          w.string(obj.stderr)
        }

        if ((obj.truncated != null && obj.truncated !== false)) {
          w.uint32(32)
          w.bool(obj.truncated)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          found: false,
          stdout: '',
          stderr: '',
          truncated: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.found = reader.bool()
              break
            }
            case 2: {
              obj.stdout = reader.string()
              break
            }
            case 3: {
              obj.stderr = reader.string()
              break
            }
            case 4: {
              obj.truncated = reader.bool()
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
                field: `${prefix}.found`,
                value: reader.bool()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.stdout`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.stderr`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.truncated`,
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

  export interface LogsResponseFoundFieldEvent {
    field: '$.found'
    value: boolean
  }

  export interface LogsResponseStdoutFieldEvent {
    field: '$.stdout'
    value: string
  }

  export interface LogsResponseStderrFieldEvent {
    field: '$.stderr'
    value: string
  }

  export interface LogsResponseTruncatedFieldEvent {
    field: '$.truncated'
    value: boolean
  }

  export function encode (obj: Partial<LogsResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, LogsResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<LogsResponse>): LogsResponse {
    return decodeMessage(buf, LogsResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<LogsResponse>): Generator<LogsResponseFoundFieldEvent | LogsResponseStdoutFieldEvent | LogsResponseStderrFieldEvent | LogsResponseTruncatedFieldEvent> {
    return streamMessage(buf, LogsResponse.codec(), opts)
  }
}
