import test, { type ExecutionContext } from 'ava'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { sha512 } from 'multiformats/hashes/sha2'
import { MAX_NOTICE_BYTES, NOTICE_TOPIC, RESOURCE_KEY_PREFIX } from '../dht/constants.js'
import type { MeshDht } from '../dht/dht.js'
import type { PeerId } from '@libp2p/interface'
import { resourceKey } from '../dht/keys.js'
import { resolveConfig } from '../node/config.js'
import { createMeshLibp2p } from '../node/libp2p.js'
import { MeshNode } from '../node/node.js'
import { dialUntilConnected, tempDir, waitFor } from './util.js'

// Hostile notices are the point of these tests: they come from real peers over TCP through gossipsub, never from a
// stubbed handler. Each test builds its own small mesh; serial, because on a loaded 2-core host several meshes starting
// at once would only stretch every deadline.

type Outcome = 'applied' | 'stale' | 'too_old' | 'malformed' | 'not_member'
const OUTCOMES: Outcome[] = ['applied', 'stale', 'too_old', 'malformed', 'not_member']

/** Generous: a test that waits on gossip must still pass with the machine busy elsewhere. */
const WAIT = 60_000
const FIND = { timeout: 30_000 }

const encode = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v))

async function startNode (t: ExecutionContext, bootstrap: string[] = []): Promise<MeshNode> {
  const dataDir = await tempDir(t, 'meshos-dht-notices-')
  const config = resolveConfig({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', bootstrap, logLevel: 'silent' })
  const node = new MeshNode({ config, privateKey: await generateKeyPair('Ed25519') })
  // Registered before start, so that a start that fails half way still releases its ports; teardowns run last-first,
  // so the node stops before its data dir is removed.
  t.teardown(async () => { await node.stop({ leave: false }) })
  await node.start()
  return node
}

const peerIdOf = (node: MeshNode): string => node.libp2p.peerId.toString()

function dhtOf (node: MeshNode): MeshDht {
  const sub = node.subsystems.find(s => s.name === 'dht')
  if (sub == null) throw new Error('the node runs no dht subsystem')
  return sub.service as MeshDht
}

/**
 * Entries in the DHT's notice table. No metric exposes its size, and what a hostile notice must not do is take a slot
 * there: the hostile-input review measured 138 MiB held by 3,000 notices before the rules.
 */
const noticeSlots = (node: MeshNode): number => (dhtOf(node) as unknown as { notices: Map<string, unknown> }).notices.size

async function noticeCounts (node: MeshNode): Promise<Record<Outcome, number>> {
  const metric = node.registry.getSingleMetric('meshos_dht_notices_total')
  if (metric == null) throw new Error('meshos_dht_notices_total is not registered')
  const values = (await metric.get()).values
  const out = { applied: 0, stale: 0, too_old: 0, malformed: 0, not_member: 0 }
  for (const o of OUTCOMES) out[o] = values.find(v => v.labels.outcome === o)?.value ?? 0
  return out
}

/**
 * Waits until the victim has counted as many notices as were sent (each lands in exactly one outcome), then checks
 * that they landed where `delta` says: a notice that went to the wrong outcome fails at once, not at the deadline.
 */
async function expectCounts (t: ExecutionContext, node: MeshNode, before: Record<Outcome, number>, delta: Partial<Record<Outcome, number>>): Promise<void> {
  const want = { ...before }
  for (const o of OUTCOMES) want[o] += delta[o] ?? 0
  const total = (c: Record<Outcome, number>): number => OUTCOMES.reduce((s, o) => s + c[o], 0)
  const got = await waitFor(`the victim to count ${total(want) - total(before)} notices`, async () => {
    const c = await noticeCounts(node)
    return total(c) >= total(want) ? c : undefined
  }, WAIT)
  // The steps after this one would only wait out their deadlines on a victim in the wrong state.
  if (!t.deepEqual(got, want, 'notices by outcome')) throw new Error('the notices were not counted as expected')
}

/**
 * The providers of `key` in the node's own kad store, through kad-dht's public lookup: it yields its local records
 * first, as a PROVIDER event from itself, before asking anyone. findProviders alone cannot show a record was dropped
 * from the store, since a remote member's copy would still be found.
 */
async function storedProviders (node: MeshNode, key: CID): Promise<string[]> {
  const self = node.libp2p.peerId
  for await (const e of dhtOf(node).kad.findProviders(key, { signal: AbortSignal.timeout(30_000) })) {
    if (e.name === 'PEER_RESPONSE' && e.from.equals(self)) continue
    if (e.name === 'PROVIDER' && e.from.equals(self)) return e.providers.map(p => p.id.toString()).sort()
    return []
  }
  return []
}

/** The providers `from` names when `node` asks it, in kad-dht's own GET_PROVIDERS walk (no membership filter). */
async function namedBy (node: MeshNode, from: MeshNode, key: CID): Promise<string[]> {
  const out = new Set<string>()
  for await (const e of dhtOf(node).kad.findProviders(key, { signal: AbortSignal.timeout(30_000) })) {
    if (e.name === 'PEER_RESPONSE' && e.from.equals(from.libp2p.peerId)) for (const p of e.providers) out.add(p.id.toString())
  }
  return [...out].sort()
}

async function findIds (node: MeshNode, key: CID): Promise<string[]> {
  const r = await dhtOf(node).findProviders(key, FIND)
  if (r.timedOut) throw new Error(`lookup of ${key.toString()} timed out`)
  return r.providers.map(p => p.peerId).sort()
}

/** A victim and a second MeshNode that joined it: a member in the victim's membership, subscribed to its notices. */
async function meshOfTwo (t: ExecutionContext): Promise<{ victim: MeshNode, member: MeshNode }> {
  const victim = await startNode(t)
  const member = await startNode(t, [victim.addrs()[0]])
  await waitFor('the two nodes to see each other alive', () =>
    victim.membership.member(peerIdOf(member))?.state === 'alive' && member.membership.member(peerIdOf(victim))?.state === 'alive', WAIT)
  // gossipsub learns subscriptions by message: until the member knows the victim takes the topic, a publish skips it.
  await waitFor('the member to see the victim subscribed to the notice topic', () =>
    member.libp2p.services.pubsub.getSubscribers(NOTICE_TOPIC).some(p => p.equals(victim.libp2p.peerId)), WAIT)
  return { victim, member }
}

/**
 * A bare libp2p node connected to the victim alone: it speaks gossipsub but never joined, so the victim's membership
 * does not know it. Returned once it knows the victim takes the notice topic.
 */
async function strangerOf (t: ExecutionContext, victim: MeshNode): Promise<Awaited<ReturnType<typeof createMeshLibp2p>>> {
  const stranger = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], announce: [] })
  t.teardown(async () => { await stranger.stop() })
  await stranger.start()
  await dialUntilConnected(stranger, multiaddr(victim.addrs()[0]))
  await waitFor('the stranger to see the victim subscribed to the notice topic', () =>
    stranger.services.pubsub.getSubscribers(NOTICE_TOPIC).some(p => p.equals(victim.libp2p.peerId)), WAIT)
  return stranger
}

