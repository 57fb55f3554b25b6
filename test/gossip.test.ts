import test from 'ava'
import crypto from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createMeshLibp2p, gossipFastMsgId } from '../node/libp2p.js'
import { dialUntilConnected, waitFor } from './util.js'

test('the fast message id is the same for the same signed message and differs when any part does', t => {
  const msg = { from: Uint8Array.of(1, 2, 3), seqno: Uint8Array.of(0, 0, 0, 9), signature: new Uint8Array(64).fill(7), data: Uint8Array.of(42) }
  t.is(gossipFastMsgId(msg), gossipFastMsgId({ ...msg, from: Uint8Array.of(1, 2, 3) }))
  t.not(gossipFastMsgId(msg), gossipFastMsgId({ ...msg, signature: new Uint8Array(64).fill(8) }))
  t.not(gossipFastMsgId(msg), gossipFastMsgId({ ...msg, seqno: Uint8Array.of(0, 0, 0, 10) }))
  t.not(gossipFastMsgId(msg), gossipFastMsgId({ ...msg, from: Uint8Array.of(1, 2, 4) }))
  // Fields that are missing must not let one part stand in for another.
  t.not(gossipFastMsgId({ from: Uint8Array.of(1), seqno: undefined }), gossipFastMsgId({ from: undefined, seqno: Uint8Array.of(1) }))
})

// Real nodes over TCP, fully connected, so that every receiver gets each message from the publisher and again from
// each other node that forwards it. Signature checks are counted at node:crypto, where @libp2p/crypto ends up.
test('a node checks the signature of each gossip message once, not once per copy it receives', async t => {
  const nodes = await Promise.all(Array.from({ length: 4 }, async () => await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], announce: [] })))
  t.teardown(async () => { await Promise.all(nodes.map(async n => { await n.stop() })) })
  await Promise.all(nodes.map(async n => { await n.start() }))
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++) await dialUntilConnected(nodes[i], nodes[j].getMultiaddrs()[0])
  }
  const topic = 'meshos-test-fast-id'
  const received = nodes.map(() => new Set<string>())
  nodes.forEach((n, i) => {
    n.services.pubsub.subscribe(topic)
    n.services.pubsub.addEventListener('message', e => { if (e.detail.topic === topic) received[i].add(new TextDecoder().decode(e.detail.data)) })
  })
  // The publisher floods to every subscriber it knows of, and each forwards to its own topic mesh.
  await waitFor('every node to know every other\'s subscription', () => nodes.every(n => n.services.pubsub.getSubscribers(topic).length === nodes.length - 1), 60_000)

  const verify = crypto.verify
  let checks = 0
  // Only gossip signatures (their signed bytes start with this prefix): an identify record or a handshake checked in
  // the same window is no concern of this test.
  const prefix = Buffer.from('libp2p-pubsub:')
  crypto.verify = ((...args: Parameters<typeof crypto.verify>) => {
    const data = args[1] as Uint8Array
    if (data.byteLength >= prefix.byteLength && prefix.equals(data.subarray(0, prefix.byteLength))) checks++
    return (verify as any)(...args)
  }) as typeof crypto.verify
  t.teardown(() => { crypto.verify = verify })

  const messages = 10
  for (let k = 0; k < messages; k++) await nodes[0].services.pubsub.publish(topic, new TextEncoder().encode(`m${k}`))
  await waitFor('every message at every other node', () => received.slice(1).every(r => r.size === messages), 60_000)
  // The copies that other nodes forward may land later still; with the fast id they are dropped unchecked, so the
  // count cannot grow past this point. (Without it, it had grown to 2-3 per delivery by the time the last arrived.)
  const receivers = nodes.length - 1
  // Once per message per receiver, though each receiver gets up to three copies of each.
  t.is(checks, receivers * messages, `${checks} signature checks for ${receivers * messages} deliveries`)
})
