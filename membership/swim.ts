import { decodeMessage, encodeMessage, enumeration, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export enum Kind {
  ALIVE = 'ALIVE',
  SUSPECT = 'SUSPECT',
  DEAD = 'DEAD',
  LEFT = 'LEFT'
}

enum __KindValues {
  ALIVE = 0,
  SUSPECT = 1,
  DEAD = 2,
  LEFT = 3
}

export namespace Kind {
  export const codec = (): Codec<Kind> => {
    return enumeration<Kind>(__KindValues)
  }
}

export interface Tag {
  key: string
  value: string
}

export namespace Tag {
  let _codec: Codec<Tag>

  export const codec = (): Codec<Tag> => {
    if (_codec == null) {
      _codec = message<Tag>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.key != null && obj.key !== '')) {
          w.uint32(10)
          w.string(obj.key)
        }

        if ((obj.value != null && obj.value !== '')) {
          w.uint32(18)
          w.string(obj.value)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          key: '',
          value: ''
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
              obj.value = reader.string()
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

  export interface TagKeyFieldEvent {
    field: '$.key'
    value: string
  }

  export interface TagValueFieldEvent {
    field: '$.value'
    value: string
  }

  export function encode (obj: Partial<Tag>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Tag.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Tag>): Tag {
    return decodeMessage(buf, Tag.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Tag>): Generator<TagKeyFieldEvent | TagValueFieldEvent> {
    return streamMessage(buf, Tag.codec(), opts)
  }
}

export interface Meta {
  tags: Tag[]
  capacity: number
  load: number
}

export namespace Meta {
  let _codec: Codec<Meta>

  export const codec = (): Codec<Meta> => {
    if (_codec == null) {
      _codec = message<Meta>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.tags != null && obj.tags.length > 0) {
          for (const value of obj.tags) {
            w.uint32(10)
            Tag.codec().encode(value, w)
          }
        }

        if ((obj.capacity != null && obj.capacity !== 0)) {
          w.uint32(17)
          w.double(obj.capacity)
        }

        if ((obj.load != null && obj.load !== 0)) {
          w.uint32(25)
          w.double(obj.load)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          tags: [],
          capacity: 0,
          load: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.tags != null && obj.tags.length === opts.limits.tags) {
                throw new MaxLengthError('Decode error - repeated field "tags" had too many elements')
              }

              obj.tags.push(Tag.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.tags$
              }))
              break
            }
            case 2: {
              obj.capacity = reader.double()
              break
            }
            case 3: {
              obj.load = reader.double()
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
              if (opts.limits?.tags != null && obj.tags === opts.limits.tags) {
                throw new MaxLengthError('Streaming decode error - repeated field "tags" had too many elements')
              }

              for (const evt of Tag.codec().stream(reader, reader.uint32(), `${prefix}.tags[]`, {
                limits: opts.limits?.tags$
              })) {
                yield {
                  ...evt,
                  index: obj.tags
                }
              }

              obj.tags++

              break
            }
            case 2: {
              yield {
                field: `${prefix}.capacity`,
                value: reader.double()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.load`,
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

  export interface MetaTagsKeyFieldEvent {
    field: '$.tags[].key'
    value: string
    index: number
  }

  export interface MetaTagsValueFieldEvent {
    field: '$.tags[].value'
    value: string
    index: number
  }

  export interface MetaCapacityFieldEvent {
    field: '$.capacity'
    value: number
  }

  export interface MetaLoadFieldEvent {
    field: '$.load'
    value: number
  }

  export function encode (obj: Partial<Meta>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Meta.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Meta>): Meta {
    return decodeMessage(buf, Meta.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Meta>): Generator<MetaTagsKeyFieldEvent | MetaTagsValueFieldEvent | MetaCapacityFieldEvent | MetaLoadFieldEvent> {
    return streamMessage(buf, Meta.codec(), opts)
  }
}

export interface Update {
  kind: Kind
  member: string
  incarnation: number
  addrs: string[]
  meta?: Meta
  accuser: string
  signature: Uint8Array<ArrayBuffer>
}

export namespace Update {
  let _codec: Codec<Update>

  export const codec = (): Codec<Update> => {
    if (_codec == null) {
      _codec = message<Update>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.kind != null && __KindValues[obj.kind] !== 0) {
          w.uint32(8)
          Kind.codec().encode(obj.kind, w)
        }

        if ((obj.member != null && obj.member !== '')) {
          w.uint32(18)
          w.string(obj.member)
        }

        if ((obj.incarnation != null && obj.incarnation !== 0)) {
          w.uint32(24)
          w.uint32(obj.incarnation)
        }

        if (obj.addrs != null && obj.addrs.length > 0) {
          for (const value of obj.addrs) {
            w.uint32(34)
            w.string(value)
          }
        }

        if (obj.meta != null) {
          w.uint32(42)
          Meta.codec().encode(obj.meta, w)
        }

        if ((obj.accuser != null && obj.accuser !== '')) {
          w.uint32(50)
          w.string(obj.accuser)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(58)
          w.bytes(obj.signature)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          kind: Kind.ALIVE,
          member: '',
          incarnation: 0,
          addrs: [],
          accuser: '',
          signature: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.kind = Kind.codec().decode(reader)
              break
            }
            case 2: {
              obj.member = reader.string()
              break
            }
            case 3: {
              obj.incarnation = reader.uint32()
              break
            }
            case 4: {
              if (opts.limits?.addrs != null && obj.addrs.length === opts.limits.addrs) {
                throw new MaxLengthError('Decode error - repeated field "addrs" had too many elements')
              }

              obj.addrs.push(reader.string())
              break
            }
            case 5: {
              obj.meta = Meta.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.meta
              })
              break
            }
            case 6: {
              obj.accuser = reader.string()
              break
            }
            case 7: {
              obj.signature = reader.bytes()
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
          addrs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.kind`,
                value: Kind.codec().decode(reader)
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.member`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.incarnation`,
                value: reader.uint32()
              }
              break
            }
            case 4: {
              if (opts.limits?.addrs != null && obj.addrs === opts.limits.addrs) {
                throw new MaxLengthError('Streaming decode error - repeated field "addrs" had too many elements')
              }

              yield {
                field: `${prefix}.addrs[]`,
                index: obj.addrs,
                value: reader.string()
              }

              obj.addrs++

              break
            }
            case 5: {
              yield * Meta.codec().stream(reader, reader.uint32(), `${prefix}.meta`, {
                limits: opts.limits?.meta
              })

              break
            }
            case 6: {
              yield {
                field: `${prefix}.accuser`,
                value: reader.string()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.signature`,
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

  export interface UpdateKindFieldEvent {
    field: '$.kind'
    value: Kind
  }

  export interface UpdateMemberFieldEvent {
    field: '$.member'
    value: string
  }

  export interface UpdateIncarnationFieldEvent {
    field: '$.incarnation'
    value: number
  }

  export interface UpdateAddrsFieldEvent {
    field: '$.addrs[]'
    index: number
    value: string
  }

  export interface UpdateMetaTagsKeyFieldEvent {
    field: '$.meta.tags[].key'
    value: string
    index: number
  }

  export interface UpdateMetaTagsValueFieldEvent {
    field: '$.meta.tags[].value'
    value: string
    index: number
  }

  export interface UpdateMetaCapacityFieldEvent {
    field: '$.meta.capacity'
    value: number
  }

  export interface UpdateMetaLoadFieldEvent {
    field: '$.meta.load'
    value: number
  }

  export interface UpdateAccuserFieldEvent {
    field: '$.accuser'
    value: string
  }

  export interface UpdateSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<Update>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Update.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Update>): Update {
    return decodeMessage(buf, Update.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Update>): Generator<UpdateKindFieldEvent | UpdateMemberFieldEvent | UpdateIncarnationFieldEvent | UpdateAddrsFieldEvent | UpdateMetaTagsKeyFieldEvent | UpdateMetaTagsValueFieldEvent | UpdateMetaCapacityFieldEvent | UpdateMetaLoadFieldEvent | UpdateAccuserFieldEvent | UpdateSignatureFieldEvent> {
    return streamMessage(buf, Update.codec(), opts)
  }
}

export interface SignedPayload {
  domain: string
  kind: Kind
  member: string
  incarnation: number
  addrs: string[]
  meta?: Meta
}

export namespace SignedPayload {
  let _codec: Codec<SignedPayload>

  export const codec = (): Codec<SignedPayload> => {
    if (_codec == null) {
      _codec = message<SignedPayload>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.domain != null && obj.domain !== '')) {
          w.uint32(10)
          w.string(obj.domain)
        }

        if (obj.kind != null && __KindValues[obj.kind] !== 0) {
          w.uint32(16)
          Kind.codec().encode(obj.kind, w)
        }

        if ((obj.member != null && obj.member !== '')) {
          w.uint32(26)
          w.string(obj.member)
        }

        if ((obj.incarnation != null && obj.incarnation !== 0)) {
          w.uint32(32)
          w.uint32(obj.incarnation)
        }

        if (obj.addrs != null && obj.addrs.length > 0) {
          for (const value of obj.addrs) {
            w.uint32(42)
            w.string(value)
          }
        }

        if (obj.meta != null) {
          w.uint32(50)
          Meta.codec().encode(obj.meta, w)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          domain: '',
          kind: Kind.ALIVE,
          member: '',
          incarnation: 0,
          addrs: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.domain = reader.string()
              break
            }
            case 2: {
              obj.kind = Kind.codec().decode(reader)
              break
            }
            case 3: {
              obj.member = reader.string()
              break
            }
            case 4: {
              obj.incarnation = reader.uint32()
              break
            }
            case 5: {
              if (opts.limits?.addrs != null && obj.addrs.length === opts.limits.addrs) {
                throw new MaxLengthError('Decode error - repeated field "addrs" had too many elements')
              }

              obj.addrs.push(reader.string())
              break
            }
            case 6: {
              obj.meta = Meta.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.meta
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
          addrs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.domain`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.kind`,
                value: Kind.codec().decode(reader)
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.member`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.incarnation`,
                value: reader.uint32()
              }
              break
            }
            case 5: {
              if (opts.limits?.addrs != null && obj.addrs === opts.limits.addrs) {
                throw new MaxLengthError('Streaming decode error - repeated field "addrs" had too many elements')
              }

              yield {
                field: `${prefix}.addrs[]`,
                index: obj.addrs,
                value: reader.string()
              }

              obj.addrs++

              break
            }
            case 6: {
              yield * Meta.codec().stream(reader, reader.uint32(), `${prefix}.meta`, {
                limits: opts.limits?.meta
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

  export interface SignedPayloadDomainFieldEvent {
    field: '$.domain'
    value: string
  }

  export interface SignedPayloadKindFieldEvent {
    field: '$.kind'
    value: Kind
  }

  export interface SignedPayloadMemberFieldEvent {
    field: '$.member'
    value: string
  }

  export interface SignedPayloadIncarnationFieldEvent {
    field: '$.incarnation'
    value: number
  }

  export interface SignedPayloadAddrsFieldEvent {
    field: '$.addrs[]'
    index: number
    value: string
  }

  export interface SignedPayloadMetaTagsKeyFieldEvent {
    field: '$.meta.tags[].key'
    value: string
    index: number
  }

  export interface SignedPayloadMetaTagsValueFieldEvent {
    field: '$.meta.tags[].value'
    value: string
    index: number
  }

  export interface SignedPayloadMetaCapacityFieldEvent {
    field: '$.meta.capacity'
    value: number
  }

  export interface SignedPayloadMetaLoadFieldEvent {
    field: '$.meta.load'
    value: number
  }

  export function encode (obj: Partial<SignedPayload>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, SignedPayload.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedPayload>): SignedPayload {
    return decodeMessage(buf, SignedPayload.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedPayload>): Generator<SignedPayloadDomainFieldEvent | SignedPayloadKindFieldEvent | SignedPayloadMemberFieldEvent | SignedPayloadIncarnationFieldEvent | SignedPayloadAddrsFieldEvent | SignedPayloadMetaTagsKeyFieldEvent | SignedPayloadMetaTagsValueFieldEvent | SignedPayloadMetaCapacityFieldEvent | SignedPayloadMetaLoadFieldEvent> {
    return streamMessage(buf, SignedPayload.codec(), opts)
  }
}

export enum MessageType {
  PING = 'PING',
  ACK = 'ACK',
  PING_REQ = 'PING_REQ',
  NACK = 'NACK',
  GOSSIP = 'GOSSIP',
  PUSH_PULL = 'PUSH_PULL',
  PUSH_PULL_REPLY = 'PUSH_PULL_REPLY'
}

enum __MessageTypeValues {
  PING = 0,
  ACK = 1,
  PING_REQ = 2,
  NACK = 3,
  GOSSIP = 4,
  PUSH_PULL = 5,
  PUSH_PULL_REPLY = 6
}

export namespace MessageType {
  export const codec = (): Codec<MessageType> => {
    return enumeration<MessageType>(__MessageTypeValues)
  }
}

export interface SwimMessage {
  type: MessageType
  seq: number
  target: string
  targetAddrs: string[]
  updates: Update[]
  states: Update[]
  join: boolean
  part: number
  parts: number
}

export namespace SwimMessage {
  let _codec: Codec<SwimMessage>

  export const codec = (): Codec<SwimMessage> => {
    if (_codec == null) {
      _codec = message<SwimMessage>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.type != null && __MessageTypeValues[obj.type] !== 0) {
          w.uint32(8)
          MessageType.codec().encode(obj.type, w)
        }

        if ((obj.seq != null && obj.seq !== 0)) {
          w.uint32(16)
          w.uint32(obj.seq)
        }

        if ((obj.target != null && obj.target !== '')) {
          w.uint32(26)
          w.string(obj.target)
        }

        if (obj.targetAddrs != null && obj.targetAddrs.length > 0) {
          for (const value of obj.targetAddrs) {
            w.uint32(34)
            w.string(value)
          }
        }

        if (obj.updates != null && obj.updates.length > 0) {
          for (const value of obj.updates) {
            w.uint32(42)
            Update.codec().encode(value, w)
          }
        }

        if (obj.states != null && obj.states.length > 0) {
          for (const value of obj.states) {
            w.uint32(50)
            Update.codec().encode(value, w)
          }
        }

        if ((obj.join != null && obj.join !== false)) {
          w.uint32(56)
          w.bool(obj.join)
        }

        if ((obj.part != null && obj.part !== 0)) {
          w.uint32(64)
          w.uint32(obj.part)
        }

        if ((obj.parts != null && obj.parts !== 0)) {
          w.uint32(72)
          w.uint32(obj.parts)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          type: MessageType.PING,
          seq: 0,
          target: '',
          targetAddrs: [],
          updates: [],
          states: [],
          join: false,
          part: 0,
          parts: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.type = MessageType.codec().decode(reader)
              break
            }
            case 2: {
              obj.seq = reader.uint32()
              break
            }
            case 3: {
              obj.target = reader.string()
              break
            }
            case 4: {
              if (opts.limits?.targetAddrs != null && obj.targetAddrs.length === opts.limits.targetAddrs) {
                throw new MaxLengthError('Decode error - repeated field "targetAddrs" had too many elements')
              }

              obj.targetAddrs.push(reader.string())
              break
            }
            case 5: {
              if (opts.limits?.updates != null && obj.updates.length === opts.limits.updates) {
                throw new MaxLengthError('Decode error - repeated field "updates" had too many elements')
              }

              obj.updates.push(Update.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.updates$
              }))
              break
            }
            case 6: {
              if (opts.limits?.states != null && obj.states.length === opts.limits.states) {
                throw new MaxLengthError('Decode error - repeated field "states" had too many elements')
              }

              obj.states.push(Update.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.states$
              }))
              break
            }
            case 7: {
              obj.join = reader.bool()
              break
            }
            case 8: {
              obj.part = reader.uint32()
              break
            }
            case 9: {
              obj.parts = reader.uint32()
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
          targetAddrs: 0,
          updates: 0,
          states: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.type`,
                value: MessageType.codec().decode(reader)
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.seq`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.target`,
                value: reader.string()
              }
              break
            }
            case 4: {
              if (opts.limits?.targetAddrs != null && obj.targetAddrs === opts.limits.targetAddrs) {
                throw new MaxLengthError('Streaming decode error - repeated field "targetAddrs" had too many elements')
              }

              yield {
                field: `${prefix}.targetAddrs[]`,
                index: obj.targetAddrs,
                value: reader.string()
              }

              obj.targetAddrs++

              break
            }
            case 5: {
              if (opts.limits?.updates != null && obj.updates === opts.limits.updates) {
                throw new MaxLengthError('Streaming decode error - repeated field "updates" had too many elements')
              }

              for (const evt of Update.codec().stream(reader, reader.uint32(), `${prefix}.updates[]`, {
                limits: opts.limits?.updates$
              })) {
                yield {
                  ...evt,
                  index: obj.updates
                }
              }

              obj.updates++

              break
            }
            case 6: {
              if (opts.limits?.states != null && obj.states === opts.limits.states) {
                throw new MaxLengthError('Streaming decode error - repeated field "states" had too many elements')
              }

              for (const evt of Update.codec().stream(reader, reader.uint32(), `${prefix}.states[]`, {
                limits: opts.limits?.states$
              })) {
                yield {
                  ...evt,
                  index: obj.states
                }
              }

              obj.states++

              break
            }
            case 7: {
              yield {
                field: `${prefix}.join`,
                value: reader.bool()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.part`,
                value: reader.uint32()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.parts`,
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

  export interface SwimMessageTypeFieldEvent {
    field: '$.type'
    value: MessageType
  }

  export interface SwimMessageSeqFieldEvent {
    field: '$.seq'
    value: number
  }

  export interface SwimMessageTargetFieldEvent {
    field: '$.target'
    value: string
  }

  export interface SwimMessageTargetAddrsFieldEvent {
    field: '$.targetAddrs[]'
    index: number
    value: string
  }

  export interface SwimMessageUpdatesKindFieldEvent {
    field: '$.updates[].kind'
    value: Kind
    index: number
  }

  export interface SwimMessageUpdatesMemberFieldEvent {
    field: '$.updates[].member'
    value: string
    index: number
  }

  export interface SwimMessageUpdatesIncarnationFieldEvent {
    field: '$.updates[].incarnation'
    value: number
    index: number
  }

  export interface SwimMessageUpdatesAddrsFieldEvent {
    field: '$.updates[].addrs[]'
    index: number
    value: string
  }

  export interface SwimMessageUpdatesMetaTagsKeyFieldEvent {
    field: '$.updates[].meta.tags[].key'
    value: string
    index: number
  }

  export interface SwimMessageUpdatesMetaTagsValueFieldEvent {
    field: '$.updates[].meta.tags[].value'
    value: string
    index: number
  }

  export interface SwimMessageUpdatesMetaCapacityFieldEvent {
    field: '$.updates[].meta.capacity'
    value: number
    index: number
  }

  export interface SwimMessageUpdatesMetaLoadFieldEvent {
    field: '$.updates[].meta.load'
    value: number
    index: number
  }

  export interface SwimMessageUpdatesAccuserFieldEvent {
    field: '$.updates[].accuser'
    value: string
    index: number
  }

  export interface SwimMessageUpdatesSignatureFieldEvent {
    field: '$.updates[].signature'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface SwimMessageStatesKindFieldEvent {
    field: '$.states[].kind'
    value: Kind
    index: number
  }

  export interface SwimMessageStatesMemberFieldEvent {
    field: '$.states[].member'
    value: string
    index: number
  }

  export interface SwimMessageStatesIncarnationFieldEvent {
    field: '$.states[].incarnation'
    value: number
    index: number
  }

  export interface SwimMessageStatesAddrsFieldEvent {
    field: '$.states[].addrs[]'
    index: number
    value: string
  }

  export interface SwimMessageStatesMetaTagsKeyFieldEvent {
    field: '$.states[].meta.tags[].key'
    value: string
    index: number
  }

  export interface SwimMessageStatesMetaTagsValueFieldEvent {
    field: '$.states[].meta.tags[].value'
    value: string
    index: number
  }

  export interface SwimMessageStatesMetaCapacityFieldEvent {
    field: '$.states[].meta.capacity'
    value: number
    index: number
  }

  export interface SwimMessageStatesMetaLoadFieldEvent {
    field: '$.states[].meta.load'
    value: number
    index: number
  }

  export interface SwimMessageStatesAccuserFieldEvent {
    field: '$.states[].accuser'
    value: string
    index: number
  }

  export interface SwimMessageStatesSignatureFieldEvent {
    field: '$.states[].signature'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface SwimMessageJoinFieldEvent {
    field: '$.join'
    value: boolean
  }

  export interface SwimMessagePartFieldEvent {
    field: '$.part'
    value: number
  }

  export interface SwimMessagePartsFieldEvent {
    field: '$.parts'
    value: number
  }

  export function encode (obj: Partial<SwimMessage>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, SwimMessage.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SwimMessage>): SwimMessage {
    return decodeMessage(buf, SwimMessage.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SwimMessage>): Generator<SwimMessageTypeFieldEvent | SwimMessageSeqFieldEvent | SwimMessageTargetFieldEvent | SwimMessageTargetAddrsFieldEvent | SwimMessageUpdatesKindFieldEvent | SwimMessageUpdatesMemberFieldEvent | SwimMessageUpdatesIncarnationFieldEvent | SwimMessageUpdatesAddrsFieldEvent | SwimMessageUpdatesMetaTagsKeyFieldEvent | SwimMessageUpdatesMetaTagsValueFieldEvent | SwimMessageUpdatesMetaCapacityFieldEvent | SwimMessageUpdatesMetaLoadFieldEvent | SwimMessageUpdatesAccuserFieldEvent | SwimMessageUpdatesSignatureFieldEvent | SwimMessageStatesKindFieldEvent | SwimMessageStatesMemberFieldEvent | SwimMessageStatesIncarnationFieldEvent | SwimMessageStatesAddrsFieldEvent | SwimMessageStatesMetaTagsKeyFieldEvent | SwimMessageStatesMetaTagsValueFieldEvent | SwimMessageStatesMetaCapacityFieldEvent | SwimMessageStatesMetaLoadFieldEvent | SwimMessageStatesAccuserFieldEvent | SwimMessageStatesSignatureFieldEvent | SwimMessageJoinFieldEvent | SwimMessagePartFieldEvent | SwimMessagePartsFieldEvent> {
    return streamMessage(buf, SwimMessage.codec(), opts)
  }
}