/** The member advertises `name`, and the victim holds its record and finds it. */
async function memberProvides (victim: MeshNode, member: MeshNode, name: string): Promise<CID> {
  // Whether the provide returned confirmed depends on the host's load; the record reaching the victim does not.
  await dhtOf(member).advertise(name)
  const key = await resourceKey(name)
  await waitFor(`the victim to hold and find the member's record of ${name}`, async () =>
    (await storedProviders(victim, key)).includes(peerIdOf(member)) && (await findIds(victim, key)).includes(peerIdOf(member)), WAIT, 200)
  return key
}

/** After the hostile notices the victim still does its job: it provides, and the member finds it. */
async function assertHealthy (t: ExecutionContext, victim: MeshNode, member: MeshNode, name: string): Promise<void> {
  await dhtOf(victim).advertise(name)
  const key = await resourceKey(name)
  const found = await waitFor(`the member to find the victim as provider of ${name}`, async () => {
    const ids = await findIds(member, key)
    return ids.includes(peerIdOf(victim)) ? ids : undefined
  }, WAIT, 200)
  t.deepEqual(found, [peerIdOf(victim)])
}

test.serial('oversized and malformed notices from a member are counted malformed, kept nowhere, and change no lookup', async t => {
  const { victim, member } = await meshOfTwo(t)
  const key = await memberProvides(victim, member, 'gpu')
  const memberId = peerIdOf(member)
  const seq = Date.now()
  const withdraw = { v: 1, op: 'withdraw', key: key.toString(), seq }
  const text = JSON.stringify(withdraw)
  // Each is broken in exactly one way, most as the member's withdraw of the key it provides. The oversized one is that
  // withdraw, valid, padded with JSON whitespace: only the size limit stands between it and the record.
  const oversized = text.slice(0, -1) + ' '.repeat(MAX_NOTICE_BYTES + 1 - text.length) + '}'
  const nameBytes = new TextEncoder().encode(RESOURCE_KEY_PREFIX + 'gpu')
  const badKeys = {
    // Same digest as the real key, as CIDv0: kad-dht stores records by multihash, so accepting it would drop the record.
    cidV0: CID.createV0(Digest.create(0x12, key.multihash.digest)).toString(),
    sha512: CID.createV1(raw.code, await sha512.digest(nameBytes)).toString(),
    truncatedSha256: CID.createV1(raw.code, Digest.create(0x12, key.multihash.digest.slice(0, 20))).toString(),
    // The review's key shape (an identity "hash" carrying its bytes), sized to pass the byte limit.
    identity: CID.createV1(raw.code, Digest.create(0x00, new Uint8Array(600).fill(7))).toString(),
    notACid: 'gpu'
  }
  const notices: Uint8Array[] = [
    encode(oversized),
    ...Object.values(badKeys).map(k => encode({ ...withdraw, key: k })),
    encode('not json {'),
    encode('null'),
    encode({ ...withdraw, v: 2 }),
    encode({ ...withdraw, op: 'delete' }),
    encode({ ...withdraw, seq: String(seq) }),
    encode({ v: 1, op: 'withdraw', seq }),
    // A sequence number must be a positive safe integer: 1e999 parses to Infinity, which would lock the slot for good.
    encode(text.replace(`"seq":${seq}`, '"seq":1e999')),
    encode({ ...withdraw, seq: -seq }),
    encode({ ...withdraw, seq: seq + 0.5 })
  ]
  t.is(notices[0].byteLength, MAX_NOTICE_BYTES + 1)
  t.true(notices.slice(1).every(n => n.byteLength <= MAX_NOTICE_BYTES), 'only the first is rejected for its size')
  const before = await noticeCounts(victim)
  const slots = noticeSlots(victim)
  // The HTTP API refuses to publish on the mesh's own topics, so the member's own gossipsub sends them: signed by the
  // member, exactly as its DHT's notices are.
  for (const n of notices) await member.libp2p.services.pubsub.publish(NOTICE_TOPIC, n)
  await expectCounts(t, victim, before, { malformed: notices.length })
  t.is(noticeSlots(victim), slots, 'no malformed notice took a slot')
  t.deepEqual(await findIds(victim, key), [memberId])
  t.deepEqual(await storedProviders(victim, key), [memberId], 'the record is still in the victim\'s own store')
  await assertHealthy(t, victim, member, 'after-malformed')
})

