import { noise } from '@libp2p/noise'
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

// Thrown, never constructed per call: capturing a stack trace for every message cost more than the decryption.
const needMoreBytes = new RangeError('Could not decode int16BE')

/**
 * js-noise reads its 2-byte length prefix with a decoder that throws a new RangeError whenever fewer than two bytes
 * are buffered, and its frame loop asks once more after every message, so each message received paid for a thrown
 * error with a stack trace (about 7% of a small RPC's CPU). Same contract, a preallocated error.
 */
function uint16BEDecode (data: Uint8Array | Uint8ArrayList): number {
  if (data.length < 2) throw needMoreBytes
  if (data instanceof Uint8Array) return (data[0] << 8) + data[1]
  return data.getUint16(0)
}

/** `noise()` whose secured connections write each encrypted message to the transport in one piece. */
export function coalescingNoise (init?: NoiseInit): (components: any) => ConnectionEncrypter {
  const factory = noise(init)
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
