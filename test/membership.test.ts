import test from 'ava'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { seededRandom } from '../lib/clock.js'
import { hour, KiB, minute, second } from '../lib/units.js'
import { VirtualClock } from '../lib/virtual-clock.js'
import { BroadcastQueue } from '../membership/broadcast-queue.js'
import { emptyMessage, emptyMeta, metaToWire, signedBytes } from '../membership/codec.js'
import { InvalidIncarnationError, MetaTooLargeError } from '../membership/errors.js'
import { incarnationSeed, Membership, type MembershipInit } from '../membership/membership.js'
import { INCARNATION_EPOCH, MAX_ADDR_BYTES, MAX_ADDRS, MAX_ALIVE_BYTES, MAX_INCARNATION, VERIFY_BURST, VERIFY_RATE } from '../membership/constants.js'
import { Ed25519Signer, Ed25519Verifier, FakeSigner, FakeVerifier } from '../membership/signer.js'
import { Simulation } from '../membership/sim.js'
import { Suspicion, suspicionTimeout } from '../membership/suspicion.js'
import { Kind, MessageType, Update as UpdateCodec, type SwimMessage, type Update } from '../membership/swim.js'
import type { MemberMeta, MembershipEventName, PeerAddress, Signer } from '../membership/types.js'

// ---------------------------------------------------------------------------------------------
// A single node fed messages by hand. Probing is slowed to a crawl so that only what a test sends
// changes the table.

interface Harness {
  clock: VirtualClock
  m: Membership
  sent: Array<{ to: PeerAddress, msg: SwimMessage }>
  events: Array<{ type: MembershipEventName, peerId: string }>
}

function harness (t: { teardown: (fn: () => void) => void }, init: Partial<MembershipInit> = {}): Harness {
  const clock = new VirtualClock()
  const sent: Harness['sent'] = []
  const m = new Membership({
    peerId: 'me',
    addrs: ['/sim/me'],
    transport: { send: (to, msg) => { sent.push({ to, msg }) } },
    signer: new FakeSigner('me'),
    verifier: new FakeVerifier(),
    clock,
    random: seededRandom(7),
    probeInterval: hour,
    pushPullInterval: hour,
    healInterval: hour,
    ...init
  })
  const events: Harness['events'] = []
  for (const type of ['join', 'update', 'suspect', 'alive', 'dead', 'left'] as const) {
    m.events.on(type, e => { events.push({ type, peerId: e.member.peerId }) })
  }
  m.start()
  t.teardown(() => { m.stop() })
  return { clock, m, sent, events }
}

function alive (member: string, incarnation: number, meta: MemberMeta = emptyMeta(), signer: Signer = new FakeSigner(member)): Update {
  const u: Update = { kind: Kind.ALIVE, member, incarnation, addrs: [`/sim/${member}`], meta: metaToWire(meta), accuser: '', signature: new Uint8Array(0) }
  return { ...u, signature: signer.sign(signedBytes(u)) as Uint8Array<ArrayBuffer> }
}

function left (member: string, incarnation: number, signer: Signer = new FakeSigner(member)): Update {
  const u: Update = { kind: Kind.LEFT, member, incarnation, addrs: [], accuser: '', signature: new Uint8Array(0) }
  return { ...u, signature: signer.sign(signedBytes(u)) as Uint8Array<ArrayBuffer> }
}

function claim (kind: Kind.SUSPECT | Kind.DEAD, member: string, incarnation: number, accuser: string): Update {
  return { kind, member, incarnation, addrs: [], accuser, signature: new Uint8Array(0) }
}

function gossip (h: Harness, from: string, ...updates: Update[]): void {
  h.m.onMessage(from, { ...emptyMessage(MessageType.GOSSIP), updates })
}

// ---------------------------------------------------------------------------------------------
// Incarnation rules

test('incarnation conflicts: higher wins; at equal incarnation suspect beats alive, dead and left beat suspect', t => {
  const h = harness(t)
  const st = (): string | undefined => h.m.member('x')?.state
  gossip(h, 'a', alive('a', 0), alive('x', 1))
  t.is(st(), 'alive')
  gossip(h, 'a', alive('x', 1))
  t.is(h.events.filter(e => e.peerId === 'x').length, 1, 'a repeated alive is not news')

  gossip(h, 'a', claim(Kind.SUSPECT, 'x', 0, 'a'))
  t.is(st(), 'alive', 'a suspicion about an older incarnation is stale')
  gossip(h, 'a', claim(Kind.SUSPECT, 'x', 1, 'a'))
  t.is(st(), 'suspect', 'suspect beats alive at equal incarnation')
  gossip(h, 'a', alive('x', 1))
  t.is(st(), 'suspect', 'alive does not beat suspect at equal incarnation')
  gossip(h, 'a', alive('x', 2))
  t.is(st(), 'alive', 'a higher incarnation wins')
  t.is(h.m.member('x')?.incarnation, 2)

  gossip(h, 'a', claim(Kind.SUSPECT, 'x', 2, 'a'))
  gossip(h, 'a', claim(Kind.DEAD, 'x', 2, 'a'))
  t.is(st(), 'dead', 'dead beats suspect at equal incarnation')
  gossip(h, 'a', claim(Kind.SUSPECT, 'x', 2, 'b'))
  t.is(st(), 'dead', 'suspect does not beat dead')
  gossip(h, 'a', left('x', 2))
  t.is(st(), 'left', 'left beats dead at equal incarnation')
  gossip(h, 'a', claim(Kind.DEAD, 'x', 2, 'a'))
  t.is(st(), 'left', 'dead does not beat left')
  gossip(h, 'a', alive('x', 3))
  t.is(st(), 'alive', 'a member that left can come back with a higher incarnation')

  t.deepEqual(h.events.filter(e => e.peerId === 'x').map(e => e.type), ['join', 'suspect', 'alive', 'suspect', 'dead', 'left', 'join'])
})

