import { toString as uint8ArrayToString, fromString as uint8ArrayFromString } from 'uint8arrays'
import { Counter, Gauge, type Registry } from 'prom-client'
import { BadRequestError, MeshError } from '../lib/errors.js'
import type { ApiServer } from './api.js'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import * as C from './constants.js'

export interface PubsubEvent {
  topic: string
  from: string
  data: string
  /** Present when the payload is not valid UTF-8. */
  dataBase64?: string
  receivedAt: string
}

const topicPattern = /^[\w.:/-]{1,256}$/

export function validateTopic (topic: string): string {
  if (!topicPattern.test(topic)) throw new BadRequestError('a topic is 1-256 characters of letters, digits and . _ : / -')
  return topic
}

export function toPubsubEvent (msg: Message): PubsubEvent {
  const decoder = new TextDecoder('utf-8', { fatal: true })
  let data: string
  let dataBase64: string | undefined
  try {
    data = decoder.decode(msg.data)
  } catch {
    data = ''
    dataBase64 = uint8ArrayToString(msg.data, 'base64pad')
  }
  return {
    topic: msg.topic,
    from: msg.type === 'signed' ? msg.from.toString() : '',
    data,
    ...(dataBase64 != null ? { dataBase64 } : {}),
    receivedAt: new Date().toISOString()
  }
}

/**
 * Pub/sub over gossipsub. Messages are signed by their sender (gossipsub's StrictSign policy). Several API
 * subscribers of one topic share one gossipsub subscription, which ends when the last of them leaves, unless the node
 * itself was subscribed before them (the DHT's notices): gossipsub does not count subscriptions, and ending it would
 * end the DHT's too.
 */
export function pubsubRoutes (api: ApiServer, pubsub: GossipSub, registry?: Registry): void {
  const listeners = new Map<string, number>()
  /** Topics subscribed for API clients, rather than already by the node. */
  const owned = new Set<string>()
  const registers = registry == null ? [] : [registry]
  const dropped = new Counter({ name: 'meshos_pubsub_dropped_total', help: 'Messages not sent to an API subscriber that was not reading (more than its buffer bound waiting)', registers })
  // eslint-disable-next-line no-new
  new Gauge({ name: 'meshos_pubsub_api_subscribers', help: 'API clients subscribed to pub/sub topics', registers, collect () { this.set([...listeners.values()].reduce((a, b) => a + b, 0)) } })

  api.route({
    method: 'POST',
    path: '/v1/pubsub/:topic',
    maxBody: C.maxPubsubMessage,
    handler: async ({ params, body, req }) => {
      const topic = validateTopic(params.topic)
      // The mesh's own topics (the DHT's withdrawal notices) carry protocol messages signed by this node: an API
      // client may read them, not speak for the node on them.
      if (topic.startsWith(C.reservedTopicPrefix)) throw new MeshError('FORBIDDEN', `topics under ${C.reservedTopicPrefix} are the mesh's own; publish elsewhere`)
      let data = await body()
      if ((req.headers['content-type'] ?? '').startsWith('application/json')) {
        // A JSON body {"data": "..."} is accepted too, so curl -d '{"data":"x"}' works.
        try {
          const v = JSON.parse(data.toString('utf8'))
          if (typeof v?.data === 'string') data = Buffer.from(uint8ArrayFromString(v.data))
        } catch {}
      }
      const result = await pubsub.publish(topic, data)
      return { topic, recipients: result.recipients.map(p => p.toString()) }
    }
  })

  api.route({
    method: 'GET',
    path: '/v1/pubsub/:topic/peers',
    handler: ({ params }) => ({ topic: validateTopic(params.topic), peers: pubsub.getSubscribers(params.topic).map(p => p.toString()) })
  })

  api.route({
    method: 'GET',
    path: '/v1/pubsub/:topic',
    handler: ({ params, res, signal }) => {
      const topic = validateTopic(params.topic)
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
      res.flushHeaders()
      // A client that does not read would have every message held for it in this process: past the bound, messages
      // are dropped for it and counted, and it is told how many when it reads again.
      let missed = 0
      const onMessage = (evt: CustomEvent<Message>): void => {
        if (evt.detail.topic !== topic) return
        if (res.writableLength > C.maxSubscriberBuffer) {
          missed++
          dropped.inc()
          return
        }
        if (missed > 0) {
          res.write(`event: dropped\ndata: ${JSON.stringify({ count: missed })}\n\n`)
          missed = 0
        }
        res.write(`event: message\ndata: ${JSON.stringify(toPubsubEvent(evt.detail))}\n\n`)
      }
      pubsub.addEventListener('message', onMessage)
      const count = listeners.get(topic) ?? 0
      listeners.set(topic, count + 1)
      if (count === 0 && !pubsub.getTopics().includes(topic)) {
        pubsub.subscribe(topic)
        owned.add(topic)
      }
      // Tells the client the subscription is in place, so it can publish without racing it.
      res.write(`event: subscribed\ndata: ${JSON.stringify({ topic })}\n\n`)
      const keepalive = setInterval(() => res.write(': keepalive\n\n'), 15_000)
      signal.addEventListener('abort', () => {
        clearInterval(keepalive)
        pubsub.removeEventListener('message', onMessage)
        const left = (listeners.get(topic) ?? 1) - 1
        if (left <= 0) {
          listeners.delete(topic)
          if (owned.delete(topic)) pubsub.unsubscribe(topic)
        } else {
          listeners.set(topic, left)
        }
      }, { once: true })
      return undefined
    }
  })
}
