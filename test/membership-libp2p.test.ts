import test from 'ava'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { Registry } from 'prom-client'
import type { Libp2p, Stream } from '@libp2p/interface'
import { createMembership, incarnationSeed, PROTOCOL, type Libp2pMembership } from '../membership/index.js'
import { Libp2pTransport } from '../membership/libp2p-transport.js'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { hour } from '../lib/units.js'
import { emptyMessage, signedBytes } from '../membership/codec.js'
import { Membership } from '../membership/membership.js'
import { FakeSigner, FakeVerifier } from '../membership/signer.js'
import { Kind, MessageType, type SwimMessage, type Update } from '../membership/swim.js'

/** Polls until `cond` holds; real time, generous deadline, no fixed sleeps. */
async function until (cond: () => boolean | Promise<boolean>, what: string, deadlineMs = 20_000): Promise<void> {
  const end = Date.now() + deadlineMs
  while (Date.now() < end) {
    if (await cond()) return
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  throw new Error(`timed out waiting for ${what}`)
}

interface TestNode { libp2p: Libp2p, membership: Libp2pMembership, registry: Registry }

async function makeNode (seeds: string[]): Promise<TestNode> {
  const privateKey = await generateKeyPair('Ed25519')
  const libp2p = await createLibp2p({
    privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()]
  })
  const registry = new Registry()
  const membership = createMembership({ libp2p, privateKey, seeds, registry, meta: { tags: { role: 'test' }, capacity: 4 } })
  await membership.start()
  return { libp2p, membership, registry }
}

async function metric (registry: Registry, name: string): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get()
  return m?.values.reduce((s, v) => s + v.value, 0) ?? 0
}

function isClosed (s: Stream): boolean {
  return s.status !== 'open'
}

test('three libp2p nodes converge; garbage and oversized frames close only their stream', async t => {
  const nodes: TestNode[] = []
  t.teardown(async () => {
    for (const n of nodes) {
      await n.membership.stop().catch(() => {})
      try { await n.libp2p.stop() } catch {}
    }
  })
  const startedAt = Date.now()
  nodes.push(await makeNode([]))
  // A process starts from the wall clock: above any incarnation an earlier life of its peer id signed.
  t.true(nodes[0].membership.membership.incarnation >= incarnationSeed(startedAt))
  const seed = nodes[0].libp2p.getMultiaddrs()[0].toString()
  nodes.push(await makeNode([seed]))
  nodes.push(await makeNode([seed]))

  await until(() => nodes.every(n => n.membership.aliveMembers().length === 3), 'three alive everywhere')
  const view = nodes[0].membership.member(nodes[2].membership.peerId)
  t.is(view?.state, 'alive')
  t.deepEqual(view?.meta.tags, { role: 'test' })
  t.is(view?.meta.capacity, 4)

  const target = nodes[0]
  const before = target.membership.transport.stats.malformedFrames

  // A frame whose body is not protobuf.
  const garbage = await nodes[1].libp2p.dialProtocol(target.libp2p.peerId, PROTOCOL)
  garbage.send(Uint8Array.from([5, 0xff, 0xff, 0xff, 0xff, 0xff]))
  await until(() => isClosed(garbage), 'garbage stream closed')
  await until(() => target.membership.transport.stats.malformedFrames === before + 1, 'garbage counted')

  // A length prefix announcing 1 MiB: refused before the body arrives.
  const oversized = await nodes[2].libp2p.dialProtocol(target.libp2p.peerId, PROTOCOL)
  oversized.send(Uint8Array.from([0x80, 0x80, 0x40, 1, 2, 3]))
  await until(() => isClosed(oversized), 'oversized stream closed')
  await until(() => target.membership.transport.stats.malformedFrames === before + 2, 'oversized counted')
  t.is(await metric(target.registry, 'meshos_membership_malformed_frames_total'), 2)

  // Membership carries on over the other streams: a metadata change still reaches the target.
  const received = target.membership.transport.stats.messagesReceived
  nodes[1].membership.setMeta({ load: 3 })
  await until(() => target.membership.member(nodes[1].membership.peerId)?.meta.load === 3, 'metadata change seen')
  await until(() => target.membership.transport.stats.messagesReceived > received + 2, 'messages still flowing')
  t.deepEqual(nodes.map(n => n.membership.members().map(m => m.state).sort()), [0, 1, 2].map(() => ['alive', 'alive', 'alive']))
  t.true(await metric(target.registry, 'meshos_membership_messages_total') > 0)
  await until(async () => await metric(target.registry, 'meshos_membership_probes_total') > 0, 'a probe counted')

  // A graceful leave is seen as left, not dead.
  await nodes[2].membership.leave()
  await until(() => nodes.slice(0, 2).every(n => n.membership.member(nodes[2].membership.peerId)?.state === 'left'), 'leave seen')
})