test('claims about members never seen are ignored', t => {
  const h = harness(t)
  gossip(h, 'a', claim(Kind.SUSPECT, 'ghost', 5, 'a'), claim(Kind.DEAD, 'ghost', 5, 'a'))
  t.is(h.m.member('ghost'), undefined)
})

test('a node that hears itself suspected refutes with a higher incarnation, and tells the accuser directly', t => {
  const h = harness(t)
  gossip(h, 'a', alive('a', 0))
  h.sent.length = 0
  gossip(h, 'b', claim(Kind.SUSPECT, 'me', 0, 'a'))
  t.is(h.m.incarnation, 1)
  t.is(h.m.stats.refutations, 1)
  t.is(h.m.healthMultiplier, 1, 'being suspected raises the local health multiplier')
  const direct = h.sent.filter(s => s.to.peerId === 'a' && s.msg.type === MessageType.GOSSIP)
  t.is(direct.length, 1)
  t.is(direct[0].msg.updates[0].kind, Kind.ALIVE)
  t.is(direct[0].msg.updates[0].incarnation, 1)
  t.true(new FakeVerifier().verify('me', signedBytes(direct[0].msg.updates[0]), direct[0].msg.updates[0].signature))
  // A claim about an incarnation already outbid changes nothing.
  gossip(h, 'b', claim(Kind.DEAD, 'me', 0, 'a'))
  t.is(h.m.incarnation, 1)
})

test('refutation in a cluster: the suspicion clears everywhere', t => {
  const sim = new Simulation({ seed: 11 })
  t.teardown(() => { sim.stop() })
  const nodes = sim.addNodes(10)
  t.true(sim.runUntil(() => sim.converged(), 10_000))
  const [subject, accuser, listener] = [nodes[3], nodes[4], nodes[5]]
  const before = subject.membership.incarnation
  let suspects = 0
  for (const n of nodes) n.membership.events.on('suspect', e => { if (e.member.peerId === subject.id) suspects++ })
  listener.membership.onMessage(accuser.id, { ...emptyMessage(MessageType.GOSSIP), updates: [claim(Kind.SUSPECT, subject.id, before, accuser.id)] })
  t.true(suspects >= 1, 'the suspicion was taken')
  t.true(sim.runUntil(() => nodes.every(n => n.stateOf(subject.id) === 'alive' && n.membership.member(subject.id)?.incarnation === before + 1), 1_000))
  t.is(subject.membership.stats.refutations, 1)
  sim.run(10_000)
  t.true(sim.allSee(subject.id, 'alive'))
})

// ---------------------------------------------------------------------------------------------
// Suspicion

test('suspicion timeout shrinks from max to min as confirmations arrive', t => {
  const [min, max] = [2_000, 8_000]
  t.is(suspicionTimeout(0, 3, min, max), max)
  t.is(suspicionTimeout(3, 3, min, max), min)
  t.is(suspicionTimeout(9, 3, min, max), min, 'never below the floor')
  const c1 = suspicionTimeout(1, 3, min, max)
  const c2 = suspicionTimeout(2, 3, min, max)
  t.true(max > c1 && c1 > c2 && c2 > min)
  t.is(c1, Math.floor(max - (max - min) * Math.log(2) / Math.log(4)))
  t.is(suspicionTimeout(0, 0, min, max), min, 'with nobody to confirm, the floor applies')

  const clock = new VirtualClock()
  let fired = -1
  const s = new Suspicion({ clock, accuser: 'a', confirmations: 3, min, max, onTimeout: () => { fired = clock.now() } })
  t.false(s.confirm('a'), 'the first accuser is not a confirmation')
  clock.advance(1_000)
  t.true(s.confirm('b'))
  t.false(s.confirm('b'), 'each accuser counts once')
  t.is(s.deadline, c1)
  clock.advance(500)
  t.true(s.confirm('c'))
  t.true(s.confirm('d'))
  t.false(s.confirm('e'), 'beyond K, confirmations no longer count')
  clock.advance(10_000)
  t.is(fired, min, 'fires at start + min once K confirmations are in')
  s.stop()
})

test('a suspect is declared dead at max without confirmations and at min with K of them', t => {
  for (const accusers of [['a'], ['a', 'b', 'c', 'd']]) {
    const h = harness(t)
    gossip(h, 'a', ...['a', 'b', 'c', 'd', 'e', 'x'].map(id => alive(id, 0)))
    const min = h.m.suspicionMin
    for (const acc of accusers) gossip(h, acc, claim(Kind.SUSPECT, 'x', 0, acc))
    const expected = accusers.length === 1 ? min * 4 : min
    h.clock.advance(expected - 10)
    t.is(h.m.member('x')?.state, 'suspect')
    h.clock.advance(20)
    t.is(h.m.member('x')?.state, 'dead', `${accusers.length} accusers`)
  }
})

// ---------------------------------------------------------------------------------------------
// Leaving

test('a graceful leave is `left` everywhere, with a `left` event and never `dead`', async t => {
  const sim = new Simulation({ seed: 5 })
  t.teardown(() => { sim.stop() })
  const nodes = sim.addNodes(10)
  t.true(sim.runUntil(() => sim.converged(), 10_000))
  const leaver = nodes[3]
  const seen: string[] = []
  for (const n of nodes) {
    if (n === leaver) continue
    for (const type of ['left', 'dead', 'suspect'] as const) {
      n.membership.events.on(type, e => { if (e.member.peerId === leaver.id) seen.push(type) })
    }
  }
  const t0 = sim.clock.now()
  const done = sim.leave(leaver.id)
  t.true(sim.runUntil(() => sim.allSee(leaver.id, 'left', nodes.filter(n => n !== leaver)), 500, 1))
  t.true(sim.clock.now() - t0 <= 500)
  sim.run(1_000)
  await done
  t.false(leaver.membership.isRunning)
  sim.run(60_000)
  t.deepEqual(seen, Array(9).fill('left'))
  t.true(sim.allSee(leaver.id, 'left', nodes.filter(n => n !== leaver)))
})