test.serial('a notice from a peer that never joined is counted not_member and kept nowhere', async t => {
  const { victim, member } = await meshOfTwo(t)
  const key = await memberProvides(victim, member, 'db')
  const stranger = await strangerOf(t, victim)
  const strangerId = stranger.peerId.toString()
  t.is(victim.membership.member(strangerId), undefined)
  const before = await noticeCounts(victim)
  const slots = noticeSlots(victim)
  // Well-formed in every way, so only the membership rule keeps them out; one per key it could fill a slot for.
  const valid = [
    { v: 1, op: 'withdraw', key: key.toString(), seq: Date.now() },
    { v: 1, op: 'advertise', key: (await resourceKey('anything')).toString(), seq: Date.now() }
  ]
  for (const n of valid) await stranger.services.pubsub.publish(NOTICE_TOPIC, encode(n))
  await expectCounts(t, victim, before, { not_member: valid.length })
  t.is(noticeSlots(victim), slots, 'no slot for a stranger')
  t.is(victim.membership.member(strangerId), undefined, 'publishing did not make it a member')
  t.deepEqual(await findIds(victim, key), [peerIdOf(member)])
  t.deepEqual(await storedProviders(victim, key), [peerIdOf(member)])
  await assertHealthy(t, victim, member, 'after-stranger')
})