test('a push-pull table in many parts arrives whole over a new stream, past the stream\'s window', async t => {
  const peers: Libp2p[] = []
  const transports: Libp2pTransport[] = []
  t.teardown(async () => {
    for (const x of transports) await x.stop()
    for (const p of peers) await p.stop()
  })
  for (let i = 0; i < 2; i++) {
    peers.push(await createLibp2p({ privateKey: await generateKeyPair('Ed25519'), addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] }))
    transports.push(new Libp2pTransport({ libp2p: peers[i] }))
  }
  const [a, b] = transports
  const got: number[] = []
  b.setReceiver((_, msg) => { got.push(msg.part) })
  await a.start()
  await b.start()
  // 12 parts of ~57 KiB: nearly three times a new stream's 256 KiB window, sent back to back as sendTable does.
  const parts = 12
  const part = (i: number): SwimMessage => {
    const states: Update[] = []
    for (let j = 0; j < 280; j++) states.push({ kind: Kind.ALIVE, member: `m-${i}-${j}`, incarnation: 1, addrs: ['/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake', '/ip4/10.0.0.1/udp/4001/quic-v1/p2p/12D3KooWFake'], accuser: '', signature: new Uint8Array(64) })
    return { ...emptyMessage(MessageType.PUSH_PULL), seq: 1, states, part: i, parts }
  }
  const to = { peerId: peers[1].peerId.toString(), addrs: peers[1].getMultiaddrs().map(x => x.toString()) }
  for (let i = 0; i < parts; i++) a.send(to, part(i))
  await until(() => got.length === parts, 'every part')
  t.deepEqual(got, Array.from({ length: parts }, (_, i) => i))
  t.is(a.stats.dropped, 0)
  // Other messages are still dropped rather than queued when the stream is busy: gossip is as fresh as it gets.
  got.length = 0
  for (let i = 0; i < parts; i++) a.send(to, part(i))
  await until(() => got.length === parts, 'every part, on the open stream')
  t.deepEqual(got, Array.from({ length: parts }, (_, i) => i))
})

/** A stream that stays open until closed, and counts what it is sent. */
class FakeStream extends EventTarget {
  status = 'open'
  writeStatus = 'writable'
  writableNeedsDrain = false
  sent = 0
  send (): boolean { this.sent++; return true }
  async close (): Promise<void> { this.end() }
  abort (): void { this.end() }
  end (): void {
    if (this.status !== 'open') return
    this.status = 'closed'
    this.writeStatus = 'closed'
    this.dispatchEvent(new Event('close'))
  }
}

/** Just enough of libp2p for the transport: dials go to `dial`, and the peer store is counted. */
function stubLibp2p (dial: (target: unknown) => Promise<FakeStream>): { libp2p: Libp2p, merges: () => number } {
  let merges = 0
  const libp2p = {
    handle: async () => {},
    unhandle: async () => {},
    dialProtocol: dial,
    peerStore: { has: async () => false, merge: async () => { merges++ } }
  }
  return { libp2p: libp2p as unknown as Libp2p, merges: () => merges }
}

async function randomPeerId (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

test('relayed probes of unknown targets and claims naming invented accusers leave nothing behind in the transport or the peer store', async t => {
  let dials = 0
  const { libp2p, merges } = stubLibp2p(async () => { dials++; throw new Error('unreachable') })
  const transport = new Libp2pTransport({ libp2p })
  await transport.start()
  const m = new Membership({ peerId: 'me', addrs: ['/ip4/127.0.0.1/tcp/1'], transport, signer: new FakeSigner('me'), verifier: new FakeVerifier(), probeInterval: hour, pushPullInterval: hour, healInterval: hour })
  m.start()
  t.teardown(async () => { m.stop(); await transport.stop() })
  const a: Update = { kind: Kind.ALIVE, member: 'a', incarnation: 1, addrs: ['/ip4/10.0.0.1/tcp/1'], accuser: '', signature: new Uint8Array(0) }
  m.onMessage('a', { ...emptyMessage(MessageType.GOSSIP), updates: [{ ...a, signature: new FakeSigner('a').sign(signedBytes(a)) as Uint8Array<ArrayBuffer> }] })
  // A live member asks us to probe 200 peers nobody knows, at addresses of its choosing.
  for (let i = 0; i < 200; i++) {
    m.onMessage('a', { ...emptyMessage(MessageType.PING_REQ), seq: i + 1, target: await randomPeerId(), targetAddrs: [`/ip4/198.51.100.7/tcp/${1000 + i}`] })
  }
  // And sends 200 suspicions of us, each naming a made-up accuser.
  for (let i = 0; i < 200; i++) {
    m.onMessage('a', { ...emptyMessage(MessageType.GOSSIP), updates: [{ kind: Kind.SUSPECT, member: 'me', incarnation: m.incarnation, addrs: [], accuser: await randomPeerId(), signature: new Uint8Array(0) }] })
  }
  await until(() => dials >= 200 && transport.outboundPeers === 0, 'every failed dial forgotten')
  t.is(dials, 200, 'the relayed probes were tried; no refutation went to an invented accuser')
  t.is(merges(), 0, 'no address a peer named went into the peer store')
  t.is(m.healthMultiplier, 0)
})

test('the transport keeps at most maxPeers outbound entries, and forgets a peer whose stream closed', async t => {
  const streams: FakeStream[] = []
  const { libp2p } = stubLibp2p(async () => {
    const s = new FakeStream()
    streams.push(s)
    return s
  })
  const transport = new Libp2pTransport({ libp2p, maxPeers: 4 })
  await transport.start()
  t.teardown(async () => { await transport.stop() })
  const ids: string[] = []
  for (let i = 0; i < 10; i++) ids.push(await randomPeerId())
  const ping = { ...emptyMessage(MessageType.PING), seq: 1 }
  for (const id of ids) {
    transport.send({ peerId: id, addrs: ['/ip4/10.0.0.9/tcp/4001'] }, ping)
    t.true(transport.outboundPeers <= 4)
  }
  await until(() => streams.length === 10, 'every dial answered')
  // The six least recently used were dropped, and any stream opened for them was closed.
  t.is(transport.outboundPeers, 4)
  await until(() => streams.filter(s => s.status === 'open').length === 4, 'evicted streams closed')
  // A send reuses an open stream; a stream that closes with nothing waiting takes its entry with it.
  const last = streams[streams.length - 1]
  transport.send({ peerId: ids[9], addrs: [] }, ping)
  t.is(last.sent, 2)
  for (const s of streams) s.end()
  t.is(transport.outboundPeers, 0)
})
