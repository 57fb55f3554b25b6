import { peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { AsyncSignerError } from './errors.js'
import type { Signer, Verifier } from './types.js'

function isPromise (v: unknown): v is Promise<unknown> {
  return typeof (v as Promise<unknown> | undefined)?.then === 'function'
}

/** Signs with this node's libp2p private key (Ed25519 signs synchronously in Node). */
export class Ed25519Signer implements Signer {
  private readonly key: PrivateKey
  constructor (key: PrivateKey) {
    if (key.type !== 'Ed25519') throw new AsyncSignerError()
    this.key = key
  }

  sign (data: Uint8Array): Uint8Array {
    const sig = this.key.sign(data)
    if (isPromise(sig)) throw new AsyncSignerError()
    return sig
  }
}

/**
 * Verifies against the public key embedded in an Ed25519 peer id. Public keys are parsed once per peer;
 * a peer id without an inline key, or a verification that would be asynchronous, fails closed.
 */
export class Ed25519Verifier implements Verifier {
  private readonly keys = new Map<string, PublicKey | null>()
  private readonly maxKeys: number

  constructor (maxKeys = 10_000) {
    this.maxKeys = maxKeys
  }

  verify (peerId: string, data: Uint8Array, sig: Uint8Array): boolean {
    const key = this.publicKey(peerId)
    if (key == null) return false
    try {
      const ok = key.verify(data, sig)
      return ok === true
    } catch {
      return false
    }
  }

  private publicKey (peerId: string): PublicKey | null {
    let key = this.keys.get(peerId)
    if (key !== undefined) return key
    try {
      key = peerIdFromString(peerId).publicKey ?? null
    } catch {
      key = null
    }
    if (this.keys.size >= this.maxKeys) this.keys.clear()
    this.keys.set(peerId, key)
    return key
  }
}

/** FNV-1a over the peer id then the data, 64 bits as two 32-bit lanes. Cheap, deterministic, not secure. */
function fnv (peerId: string, data: Uint8Array): Uint8Array {
  let h1 = 0x811c9dc5
  let h2 = 0x01000193
  const mix = (b: number): void => {
    h1 = Math.imul(h1 ^ b, 0x01000193) >>> 0
    h2 = Math.imul(h2 ^ b ^ (h1 >>> 7), 0x85ebca6b) >>> 0
  }
  for (let i = 0; i < peerId.length; i++) mix(peerId.charCodeAt(i) & 0xff)
  mix(0)
  for (const b of data) mix(b)
  const out = new Uint8Array(8)
  new DataView(out.buffer).setUint32(0, h1)
  new DataView(out.buffer).setUint32(4, h2)
  return out
}

/**
 * For simulations: "signs" as `peerId` with a keyed hash. Signing as one peer and verifying as another
 * fails, which is all the simulator and the forgery tests need, at a fraction of Ed25519's cost.
 */
export class FakeSigner implements Signer {
  constructor (private readonly peerId: string) {}
  sign (data: Uint8Array): Uint8Array { return fnv(this.peerId, data) }
}

export class FakeVerifier implements Verifier {
  verify (peerId: string, data: Uint8Array, sig: Uint8Array): boolean {
    const want = fnv(peerId, data)
    if (sig.byteLength !== want.byteLength) return false
    for (let i = 0; i < want.length; i++) if (want[i] !== sig[i]) return false
    return true
  }
}