test.serial('a member\'s withdraw is applied and drops its record; a replayed or older notice is stale', async t => {
  const { victim, member } = await meshOfTwo(t)
  const key = await memberProvides(victim, member, 'cache')
  const memberId = peerIdOf(member)
  const publish = async (op: 'advertise' | 'withdraw', seq: number): Promise<Uint8Array> => {
    const data = encode({ v: 1, op, key: key.toString(), seq })
    await member.libp2p.services.pubsub.publish(NOTICE_TOPIC, data)
    return data
  }
  // Published by hand rather than with member.withdraw(), which would also drop the member's own record. That copy
  // stands for the stale ones that nodes which missed the notice still hold: once it answers lookups, only the
  // victim's tombstone keeps the member out of its results, so a stale advertise that wrongly cleared it would show.
  // A node answers with its own record only once libp2p has put its listen addresses in its peer store (debounced 1 s
  // after start).
  await waitFor('the member to answer lookups with its own record', async () => (await namedBy(victim, member, key)).includes(memberId), WAIT, 200)
  const seq = Date.now()
  let before = await noticeCounts(victim)
  const slots = noticeSlots(victim)
  const withdrawal = await publish('withdraw', seq)
  await expectCounts(t, victim, before, { applied: 1 })
  t.is(noticeSlots(victim), slots + 1)
  await waitFor('the victim to drop the member\'s record from its store', async () => (await storedProviders(victim, key)).length === 0, WAIT, 200)
  t.deepEqual(await findIds(victim, key), [], 'the withdrawn member is no longer found')

  // A replay of the very same notice (a new gossipsub message, so gossip does not deduplicate it) and an advertise
  // older than the withdrawal: neither may bring the member back.
  before = await noticeCounts(victim)
  await member.libp2p.services.pubsub.publish(NOTICE_TOPIC, withdrawal)
  await publish('advertise', seq - 1)
  await expectCounts(t, victim, before, { stale: 2 })
  t.deepEqual(await findIds(victim, key), [], 'a stale advertise does not clear the withdrawal')
  t.is(noticeSlots(victim), slots + 1)

  // A notice older than a tombstone lives is not news, however new its slot: a captured notice cannot be replayed
  // once it is that old.
  before = await noticeCounts(victim)
  await publish('withdraw', Date.now() - 3 * 60 * 60 * 1000)
  await expectCounts(t, victim, before, { too_old: 1 })
  t.is(noticeSlots(victim), slots + 1)

  // A newer advertise does clear it: the member's own copy of the record is found again.
  before = await noticeCounts(victim)
  await publish('advertise', seq + 1)
  await expectCounts(t, victim, before, { applied: 1 })
  t.deepEqual(await findIds(victim, key), [memberId], 'found again through its own copy')
  await assertHealthy(t, victim, member, 'after-withdraw')
})

