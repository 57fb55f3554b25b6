import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setFlagsFromString } from 'node:v8'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createMeshLibp2p } from '../node/libp2p.js'
import { diagService } from '../node/diagnostics.js'
import { GcHeadroom, YoungBufferCollector, tuneGc } from '../node/gc-tuning.js'
import { readJson } from '../cli/client.js'
import { Rpc } from '../rpc/index.js'
import { REPLICA_WARMUP } from '../dht/constants.js'
import { MiB } from '../lib/units.js'
import { createTestnet } from '../testnet/index.js'
import { summarize, table, writeResult } from './util.js'

/**
 * Put and get MiB/s on a 5-node testnet for files of several sizes (default 10, 100 and 1024 MiB), with two baselines
 * from the same run: one-stream RPC bulk (1 MiB messages, window 8, this process to a testnet node, the path a chunk
 * takes) and a plain `cp` of the same file. Put is through node 0's HTTP API at RF=3; get streams from a node outside
 * the replica set to a local file; both with the client `mesh file put/get` uses (node:http streams). Sizes up to
 * 16 MiB are the median of 9 runs and up to 128 MiB of 3, each with new content, after one uncounted run. Peak RSS
 * (VmHWM) of the nodes is reported too.
 *
 * Measured on a warmed mesh (8 rounds of a 10 MiB put and four gets, not counted) that has run for the DHT's
 * `REPLICA_WARMUP` (30 s), as a mesh in use has: until then a node does not trust its own replica of the provider
 * records, so every get's lookup asks the network, which added 30-60 ms to the first byte of a 10 MiB get here (about
 * a quarter of its time).
 *
 * `npm run bench -- files [sizeMiB...]`
 */
export async function main (args: string[]): Promise<void> {
  const sizes = args.length > 0 ? args.map(Number) : [10, 100, 1024]
  const net = await createTestnet(5, { logLevel: 'warn' })
  const up = Date.now()
  const rows: Array<Array<string | number>> = []
  const results: any[] = []
  try {
    // Warm-up, so that the sizes measure a mesh in use rather than a fresh one: every connection in both directions,
    // JIT, heap sizing. On a fresh testnet the first four or five 10 MiB puts and gets ran 30-50 % slower than later
    // ones, after 3 puts and 15 gets of 4 MiB had already run.
    for (let i = 0; i < 8; i++) {
      const w = await net.client(i % 5).stream('POST', '/v1/files?name=warm-up', { body: randomBytes(10 * MiB), timeout: null })
      const { cid } = await readJson(w) as { cid: string }
      for (let j = 0; j < 5; j++) if (j !== i % 5) await pipeline(await net.client(j).stream('GET', `/v1/files/${cid}`, { timeout: null }), new Writable({ write (_c, _e, cb) { cb() } }))
      await net.client(0, { timeout: 120_000 }).json('DELETE', `/v1/files/${cid}`)
    }
    const warm = up + REPLICA_WARMUP - Date.now()
    if (warm > 0) {
      process.stderr.write(`waiting ${(warm / 1000).toFixed(0)} s for the DHT's replica warm-up\n`)
      await new Promise(resolve => setTimeout(resolve, warm))
    }
    const bulk = await rpcBulk(net.nodes[4].addrs[0], 256, net.networkKeyFile)
    process.stderr.write(`rpc single-stream bulk: ${bulk.toFixed(0)} MiB/s\n`)
    for (const sizeMiB of sizes) {
      const src = join(net.dir, `src-${sizeMiB}.bin`)
      await makeFile(src, sizeMiB * MiB)
      const t0 = performance.now()
      execFileSync('cp', [src, `${src}.cp`])
      execFileSync('sync', [`${src}.cp`])
      const cpSecs = (performance.now() - t0) / 1000
      await rm(`${src}.cp`)

      // One transfer of a small file takes a fraction of a second, and one sample of that swings with whatever else the
      // machine did in it: small sizes are repeated (new content each time) and the median is reported, after one
      // round that is not counted (the first transfers of a size after a pause ran 20-40% slower: heap growth, JIT).
      // Nine for a 10 MiB file: its gets spread 86-116 MiB/s within one run, and the median of five still swung by
      // 10 % from run to run (BENCHMARKS.md, files, session 7).
      const reps = sizeMiB <= 16 ? 9 : sizeMiB <= 128 ? 3 : 1
      const unmeasured = reps > 1 ? 1 : 0
      const puts: number[] = []
      const gets: number[] = []
      let replicas = 0
      let reader = -1
      for (let rep = -unmeasured; rep < reps; rep++) {
        if (rep > -unmeasured) await makeFile(src, sizeMiB * MiB)
        const t1 = performance.now()
        const res = await net.client(0).stream('POST', `/v1/files?name=bench-${sizeMiB}-${rep}`, {
          body: createReadStream(src, { highWaterMark: MiB }),
          headers: { 'content-length': String(sizeMiB * MiB) },
          timeout: null
        })
        const put = await readJson(res) as { cid: string, replicas: number }
        const putRate = sizeMiB / ((performance.now() - t1) / 1000)
        replicas = put.replicas

        const stat = await net.client(0, { timeout: 60_000 }).json<{ holders: string[] }>('GET', `/v1/files/${put.cid}/stat`)
        reader = net.nodes.findIndex(n => !stat.holders.includes(n.peerId))
        const out = join(net.dir, `out-${sizeMiB}.bin`)
        const t2 = performance.now()
        const got = await net.client(reader).stream('GET', `/v1/files/${put.cid}`, { timeout: null })
        await pipeline(got, createWriteStream(out, { highWaterMark: MiB }))
        const getRate = sizeMiB / ((performance.now() - t2) / 1000)
        if (rep >= 0) {
          puts.push(putRate)
          gets.push(getRate)
        }
        const same = await sameFile(src, out)
        if (!same) throw new Error(`get of ${sizeMiB} MiB returned different bytes`)
        await rm(out)
        await net.client(0, { timeout: 120_000 }).json('DELETE', `/v1/files/${put.cid}`)
      }
      await rm(src)

      const hwm = await Promise.all(net.nodes.map(async n => await vmHwmMiB(n.pid)))
      // Baseline again after each size: the machine is shared and its load drifts; the mean of both is the reference.
      const bulkAfter = await rpcBulk(net.nodes[4].addrs[0], 128, net.networkKeyFile)
      const ref = (bulk + bulkAfter) / 2
      const putRate = summarize(puts).p50
      const getRate = summarize(gets).p50
      const cpRate = sizeMiB / cpSecs
      rows.push([`${sizeMiB} MiB`, reps, putRate, spread(puts), getRate, spread(gets), ref, cpRate, putRate / ref, getRate / ref, putRate / cpRate, getRate / cpRate, Math.max(...hwm)])
      results.push({ sizeMiB, reps, putMiBs: putRate, getMiBs: getRate, putSamples: puts, getSamples: gets, bulkMiBs: ref, cpMiBs: cpRate, replicas, reader, peakRssMiB: hwm })
      process.stderr.write(`${sizeMiB} MiB: put ${putRate.toFixed(1)} MiB/s, get ${getRate.toFixed(1)} MiB/s (median of ${reps}), cp ${cpRate.toFixed(0)} MiB/s, peak RSS ${Math.max(...hwm).toFixed(0)} MiB\n`)
    }
    const header = ['file', 'runs', 'put MiB/s', 'put min-max', 'get MiB/s', 'get min-max', 'bulk MiB/s', 'cp MiB/s', 'put/bulk', 'get/bulk', 'put/cp', 'get/cp', 'peak RSS MiB']
    console.log(`rpc single-stream bulk (1 MiB x 256, window 8): ${bulk.toFixed(0)} MiB/s\n`)
    console.log(table(header, rows))
    const file = await writeResult('files', { rpcBulkMiBs: bulk, results })
    console.log(`\nwrote ${file}`)
  } finally {
    await net.stop()
  }
}

