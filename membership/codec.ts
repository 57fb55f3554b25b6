import { SIGNATURE_DOMAIN } from './constants.js'
import { InvalidMetaError, MetaTooLargeError } from './errors.js'
import { Kind, Meta, MessageType, SignedPayload, SwimMessage, Update as UpdateCodec, type Update } from './swim.js'
import type { MemberMeta, MemberState } from './types.js'

export const emptyMeta = (): MemberMeta => ({ tags: {}, capacity: 0, load: 0 })

export function kindToState (kind: Kind): MemberState {
  switch (kind) {
    case Kind.ALIVE: return 'alive'
    case Kind.SUSPECT: return 'suspect'
    case Kind.DEAD: return 'dead'
    case Kind.LEFT: return 'left'
  }
}

/** Precedence at equal incarnation: alive < suspect < dead < left (a leave is never overridden by a death). */
export function stateRank (state: MemberState): number {
  switch (state) {
    case 'alive': return 0
    case 'suspect': return 1
    case 'dead': return 2
    case 'left': return 3
  }
}

/** Converts to the wire form, tags sorted by key so the encoding (and so the signature) is canonical. */
export function metaToWire (meta: MemberMeta): Meta {
  const keys = Object.keys(meta.tags).sort()
  return { tags: keys.map(key => ({ key, value: meta.tags[key] })), capacity: meta.capacity, load: meta.load }
}

export function metaFromWire (meta: Meta | undefined): MemberMeta {
  if (meta === undefined) return emptyMeta()
  const tags: Record<string, string> = {}
  for (const t of meta.tags) tags[t.key] = t.value
  return { tags, capacity: meta.capacity, load: meta.load }
}

export function metaSize (meta: MemberMeta): number {
  return Meta.encode(metaToWire(meta)).byteLength
}

/** Throws a named error unless `meta` is well formed and encodes within `limit` bytes. */
export function validateMeta (meta: MemberMeta, limit: number): void {
  if (meta === null || typeof meta !== 'object' || meta.tags === null || typeof meta.tags !== 'object') {
    throw new InvalidMetaError('metadata must be an object with tags')
  }
  for (const [k, v] of Object.entries(meta.tags)) {
    if (typeof v !== 'string') throw new InvalidMetaError(`tag ${k} must be a string`)
  }
  if (!Number.isFinite(meta.capacity) || !Number.isFinite(meta.load)) {
    throw new InvalidMetaError('capacity and load must be finite numbers')
  }
  const size = metaSize(meta)
  if (size > limit) throw new MetaTooLargeError(size, limit)
}

/** The canonical bytes a member signs for its own alive or left update. */
export function signedBytes (u: Update): Uint8Array {
  return SignedPayload.encode({
    domain: SIGNATURE_DOMAIN,
    kind: u.kind,
    member: u.member,
    incarnation: u.incarnation,
    // A left carries no addresses or metadata: only the fact and the incarnation are signed.
    addrs: u.kind === Kind.ALIVE ? u.addrs : [],
    meta: u.kind === Kind.ALIVE ? u.meta : undefined
  })
}

export function encodedSize (msg: SwimMessage): number {
  const n = SwimMessage.encode(msg).byteLength
  return n + varintLength(n)
}

export function varintLength (n: number): number {
  let len = 1
  while (n >= 0x80) {
    n = Math.floor(n / 128)
    len++
  }
  return len
}

export function emptyMessage (type: SwimMessage['type']): SwimMessage {
  return { type, seq: 0, target: '', targetAddrs: [], updates: [], states: [], join: false, part: 0, parts: 0 }
}

const updateSizes = new WeakMap<Update, number>()

/** Encoded size of an update; cached per object, since updates are immutable once made and are sent many times. */
export function updateSize (u: Update): number {
  let n = updateSizes.get(u)
  if (n === undefined) {
    n = UpdateCodec.encode(u).byteLength
    updateSizes.set(u, n)
  }
  return n
}

/** Bytes a length-delimited field of `len` bytes takes (field numbers here all fit one tag byte). */
function lenField (len: number): number { return 1 + varintLength(len) + len }

/**
 * Framed size of a message (length prefix included), computed from cached update sizes rather than by
 * encoding, so the simulator can count bytes for a thousand nodes cheaply.
 */
export function messageSize (msg: SwimMessage): number {
  let n = 0
  if (msg.type !== MessageType.PING) n += 2
  if (msg.seq !== 0) n += 1 + varintLength(msg.seq)
  if (msg.target !== '') n += lenField(Buffer.byteLength(msg.target))
  for (const a of msg.targetAddrs) n += lenField(Buffer.byteLength(a))
  for (const u of msg.updates) n += lenField(updateSize(u))
  for (const u of msg.states) n += lenField(updateSize(u))
  if (msg.join) n += 2
  if (msg.part !== 0) n += 1 + varintLength(msg.part)
  if (msg.parts !== 0) n += 1 + varintLength(msg.parts)
  return n + varintLength(n)
}