test('a stop during a leave\'s linger ends the leave too', async t => {
  const sim = new Simulation({ seed: 6 })
  t.teardown(() => { sim.stop() })
  const nodes = sim.addNodes(3)
  t.true(sim.runUntil(() => sim.converged(), 10_000))
  const leaver = nodes[1]
  let ended = false
  const done = sim.leave(leaver.id).then(() => { ended = true })
  sim.run(10)
  t.false(ended, 'still lingering, so that the news of the leave spreads')
  // The node's own stop (a shutdown cut short) clears the linger's timer: the leave used to wait on it for ever.
  leaver.membership.stop()
  await done
  t.true(ended)
  t.false(leaver.membership.isRunning)
})

// ---------------------------------------------------------------------------------------------
// Signatures

test('forged alive, leave and metadata for another peer are ignored and counted', t => {
  const h = harness(t)
  const mallory = new FakeSigner('mallory')
  gossip(h, 'mallory', alive('x', 0, emptyMeta(), mallory))
  t.is(h.m.member('x'), undefined, 'a forged alive does not create a member')
  t.is(h.m.stats.invalidSignatures, 1)

  gossip(h, 'a', alive('x', 1, { tags: { zone: 'a' }, capacity: 1, load: 0 }))
  gossip(h, 'mallory', alive('x', 2, { tags: { zone: 'evil' }, capacity: 99, load: 0 }, mallory))
  t.deepEqual(h.m.member('x')?.meta.tags, { zone: 'a' }, 'forged metadata is ignored')
  t.is(h.m.member('x')?.incarnation, 1, 'and so is the incarnation it claims')
  gossip(h, 'mallory', left('x', 1, mallory))
  t.is(h.m.member('x')?.state, 'alive', 'a forged leave is ignored')
  const tampered = { ...alive('x', 3), addrs: ['/ip4/6.6.6.6/tcp/1'] }
  gossip(h, 'mallory', tampered)
  t.is(h.m.member('x')?.incarnation, 1, 'a valid signature over other content is ignored')
  t.is(h.m.stats.invalidSignatures, 4)
  gossip(h, 'a', left('x', 1))
  t.is(h.m.member('x')?.state, 'left', 'the genuine leave is taken')
})

test('signature checks are budgeted per sender: a flood of forgeries stops costing checks, other senders are unaffected', t => {
  let checks = 0
  const fake = new FakeVerifier()
  const h = harness(t, { verifier: { verify: (peer: string, data: Uint8Array, sig: Uint8Array) => { checks++; return fake.verify(peer, data, sig) } } })
  const mallory = new FakeSigner('mallory')
  const flood = VERIFY_BURST + 500
  for (let i = 0; i < flood; i++) gossip(h, 'mallory', alive(`x${i}`, 0, emptyMeta(), mallory))
  t.is(checks, VERIFY_BURST)
  t.is(h.m.stats.verifyBudgetExceeded, flood - VERIFY_BURST)
  t.is(h.m.stats.invalidSignatures, VERIFY_BURST)
  gossip(h, 'a', alive('y', 1))
  t.is(h.m.member('y')?.incarnation, 1, 'another sender\'s genuine update is still checked and taken')
  // The budget refills with time.
  h.clock.advance(1000)
  const before = checks
  for (let i = 0; i < 2 * VERIFY_RATE; i++) gossip(h, 'mallory', alive(`z${i}`, 0, emptyMeta(), mallory))
  t.is(checks - before, VERIFY_RATE)
})

test('verified signatures are remembered once per member, the latest, in buffers of their own', t => {
  let checks = 0
  const fake = new FakeVerifier()
  const h = harness(t, { verifier: { verify: (peer: string, data: Uint8Array, sig: Uint8Array) => { checks++; return fake.verify(peer, data, sig) } } })
  // A member whose load changes with every task re-signs its record each time: 1,000 incarnations.
  for (let i = 1; i <= 1000; i++) gossip(h, 'a', alive('x', i, { tags: {}, capacity: 4, load: i % 4 }))
  t.is(h.m.member('x')?.incarnation, 1000)
  const verified = (h.m as unknown as { verified: Map<string, { payload: Uint8Array, sig: Uint8Array }> }).verified
  t.deepEqual([...verified.keys()].filter(k => k.includes(':x')), ['ALIVE:x'], 'one entry for the member, not one per incarnation')
  for (const { payload, sig } of verified.values()) {
    // Views into a pooled 64 KiB buffer or a received message kept the whole of it alive.
    t.is(payload.buffer.byteLength, payload.byteLength)
    t.is(sig.buffer.byteLength, sig.byteLength)
  }
  t.is(checks, 1000, 'each incarnation checked once')
})

test('a member reaped here is not brought back by a push-pull from a node that still holds it', t => {
  let checks = 0
  const fake = new FakeVerifier()
  const h = harness(t, { deadReclaimTime: 1000, verifier: { verify: (peer: string, data: Uint8Array, sig: Uint8Array) => { checks++; return fake.verify(peer, data, sig) } } })
  gossip(h, 'a', alive('x', 1))
  gossip(h, 'a', left('x', 1))
  t.is(h.m.member('x')?.state, 'left')
  h.clock.advance(5000)
  t.is(h.m.member('x'), undefined, 'reaped')
  const checked = checks
  // Each node reaps on its own clock: one that has not yet still sends the member in its table.
  const states = [alive('x', 1), left('x', 1)]
  h.m.onMessage('a', { ...emptyMessage(MessageType.PUSH_PULL), states, part: 1, parts: 2 })
  h.m.onMessage('a', { ...emptyMessage(MessageType.PUSH_PULL), states: [alive('y', 1), claim(Kind.DEAD, 'y', 1, 'a')], part: 1, parts: 2 })
  t.is(h.m.member('x'), undefined, 'a left member stays forgotten')
  t.is(h.m.member('y'), undefined, 'a member never heard of and held dead is not recorded')
  t.is(checks, checked, 'and costs no signature check')
  t.deepEqual(h.events.filter(e => e.peerId === 'y'), [])
})

