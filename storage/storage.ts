import { decodeMessage, encodeMessage, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface Timestamp {
  wall: bigint
  logical: number
  node: string
}

export namespace Timestamp {
  let _codec: Codec<Timestamp>

  export const codec = (): Codec<Timestamp> => {
    if (_codec == null) {
      _codec = message<Timestamp>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.wall != null && obj.wall !== 0n)) {
          w.uint32(8)
          w.uint64(obj.wall)
        }

        if ((obj.logical != null && obj.logical !== 0)) {
          w.uint32(16)
          w.uint32(obj.logical)
        }

        if ((obj.node != null && obj.node !== '')) {
          w.uint32(26)
          w.string(obj.node)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          wall: 0n,
          logical: 0,
          node: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.wall = reader.uint64()
              break
            }
            case 2: {
              obj.logical = reader.uint32()
              break
            }
            case 3: {
              obj.node = reader.string()
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
                field: `${prefix}.wall`,
                value: reader.uint64()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.logical`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.node`,
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

  export interface TimestampWallFieldEvent {
    field: '$.wall'
    value: bigint
  }

  export interface TimestampLogicalFieldEvent {
    field: '$.logical'
    value: number
  }

  export interface TimestampNodeFieldEvent {
    field: '$.node'
    value: string
  }

  export function encode (obj: Partial<Timestamp>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Timestamp.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Timestamp>): Timestamp {
    return decodeMessage(buf, Timestamp.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Timestamp>): Generator<TimestampWallFieldEvent | TimestampLogicalFieldEvent | TimestampNodeFieldEvent> {
    return streamMessage(buf, Timestamp.codec(), opts)
  }
}

export interface Record {
  key: string
  value: Uint8Array<ArrayBuffer>
  ts?: Timestamp
  tombstone: boolean
  expiresAt: bigint
}

export namespace Record {
  let _codec: Codec<Record>

  export const codec = (): Codec<Record> => {
    if (_codec == null) {
      _codec = message<Record>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.key != null && obj.key !== '')) {
          w.uint32(10)
          w.string(obj.key)
        }

        if ((obj.value != null && obj.value.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.value)
        }

        if (obj.ts != null) {
          w.uint32(26)
          Timestamp.codec().encode(obj.ts, w)
        }

        if ((obj.tombstone != null && obj.tombstone !== false)) {
          w.uint32(32)
          w.bool(obj.tombstone)
        }

        if ((obj.expiresAt != null && obj.expiresAt !== 0n)) {
          w.uint32(40)
          w.uint64(obj.expiresAt)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          key: '',
          value: uint8ArrayAlloc(0),
          tombstone: false,
          expiresAt: 0n
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
              obj.value = reader.bytes()
              break
            }
            case 3: {
              obj.ts = Timestamp.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.ts
              })
              break
            }
            case 4: {
              obj.tombstone = reader.bool()
              break
            }
            case 5: {
              obj.expiresAt = reader.uint64()
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
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield * Timestamp.codec().stream(reader, reader.uint32(), `${prefix}.ts`, {
                limits: opts.limits?.ts
              })

              break
            }
            case 4: {
              yield {
                field: `${prefix}.tombstone`,
                value: reader.bool()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.expiresAt`,
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

  export interface RecordKeyFieldEvent {
    field: '$.key'
    value: string
  }

  export interface RecordValueFieldEvent {
    field: '$.value'
    value: Uint8Array<ArrayBuffer>
  }

  export interface RecordTsWallFieldEvent {
    field: '$.ts.wall'
    value: bigint
  }

  export interface RecordTsLogicalFieldEvent {
    field: '$.ts.logical'
    value: number
  }

  export interface RecordTsNodeFieldEvent {
    field: '$.ts.node'
    value: string
  }

  export interface RecordTombstoneFieldEvent {
    field: '$.tombstone'
    value: boolean
  }

  export interface RecordExpiresAtFieldEvent {
    field: '$.expiresAt'
    value: bigint
  }

  export function encode (obj: Partial<Record>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Record.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Record>): Record {
    return decodeMessage(buf, Record.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Record>): Generator<RecordKeyFieldEvent | RecordValueFieldEvent | RecordTsWallFieldEvent | RecordTsLogicalFieldEvent | RecordTsNodeFieldEvent | RecordTombstoneFieldEvent | RecordExpiresAtFieldEvent> {
    return streamMessage(buf, Record.codec(), opts)
  }
}

export interface StoredRecord {
  record?: Record
  storedAt: bigint
}

export namespace StoredRecord {
  let _codec: Codec<StoredRecord>

  export const codec = (): Codec<StoredRecord> => {
    if (_codec == null) {
      _codec = message<StoredRecord>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.record != null) {
          w.uint32(10)
          Record.codec().encode(obj.record, w)
        }

        if ((obj.storedAt != null && obj.storedAt !== 0n)) {
          w.uint32(16)
          w.uint64(obj.storedAt)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          storedAt: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.record = Record.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.record
              })
              break
            }
            case 2: {
              obj.storedAt = reader.uint64()
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
              yield * Record.codec().stream(reader, reader.uint32(), `${prefix}.record`, {
                limits: opts.limits?.record
              })

              break
            }
            case 2: {
              yield {
                field: `${prefix}.storedAt`,
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

  export interface StoredRecordRecordKeyFieldEvent {
    field: '$.record.key'
    value: string
  }

  export interface StoredRecordRecordValueFieldEvent {
    field: '$.record.value'
    value: Uint8Array<ArrayBuffer>
  }

  export interface StoredRecordRecordTsWallFieldEvent {
    field: '$.record.ts.wall'
    value: bigint
  }

  export interface StoredRecordRecordTsLogicalFieldEvent {
    field: '$.record.ts.logical'
    value: number
  }

  export interface StoredRecordRecordTsNodeFieldEvent {
    field: '$.record.ts.node'
    value: string
  }

  export interface StoredRecordRecordTombstoneFieldEvent {
    field: '$.record.tombstone'
    value: boolean
  }

  export interface StoredRecordRecordExpiresAtFieldEvent {
    field: '$.record.expiresAt'
    value: bigint
  }

  export interface StoredRecordStoredAtFieldEvent {
    field: '$.storedAt'
    value: bigint
  }

  export function encode (obj: Partial<StoredRecord>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, StoredRecord.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StoredRecord>): StoredRecord {
    return decodeMessage(buf, StoredRecord.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<StoredRecord>): Generator<StoredRecordRecordKeyFieldEvent | StoredRecordRecordValueFieldEvent | StoredRecordRecordTsWallFieldEvent | StoredRecordRecordTsLogicalFieldEvent | StoredRecordRecordTsNodeFieldEvent | StoredRecordRecordTombstoneFieldEvent | StoredRecordRecordExpiresAtFieldEvent | StoredRecordStoredAtFieldEvent> {
    return streamMessage(buf, StoredRecord.codec(), opts)
  }
}

export interface Hint {
  target: string
  record?: Record
  createdAt: bigint
}

export namespace Hint {
  let _codec: Codec<Hint>

  export const codec = (): Codec<Hint> => {
    if (_codec == null) {
      _codec = message<Hint>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.target != null && obj.target !== '')) {
          w.uint32(10)
          w.string(obj.target)
        }

        if (obj.record != null) {
          w.uint32(18)
          Record.codec().encode(obj.record, w)
        }

        if ((obj.createdAt != null && obj.createdAt !== 0n)) {
          w.uint32(24)
          w.uint64(obj.createdAt)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          target: '',
          createdAt: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.target = reader.string()
              break
            }
            case 2: {
              obj.record = Record.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.record
              })
              break
            }
            case 3: {
              obj.createdAt = reader.uint64()
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
                field: `${prefix}.target`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield * Record.codec().stream(reader, reader.uint32(), `${prefix}.record`, {
                limits: opts.limits?.record
              })

              break
            }
            case 3: {
              yield {
                field: `${prefix}.createdAt`,
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

  export interface HintTargetFieldEvent {
    field: '$.target'
    value: string
  }

  export interface HintRecordKeyFieldEvent {
    field: '$.record.key'
    value: string
  }

  export interface HintRecordValueFieldEvent {
    field: '$.record.value'
    value: Uint8Array<ArrayBuffer>
  }

  export interface HintRecordTsWallFieldEvent {
    field: '$.record.ts.wall'
    value: bigint
  }

  export interface HintRecordTsLogicalFieldEvent {
    field: '$.record.ts.logical'
    value: number
  }

  export interface HintRecordTsNodeFieldEvent {
    field: '$.record.ts.node'
    value: string
  }

  export interface HintRecordTombstoneFieldEvent {
    field: '$.record.tombstone'
    value: boolean
  }

  export interface HintRecordExpiresAtFieldEvent {
    field: '$.record.expiresAt'
    value: bigint
  }

  export interface HintCreatedAtFieldEvent {
    field: '$.createdAt'
    value: bigint
  }

  export function encode (obj: Partial<Hint>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Hint.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Hint>): Hint {
    return decodeMessage(buf, Hint.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Hint>): Generator<HintTargetFieldEvent | HintRecordKeyFieldEvent | HintRecordValueFieldEvent | HintRecordTsWallFieldEvent | HintRecordTsLogicalFieldEvent | HintRecordTsNodeFieldEvent | HintRecordTombstoneFieldEvent | HintRecordExpiresAtFieldEvent | HintCreatedAtFieldEvent> {
    return streamMessage(buf, Hint.codec(), opts)
  }
}

export interface TokenRange {
  start: bigint
  end: bigint
}

export namespace TokenRange {
  let _codec: Codec<TokenRange>

  export const codec = (): Codec<TokenRange> => {
    if (_codec == null) {
      _codec = message<TokenRange>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.start != null && obj.start !== 0n)) {
          w.uint32(8)
          w.uint64(obj.start)
        }

        if ((obj.end != null && obj.end !== 0n)) {
          w.uint32(16)
          w.uint64(obj.end)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          start: 0n,
          end: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.start = reader.uint64()
              break
            }
            case 2: {
              obj.end = reader.uint64()
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
                field: `${prefix}.start`,
                value: reader.uint64()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.end`,
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

  export interface TokenRangeStartFieldEvent {
    field: '$.start'
    value: bigint
  }

  export interface TokenRangeEndFieldEvent {
    field: '$.end'
    value: bigint
  }

  export function encode (obj: Partial<TokenRange>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TokenRange.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TokenRange>): TokenRange {
    return decodeMessage(buf, TokenRange.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TokenRange>): Generator<TokenRangeStartFieldEvent | TokenRangeEndFieldEvent> {
    return streamMessage(buf, TokenRange.codec(), opts)
  }
}

export interface Version {
  key: string
  ts?: Timestamp
  dead: boolean
}

export namespace Version {
  let _codec: Codec<Version>

  export const codec = (): Codec<Version> => {
    if (_codec == null) {
      _codec = message<Version>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.key != null && obj.key !== '')) {
          w.uint32(10)
          w.string(obj.key)
        }

        if (obj.ts != null) {
          w.uint32(18)
          Timestamp.codec().encode(obj.ts, w)
        }

        if ((obj.dead != null && obj.dead !== false)) {
          w.uint32(24)
          w.bool(obj.dead)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          key: '',
          dead: false
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
              obj.ts = Timestamp.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.ts
              })
              break
            }
            case 3: {
              obj.dead = reader.bool()
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
              yield * Timestamp.codec().stream(reader, reader.uint32(), `${prefix}.ts`, {
                limits: opts.limits?.ts
              })

              break
            }
            case 3: {
              yield {
                field: `${prefix}.dead`,
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

  export interface VersionKeyFieldEvent {
    field: '$.key'
    value: string
  }

  export interface VersionTsWallFieldEvent {
    field: '$.ts.wall'
    value: bigint
  }

  export interface VersionTsLogicalFieldEvent {
    field: '$.ts.logical'
    value: number
  }

  export interface VersionTsNodeFieldEvent {
    field: '$.ts.node'
    value: string
  }

  export interface VersionDeadFieldEvent {
    field: '$.dead'
    value: boolean
  }

  export function encode (obj: Partial<Version>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Version.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Version>): Version {
    return decodeMessage(buf, Version.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Version>): Generator<VersionKeyFieldEvent | VersionTsWallFieldEvent | VersionTsLogicalFieldEvent | VersionTsNodeFieldEvent | VersionDeadFieldEvent> {
    return streamMessage(buf, Version.codec(), opts)
  }
}

export interface WriteRequest {
  records: Record[]
}

export namespace WriteRequest {
  let _codec: Codec<WriteRequest>

  export const codec = (): Codec<WriteRequest> => {
    if (_codec == null) {
      _codec = message<WriteRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.records != null && obj.records.length > 0) {
          for (const value of obj.records) {
            w.uint32(10)
            Record.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          records: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.records != null && obj.records.length === opts.limits.records) {
                throw new MaxLengthError('Decode error - repeated field "records" had too many elements')
              }

              obj.records.push(Record.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.records$
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
          records: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.records != null && obj.records === opts.limits.records) {
                throw new MaxLengthError('Streaming decode error - repeated field "records" had too many elements')
              }

              for (const evt of Record.codec().stream(reader, reader.uint32(), `${prefix}.records[]`, {
                limits: opts.limits?.records$
              })) {
                yield {
                  ...evt,
                  index: obj.records
                }
              }

              obj.records++

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

  export interface WriteRequestRecordsKeyFieldEvent {
    field: '$.records[].key'
    value: string
    index: number
  }

  export interface WriteRequestRecordsValueFieldEvent {
    field: '$.records[].value'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface WriteRequestRecordsTsWallFieldEvent {
    field: '$.records[].ts.wall'
    value: bigint
    index: number
  }

  export interface WriteRequestRecordsTsLogicalFieldEvent {
    field: '$.records[].ts.logical'
    value: number
    index: number
  }

  export interface WriteRequestRecordsTsNodeFieldEvent {
    field: '$.records[].ts.node'
    value: string
    index: number
  }

  export interface WriteRequestRecordsTombstoneFieldEvent {
    field: '$.records[].tombstone'
    value: boolean
    index: number
  }

  export interface WriteRequestRecordsExpiresAtFieldEvent {
    field: '$.records[].expiresAt'
    value: bigint
    index: number
  }

  export function encode (obj: Partial<WriteRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, WriteRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<WriteRequest>): WriteRequest {
    return decodeMessage(buf, WriteRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<WriteRequest>): Generator<WriteRequestRecordsKeyFieldEvent | WriteRequestRecordsValueFieldEvent | WriteRequestRecordsTsWallFieldEvent | WriteRequestRecordsTsLogicalFieldEvent | WriteRequestRecordsTsNodeFieldEvent | WriteRequestRecordsTombstoneFieldEvent | WriteRequestRecordsExpiresAtFieldEvent> {
    return streamMessage(buf, WriteRequest.codec(), opts)
  }
}

export interface WriteResponse {
  applied: number
  superseded: number
  clock?: Timestamp
  supersededRecords: boolean[]
  skewedRecords: boolean[]
}

export namespace WriteResponse {
  let _codec: Codec<WriteResponse>

  export const codec = (): Codec<WriteResponse> => {
    if (_codec == null) {
      _codec = message<WriteResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.applied != null && obj.applied !== 0)) {
          w.uint32(8)
          w.uint32(obj.applied)
        }

        if ((obj.superseded != null && obj.superseded !== 0)) {
          w.uint32(16)
          w.uint32(obj.superseded)
        }

        if (obj.clock != null) {
          w.uint32(26)
          Timestamp.codec().encode(obj.clock, w)
        }

        if (obj.supersededRecords != null && obj.supersededRecords.length > 0) {
          for (const value of obj.supersededRecords) {
            w.uint32(32)
            w.bool(value)
          }
        }

        if (obj.skewedRecords != null && obj.skewedRecords.length > 0) {
          for (const value of obj.skewedRecords) {
            w.uint32(40)
            w.bool(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          applied: 0,
          superseded: 0,
          supersededRecords: [],
          skewedRecords: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.applied = reader.uint32()
              break
            }
            case 2: {
              obj.superseded = reader.uint32()
              break
            }
            case 3: {
              obj.clock = Timestamp.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.clock
              })
              break
            }
            case 4: {
              if (opts.limits?.supersededRecords != null && obj.supersededRecords.length === opts.limits.supersededRecords) {
                throw new MaxLengthError('Decode error - repeated field "supersededRecords" had too many elements')
              }

              obj.supersededRecords.push(reader.bool())
              break
            }
            case 5: {
              if (opts.limits?.skewedRecords != null && obj.skewedRecords.length === opts.limits.skewedRecords) {
                throw new MaxLengthError('Decode error - repeated field "skewedRecords" had too many elements')
              }

              obj.skewedRecords.push(reader.bool())
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
          supersededRecords: 0,
          skewedRecords: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.applied`,
                value: reader.uint32()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.superseded`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              yield * Timestamp.codec().stream(reader, reader.uint32(), `${prefix}.clock`, {
                limits: opts.limits?.clock
              })

              break
            }
            case 4: {
              if (opts.limits?.supersededRecords != null && obj.supersededRecords === opts.limits.supersededRecords) {
                throw new MaxLengthError('Streaming decode error - repeated field "supersededRecords" had too many elements')
              }

              yield {
                field: `${prefix}.supersededRecords[]`,
                index: obj.supersededRecords,
                value: reader.bool()
              }

              obj.supersededRecords++

              break
            }
            case 5: {
              if (opts.limits?.skewedRecords != null && obj.skewedRecords === opts.limits.skewedRecords) {
                throw new MaxLengthError('Streaming decode error - repeated field "skewedRecords" had too many elements')
              }

              yield {
                field: `${prefix}.skewedRecords[]`,
                index: obj.skewedRecords,
                value: reader.bool()
              }

              obj.skewedRecords++

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

  export interface WriteResponseAppliedFieldEvent {
    field: '$.applied'
    value: number
  }

  export interface WriteResponseSupersededFieldEvent {
    field: '$.superseded'
    value: number
  }

  export interface WriteResponseClockWallFieldEvent {
    field: '$.clock.wall'
    value: bigint
  }

  export interface WriteResponseClockLogicalFieldEvent {
    field: '$.clock.logical'
    value: number
  }

  export interface WriteResponseClockNodeFieldEvent {
    field: '$.clock.node'
    value: string
  }

  export interface WriteResponseSupersededRecordsFieldEvent {
    field: '$.supersededRecords[]'
    index: number
    value: boolean
  }

  export interface WriteResponseSkewedRecordsFieldEvent {
    field: '$.skewedRecords[]'
    index: number
    value: boolean
  }

  export function encode (obj: Partial<WriteResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, WriteResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<WriteResponse>): WriteResponse {
    return decodeMessage(buf, WriteResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<WriteResponse>): Generator<WriteResponseAppliedFieldEvent | WriteResponseSupersededFieldEvent | WriteResponseClockWallFieldEvent | WriteResponseClockLogicalFieldEvent | WriteResponseClockNodeFieldEvent | WriteResponseSupersededRecordsFieldEvent | WriteResponseSkewedRecordsFieldEvent> {
    return streamMessage(buf, WriteResponse.codec(), opts)
  }
}

export interface ReadRequest {
  key: string
  digestOnly: boolean
}

export namespace ReadRequest {
  let _codec: Codec<ReadRequest>

  export const codec = (): Codec<ReadRequest> => {
    if (_codec == null) {
      _codec = message<ReadRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.key != null && obj.key !== '')) {
          w.uint32(10)
          w.string(obj.key)
        }

        if ((obj.digestOnly != null && obj.digestOnly !== false)) {
          w.uint32(16)
          w.bool(obj.digestOnly)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          key: '',
          digestOnly: false
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
              obj.digestOnly = reader.bool()
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
                field: `${prefix}.digestOnly`,
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

  export interface ReadRequestKeyFieldEvent {
    field: '$.key'
    value: string
  }

  export interface ReadRequestDigestOnlyFieldEvent {
    field: '$.digestOnly'
    value: boolean
  }

  export function encode (obj: Partial<ReadRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ReadRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ReadRequest>): ReadRequest {
    return decodeMessage(buf, ReadRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ReadRequest>): Generator<ReadRequestKeyFieldEvent | ReadRequestDigestOnlyFieldEvent> {
    return streamMessage(buf, ReadRequest.codec(), opts)
  }
}

export interface ReadResponse {
  found: boolean
  record?: Record
  version?: Timestamp
}

export namespace ReadResponse {
  let _codec: Codec<ReadResponse>

  export const codec = (): Codec<ReadResponse> => {
    if (_codec == null) {
      _codec = message<ReadResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.found != null && obj.found !== false)) {
          w.uint32(8)
          w.bool(obj.found)
        }

        if (obj.record != null) {
          w.uint32(18)
          Record.codec().encode(obj.record, w)
        }

        if (obj.version != null) {
          w.uint32(26)
          Timestamp.codec().encode(obj.version, w)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          found: false
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
              obj.record = Record.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.record
              })
              break
            }
            case 3: {
              obj.version = Timestamp.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.version
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
              yield * Record.codec().stream(reader, reader.uint32(), `${prefix}.record`, {
                limits: opts.limits?.record
              })

              break
            }
            case 3: {
              yield * Timestamp.codec().stream(reader, reader.uint32(), `${prefix}.version`, {
                limits: opts.limits?.version
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

  export interface ReadResponseFoundFieldEvent {
    field: '$.found'
    value: boolean
  }

  export interface ReadResponseRecordKeyFieldEvent {
    field: '$.record.key'
    value: string
  }

  export interface ReadResponseRecordValueFieldEvent {
    field: '$.record.value'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ReadResponseRecordTsWallFieldEvent {
    field: '$.record.ts.wall'
    value: bigint
  }

  export interface ReadResponseRecordTsLogicalFieldEvent {
    field: '$.record.ts.logical'
    value: number
  }

  export interface ReadResponseRecordTsNodeFieldEvent {
    field: '$.record.ts.node'
    value: string
  }

  export interface ReadResponseRecordTombstoneFieldEvent {
    field: '$.record.tombstone'
    value: boolean
  }

  export interface ReadResponseRecordExpiresAtFieldEvent {
    field: '$.record.expiresAt'
    value: bigint
  }

  export interface ReadResponseVersionWallFieldEvent {
    field: '$.version.wall'
    value: bigint
  }

  export interface ReadResponseVersionLogicalFieldEvent {
    field: '$.version.logical'
    value: number
  }

  export interface ReadResponseVersionNodeFieldEvent {
    field: '$.version.node'
    value: string
  }

  export function encode (obj: Partial<ReadResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ReadResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ReadResponse>): ReadResponse {
    return decodeMessage(buf, ReadResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ReadResponse>): Generator<ReadResponseFoundFieldEvent | ReadResponseRecordKeyFieldEvent | ReadResponseRecordValueFieldEvent | ReadResponseRecordTsWallFieldEvent | ReadResponseRecordTsLogicalFieldEvent | ReadResponseRecordTsNodeFieldEvent | ReadResponseRecordTombstoneFieldEvent | ReadResponseRecordExpiresAtFieldEvent | ReadResponseVersionWallFieldEvent | ReadResponseVersionLogicalFieldEvent | ReadResponseVersionNodeFieldEvent> {
    return streamMessage(buf, ReadResponse.codec(), opts)
  }
}

export interface ReadManyRequest {
  reads: ReadRequest[]
}

export namespace ReadManyRequest {
  let _codec: Codec<ReadManyRequest>

  export const codec = (): Codec<ReadManyRequest> => {
    if (_codec == null) {
      _codec = message<ReadManyRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.reads != null && obj.reads.length > 0) {
          for (const value of obj.reads) {
            w.uint32(10)
            ReadRequest.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          reads: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.reads != null && obj.reads.length === opts.limits.reads) {
                throw new MaxLengthError('Decode error - repeated field "reads" had too many elements')
              }

              obj.reads.push(ReadRequest.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.reads$
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
          reads: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.reads != null && obj.reads === opts.limits.reads) {
                throw new MaxLengthError('Streaming decode error - repeated field "reads" had too many elements')
              }

              for (const evt of ReadRequest.codec().stream(reader, reader.uint32(), `${prefix}.reads[]`, {
                limits: opts.limits?.reads$
              })) {
                yield {
                  ...evt,
                  index: obj.reads
                }
              }

              obj.reads++

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

  export interface ReadManyRequestReadsKeyFieldEvent {
    field: '$.reads[].key'
    value: string
    index: number
  }

  export interface ReadManyRequestReadsDigestOnlyFieldEvent {
    field: '$.reads[].digestOnly'
    value: boolean
    index: number
  }

  export function encode (obj: Partial<ReadManyRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ReadManyRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ReadManyRequest>): ReadManyRequest {
    return decodeMessage(buf, ReadManyRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ReadManyRequest>): Generator<ReadManyRequestReadsKeyFieldEvent | ReadManyRequestReadsDigestOnlyFieldEvent> {
    return streamMessage(buf, ReadManyRequest.codec(), opts)
  }
}

export interface ReadManyResponse {
  results: ReadResponse[]
}

export namespace ReadManyResponse {
  let _codec: Codec<ReadManyResponse>

  export const codec = (): Codec<ReadManyResponse> => {
    if (_codec == null) {
      _codec = message<ReadManyResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.results != null && obj.results.length > 0) {
          for (const value of obj.results) {
            w.uint32(10)
            ReadResponse.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          results: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.results != null && obj.results.length === opts.limits.results) {
                throw new MaxLengthError('Decode error - repeated field "results" had too many elements')
              }

              obj.results.push(ReadResponse.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.results$
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
          results: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.results != null && obj.results === opts.limits.results) {
                throw new MaxLengthError('Streaming decode error - repeated field "results" had too many elements')
              }

              for (const evt of ReadResponse.codec().stream(reader, reader.uint32(), `${prefix}.results[]`, {
                limits: opts.limits?.results$
              })) {
                yield {
                  ...evt,
                  index: obj.results
                }
              }

              obj.results++

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

  export interface ReadManyResponseResultsFoundFieldEvent {
    field: '$.results[].found'
    value: boolean
    index: number
  }

  export interface ReadManyResponseResultsRecordKeyFieldEvent {
    field: '$.results[].record.key'
    value: string
    index: number
  }

  export interface ReadManyResponseResultsRecordValueFieldEvent {
    field: '$.results[].record.value'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface ReadManyResponseResultsRecordTsWallFieldEvent {
    field: '$.results[].record.ts.wall'
    value: bigint
    index: number
  }

  export interface ReadManyResponseResultsRecordTsLogicalFieldEvent {
    field: '$.results[].record.ts.logical'
    value: number
    index: number
  }

  export interface ReadManyResponseResultsRecordTsNodeFieldEvent {
    field: '$.results[].record.ts.node'
    value: string
    index: number
  }

  export interface ReadManyResponseResultsRecordTombstoneFieldEvent {
    field: '$.results[].record.tombstone'
    value: boolean
    index: number
  }

  export interface ReadManyResponseResultsRecordExpiresAtFieldEvent {
    field: '$.results[].record.expiresAt'
    value: bigint
    index: number
  }

  export interface ReadManyResponseResultsVersionWallFieldEvent {
    field: '$.results[].version.wall'
    value: bigint
    index: number
  }

  export interface ReadManyResponseResultsVersionLogicalFieldEvent {
    field: '$.results[].version.logical'
    value: number
    index: number
  }

  export interface ReadManyResponseResultsVersionNodeFieldEvent {
    field: '$.results[].version.node'
    value: string
    index: number
  }

  export function encode (obj: Partial<ReadManyResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ReadManyResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ReadManyResponse>): ReadManyResponse {
    return decodeMessage(buf, ReadManyResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ReadManyResponse>): Generator<ReadManyResponseResultsFoundFieldEvent | ReadManyResponseResultsRecordKeyFieldEvent | ReadManyResponseResultsRecordValueFieldEvent | ReadManyResponseResultsRecordTsWallFieldEvent | ReadManyResponseResultsRecordTsLogicalFieldEvent | ReadManyResponseResultsRecordTsNodeFieldEvent | ReadManyResponseResultsRecordTombstoneFieldEvent | ReadManyResponseResultsRecordExpiresAtFieldEvent | ReadManyResponseResultsVersionWallFieldEvent | ReadManyResponseResultsVersionLogicalFieldEvent | ReadManyResponseResultsVersionNodeFieldEvent> {
    return streamMessage(buf, ReadManyResponse.codec(), opts)
  }
}

export interface FetchRequest {
  keys: string[]
}

export namespace FetchRequest {
  let _codec: Codec<FetchRequest>

  export const codec = (): Codec<FetchRequest> => {
    if (_codec == null) {
      _codec = message<FetchRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.keys != null && obj.keys.length > 0) {
          for (const value of obj.keys) {
            w.uint32(10)
            w.string(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          keys: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.keys != null && obj.keys.length === opts.limits.keys) {
                throw new MaxLengthError('Decode error - repeated field "keys" had too many elements')
              }

              obj.keys.push(reader.string())
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
          keys: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.keys != null && obj.keys === opts.limits.keys) {
                throw new MaxLengthError('Streaming decode error - repeated field "keys" had too many elements')
              }

              yield {
                field: `${prefix}.keys[]`,
                index: obj.keys,
                value: reader.string()
              }

              obj.keys++

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

  export interface FetchRequestKeysFieldEvent {
    field: '$.keys[]'
    index: number
    value: string
  }

  export function encode (obj: Partial<FetchRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, FetchRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FetchRequest>): FetchRequest {
    return decodeMessage(buf, FetchRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FetchRequest>): Generator<FetchRequestKeysFieldEvent> {
    return streamMessage(buf, FetchRequest.codec(), opts)
  }
}

export interface FetchResponse {
  records: Record[]
}

export namespace FetchResponse {
  let _codec: Codec<FetchResponse>

  export const codec = (): Codec<FetchResponse> => {
    if (_codec == null) {
      _codec = message<FetchResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.records != null && obj.records.length > 0) {
          for (const value of obj.records) {
            w.uint32(10)
            Record.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          records: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.records != null && obj.records.length === opts.limits.records) {
                throw new MaxLengthError('Decode error - repeated field "records" had too many elements')
              }

              obj.records.push(Record.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.records$
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
          records: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.records != null && obj.records === opts.limits.records) {
                throw new MaxLengthError('Streaming decode error - repeated field "records" had too many elements')
              }

              for (const evt of Record.codec().stream(reader, reader.uint32(), `${prefix}.records[]`, {
                limits: opts.limits?.records$
              })) {
                yield {
                  ...evt,
                  index: obj.records
                }
              }

              obj.records++

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

  export interface FetchResponseRecordsKeyFieldEvent {
    field: '$.records[].key'
    value: string
    index: number
  }

  export interface FetchResponseRecordsValueFieldEvent {
    field: '$.records[].value'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface FetchResponseRecordsTsWallFieldEvent {
    field: '$.records[].ts.wall'
    value: bigint
    index: number
  }

  export interface FetchResponseRecordsTsLogicalFieldEvent {
    field: '$.records[].ts.logical'
    value: number
    index: number
  }

  export interface FetchResponseRecordsTsNodeFieldEvent {
    field: '$.records[].ts.node'
    value: string
    index: number
  }

  export interface FetchResponseRecordsTombstoneFieldEvent {
    field: '$.records[].tombstone'
    value: boolean
    index: number
  }

  export interface FetchResponseRecordsExpiresAtFieldEvent {
    field: '$.records[].expiresAt'
    value: bigint
    index: number
  }

  export function encode (obj: Partial<FetchResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, FetchResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FetchResponse>): FetchResponse {
    return decodeMessage(buf, FetchResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FetchResponse>): Generator<FetchResponseRecordsKeyFieldEvent | FetchResponseRecordsValueFieldEvent | FetchResponseRecordsTsWallFieldEvent | FetchResponseRecordsTsLogicalFieldEvent | FetchResponseRecordsTsNodeFieldEvent | FetchResponseRecordsTombstoneFieldEvent | FetchResponseRecordsExpiresAtFieldEvent> {
    return streamMessage(buf, FetchResponse.codec(), opts)
  }
}

export interface MerkleRequest {
  span?: TokenRange
  ranges: TokenRange[]
  depth: number
}

export namespace MerkleRequest {
  let _codec: Codec<MerkleRequest>

  export const codec = (): Codec<MerkleRequest> => {
    if (_codec == null) {
      _codec = message<MerkleRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.span != null) {
          w.uint32(10)
          TokenRange.codec().encode(obj.span, w)
        }

        if (obj.ranges != null && obj.ranges.length > 0) {
          for (const value of obj.ranges) {
            w.uint32(18)
            TokenRange.codec().encode(value, w)
          }
        }

        if ((obj.depth != null && obj.depth !== 0)) {
          w.uint32(24)
          w.uint32(obj.depth)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          ranges: [],
          depth: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.span = TokenRange.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.span
              })
              break
            }
            case 2: {
              if (opts.limits?.ranges != null && obj.ranges.length === opts.limits.ranges) {
                throw new MaxLengthError('Decode error - repeated field "ranges" had too many elements')
              }

              obj.ranges.push(TokenRange.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.ranges$
              }))
              break
            }
            case 3: {
              obj.depth = reader.uint32()
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
          ranges: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield * TokenRange.codec().stream(reader, reader.uint32(), `${prefix}.span`, {
                limits: opts.limits?.span
              })

              break
            }
            case 2: {
              if (opts.limits?.ranges != null && obj.ranges === opts.limits.ranges) {
                throw new MaxLengthError('Streaming decode error - repeated field "ranges" had too many elements')
              }

              for (const evt of TokenRange.codec().stream(reader, reader.uint32(), `${prefix}.ranges[]`, {
                limits: opts.limits?.ranges$
              })) {
                yield {
                  ...evt,
                  index: obj.ranges
                }
              }

              obj.ranges++

              break
            }
            case 3: {
              yield {
                field: `${prefix}.depth`,
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

  export interface MerkleRequestSpanStartFieldEvent {
    field: '$.span.start'
    value: bigint
  }

  export interface MerkleRequestSpanEndFieldEvent {
    field: '$.span.end'
    value: bigint
  }

  export interface MerkleRequestRangesStartFieldEvent {
    field: '$.ranges[].start'
    value: bigint
    index: number
  }

  export interface MerkleRequestRangesEndFieldEvent {
    field: '$.ranges[].end'
    value: bigint
    index: number
  }

  export interface MerkleRequestDepthFieldEvent {
    field: '$.depth'
    value: number
  }

  export function encode (obj: Partial<MerkleRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, MerkleRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<MerkleRequest>): MerkleRequest {
    return decodeMessage(buf, MerkleRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<MerkleRequest>): Generator<MerkleRequestSpanStartFieldEvent | MerkleRequestSpanEndFieldEvent | MerkleRequestRangesStartFieldEvent | MerkleRequestRangesEndFieldEvent | MerkleRequestDepthFieldEvent> {
    return streamMessage(buf, MerkleRequest.codec(), opts)
  }
}

export interface MerkleResponse {
  depth: number
  hashes: Uint8Array<ArrayBuffer>[]
  count: bigint
}

export namespace MerkleResponse {
  let _codec: Codec<MerkleResponse>

  export const codec = (): Codec<MerkleResponse> => {
    if (_codec == null) {
      _codec = message<MerkleResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.depth != null && obj.depth !== 0)) {
          w.uint32(8)
          w.uint32(obj.depth)
        }

        if (obj.hashes != null && obj.hashes.length > 0) {
          for (const value of obj.hashes) {
            w.uint32(18)
            w.bytes(value)
          }
        }

        if ((obj.count != null && obj.count !== 0n)) {
          w.uint32(24)
          w.uint64(obj.count)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          depth: 0,
          hashes: [],
          count: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.depth = reader.uint32()
              break
            }
            case 2: {
              if (opts.limits?.hashes != null && obj.hashes.length === opts.limits.hashes) {
                throw new MaxLengthError('Decode error - repeated field "hashes" had too many elements')
              }

              obj.hashes.push(reader.bytes())
              break
            }
            case 3: {
              obj.count = reader.uint64()
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
          hashes: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.depth`,
                value: reader.uint32()
              }
              break
            }
            case 2: {
              if (opts.limits?.hashes != null && obj.hashes === opts.limits.hashes) {
                throw new MaxLengthError('Streaming decode error - repeated field "hashes" had too many elements')
              }

              yield {
                field: `${prefix}.hashes[]`,
                index: obj.hashes,
                value: reader.bytes()
              }

              obj.hashes++

              break
            }
            case 3: {
              yield {
                field: `${prefix}.count`,
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

  export interface MerkleResponseDepthFieldEvent {
    field: '$.depth'
    value: number
  }

  export interface MerkleResponseHashesFieldEvent {
    field: '$.hashes[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface MerkleResponseCountFieldEvent {
    field: '$.count'
    value: bigint
  }

  export function encode (obj: Partial<MerkleResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, MerkleResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<MerkleResponse>): MerkleResponse {
    return decodeMessage(buf, MerkleResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<MerkleResponse>): Generator<MerkleResponseDepthFieldEvent | MerkleResponseHashesFieldEvent | MerkleResponseCountFieldEvent> {
    return streamMessage(buf, MerkleResponse.codec(), opts)
  }
}

export interface PurgesRequest {
  back: boolean
}

export namespace PurgesRequest {
  let _codec: Codec<PurgesRequest>

  export const codec = (): Codec<PurgesRequest> => {
    if (_codec == null) {
      _codec = message<PurgesRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.back != null && obj.back !== false)) {
          w.uint32(8)
          w.bool(obj.back)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          back: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.back = reader.bool()
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
                field: `${prefix}.back`,
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

  export interface PurgesRequestBackFieldEvent {
    field: '$.back'
    value: boolean
  }

  export function encode (obj: Partial<PurgesRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PurgesRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PurgesRequest>): PurgesRequest {
    return decodeMessage(buf, PurgesRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PurgesRequest>): Generator<PurgesRequestBackFieldEvent> {
    return streamMessage(buf, PurgesRequest.codec(), opts)
  }
}

export interface PurgesResponse {
  lastPurgeAt: bigint
  members: string[]
  letGo: boolean
}

export namespace PurgesResponse {
  let _codec: Codec<PurgesResponse>

  export const codec = (): Codec<PurgesResponse> => {
    if (_codec == null) {
      _codec = message<PurgesResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.lastPurgeAt != null && obj.lastPurgeAt !== 0n)) {
          w.uint32(8)
          w.uint64(obj.lastPurgeAt)
        }

        if (obj.members != null && obj.members.length > 0) {
          for (const value of obj.members) {
            w.uint32(18)
            w.string(value)
          }
        }

        if ((obj.letGo != null && obj.letGo !== false)) {
          w.uint32(24)
          w.bool(obj.letGo)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          lastPurgeAt: 0n,
          members: [],
          letGo: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.lastPurgeAt = reader.uint64()
              break
            }
            case 2: {
              if (opts.limits?.members != null && obj.members.length === opts.limits.members) {
                throw new MaxLengthError('Decode error - repeated field "members" had too many elements')
              }

              obj.members.push(reader.string())
              break
            }
            case 3: {
              obj.letGo = reader.bool()
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
          members: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.lastPurgeAt`,
                value: reader.uint64()
              }
              break
            }
            case 2: {
              if (opts.limits?.members != null && obj.members === opts.limits.members) {
                throw new MaxLengthError('Streaming decode error - repeated field "members" had too many elements')
              }

              yield {
                field: `${prefix}.members[]`,
                index: obj.members,
                value: reader.string()
              }

              obj.members++

              break
            }
            case 3: {
              yield {
                field: `${prefix}.letGo`,
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

  export interface PurgesResponseLastPurgeAtFieldEvent {
    field: '$.lastPurgeAt'
    value: bigint
  }

  export interface PurgesResponseMembersFieldEvent {
    field: '$.members[]'
    index: number
    value: string
  }

  export interface PurgesResponseLetGoFieldEvent {
    field: '$.letGo'
    value: boolean
  }

  export function encode (obj: Partial<PurgesResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PurgesResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PurgesResponse>): PurgesResponse {
    return decodeMessage(buf, PurgesResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PurgesResponse>): Generator<PurgesResponseLastPurgeAtFieldEvent | PurgesResponseMembersFieldEvent | PurgesResponseLetGoFieldEvent> {
    return streamMessage(buf, PurgesResponse.codec(), opts)
  }
}

export interface FetchRangeRequest {
  ranges: TokenRange[]
  digestsOnly: boolean
  limit: number
  after: string
}

export namespace FetchRangeRequest {
  let _codec: Codec<FetchRangeRequest>

  export const codec = (): Codec<FetchRangeRequest> => {
    if (_codec == null) {
      _codec = message<FetchRangeRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.ranges != null && obj.ranges.length > 0) {
          for (const value of obj.ranges) {
            w.uint32(10)
            TokenRange.codec().encode(value, w)
          }
        }

        if ((obj.digestsOnly != null && obj.digestsOnly !== false)) {
          w.uint32(16)
          w.bool(obj.digestsOnly)
        }

        if ((obj.limit != null && obj.limit !== 0)) {
          w.uint32(24)
          w.uint32(obj.limit)
        }

        if ((obj.after != null && obj.after !== '')) {
          w.uint32(34)
          w.string(obj.after)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          ranges: [],
          digestsOnly: false,
          limit: 0,
          after: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.ranges != null && obj.ranges.length === opts.limits.ranges) {
                throw new MaxLengthError('Decode error - repeated field "ranges" had too many elements')
              }

              obj.ranges.push(TokenRange.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.ranges$
              }))
              break
            }
            case 2: {
              obj.digestsOnly = reader.bool()
              break
            }
            case 3: {
              obj.limit = reader.uint32()
              break
            }
            case 4: {
              obj.after = reader.string()
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
          ranges: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.ranges != null && obj.ranges === opts.limits.ranges) {
                throw new MaxLengthError('Streaming decode error - repeated field "ranges" had too many elements')
              }

              for (const evt of TokenRange.codec().stream(reader, reader.uint32(), `${prefix}.ranges[]`, {
                limits: opts.limits?.ranges$
              })) {
                yield {
                  ...evt,
                  index: obj.ranges
                }
              }

              obj.ranges++

              break
            }
            case 2: {
              yield {
                field: `${prefix}.digestsOnly`,
                value: reader.bool()
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
            case 4: {
              yield {
                field: `${prefix}.after`,
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

  export interface FetchRangeRequestRangesStartFieldEvent {
    field: '$.ranges[].start'
    value: bigint
    index: number
  }

  export interface FetchRangeRequestRangesEndFieldEvent {
    field: '$.ranges[].end'
    value: bigint
    index: number
  }

  export interface FetchRangeRequestDigestsOnlyFieldEvent {
    field: '$.digestsOnly'
    value: boolean
  }

  export interface FetchRangeRequestLimitFieldEvent {
    field: '$.limit'
    value: number
  }

  export interface FetchRangeRequestAfterFieldEvent {
    field: '$.after'
    value: string
  }

  export function encode (obj: Partial<FetchRangeRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, FetchRangeRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FetchRangeRequest>): FetchRangeRequest {
    return decodeMessage(buf, FetchRangeRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FetchRangeRequest>): Generator<FetchRangeRequestRangesStartFieldEvent | FetchRangeRequestRangesEndFieldEvent | FetchRangeRequestDigestsOnlyFieldEvent | FetchRangeRequestLimitFieldEvent | FetchRangeRequestAfterFieldEvent> {
    return streamMessage(buf, FetchRangeRequest.codec(), opts)
  }
}

export interface FetchRangeResponse {
  records: Record[]
  versions: Version[]
  cursor: string
  more: boolean
}

export namespace FetchRangeResponse {
  let _codec: Codec<FetchRangeResponse>

  export const codec = (): Codec<FetchRangeResponse> => {
    if (_codec == null) {
      _codec = message<FetchRangeResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.records != null && obj.records.length > 0) {
          for (const value of obj.records) {
            w.uint32(10)
            Record.codec().encode(value, w)
          }
        }

        if (obj.versions != null && obj.versions.length > 0) {
          for (const value of obj.versions) {
            w.uint32(18)
            Version.codec().encode(value, w)
          }
        }

        if ((obj.cursor != null && obj.cursor !== '')) {
          w.uint32(26)
          w.string(obj.cursor)
        }

        if ((obj.more != null && obj.more !== false)) {
          w.uint32(32)
          w.bool(obj.more)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          records: [],
          versions: [],
          cursor: '',
          more: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.records != null && obj.records.length === opts.limits.records) {
                throw new MaxLengthError('Decode error - repeated field "records" had too many elements')
              }

              obj.records.push(Record.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.records$
              }))
              break
            }
            case 2: {
              if (opts.limits?.versions != null && obj.versions.length === opts.limits.versions) {
                throw new MaxLengthError('Decode error - repeated field "versions" had too many elements')
              }

              obj.versions.push(Version.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.versions$
              }))
              break
            }
            case 3: {
              obj.cursor = reader.string()
              break
            }
            case 4: {
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
          records: 0,
          versions: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.records != null && obj.records === opts.limits.records) {
                throw new MaxLengthError('Streaming decode error - repeated field "records" had too many elements')
              }

              for (const evt of Record.codec().stream(reader, reader.uint32(), `${prefix}.records[]`, {
                limits: opts.limits?.records$
              })) {
                yield {
                  ...evt,
                  index: obj.records
                }
              }

              obj.records++

              break
            }
            case 2: {
              if (opts.limits?.versions != null && obj.versions === opts.limits.versions) {
                throw new MaxLengthError('Streaming decode error - repeated field "versions" had too many elements')
              }

              for (const evt of Version.codec().stream(reader, reader.uint32(), `${prefix}.versions[]`, {
                limits: opts.limits?.versions$
              })) {
                yield {
                  ...evt,
                  index: obj.versions
                }
              }

              obj.versions++

              break
            }
            case 3: {
              yield {
                field: `${prefix}.cursor`,
                value: reader.string()
              }
              break
            }
            case 4: {
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

  export interface FetchRangeResponseRecordsKeyFieldEvent {
    field: '$.records[].key'
    value: string
    index: number
  }

  export interface FetchRangeResponseRecordsValueFieldEvent {
    field: '$.records[].value'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface FetchRangeResponseRecordsTsWallFieldEvent {
    field: '$.records[].ts.wall'
    value: bigint
    index: number
  }

  export interface FetchRangeResponseRecordsTsLogicalFieldEvent {
    field: '$.records[].ts.logical'
    value: number
    index: number
  }

  export interface FetchRangeResponseRecordsTsNodeFieldEvent {
    field: '$.records[].ts.node'
    value: string
    index: number
  }

  export interface FetchRangeResponseRecordsTombstoneFieldEvent {
    field: '$.records[].tombstone'
    value: boolean
    index: number
  }

  export interface FetchRangeResponseRecordsExpiresAtFieldEvent {
    field: '$.records[].expiresAt'
    value: bigint
    index: number
  }

  export interface FetchRangeResponseVersionsKeyFieldEvent {
    field: '$.versions[].key'
    value: string
    index: number
  }

  export interface FetchRangeResponseVersionsTsWallFieldEvent {
    field: '$.versions[].ts.wall'
    value: bigint
    index: number
  }

  export interface FetchRangeResponseVersionsTsLogicalFieldEvent {
    field: '$.versions[].ts.logical'
    value: number
    index: number
  }

  export interface FetchRangeResponseVersionsTsNodeFieldEvent {
    field: '$.versions[].ts.node'
    value: string
    index: number
  }

  export interface FetchRangeResponseVersionsDeadFieldEvent {
    field: '$.versions[].dead'
    value: boolean
    index: number
  }

  export interface FetchRangeResponseCursorFieldEvent {
    field: '$.cursor'
    value: string
  }

  export interface FetchRangeResponseMoreFieldEvent {
    field: '$.more'
    value: boolean
  }

  export function encode (obj: Partial<FetchRangeResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, FetchRangeResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FetchRangeResponse>): FetchRangeResponse {
    return decodeMessage(buf, FetchRangeResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<FetchRangeResponse>): Generator<FetchRangeResponseRecordsKeyFieldEvent | FetchRangeResponseRecordsValueFieldEvent | FetchRangeResponseRecordsTsWallFieldEvent | FetchRangeResponseRecordsTsLogicalFieldEvent | FetchRangeResponseRecordsTsNodeFieldEvent | FetchRangeResponseRecordsTombstoneFieldEvent | FetchRangeResponseRecordsExpiresAtFieldEvent | FetchRangeResponseVersionsKeyFieldEvent | FetchRangeResponseVersionsTsWallFieldEvent | FetchRangeResponseVersionsTsLogicalFieldEvent | FetchRangeResponseVersionsTsNodeFieldEvent | FetchRangeResponseVersionsDeadFieldEvent | FetchRangeResponseCursorFieldEvent | FetchRangeResponseMoreFieldEvent> {
    return streamMessage(buf, FetchRangeResponse.codec(), opts)
  }
}

export interface ScanRequest {
  prefix: string
  limit: number
  after: string
}

export namespace ScanRequest {
  let _codec: Codec<ScanRequest>

  export const codec = (): Codec<ScanRequest> => {
    if (_codec == null) {
      _codec = message<ScanRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.prefix != null && obj.prefix !== '')) {
          w.uint32(10)
          w.string(obj.prefix)
        }

        if ((obj.limit != null && obj.limit !== 0)) {
          w.uint32(16)
          w.uint32(obj.limit)
        }

        if ((obj.after != null && obj.after !== '')) {
          w.uint32(26)
          w.string(obj.after)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          prefix: '',
          limit: 0,
          after: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.prefix = reader.string()
              break
            }
            case 2: {
              obj.limit = reader.uint32()
              break
            }
            case 3: {
              obj.after = reader.string()
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
                field: `${prefix}.prefix`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.limit`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.after`,
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

  export interface ScanRequestPrefixFieldEvent {
    field: '$.prefix'
    value: string
  }

  export interface ScanRequestLimitFieldEvent {
    field: '$.limit'
    value: number
  }

  export interface ScanRequestAfterFieldEvent {
    field: '$.after'
    value: string
  }

  export function encode (obj: Partial<ScanRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ScanRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ScanRequest>): ScanRequest {
    return decodeMessage(buf, ScanRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ScanRequest>): Generator<ScanRequestPrefixFieldEvent | ScanRequestLimitFieldEvent | ScanRequestAfterFieldEvent> {
    return streamMessage(buf, ScanRequest.codec(), opts)
  }
}

export interface ScanResponse {
  records: Record[]
  more: boolean
}

export namespace ScanResponse {
  let _codec: Codec<ScanResponse>

  export const codec = (): Codec<ScanResponse> => {
    if (_codec == null) {
      _codec = message<ScanResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.records != null && obj.records.length > 0) {
          for (const value of obj.records) {
            w.uint32(10)
            Record.codec().encode(value, w)
          }
        }

        if ((obj.more != null && obj.more !== false)) {
          w.uint32(16)
          w.bool(obj.more)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          records: [],
          more: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.records != null && obj.records.length === opts.limits.records) {
                throw new MaxLengthError('Decode error - repeated field "records" had too many elements')
              }

              obj.records.push(Record.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.records$
              }))
              break
            }
            case 2: {
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
          records: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.records != null && obj.records === opts.limits.records) {
                throw new MaxLengthError('Streaming decode error - repeated field "records" had too many elements')
              }

              for (const evt of Record.codec().stream(reader, reader.uint32(), `${prefix}.records[]`, {
                limits: opts.limits?.records$
              })) {
                yield {
                  ...evt,
                  index: obj.records
                }
              }

              obj.records++

              break
            }
            case 2: {
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

  export interface ScanResponseRecordsKeyFieldEvent {
    field: '$.records[].key'
    value: string
    index: number
  }

  export interface ScanResponseRecordsValueFieldEvent {
    field: '$.records[].value'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface ScanResponseRecordsTsWallFieldEvent {
    field: '$.records[].ts.wall'
    value: bigint
    index: number
  }

  export interface ScanResponseRecordsTsLogicalFieldEvent {
    field: '$.records[].ts.logical'
    value: number
    index: number
  }

  export interface ScanResponseRecordsTsNodeFieldEvent {
    field: '$.records[].ts.node'
    value: string
    index: number
  }

  export interface ScanResponseRecordsTombstoneFieldEvent {
    field: '$.records[].tombstone'
    value: boolean
    index: number
  }

  export interface ScanResponseRecordsExpiresAtFieldEvent {
    field: '$.records[].expiresAt'
    value: bigint
    index: number
  }

  export interface ScanResponseMoreFieldEvent {
    field: '$.more'
    value: boolean
  }

  export function encode (obj: Partial<ScanResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ScanResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ScanResponse>): ScanResponse {
    return decodeMessage(buf, ScanResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ScanResponse>): Generator<ScanResponseRecordsKeyFieldEvent | ScanResponseRecordsValueFieldEvent | ScanResponseRecordsTsWallFieldEvent | ScanResponseRecordsTsLogicalFieldEvent | ScanResponseRecordsTsNodeFieldEvent | ScanResponseRecordsTombstoneFieldEvent | ScanResponseRecordsExpiresAtFieldEvent | ScanResponseMoreFieldEvent> {
    return streamMessage(buf, ScanResponse.codec(), opts)
  }
}
