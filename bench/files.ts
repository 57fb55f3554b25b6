import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createMeshLibp2p } from '../node/libp2p.js'
import { diagService } from '../node/diagnostics.js'
import { Rpc } from '../rpc/index.js'
import { MiB } from '../lib/units.js'
import { createTestnet } from '../testnet/index.js'
import { table, writeResult } from './util.js'

/**
 * Put and get MiB/s on a 5-node testnet for files of several sizes (default 10, 100 and 1024 MiB), with two baselines
 * from the same run: one-stream RPC bulk (1 MiB messages, window 8, this process to a testnet node, the path a chunk
 * takes) and a plain `cp` of the same file. Put is through node 0's HTTP API at RF=3; get streams from a node outside
 * the replica set to a local file. Peak RSS (VmHWM) of the nodes is reported too.
 *
 * `npm run bench -- files [sizeMiB...]`
 */
export async function main (args: string[]): Promise<void> {
  const sizes = args.length > 0 ? args.map(Number) : [10, 100, 1024]
  const net = await createTestnet(5, { logLevel: 'warn' })
  const rows: Array<Array<string | number>> = []
  const results: any[] = []
  try {
    // Warm-up: connections between the nodes and JIT, so that the smallest size measures the transfer, not set-up.
    for (let i = 0; i < 3; i++) {
      const w = await net.client(i).request('POST', '/v1/files?name=warm-up', { body: randomBytes(4 * MiB), timeout: null })
      const { cid } = await w.json() as { cid: string }
      for (let j = 0; j < 5; j++) await (await net.client(j).request('GET', `/v1/files/${cid}`, { timeout: null })).arrayBuffer()
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

      const t1 = performance.now()
      const res = await net.client(0).request('POST', `/v1/files?name=bench-${sizeMiB}`, {
        body: Readable.toWeb(createReadStream(src, { highWaterMark: MiB })) as unknown as ReadableStream,
        headers: { 'content-length': String(sizeMiB * MiB) },
        timeout: null
      })
      const put = await res.json() as { cid: string, replicas: number }
      const putSecs = (performance.now() - t1) / 1000

      const stat = await net.client(0, { timeout: 60_000 }).json<{ holders: string[] }>('GET', `/v1/files/${put.cid}/stat`)
      const reader = net.nodes.findIndex(n => !stat.holders.includes(n.peerId))
      const out = join(net.dir, `out-${sizeMiB}.bin`)
      const t2 = performance.now()
      const got = await net.client(reader).request('GET', `/v1/files/${put.cid}`, { timeout: null })
      await pipeline(Readable.fromWeb(got.body as any), createWriteStream(out))
      const getSecs = (performance.now() - t2) / 1000
      const same = await sameFile(src, out)
      if (!same) throw new Error(`get of ${sizeMiB} MiB returned different bytes`)
      await rm(out)
      await rm(src)
      await net.client(0, { timeout: 120_000 }).json('DELETE', `/v1/files/${put.cid}`)

      const hwm = await Promise.all(net.nodes.map(async n => await vmHwmMiB(n.pid)))
      // Baseline again after each size: the machine is shared and its load drifts; the mean of both is the reference.
      const bulkAfter = await rpcBulk(net.nodes[4].addrs[0], 128, net.networkKeyFile)
      const ref = (bulk + bulkAfter) / 2
      const putRate = sizeMiB / putSecs
      const getRate = sizeMiB / getSecs
      const cpRate = sizeMiB / cpSecs
      rows.push([`${sizeMiB} MiB`, putRate, getRate, ref, cpRate, putRate / ref, getRate / ref, putRate / cpRate, getRate / cpRate, Math.max(...hwm)])
      results.push({ sizeMiB, putMiBs: putRate, getMiBs: getRate, bulkMiBs: ref, cpMiBs: cpRate, replicas: put.replicas, reader, peakRssMiB: hwm })
      process.stderr.write(`${sizeMiB} MiB: put ${putRate.toFixed(1)} MiB/s, get ${getRate.toFixed(1)} MiB/s, cp ${cpRate.toFixed(0)} MiB/s, peak RSS ${Math.max(...hwm).toFixed(0)} MiB\n`)
    }
    const header = ['file', 'put MiB/s', 'get MiB/s', 'bulk MiB/s', 'cp MiB/s', 'put/bulk', 'get/bulk', 'put/cp', 'get/cp', 'peak RSS MiB']
    console.log(`rpc single-stream bulk (1 MiB x 256, window 8): ${bulk.toFixed(0)} MiB/s\n`)
    console.log(table(header, rows))
    const file = await writeResult('files', { rpcBulkMiBs: bulk, results })
    console.log(`\nwrote ${file}`)
  } finally {
    await net.stop()
  }
}

/** One persistent RPC stream from this process to `addr`, 1 MiB messages with 8 in flight. */
async function rpcBulk (addr: string, messages: number, networkKey?: string): Promise<number> {
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