test('a stored update keeps only its own signature bytes, not the frame it came in', t => {
  const h = harness(t)
  const inFrame = (u: Update): Update => {
    const frame = new Uint8Array(64 * 1024)
    frame.set(u.signature, 100)
    return { ...u, signature: frame.subarray(100, 100 + u.signature.byteLength) }
  }
  gossip(h, 'a', inFrame(alive('x', 1)))
  gossip(h, 'a', inFrame(left('x', 1)))
  const rec = (h.m as unknown as { table: Map<string, { alive?: Update, last: Update }> }).table.get('x')
  t.is(rec?.last.kind, Kind.LEFT)
  for (const u of [rec?.alive, rec?.last]) t.is(u?.signature.buffer.byteLength, u?.signature.byteLength)
})

test('a suspect that comes back with new metadata is both alive and updated', t => {
  const h = harness(t)
  gossip(h, 'a', alive('x', 1))
  gossip(h, 'b', claim(Kind.SUSPECT, 'x', 1, 'b'))
  gossip(h, 'x', alive('x', 2, { ...emptyMeta(), load: 5 }))
  t.deepEqual(h.events.filter(e => e.peerId === 'x').map(e => e.type), ['join', 'suspect', 'alive', 'update'])
  gossip(h, 'b', claim(Kind.SUSPECT, 'x', 2, 'b'))
  gossip(h, 'x', alive('x', 3, { ...emptyMeta(), load: 5 }))
  t.deepEqual(h.events.filter(e => e.peerId === 'x').map(e => e.type).slice(4), ['suspect', 'alive'], 'no update when nothing changed')
})

test('a relay that has nacked still passes on an ack that comes within the requester\'s probe period', t => {
  const h = harness(t, { probeInterval: 1000, probeTimeout: 500 })
  gossip(h, 'a', alive('a', 1), alive('b', 1))
  h.sent.length = 0
  h.m.onMessage('a', { ...emptyMessage(MessageType.PING_REQ), seq: 7, target: 'b' })
  const ping = h.sent.find(s => s.msg.type === MessageType.PING && s.to.peerId === 'b')
  t.truthy(ping)
  h.clock.advance(450)
  t.truthy(h.sent.find(s => s.msg.type === MessageType.NACK && s.to.peerId === 'a' && s.msg.seq === 7), 'nacked')
  h.m.onMessage('b', { ...emptyMessage(MessageType.ACK), seq: ping!.msg.seq })
  t.truthy(h.sent.find(s => s.msg.type === MessageType.ACK && s.to.peerId === 'a' && s.msg.seq === 7), 'the late ack is passed on')
  // Past the period, the relay is gone: nothing is kept for ever.
  h.m.onMessage('a', { ...emptyMessage(MessageType.PING_REQ), seq: 8, target: 'b' })
  h.clock.advance(3000)
  t.is((h.m as unknown as { relays: Map<number, unknown> }).relays.size, 0)
})

test('an indirect probe is relayed for a known member, or for a live member\'s request; never for a stranger', t => {
  const h = harness(t)
  gossip(h, 'a', alive('a', 1), alive('b', 1))
  h.sent.length = 0
  const req = (target: string): SwimMessage => ({ ...emptyMessage(MessageType.PING_REQ), seq: 9, target, targetAddrs: ['/ip4/203.0.113.7/tcp/1'] })
  const pings = (): PeerAddress[] => h.sent.filter(s => s.msg.type === MessageType.PING).map(s => s.to)
  // A stranger asks about a peer this node has never heard of: no ping, to an address the stranger chose.
  h.m.onMessage('mallory', req('nobody'))
  t.deepEqual(pings(), [])
  t.is(h.m.stats.relaysRefused, 1)
  // A known member is pinged at its own addresses, whoever asks.
  h.m.onMessage('mallory', req('b'))
  t.deepEqual(pings().map(p => p.addrs), [['/sim/b']])
  // A live member asks about one that has just joined and is not known here yet: pinged where the member says.
  h.m.onMessage('a', req('newcomer'))
  t.deepEqual(pings().map(p => p.addrs), [['/sim/b'], ['/ip4/203.0.113.7/tcp/1']])
  t.is(h.m.stats.relaysRefused, 1)
})

test('Ed25519: updates are signed with the libp2p key and checked against the peer id', async t => {
  const [ka, kb] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519')])
  const [ida, idb] = [peerIdFromPrivateKey(ka).toString(), peerIdFromPrivateKey(kb).toString()]
  const verifier = new Ed25519Verifier()
  const data = new TextEncoder().encode('hello')
  const sig = new Ed25519Signer(ka).sign(data)
  t.true(verifier.verify(ida, data, sig))
  t.false(verifier.verify(idb, data, sig))
  t.false(verifier.verify('not-a-peer-id', data, sig))

  const h = harness(t, { verifier })
  gossip(h, idb, alive(ida, 0, emptyMeta(), new Ed25519Signer(kb)))
  t.is(h.m.member(ida), undefined)
  t.is(h.m.stats.invalidSignatures, 1)
  gossip(h, idb, alive(ida, 0, { tags: { a: '1' }, capacity: 2, load: 1 }, new Ed25519Signer(ka)))
  t.deepEqual(h.m.member(ida)?.meta, { tags: { a: '1' }, capacity: 2, load: 1 })
})

// ---------------------------------------------------------------------------------------------
// Bounded queues

test('broadcast queue: bounded, one entry per member, least transmitted and newest first, λ·log N transmits', t => {
  const q = new BroadcastQueue({ maxEntries: 10 })
  const mk = (member: string, incarnation = 0): Update => alive(member, incarnation)
  for (let i = 0; i < 100; i++) {
    q.enqueue(mk(`m${i}`), 50)
    t.true(q.size <= 10)
  }
  t.is(q.dropped, 90)
  q.enqueue(mk('m99', 1), 50)
  t.is(q.size, 10, 'a newer update about a member replaces the older one')
  const first = q.take({ maxCount: 3, maxBytes: 10_000, retransmitLimit: 4 })
  t.deepEqual(first.map(u => `${u.member}@${u.incarnation}`), ['m99@1', 'm98@0', 'm97@0'], 'newest first')
  const second = q.take({ maxCount: 3, maxBytes: 10_000, retransmitLimit: 4 })
  t.false(second.some(u => ['m99', 'm98', 'm97'].includes(u.member)), 'least transmitted first')
  t.is(q.take({ maxCount: 100, maxBytes: 120, retransmitLimit: 4 }).length, 2, 'byte budget respected')

  const counts = new Map<string, number>()
  for (let i = 0; i < 100; i++) {
    for (const u of q.take({ maxCount: 4, maxBytes: 10_000, retransmitLimit: 4 })) counts.set(u.member, (counts.get(u.member) ?? 0) + 1)
  }
  t.is(q.size, 0, 'every update retires after its transmits')
  t.true([...counts.values()].every(c => c <= 4))
})