function spread (xs: number[]): string {
  return xs.length < 2 ? '-' : `${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}`
}

/**
 * One persistent RPC stream from this process to `addr`, 1 MiB messages with 8 in flight.
 *
 * The sender runs with the daemon's GC settings (tuneGc, GcHeadroom and YoungBufferCollector), as a node does: without
 * them it sent 10-15 % slower here, which flattered the ratios. They are undone afterwards, so that this process's HTTP
 * client, which stands for `mesh file put/get`, runs as that command does.
 */
async function rpcBulk (addr: string, messages: number, networkKey?: string): Promise<number> {
  tuneGc()
  const gc = new GcHeadroom()
  gc.start()
  const young = new YoungBufferCollector()
  young.start()
  try {
    return await rpcBulkTuned(addr, messages, networkKey)
  } finally {
    gc.stop()
    young.stop()
    setFlagsFromString('--heap-growing-percent=0')
    setFlagsFromString('--no-external-memory-accounted-in-global-limit')
  }
}

async function rpcBulkTuned (addr: string, messages: number, networkKey?: string): Promise<number> {
  const node = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], networkKey })
  await node.start()
  const rpc = new Rpc({ libp2p: node })
  await rpc.start()
  try {
    const target = multiaddr(addr)
    // On a loaded machine a handshake can miss its deadline (seen here when another testnet started): retry, as the
    // nodes' own bootstrap does, rather than lose the run.
    for (let attempt = 1; ; attempt++) {
      try {
        await node.dial(target)
        break
      } catch (err) {
        if (attempt === 3) throw err
        await new Promise(resolve => setTimeout(resolve, 500 * attempt))
      }
    }
    const peer = target.getComponents().find(c => c.name === 'p2p')!.value!
    const payload = randomBytes(MiB)
    for (let i = 0; i < 16; i++) await rpc.call(peer, diagService, 'sink', { data: payload })
    const t0 = performance.now()
    let next = 0
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < messages) {
        next++
        await rpc.call(peer, diagService, 'sink', { data: payload }, { timeout: 60_000 })
      }
    }))
    return messages / ((performance.now() - t0) / 1000)
  } finally {
    await rpc.stop()
    await node.stop()
  }
}

async function makeFile (path: string, size: number): Promise<void> {
  const seed = randomBytes(MiB)
  const out = createWriteStream(path)
  for (let i = 0; i < size / MiB; i++) {
    // Distinct chunks (no dedup), cheap to make: a counter stamped on random bytes.
    const block = Buffer.from(seed)
    block.writeUInt32BE(i, 0)
    if (!out.write(block)) await new Promise<void>(resolve => out.once('drain', () => { resolve() }))
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => { if (err != null) reject(err); else resolve() }))
}

async function sameFile (a: string, b: string): Promise<boolean> {
  const digest = async (p: string): Promise<string> => {
    const h = createHash('sha256')
    for await (const c of createReadStream(p)) h.update(c as Buffer)
    return h.digest('hex')
  }
  return await digest(a) === await digest(b)
}

async function vmHwmMiB (pid: number): Promise<number> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  return Number(/VmHWM:\s+(\d+) kB/.exec(s)?.[1] ?? NaN) / 1024
}
