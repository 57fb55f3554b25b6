// DHT benchmark: provide and find-providers latency, peers queried per lookup, success rate.
// N = 5, 10, 20 real `mesh start` processes (testnet, through the HTTP API) and N = 50, 100 nodes in one process over
// @libp2p/memory (MeshDht directly, membership simulated as "everyone alive").
// Usage: npm run bench -- dht [--sizes 5,10,20,50,100] [--names 20] [--finds 100]
//
// Finds run twice: as a user's `mesh resource find` does (a node among the k closest answers from its own replica),
// and with replica=false, which always asks the closest members over the network: the remote path's own figures.
// Testnet finds start once the nodes have run REPLICA_WARMUP, as in a mesh that has been up a while.
import { identify } from '@libp2p/identify'
import { memory } from '@libp2p/memory'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { MeshDht, meshKadDht, resourceKey, constants as DC, type DhtMembership, type FindProvidersResult } from '../dht/index.js'
import { createTestnet } from '../testnet/index.js'
import { summarize, table, writeResult } from './util.js'

interface Row {
  mode: 'testnet' | 'memory'
  n: number
  provideP50: number
  provideP99: number
  findP50: number
  findP99: number
  /** Share of the finds answered from the finder's own replica. */
  replicaShare: number
  hopsMean: number
  hopsMax: number
  remoteP50: number
  remoteP99: number
  remoteHopsMean: number
  remoteHopsMax: number
  log2n: number
  success: number
  remoteSuccess: number
  samples: { provide: number, find: number, remote: number }
}

/** One find's latency, peers queried, answer source and whether it named the expected provider. */
interface Sample { ms: number, hops: number, source: FindProvidersResult['source'], ok: boolean }

const rand = (n: number): number => Math.floor(Math.random() * n)

function opt (args: string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] != null ? args[i + 1] : dflt
}

async function benchTestnet (n: number, names: number, finds: number): Promise<Row> {
  const net = await createTestnet(n, { logLevel: 'warn' })
  const up = Date.now()
  try {
    const provide: number[] = []
    const providerOf: number[] = []
    for (let i = 0; i < names; i++) {
      const p = rand(n)
      providerOf.push(p)
      const t0 = performance.now()
      await net.client(p).json('POST', `/v1/resources/bench-${i}`, {})
      provide.push(performance.now() - t0)
    }
    const warm = up + DC.REPLICA_WARMUP - Date.now()
    if (warm > 0) await new Promise(resolve => setTimeout(resolve, warm))
    const run = async (replica: boolean): Promise<Sample[]> => {
      const out: Sample[] = []
      for (let j = 0; j < finds; j++) {
        const i = rand(names)
        let f = rand(n)
        if (n > 1) while (f === providerOf[i]) f = rand(n)
        const t0 = performance.now()
        const r = await net.client(f).json<FindProvidersResult>('GET', `/v1/resources/bench-${i}${replica ? '' : '?replica=false'}`)
        out.push({ ms: performance.now() - t0, hops: r.queried, source: r.source, ok: !r.timedOut && r.providers.some(x => x.peerId === net.nodes[providerOf[i]].peerId) })
      }
      return out
    }
    return row('testnet', n, provide, await run(true), await run(false))
  } finally {
    await net.stop()
  }
}

function row (mode: Row['mode'], n: number, provide: number[], find: Sample[], remote: Sample[]): Row {
  const p = summarize(provide)
  const f = summarize(find.map(x => x.ms))
  const h = summarize(find.map(x => x.hops))
  const r = summarize(remote.map(x => x.ms))
  const rh = summarize(remote.map(x => x.hops))
  const share = (xs: Sample[], pred: (x: Sample) => boolean): number => xs.filter(pred).length / Math.max(1, xs.length)
  return {
    mode,
    n,
    provideP50: p.p50,
    provideP99: p.p99,
    findP50: f.p50,
    findP99: f.p99,
    replicaShare: share(find, x => x.source === 'replica'),
    hopsMean: h.mean,
    hopsMax: h.max,
    remoteP50: r.p50,
    remoteP99: r.p99,
    remoteHopsMean: rh.mean,
    remoteHopsMax: rh.max,
    log2n: Math.log2(n),
    success: share(find, x => x.ok),
    remoteSuccess: share(remote, x => x.ok),
    samples: { provide: p.n, find: f.n, remote: r.n }
  }
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
  // Every record is provided after every node started and none restarts, so replicas are complete from the start.
  const dhts = nodes.map(x => new MeshDht({ libp2p: x, dht: (x.services as any).dht, membership, replicaWarmup: 0 }))
  // In-memory connections hold no handles and deadlines are unref'd timers: keep the event loop alive meanwhile.
  const keepalive = setInterval(() => {}, 1000)
  try {
    // Seed a few at a time: each seeding pings (and so dials) every member.
    for (let i = 0; i < n; i += 10) await Promise.all(dhts.slice(i, i + 10).map(async d => { await d.start() }))
    const want = Math.min(n - 1, 20)
    const deadline = Date.now() + 120_000
    while (dhts.some(d => d.routingTableSize < want) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 200))
    const provide: number[] = []
    const providerOf: number[] = []
    const keys: Array<Awaited<ReturnType<typeof resourceKey>>> = []
    for (let i = 0; i < names; i++) {
      const p = rand(n)
      providerOf.push(p)
      const key = await resourceKey(`bench-${i}`)
      keys.push(key)
      const t0 = performance.now()
      await dhts[p].provide(key)
      provide.push(performance.now() - t0)
    }
    const run = async (replica: boolean): Promise<Sample[]> => {
      const out: Sample[] = []
      for (let j = 0; j < finds; j++) {
        const i = rand(names)
        let f = rand(n)
        while (f === providerOf[i]) f = rand(n)
        const t0 = performance.now()
        const r = await dhts[f].findProviders(keys[i], { replica })
        out.push({ ms: performance.now() - t0, hops: r.queried, source: r.source, ok: !r.timedOut && r.providers.some(x => x.peerId === everyone[providerOf[i]].peerId) })
      }
      return out
    }
    return row('memory', n, provide, await run(true), await run(false))
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
  const header = ['mode', 'N', 'provide p50 ms', 'provide p99 ms', 'find p50 ms', 'find p99 ms', 'from own replica %', 'peers queried mean', 'max', 'success %', 'remote find p50 ms', 'remote p99 ms', 'remote peers mean', 'max', 'remote success %', 'log2 N']
  process.stdout.write(table(header, rows.map(r => [r.mode, r.n, r.provideP50, r.provideP99, r.findP50, r.findP99, r.replicaShare * 100, r.hopsMean, r.hopsMax, r.success * 100, r.remoteP50, r.remoteP99, r.remoteHopsMean, r.remoteHopsMax, r.remoteSuccess * 100, r.log2n])) + '\n')
  const file = await writeResult('dht', { names, finds, rows })
  process.stdout.write(`wrote ${file}\n`)
}