test('in a cluster, the broadcast queue stays within its bound and no update is sent more than λ·log N times', t => {
  const maxBroadcasts = 16
  const sends = new Map<Update, Map<string, number>>()
  const sim = new Simulation({
    seed: 3,
    membership: { maxBroadcasts },
    onSend: (from, to, msg) => {
      if (msg.type === MessageType.PUSH_PULL || msg.type === MessageType.PUSH_PULL_REPLY) return
      for (const u of msg.updates) {
        // Updates about the recipient itself (buddy system, telling a suspect) come from the table, not the queue.
        if (u.member === to.peerId) continue
        const per = sends.get(u) ?? new Map<string, number>()
        per.set(from, (per.get(from) ?? 0) + 1)
        sends.set(u, per)
      }
    }
  })
  t.teardown(() => { sim.stop() })
  const nodes = sim.addNodes(50, { staggerMs: 500 })
  let maxQueue = 0
  t.true(sim.runUntil(() => {
    for (const n of nodes) maxQueue = Math.max(maxQueue, n.membership.broadcastQueueSize)
    return sim.converged(sim.nodes)
  }, 60_000, 5))
  t.true(maxQueue <= maxBroadcasts)
  const limit = Math.ceil(4 * Math.log10(50 + 1))
  let worst = 0
  for (const per of sends.values()) for (const c of per.values()) worst = Math.max(worst, c)
  t.true(worst <= limit, `worst ${worst} > ${limit}`)
})

// ---------------------------------------------------------------------------------------------
// Metadata

test('metadata is size limited with a named error, and versioned by the incarnation', t => {
  const h = harness(t)
  const big = { tags: { blob: 'x'.repeat(2 * KiB) } }
  const err = t.throws(() => h.m.setMeta(big), { instanceOf: MetaTooLargeError })
  t.is(err?.code, 'PAYLOAD_TOO_LARGE')
  t.is(h.m.incarnation, 0, 'a refused change does not bump the incarnation')
  t.throws(() => harness(t, { meta: big }), { instanceOf: MetaTooLargeError })

  const info = h.m.setMeta({ tags: { zone: 'b' }, load: 2 })
  t.is(info.incarnation, 1)
  t.deepEqual(info.meta, { tags: { zone: 'b' }, capacity: 0, load: 2 })

  gossip(h, 'a', alive('x', 0, { tags: { blob: 'x'.repeat(2 * KiB) }, capacity: 0, load: 0 }))
  t.is(h.m.member('x'), undefined, 'an oversized metadata update from the wire is refused')
  t.is(h.m.stats.invalidUpdates, 1)
})

test('a metadata change reaches every member', t => {
  const sim = new Simulation({ seed: 9 })
  t.teardown(() => { sim.stop() })
  const nodes = sim.addNodes(20)
  t.true(sim.runUntil(() => sim.converged(), 10_000))
  nodes[7].membership.setMeta({ tags: { gpu: 'yes' }, capacity: 8 })
  t.true(sim.runUntil(() => nodes.every(n => n.membership.member(nodes[7].id)?.meta.tags.gpu === 'yes'), 1_000, 1))
  t.true(nodes.every(n => n.membership.member(nodes[7].id)?.incarnation === 1))
})

test('unsigned claims cannot push a member to an incarnation it never signed', t => {
  const h = harness(t)
  gossip(h, 'a', alive('x', 1))
  gossip(h, 'mallory', claim(Kind.DEAD, 'x', 4_000_000_000, 'mallory'))
  t.is(h.m.member('x')?.state, 'alive')
  t.is(h.m.member('x')?.incarnation, 1)
  gossip(h, 'mallory', claim(Kind.SUSPECT, 'me', 4_000_000_000, 'mallory'))
  t.is(h.m.incarnation, 0, 'an absurd claim about us is not refuted into overflow')
})

test('a restarted node outbids its previous life, even at the same incarnation', t => {
  const h = harness(t)
  const old = { ...alive('me', 0), addrs: ['/sim/old-me'] }
  const signedOld = { ...old, signature: new FakeSigner('me').sign(signedBytes(old)) as Uint8Array<ArrayBuffer> }
  gossip(h, 'a', signedOld)
  t.is(h.m.incarnation, 1)
  gossip(h, 'a', alive('me', 5))
  t.is(h.m.incarnation, 6)
})

test('a forged claim about us just under the incarnation limit is ignored, and later claims are still refuted', t => {
  const h = harness(t)
  gossip(h, 'a', alive('a', 0))
  gossip(h, 'mallory', claim(Kind.SUSPECT, 'me', 2 ** 31 - 1, 'mallory'))
  gossip(h, 'mallory', left('me', 2 ** 31 - 1, new FakeSigner('mallory')))
  t.is(h.m.incarnation, 0)
  const before = h.m.stats.refutations
  gossip(h, 'a', claim(Kind.SUSPECT, 'me', h.m.incarnation, 'a'))
  gossip(h, 'a', claim(Kind.DEAD, 'me', h.m.incarnation, 'a'))
  t.is(h.m.stats.refutations - before, 2, 'a claim about the incarnation we hold is refuted each time')
  t.is(h.m.incarnation, 2)
})