test.serial('a malformed notice goes no further than the node that refuses it: gossipsub does not relay it', async t => {
  const { victim, member } = await meshOfTwo(t)
  // The stranger is connected to the victim alone (it runs no DHT and is no member, so nothing leads the member to it):
  // whatever of its the member receives came through the victim.
  const stranger = await strangerOf(t, victim)
  // gossipsub relays only to the peers in its mesh for the topic, which it forms at a heartbeat: until the member is
  // in the victim's, nothing would be relayed to it whatever the verdict, and the test would show nothing.
  await waitFor('the member to be in the victim\'s gossipsub mesh for the notice topic', () =>
    (victim.libp2p.services.pubsub as unknown as { getMeshPeers: (topic: string) => string[] }).getMeshPeers(NOTICE_TOPIC).includes(peerIdOf(member)), WAIT)
  const victimBefore = await noticeCounts(victim)
  const memberBefore = await noticeCounts(member)
  const key = (await resourceKey('relayed')).toString()
  const junk = [encode('not json {'), encode({ v: 1, op: 'withdraw', key, seq: -1 })]
  for (const n of junk) await stranger.services.pubsub.publish(NOTICE_TOPIC, n)
  await expectCounts(t, victim, victimBefore, { malformed: 2 })
  // Then a notice of the victim's own, on the same stream to the member as any relay of the junk would have taken:
  // once the member has it, the junk would have arrived before it.
  await victim.libp2p.services.pubsub.publish(NOTICE_TOPIC, encode({ v: 1, op: 'advertise', key, seq: Date.now() }))
  await expectCounts(t, member, memberBefore, { applied: 1 })
  t.is(member.libp2p.getConnections(stranger.peerId).length, 0, 'the member never connected to the stranger')
})

test.serial('a DHT stopped and started again advertises and is found as before', async t => {
  const { victim, member } = await meshOfTwo(t)
  const dht = dhtOf(member)
  await dht.stop()
  // Its stop aborts its work; the next start used to inherit that abort, so every provide failed at once.
  await dht.start()
  const key = await memberProvides(victim, member, 'restarted-dht')
  t.true((await findIds(victim, key)).includes(peerIdOf(member)))
})

test.serial('an expiry withdraws only the advert that expired, not one that renewed the name meanwhile', async t => {
  const node = await startNode(t)
  const dht = dhtOf(node)
  // The name is advertised again (no TTL) while the expiry pass is on its way to withdrawing the expired advert.
  const withdraw = dht.withdraw.bind(dht)
  let expired: boolean | undefined
  dht.withdraw = async (name, only) => {
    if (only == null || expired != null) return await withdraw(name, only)
    await dht.advertise('renewed')
    expired = await withdraw(name, only)
    return expired
  }
  await dht.advertise('renewed', { ttl: 200 })
  await waitFor('the expiry pass', () => expired != null, WAIT, 20)
  t.false(expired, 'the renewed advert is not the one that expired')
  t.deepEqual(dht.advertised().map(a => [a.name, a.expiresAt]), [['renewed', undefined]])
})

