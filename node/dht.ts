import { ping } from '@libp2p/ping'
import { MeshDht, meshKadDht, parseDuration, constants as DC } from '../dht/index.js'
import { BadRequestError } from '../lib/errors.js'
import type { MeshConfig } from './config.js'
import type { MeshNode } from './node.js'
import type { Subsystem } from './subsystem.js'

/** libp2p services the DHT needs, added when libp2p is created: kad-dht (server mode, /meshos/kad/1.0.0) and ping. */
export function dhtLibp2pServices (_config: MeshConfig): Record<string, (components: any) => unknown> {
  return {
    // kad-dht pings new contacts before adding them; the connection monitor pings too, so allow more than one stream.
    ping: ping({ maxOutboundStreams: 16, maxInboundStreams: 16 }),
    dht: meshKadDht()
  }
}

function replicaParam (query: URLSearchParams): boolean {
  const v = query.get('replica')
  if (v == null || v === '' || v === 'true') return true
  if (v === 'false') return false
  throw new BadRequestError(`replica must be true or false, not "${v}"`)
}

function timeoutParam (query: URLSearchParams): number | undefined {
  const t = query.get('timeout')
  if (t == null || t === '') return undefined
  const ms = parseDuration(/^\d+$/.test(t) ? `${t}ms` : t, 'timeout')
  if (ms > DC.FIND_TIMEOUT_MAX) throw new BadRequestError(`timeout is at most ${DC.FIND_TIMEOUT_MAX / 1000}s`)
  return ms
}

/** Wires dht/ into the node: seeding from membership, resource advertisement, routes. */
export async function createNodeDht (node: MeshNode): Promise<Subsystem | undefined> {
  const kad = node.libp2p.services.dht
  if (kad == null) return undefined
  const dht = new MeshDht({
    libp2p: node.libp2p,
    dht: kad,
    membership: node.membership,
    pubsub: node.libp2p.services.pubsub as any,
    dataDir: node.config.dataDir,
    logger: node.log,
    registry: node.registry
  })
  return {
    name: 'dht',
    service: dht,
    start: async () => { await dht.start() },
    stop: async () => { await dht.stop() },
    routes: (api) => {
      api.route({ method: 'GET', path: '/v1/resources', handler: () => ({ adverts: dht.advertised() }) })
      api.route({
        method: 'GET',
        path: '/v1/resources/:name',
        // `replica=false` skips this node's own replica and asks the network (to measure or check the remote path).
        handler: async ({ params, query, signal }) => await dht.findResource(params.name, { signal, timeout: timeoutParam(query), replica: replicaParam(query) })
      })
      api.route({
        method: 'POST',
        path: '/v1/resources/:name',
        handler: async ({ params, query, body }) => {
          const raw = (await body()).toString('utf8').trim()
          // In the query too, as the KV routes take theirs; a bad one is refused rather than ignored.
          const q = query.get('ttl')
          let ttl: number | undefined = q == null ? undefined : parseDuration(q, 'ttl')
          if (raw !== '') {
            let parsed: any
            try { parsed = JSON.parse(raw) } catch { throw new BadRequestError('the body must be JSON, e.g. {"ttl":"1h"}') }
            if (parsed == null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new BadRequestError('the body must be a JSON object, e.g. {"ttl":"1h"}')
            const unknown = Object.keys(parsed).filter(k => k !== 'ttl')
            if (unknown.length > 0) throw new BadRequestError(`unknown field ${JSON.stringify(unknown[0])}; an advert takes only "ttl"`)
            if (parsed.ttl != null) ttl = parseDuration(parsed.ttl, 'ttl')
          }
          return await dht.advertise(params.name, { ttl })
        }
      })
      api.route({
        method: 'DELETE',
        path: '/v1/resources/:name',
        handler: async ({ params }) => ({ name: params.name, withdrawn: await dht.withdraw(params.name) })
      })
      api.route({
        method: 'GET',
        path: '/v1/peers/:id',
        // Addresses may come from the peer store of a member long gone (as in IPFS's findpeer): `state` says what
        // membership holds of it, when it is or was a member.
        handler: async ({ params, signal }) => {
          const found = await dht.findPeer(params.id, { signal })
          const state = node.membership.member(params.id)?.state
          return state != null ? { ...found, state } : found
        }
      })
    }
  }
}