test('in a cluster, a forged claim near the limit does not stop a member refuting a later suspicion', t => {
  const sim = new Simulation({ seed: 5 })
  t.teardown(() => { sim.stop() })
  const nodes = sim.addNodes(10)
  t.true(sim.runUntil(() => sim.converged(), 10_000))
  const victim = nodes[3]
  victim.membership.onMessage('mallory', { ...emptyMessage(MessageType.GOSSIP), updates: [claim(Kind.SUSPECT, victim.id, 2 ** 31 - 1, 'mallory')] })
  sim.run(5000)
  // A 1.5 s freeze gets the victim suspected; it must refute.
  sim.freeze(victim.id)
  sim.run(1500)
  sim.resume(victim.id)
  sim.run(60_000)
  t.deepEqual(nodes.filter(n => n !== victim).map(n => n.stateOf(victim.id)), Array(9).fill('alive'))
})

test('a restarted node refutes a claim about its earlier life when the claim comes with that life\'s alive', t => {
  const h = harness(t)
  gossip(h, 'a', alive('a', 0))
  // `a` holds us dead at 7 from before our restart; our ping reaches it and it replies with what it holds.
  h.m.onMessage('a', { ...emptyMessage(MessageType.ACK), seq: 1, updates: [alive('me', 7), claim(Kind.DEAD, 'me', 7, 'b')] })
  t.is(h.m.incarnation, 8)
  // The same claim alone, from anyone, proves nothing about us.
  gossip(h, 'c', claim(Kind.DEAD, 'me', 12, 'c'))
  t.is(h.m.incarnation, 8)
})

test('a reply to a member held dead, and a ping to a suspect, carry the member\'s signed alive with the claim', t => {
  const h = harness(t, { probeInterval: 1000, probeTimeout: 100 })
  gossip(h, 'a', alive('x', 3))
  gossip(h, 'b', claim(Kind.SUSPECT, 'x', 3, 'b'))
  h.sent.length = 0
  h.clock.advance(3000)
  const ping = h.sent.find(s => s.msg.type === MessageType.PING && s.to.peerId === 'x')
  t.truthy(ping)
  t.deepEqual(ping?.msg.updates.slice(0, 2).map(u => [u.kind, u.member, u.incarnation]), [[Kind.ALIVE, 'x', 3], [Kind.SUSPECT, 'x', 3]])
  gossip(h, 'b', claim(Kind.DEAD, 'x', 3, 'b'))
  h.sent.length = 0
  h.m.onMessage('x', { ...emptyMessage(MessageType.PING), seq: 9, target: 'me' })
  const ack = h.sent.find(s => s.msg.type === MessageType.ACK)
  t.deepEqual(ack?.msg.updates.slice(0, 2).map(u => [u.kind, u.member, u.incarnation]), [[Kind.ALIVE, 'x', 3], [Kind.DEAD, 'x', 3]])
})

test('a push-pull naming an unknown member dead above the incarnation it signed does not record it', t => {
  const h = harness(t)
  h.m.onMessage('mallory', { ...emptyMessage(MessageType.PUSH_PULL), states: [alive('x', 2), claim(Kind.DEAD, 'x', 4_000_000_000, 'mallory')] })
  gossip(h, 'x', alive('x', 3))
  t.is(h.m.member('x')?.state, 'alive')
  t.is(h.m.member('x')?.incarnation, 3)
  // Nor one held dead at the incarnation it signed: a member never heard of and held dead is not recorded at all.
  h.m.onMessage('b', { ...emptyMessage(MessageType.PUSH_PULL), states: [alive('y', 2), claim(Kind.DEAD, 'y', 2, 'b')] })
  t.is(h.m.member('y'), undefined)
})

test('a member whose acks come after the relays\' nacks but within the probe period is not suspected', t => {
  const far = 'sim-0005'
  let slow = false
  // 240 ms each way: a 480 ms round trip, inside the 600 ms probe period but after the relays nack.
  const sim = new Simulation({ seed: 31, delay: (from, to) => slow && (from === far || to === far) ? 240 : 1 })
  t.teardown(() => { sim.stop() })
  const nodes = sim.addNodes(10, { staggerMs: 500 })
  t.true(sim.runUntil(() => sim.converged(sim.nodes), 30_000))
  slow = true
  let suspected = 0
  for (const n of nodes) n.membership.events.on('suspect', e => { if (e.member.peerId === far) suspected++ })
  sim.run(60_000)
  t.is(suspected, 0)
  t.is(nodes.filter(n => n.id !== far).reduce((s, n) => s + n.membership.stats.probeFailures, 0), 0)
})

test('a metadata change during a leave\'s linger does not undo the leave', async t => {
  const sim = new Simulation({ seed: 9 })
  t.teardown(() => { sim.stop() })
  const nodes = sim.addNodes(10)
  t.true(sim.runUntil(() => sim.converged(), 10_000))
  const leaver = nodes[4]
  const leaving = sim.leave(leaver.id)
  sim.run(50)
  leaver.membership.setMeta({ load: 1 })
  sim.run(250)
  await leaving
  sim.run(30_000)
  t.deepEqual(nodes.filter(n => n !== leaver).map(n => n.stateOf(leaver.id)), Array(9).fill('left'))
})

test('suspicions survive a stop and start of the watcher: the suspect is still declared dead', t => {
  const sim = new Simulation({ seed: 13 })
  t.teardown(() => { sim.stop() })
  const [watcher, victim] = sim.addNodes(2)
  t.true(sim.runUntil(() => sim.converged(), 10_000))
  sim.crash(victim.id)
  t.true(sim.runUntil(() => watcher.stateOf(victim.id) === 'suspect', 20_000, 5))
  watcher.membership.stop()
  watcher.membership.start()
  t.true(sim.runUntil(() => watcher.stateOf(victim.id) === 'dead', 10 * 60_000))
})

// ---------------------------------------------------------------------------------------------
// Lives of one peer id: a restarted process must not be taken down by what an earlier life signed