test.serial('a name withdrawn while a reprovide round runs is not advertised again by that round', async t => {
  const { victim, member } = await meshOfTwo(t)
  const dht = dhtOf(member)
  const names = Array.from({ length: 20 }, (_, i) => `round-${i}`)
  for (const name of names) await dht.advertise(name)
  const last = names[names.length - 1]
  const key = await resourceKey(last)
  // The round the 20-minute timer starts, with the last name withdrawn while the round works through the others.
  const round = (dht as unknown as { reprovideAll: (why: string) => Promise<void> }).reprovideAll('interval')
  t.true(await dht.withdraw(last))
  await round
  t.false(dht.advertised().some(a => a.name === last), 'not listed')
  t.false((await storedProviders(member, key)).includes(peerIdOf(member)), 'no record of its own')
  // A marker withdrawn after the round: gossipsub delivers one publisher's messages to a peer in order, so once the
  // victim has the marker's notice it has every notice the round sent before it.
  await dht.advertise('round-marker')
  await dht.withdraw('round-marker')
  const slot = (name: string, k: CID): { op: string } | undefined =>
    (dhtOf(victim) as unknown as { notices: Map<string, { op: string }> }).notices.get(`${peerIdOf(member)}/${k.toString()}`)
  const marker = await resourceKey('round-marker')
  await waitFor('the victim to take the marker\'s withdraw notice', () => slot('round-marker', marker)?.op === 'withdraw', WAIT, 50)
  t.is(slot(last, key)?.op, 'withdraw', 'the last notice the victim has about the name is the withdrawal')
  t.false((await findIds(victim, key)).includes(peerIdOf(member)), 'the victim does not find the member as provider')
})

test.serial('a member\'s new metadata does not make the others send it their records again', async t => {
  const { victim, member } = await meshOfTwo(t)
  const dht = dhtOf(victim)
  for (let i = 0; i < 10; i++) await dht.advertise(`meta-${i}`)
  const to = member.libp2p.peerId
  const keys = new Set<string>()
  const sender = (dht as unknown as { sender: { send: (...a: any[]) => Promise<void>, sendConfirmed: (...a: any[]) => Promise<boolean> } }).sender
  const send = sender.send.bind(sender)
  const sendConfirmed = sender.sendConfirmed.bind(sender)
  const note = (peer: PeerId, msg: { key?: Uint8Array }): void => {
    if (peer.equals(to) && msg.key != null) keys.add(Buffer.from(msg.key).toString('hex'))
  }
  sender.send = async (peer: PeerId, msg: { key?: Uint8Array }, o?: unknown) => { note(peer, msg); await send(peer, msg, o) }
  sender.sendConfirmed = async (peer: PeerId, msg: { key?: Uint8Array }, o?: unknown) => { note(peer, msg); return await sendConfirmed(peer, msg, o) }
  // As a busy node's tasks publish its load, once a second.
  for (let load = 1; load <= 3; load++) {
    member.membership.setMeta({ load })
    await waitFor(`the victim to see load ${load}`, () => victim.membership.member(peerIdOf(member))?.meta.load === load, WAIT, 20)
  }
  // A record sent after the updates, through the same per-peer lane as any push they would have caused.
  await dht.advertise('meta-marker')
  const marker = Buffer.from((await resourceKey('meta-marker')).multihash.bytes).toString('hex')
  await waitFor('the marker record to be sent', () => keys.has(marker), WAIT, 20)
  t.deepEqual([...keys], [marker], 'only the marker was sent to the member')
})

test.serial('a withdrawal is sent again as it was after a restart: its sequence number is kept in the data dir', async t => {
  const dataDir = await tempDir(t, 'meshos-dht-restart-')
  const privateKey = await generateKeyPair('Ed25519')
  const config = resolveConfig({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', logLevel: 'silent' })
  const seqs = (node: MeshNode): Map<string, number> => (dhtOf(node) as unknown as { withdrawSeqs: Map<string, number> }).withdrawSeqs
  const first = new MeshNode({ config, privateKey })
  t.teardown(async () => { await first.stop({ leave: false }) })
  await first.start()
  await dhtOf(first).advertise('kept-withdrawal')
  await dhtOf(first).withdraw('kept-withdrawal')
  const key = (await resourceKey('kept-withdrawal')).toString()
  const seq = seqs(first).get(key)
  t.truthy(seq)
  await first.stop({ leave: false })
  const second = new MeshNode({ config, privateKey })
  t.teardown(async () => { await second.stop({ leave: false }) })
  await second.start()
  t.is(seqs(second).get(key), seq, 'the same notice, to send members that come back')
})
