import { createSecretKey, type KeyObject } from 'node:crypto'
import { noise, type ICryptoInterface } from '@libp2p/noise'
import { defaultCrypto, nodeCrypto } from '@libp2p/noise/crypto'
import type { ConnectionEncrypter, SecuredConnection } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

type NoiseInit = Parameters<typeof noise>[0]

interface LengthDecoder {
  lengthDecoder: (data: Uint8Array | Uint8ArrayList) => number
}

interface EncryptedStream {
  decoder?: LengthDecoder
  encrypt: (data: Uint8Array | Uint8ArrayList) => Uint8ArrayList
  stream: { send: (data: Uint8Array | Uint8ArrayList) => boolean }
  sendData: (data: Uint8ArrayList) => { sentBytes: number, canSendMore: boolean }
  __meshosCoalesced?: boolean
}

/**
 * js-noise hands the transport each message as a list of [2-byte length, ciphertext], and the TCP transport writes
 * every part with its own `socket.write`. With TCP_NODELAY each part leaves as its own segment, so the receiver wakes
 * once for two bytes it cannot use and again for the ciphertext: on loopback that doubled the transport's share of a
 * small RPC round trip. Handing the transport one buffer costs one copy of the ciphertext and saves a syscall and a
 * wakeup per message. (Under pnet this is already the case: pnet concatenates before it encrypts.)
 */
function coalesce (proto: EncryptedStream): void {
  if (proto.__meshosCoalesced === true) return
  proto.__meshosCoalesced = true
  proto.sendData = function (this: EncryptedStream, data: Uint8ArrayList) {
    const encrypted = this.encrypt(data)
    return { sentBytes: data.byteLength, canSendMore: this.stream.send(encrypted.subarray()) }
  }
}

/**
 * js-noise reads its 2-byte length prefix with a decoder that throws a RangeError whenever fewer than two bytes are
 * buffered, and its frame loop asks once more after every message, so each message received paid for a throw. A new
 * error's stack trace cost about 7% of a small RPC's CPU; a preallocated one still cost 8% of a server's inbound
 * path, in V8 computing where it was thrown. So no throw: with fewer than two bytes this answers a length of 0, and
 * since the loop's frame is then the 2-byte prefix alone (its `encodingLength` is 2), which the buffer does not yet
 * hold, the loop waits for more bytes, as it does after the RangeError. Only that loop calls this decoder.
 */
export function uint16BEDecode (data: Uint8Array | Uint8ArrayList): number {
  if (data.length < 2) return 0
  if (data instanceof Uint8Array) return (data[0] << 8) + data[1]
  return data.getUint16(0)
}

/**
 * Below this js-noise's WebAssembly ChaCha20-Poly1305 is used, which takes the key as bytes. js-noise switches at 1,200
 * bytes, measured against node:crypto making a KeyObject per message; with the KeyObject cached below, node:crypto
 * is the faster from about 512 bytes (here: 640 bytes 5.1 against 5.9 µs to encrypt, 4.3 against 5.5 µs to decrypt;
 * 1,100 bytes, a KV write's record, 5.4 against 9.1 and 3.9 against 8.4 µs).
 */
const NODE_CIPHER_FROM = 512

interface CachedKey { bytes: Uint8Array, key: KeyObject }
const keyObjects = new WeakMap<Uint8Array, CachedKey>()

/**
 * js-noise gives node:crypto the session key as bytes, and node:crypto makes a KeyObject of them for every message:
 * 18.7 µs to encrypt 1.3 KiB against 6.9 µs with a KeyObject made once (measured here), about 4 % of a node's CPU
 * under a KV write load. The cache is keyed by the key buffer, and checked against a copy of its bytes, so a key that
 * changed in place is never used stale.
 */
function keyObjectOf (k: Uint8Array): KeyObject {
  const cached = keyObjects.get(k)
  if (cached != null && sameBytes(cached.bytes, k)) return cached.key
  const entry = { bytes: Uint8Array.from(k), key: createSecretKey(k) }
  keyObjects.set(k, entry)
  return entry.key
}

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

const keyCachingCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt (plaintext, nonce, ad, k) {
    if (plaintext.byteLength < NODE_CIPHER_FROM) return defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
    return nodeCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, keyObjectOf(k) as unknown as Uint8Array)
  },
  chaCha20Poly1305Decrypt (ciphertext, nonce, ad, k, dst) {
    if (ciphertext.byteLength < NODE_CIPHER_FROM) return defaultCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
    return nodeCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, keyObjectOf(k) as unknown as Uint8Array, dst)
  }
}

/**
 * `noise()` whose secured connections write each encrypted message to the transport in one piece, and cipher with a
 * KeyObject made once per session key.
 */
export function coalescingNoise (init?: NoiseInit): (components: any) => ConnectionEncrypter {
  const factory = noise({ crypto: keyCachingCrypto, ...init })
  return (components: any) => {
    const encrypter = factory(components)
    const patch = <T extends SecuredConnection<any>>(secured: T): T => {
      const proto = Object.getPrototypeOf(secured.connection) as EncryptedStream
      if (typeof proto.encrypt === 'function' && typeof proto.sendData === 'function') coalesce(proto)
      const decoder = (secured.connection as unknown as EncryptedStream).decoder
      if (decoder != null && typeof decoder.lengthDecoder === 'function') decoder.lengthDecoder = uint16BEDecode
      return secured
    }
    const inbound = encrypter.secureInbound.bind(encrypter)
    const outbound = encrypter.secureOutbound.bind(encrypter)
    encrypter.secureInbound = (async (...args: Parameters<typeof inbound>) => patch(await inbound(...args))) as typeof encrypter.secureInbound
    encrypter.secureOutbound = (async (...args: Parameters<typeof outbound>) => patch(await outbound(...args))) as typeof encrypter.secureOutbound
    return encrypter
  }
}