test('a new life starts its incarnation from the wall clock, within the limit, and a bad one is a named error', t => {
  t.is(incarnationSeed(INCARNATION_EPOCH + 90 * second + 999), 90)
  t.is(incarnationSeed(INCARNATION_EPOCH - hour), 0, 'a clock before the epoch starts at 0')
  t.is(incarnationSeed(INCARNATION_EPOCH + 1e15), MAX_INCARNATION / 2, 'never above half the limit: room to refute')
  t.is(incarnationSeed(Number.NaN), 0)
  const h = harness(t, { incarnation: 1234 })
  t.is(h.m.incarnation, 1234)
  t.is(h.m.member('me')?.incarnation, 1234)
  for (const incarnation of [-1, 1.5, MAX_INCARNATION / 2 + 1]) {
    t.throws(() => harness(t, { incarnation }), { instanceOf: InvalidIncarnationError })
  }
})

test('a leave an earlier life signed, replayed after the peer restarted, is outbid by the new life\'s seeded incarnation', t => {
  const h = harness(t)
  // x's first life started at wall-clock w, changed its metadata three times and left; all that has been reaped.
  const w = INCARNATION_EPOCH + 400 * 24 * hour
  const oldLeft = left('x', incarnationSeed(w) + 3)
  // Its new life starts ten seconds later.
  gossip(h, 'x', alive('x', incarnationSeed(w + 10 * second)))
  t.is(h.m.member('x')?.state, 'alive')
  gossip(h, 'stale', oldLeft)
  t.is(h.m.member('x')?.state, 'alive')
  t.deepEqual(h.events.filter(e => e.peerId === 'x').map(e => e.type), ['join'])
})

test('a reply to a member held left carries the leave, and a running node refutes a leave of an earlier life at once', t => {
  const h = harness(t)
  gossip(h, 'x', alive('x', 0))
  gossip(h, 'stale', left('x', 5))
  t.is(h.m.member('x')?.state, 'left')
  h.sent.length = 0
  h.m.onMessage('x', { ...emptyMessage(MessageType.PING), seq: 4, target: 'me' })
  const ack = h.sent.find(s => s.msg.type === MessageType.ACK && s.to.peerId === 'x')
  t.truthy(ack?.msg.updates.find(u => u.kind === Kind.LEFT && u.member === 'x' && u.incarnation === 5))

  // The other side: this node restarted at 0, and a member holds it left at 5.
  const r = harness(t)
  gossip(r, 'a', alive('a', 0))
  r.m.onMessage('a', { ...emptyMessage(MessageType.ACK), seq: 1, updates: [left('me', 5)] })
  t.is(r.m.incarnation, 6)
  t.true(r.sent.some(s => s.to.peerId === 'a' && s.msg.updates.some(u => u.kind === Kind.ALIVE && u.member === 'me' && u.incarnation === 6)))
})

test('in a cluster, a restarted member that everyone is made to hold left by a replayed leave is alive again everywhere', t => {
  const sim = new Simulation({ seed: 17, membership: { deadReclaimTime: 2 * minute } })
  t.teardown(() => { sim.stop() })
  const nodes = sim.addNodes(10, { staggerMs: 2 * second })
  t.true(sim.runUntil(() => sim.converged(sim.nodes), 60 * second, 100))
  const x = nodes[4]
  for (let i = 0; i < 5; i++) x.membership.setMeta({ load: i + 1 })
  const oldLeft = left(x.id, 5)
  sim.crash(x.id)
  const others = nodes.filter(n => n !== x)
  t.true(sim.runUntil(() => others.every(n => n.stateOf(x.id) === 'dead'), 60 * second, 100))
  // Reaped everywhere, so the new life (at 0: its wall clock went back, or it re-signed faster than once a second)
  // is taken as it is.
  t.true(sim.runUntil(() => others.every(n => n.membership.member(x.id) === undefined), 30 * minute, second))
  sim.restart(x.id, { seeds: [nodes[0].addr] })
  t.true(sim.runUntil(() => sim.allSee(x.id, 'alive', others), 30 * second, 100))
  // Gossip about the join dies out; then a stale node hands the old leave to every member directly.
  sim.run(60 * second)
  for (const n of others) n.membership.onMessage('stale', { ...emptyMessage(MessageType.GOSSIP), updates: [oldLeft] })
  t.true(others.every(n => n.stateOf(x.id) === 'left'))
  // The first member x talks to tells it, and its refutation outbids the leave everywhere within a few periods.
  t.true(sim.runUntil(() => others.every(n => n.stateOf(x.id) === 'alive' && (n.membership.member(x.id)?.incarnation ?? 0) > 5), 10 * second, 10))
})

// ---------------------------------------------------------------------------------------------
// Accusers are unauthenticated: only live members this node knows count, and only they are sent to

test('confirmations count only from live members this node knows, other than the suspect', t => {
  const h = harness(t)
  gossip(h, 'a', ...['a', 'b', 'c', 'd', 'x'].map(id => alive(id, 0)))
  gossip(h, 'd', alive('d', 1), claim(Kind.DEAD, 'd', 1, 'a'))
  const min = h.m.suspicionMin
  // One message: a suspicion and K "confirmations" by accusers nobody knows, by the suspect itself, and by a member
  // held dead.
  gossip(h, 'a', claim(Kind.SUSPECT, 'x', 0, 'a'), ...['ghost-1', 'ghost-2', 'ghost-3', 'x', 'd', ''].map(acc => claim(Kind.SUSPECT, 'x', 0, acc)))
  h.clock.advance(4 * min - 10)
  t.is(h.m.member('x')?.state, 'suspect', 'no confirmation counted: the timeout is still the longest')
  h.clock.advance(20)
  t.is(h.m.member('x')?.state, 'dead')

  // Known live accusers still shorten it.
  gossip(h, 'a', alive('y', 0))
  gossip(h, 'a', claim(Kind.SUSPECT, 'y', 0, 'a'), ...['b', 'c', 'me'].map(acc => claim(Kind.SUSPECT, 'y', 0, acc)))
  h.clock.advance(min + 10)
  t.is(h.m.member('y')?.state, 'dead')
})

