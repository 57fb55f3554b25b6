// DHT benchmark: provide and find-providers latency, peers queried per lookup, success rate.
// N = 5, 10, 20 real `mesh start` processes (testnet, through the HTTP API) and N = 50, 100 nodes in one process over
// @libp2p/memory (MeshDht directly, membership simulated as "everyone alive").
// Usage: npm run bench -- dht [--sizes 5,10,20,50,100] [--names 20] [--finds 100]
import { identify } from '@libp2p/identify'
import { memory } from '@libp2p/memory'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { MeshDht, meshKadDht, resourceKey, type DhtMembership } from '../dht/index.js'
import { createTestnet } from '../testnet/index.js'
import { summarize, table, writeResult } from './util.js'

interface Row {
  mode: 'testnet' | 'memory'
  n: number
  provideP50: number
  provideP99: number
  findP50: number
  findP99: number
  hopsMean: number
  hopsMax: number
  log2n: number
  success: number
  samples: { provide: number, find: number }
}

const rand = (n: number): number => Math.floor(Math.random() * n)

function opt (args: string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] != null ? args[i + 1] : dflt
}

async function benchTestnet (n: number, names: number, finds: number): Promise<Row> {
  const net = await createTestnet(n, { logLevel: 'warn' })
  try {
    const provide: number[] = []
    const find: number[] = []
    const hops: number[] = []
    let ok = 0
    const providerOf: number[] = []
    for (let i = 0; i < names; i++) {
      const p = rand(n)
      providerOf.push(p)
      const t0 = performance.now()
      await net.client(p).json('POST', `/v1/resources/bench-${i}`, {})
      provide.push(performance.now() - t0)
    }
    for (let j = 0; j < finds; j++) {
      const i = rand(names)
      let f = rand(n)
      if (n > 1) while (f === providerOf[i]) f = rand(n)
      const t0 = performance.now()
      const r = await net.client(f).json('GET', `/v1/resources/bench-${i}`)
      find.push(performance.now() - t0)
      hops.push(r.queried)
      if (!r.timedOut && r.providers.some((x: { peerId: string }) => x.peerId === net.nodes[providerOf[i]].peerId)) ok++
    }
    return row('testnet', n, provide, find, hops, ok / finds)
  } finally {
    await net.stop()
  }
}

function row (mode: Row['mode'], n: number, provide: number[], find: number[], hops: number[], success: number): Row {
  const p = summarize(provide)
  const f = summarize(find)
  const h = summarize(hops)
  return { mode, n, provideP50: p.p50, provideP99: p.p99, findP50: f.p50, findP99: f.p99, hopsMean: h.mean, hopsMax: h.max, log2n: Math.log2(n), success, samples: { provide: p.n, find: f.n } }
}

async function benchMemory (n: number, names: number, finds: number): Promise<Row> {
  const tag = `dhtbench-${process.pid}-${n}-${Date.now()}`
  const nodes: Libp2p[] = []
  for (let i = 0; i < n; i++) {
    nodes.push(await createLibp2p({
      addresses: { listen: [`/memory/${tag}-${i}`] },
      transports: [memory()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: { maxConnections: 1000, inboundConnectionThreshold: 10_000 },
      services: { identify: identify(), ping: ping({ maxOutboundStreams: 16 }), dht: meshKadDht() }
    }) as unknown as Libp2p)
  }
  const everyone = nodes.map(x => ({ peerId: x.peerId.toString(), addrs: x.getMultiaddrs().map(a => a.toString()) }))
  const membership: DhtMembership = {
    aliveMembers: () => everyone,
    member: () => ({ state: 'alive' }),
    events: { on: () => () => {} }
  }
  const dhts = nodes.map(x => new MeshDht({ libp2p: x, dht: (x.services as any).dht, membership }))
  // In-memory connections hold no handles and deadlines are unref'd timers: keep the event loop alive meanwhile.
  const keepalive = setInterval(() => {}, 1000)
  try {
    // Seed a few at a time: each seeding pings (and so dials) every member.
    for (let i = 0; i < n; i += 10) await Promise.all(dhts.slice(i, i + 10).map(async d => { await d.start() }))
    const want = Math.min(n - 1, 20)
    const deadline = Date.now() + 120_000
    while (dhts.some(d => d.routingTableSize < want) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 200))
    const provide: number[] = []
    const find: number[] = []
    const hops: number[] = []
    let ok = 0
    const providerOf: number[] = []
    const keys = []
    for (let i = 0; i < names; i++) {
      const p = rand(n)
      providerOf.push(p)
      const key = await resourceKey(`bench-${i}`)
      keys.push(key)
      const t0 = performance.now()
      await dhts[p].provide(key)
      provide.push(performance.now() - t0)
    }
    for (let j = 0; j < finds; j++) {
      const i = rand(names)
      let f = rand(n)
      while (f === providerOf[i]) f = rand(n)
      const t0 = performance.now()
      const r = await dhts[f].findProviders(keys[i])
      find.push(performance.now() - t0)
      hops.push(r.queried)
      if (!r.timedOut && r.providers.some(x => x.peerId === everyone[providerOf[i]].peerId)) ok++
    }
    return row('memory', n, provide, find, hops, ok / finds)
  } finally {
    clearInterval(keepalive)
    for (const d of dhts) await d.stop()
    await Promise.all(nodes.map(async x => { await x.stop() }))
  }
}

export async function main (args: string[]): Promise<void> {
  const sizes = opt(args, 'sizes', '5,10,20,50,100').split(',').map(Number)
  const names = Number(opt(args, 'names', '20'))
  const finds = Number(opt(args, 'finds', '100'))
  const rows: Row[] = []
  for (const n of sizes) {
    process.stderr.write(`dht bench: N=${n}...\n`)
    try {
      rows.push(n <= 20 ? await benchTestnet(n, names, finds) : await benchMemory(n, names, finds))
    } catch (err) {
      process.stderr.write(`dht bench: N=${n} failed: ${(err as Error).message}\n`)
    }
  }
  const header = ['mode', 'N', 'provide p50 ms', 'provide p99 ms', 'find p50 ms', 'find p99 ms', 'peers queried mean', 'max', 'log2 N', 'success %']
  process.stdout.write(table(header, rows.map(r => [r.mode, r.n, r.provideP50, r.provideP99, r.findP50, r.findP99, r.hopsMean, r.hopsMax, r.log2n, r.success * 100])) + '\n')
  const file = await writeResult('dht', { names, finds, rows })
  process.stdout.write(`wrote ${file}\n`)
}