test('claims about us naming invented accusers are refuted to the sender only, and do not peg the health multiplier', t => {
  const h = harness(t)
  gossip(h, 'a', alive('a', 0))
  h.sent.length = 0
  for (let i = 0; i < 50; i++) gossip(h, 'a', claim(Kind.SUSPECT, 'me', h.m.incarnation, `forged-${i}`))
  t.is(h.m.stats.refutations, 50, 'each claim about the incarnation we hold is still refuted: it may be true')
  t.is(h.m.healthMultiplier, 0, 'an accuser we do not know says nothing about our health')
  t.deepEqual([...new Set(h.sent.map(s => s.to.peerId))], ['a'], 'nothing is sent to a made-up accuser')
  // A known accuser raises it, once a protocol period however many claims come.
  for (let i = 0; i < 50; i++) gossip(h, 'mallory', claim(Kind.SUSPECT, 'me', h.m.incarnation, 'a'))
  t.is(h.m.healthMultiplier, 1)
})

// ---------------------------------------------------------------------------------------------
// Size of a member's alive: bounded where it is signed and where it is received, and always gossiped

test('an update larger than the byte budget is never passed over for good: it goes alone', t => {
  const q = new BroadcastQueue()
  q.enqueue(alive('a', 0), 100)
  q.enqueue(alive('big', 0), 10_000)
  q.enqueue(alive('c', 0), 100)
  const takes: string[][] = []
  for (let i = 0; i < 4 && q.has('big'); i++) takes.push(q.take({ maxCount: 64, maxBytes: 8 * KiB, retransmitLimit: 4 }).map(u => u.member))
  t.false(q.has('big') && q.transmitsOf('big') === 0, 'taken at least once')
  t.true(takes.some(m => m.length === 1 && m[0] === 'big'), takes.map(m => m.join(',')).join(' | '))
  t.false(takes.some(m => m.length > 1 && m.includes('big')), 'never with others')
})

test('this node signs at most MAX_ADDRS addresses of at most MAX_ADDR_BYTES, within MAX_ALIVE_BYTES; others\' beyond that are refused', t => {
  const long = `/dns4/${'x'.repeat(MAX_ADDR_BYTES)}/tcp/1`
  const many = Array.from({ length: 100 }, (_, i) => `/ip6/fd00:dead:beef:${i.toString(16)}::1234/tcp/40001/p2p/12D3KooWPaddingPaddingPaddingPaddingPaddingPadding`)
  const h = harness(t, { addrs: [long, ...many] })
  const self = h.m.member('me')
  t.is(self?.addrs.length, MAX_ADDRS)
  t.false(self?.addrs.includes(long))
  t.is(h.m.stats.addrsDropped, 101 - MAX_ADDRS)
  // Addresses near the length limit: fewer fit in MAX_ALIVE_BYTES, and the last ones go.
  const wide = Array.from({ length: 40 }, (_, i) => `/dns4/${String(i).padStart(3, '0')}${'w'.repeat(230)}/tcp/1`)
  const w = harness(t, { addrs: wide, meta: { tags: { big: 'y'.repeat(900) } } })
  const kept = w.m.member('me')?.addrs ?? []
  t.true(kept.length > 0 && kept.length < MAX_ADDRS)
  t.deepEqual(kept, wide.slice(0, kept.length))
  t.is(w.m.stats.addrsDropped, wide.length - kept.length)
  // What it sends (here, in a push-pull reply) is within the bound, and verifies.
  w.m.onMessage('a', { ...emptyMessage(MessageType.PUSH_PULL), seq: 1, states: [alive('a', 0)] })
  const mine = w.sent.flatMap(s => s.msg.states).find(u => u.member === 'me' && u.kind === Kind.ALIVE)
  t.deepEqual(mine?.addrs, kept)
  if (mine !== undefined) {
    t.true(UpdateCodec.encode(mine).byteLength <= MAX_ALIVE_BYTES)
    t.true(new FakeVerifier().verify('me', signedBytes(mine), mine.signature))
  }

  const withAddrs = (member: string, addrs: string[]): Update => {
    const u: Update = { kind: Kind.ALIVE, member, incarnation: 1, addrs, meta: metaToWire(emptyMeta()), accuser: '', signature: new Uint8Array(0) }
    return { ...u, signature: new FakeSigner(member).sign(signedBytes(u)) as Uint8Array<ArrayBuffer> }
  }
  gossip(h, 'a', withAddrs('x', many.slice(0, MAX_ADDRS + 1)), withAddrs('y', [long]), withAddrs('z', many.slice(0, MAX_ADDRS)))
  t.is(h.m.member('x'), undefined)
  t.is(h.m.member('y'), undefined)
  t.is(h.m.member('z')?.state, 'alive')
  t.is(h.m.stats.oversizedUpdates, 2)
})

test('in a cluster, a member with a hundred addresses has its changes and refutations gossiped: no false death after a freeze', t => {
  const sim = new Simulation({ seed: 21 })
  t.teardown(() => { sim.stop() })
  const nodes = sim.addNodes(20, { staggerMs: 2 * second })
  t.true(sim.runUntil(() => sim.converged(sim.nodes), 60 * second, 100))
  const big = nodes[3]
  const extra = Array.from({ length: 120 }, (_, i) => `/ip6/fd00:dead:beef:${i.toString(16)}::1234/tcp/40001/p2p/${big.id}-padding-padding-padding-padding-padding`)
  ;(big.membership as unknown as { addrsOf: () => string[] }).addrsOf = () => [big.addr, ...extra]
  big.membership.setMeta({ load: 7 })
  const others = nodes.filter(n => n !== big)
  t.true(sim.runUntil(() => others.every(n => n.membership.member(big.id)?.meta.load === 7), 2 * second, 10), 'the change spreads by gossip, not only by push-pull')
  let deaths = 0
  for (const n of others) n.membership.events.on('dead', e => { if (e.member.peerId === big.id) deaths++ })
  sim.freeze(big.id)
  sim.run(1500)
  sim.resume(big.id)
  sim.run(30 * second)
  t.is(deaths, 0)
  t.true(sim.allSee(big.id, 'alive', others))
})
