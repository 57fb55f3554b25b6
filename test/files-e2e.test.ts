/**
 * The distributed file system on a 5-node testnet of real `mesh start` processes: CLI and HTTP round trips, flat
 * memory, ranges, bad input, corruption, resume, and repair after a replica holder dies.
 */
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { copyFile, lstat, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import { createTestnet, type Testnet } from '../testnet/index.js'
import { mesh, meshBin, tempDir, waitFor } from './util.js'

const MiB = 1024 * 1024
let net: Testnet

test.before(async () => {
  // With the default network key, so 1 MiB chunks also exercise pnet (see the xsalsa20 patch in node/pnet.ts).
  net = await createTestnet(5, { logLevel: 'warn' })
})

test.after.always(async () => {
  await net?.stop()
})

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** Writes `size` pseudo-random bytes to a file without holding them all, and returns the file's sha256. */
async function makeFile (path: string, size: number, seed = randomBytes(32)): Promise<string> {
  const hash = createHash('sha256')
  const out = createWriteStream(path)
  let counter = 0
  for (let written = 0; written < size;) {
    // Each MiB is a hash chain of the seed: incompressible, unique per MiB, cheap to make.
    const block = Buffer.alloc(Math.min(MiB, size - written))
    for (let o = 0; o < block.length; o += 32) createHash('sha256').update(seed).update(String(counter++)).digest().copy(block, o)
    hash.update(block)
    if (!out.write(block)) await new Promise<void>(resolve => out.once('drain', () => { resolve() }))
    written += block.length
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => { if (err != null) reject(err); else resolve() }))
  return hash.digest('hex')
}

async function shaOfFile (path: string): Promise<string> {
  return sha(await readFile(path))
}

interface Stat { cid: string, name: string, size: number, chunks: number, replicas: number, holders: string[], chunkReplicas: Array<{ cid: string, replicas: number }>, underReplicated: number }
const statOf = async (i: number, cid: string): Promise<Stat> => await net.client(i, { timeout: 30_000 }).json<Stat>('GET', `/v1/files/${cid}/stat`)
const indexOf = (peerId: string): number => net.nodes.findIndex(n => n.peerId === peerId)

async function metric (i: number, name: string, labels = ''): Promise<number> {
  const text = await (await net.client(i).request('GET', '/metrics')).text()
  const line = text.split('\n').find(l => l.startsWith(`${name}${labels} `))
  return line == null ? 0 : Number(line.split(' ').pop())
}

function vmHwmMiB (pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then(s => Number(/VmHWM:\s+(\d+) kB/.exec(s)?.[1] ?? NaN) / 1024)
}

test.serial('CLI round trip: put on node 0, get on node 4, byte-identical; ls and stat', async t => {
  const dir = await tempDir(t)
  const src = join(dir, 'in.bin')
  const digest = await makeFile(src, 9 * MiB + 12345)
  const put = await mesh(['file', 'put', src, '--name', 'round-trip.bin', '--api', net.nodes[0].api, '--json'], { timeout: 120_000 })
  t.is(put.code, 0, put.stderr)
  const res = JSON.parse(put.stdout) as { cid: string, size: number, chunks: number, replicas: number }
  t.is(res.size, 9 * MiB + 12345)
  // The copies stored are reported, and a shortfall (a replica failing mid-put) is said on stderr.
  t.true(res.replicas >= 1 && res.replicas <= 3)
  if (res.replicas < 3) t.regex(put.stderr, new RegExp(`stored ${res.replicas} of 3 replicas`))
  else t.notRegex(put.stderr, /stored/)
  t.is(res.chunks, 10)
  t.regex(res.cid, /^bagaaiera/)

  const plain = await mesh(['file', 'put', src, '--api', net.nodes[2].api], { timeout: 120_000 })
  t.is(plain.stdout.trim(), res.cid, 'same content, same id, from any node')

  const out = join(dir, 'out.bin')
  const get = await mesh(['file', 'get', res.cid, '-o', out, '--api', net.nodes[4].api], { timeout: 120_000 })
  t.is(get.code, 0, get.stderr)
  t.is(await shaOfFile(out), digest)

  const ls = await mesh(['file', 'ls', '--api', net.nodes[3].api, '--json'])
  const files = JSON.parse(ls.stdout).files as Array<{ cid: string, name: string }>
  t.true(files.some(f => f.cid === res.cid && ['round-trip.bin', 'in.bin'].includes(f.name)))

  const st = await mesh(['file', 'stat', res.cid, '--api', net.nodes[1].api, '--json'])
  t.is(st.code, 0, st.stderr)
  const s = JSON.parse(st.stdout) as Stat
  t.is(s.chunks, 10)
  t.is(s.replicas, 3)
  t.true(s.chunkReplicas.every(c => c.replicas >= 3))
  const text = await mesh(['file', 'stat', res.cid, '--api', net.nodes[1].api])
  t.regex(text.stdout, /REPLICAS/)
})

// The acceptance's size; MESH_FILES_E2E_MIB overrides it for a quicker local run.
const bigMiB = Number(process.env.MESH_FILES_E2E_MIB ?? 200)

test.serial(`HTTP: ${bigMiB} MiB streams through with flat memory on both nodes; Range returns exactly the bytes asked for`, async t => {
  const dir = await tempDir(t)
  const src = join(dir, 'big.bin')
  const size = bigMiB * MiB
  const digest = await makeFile(src, size)
  const { createReadStream } = await import('node:fs')
  const { Readable } = await import('node:stream')
  const put = await net.client(0, { timeout: 0 }).request('POST', '/v1/files?name=big.bin', {
    body: Readable.toWeb(createReadStream(src)) as unknown as ReadableStream,
    headers: { 'content-length': String(size) },
    timeout: null
  })
  const { cid, chunks } = await put.json() as { cid: string, chunks: number }
  t.is(chunks, bigMiB)

  const res = await net.client(4).request('GET', `/v1/files/${cid}`, { timeout: null })
  t.is(res.headers.get('content-length'), String(size))
  const hash = createHash('sha256')
  for await (const piece of res.body as unknown as AsyncIterable<Uint8Array>) hash.update(piece)
  t.is(hash.digest('hex'), digest)

  // VmHWM is the peak resident set since each process started: it covers both transfers.
  for (const i of [1, 2, 3]) t.log(`node ${i} (a replica or idle) peak RSS ${(await vmHwmMiB(net.nodes[i].pid)).toFixed(0)} MiB`)
  for (const i of [0, 4]) {
    const peak = await vmHwmMiB(net.nodes[i].pid)
    t.log(`node ${i} peak RSS ${peak.toFixed(0)} MiB`)
    t.true(peak < 300, `node ${i} peak RSS ${peak} MiB`)
  }

  const range = await net.client(4).request('GET', `/v1/files/${cid}`, { headers: { range: 'bytes=1000000-1999999' } })
  t.is(range.status, 206)
  t.is(range.headers.get('content-range'), `bytes 1000000-1999999/${size}`)
  const body = Buffer.from(await range.arrayBuffer())
  t.is(body.byteLength, 1_000_000)
  const fh = await (await import('node:fs/promises')).open(src)
  const want = Buffer.alloc(1_000_000)
  await fh.read(want, 0, want.length, 1_000_000)
  await fh.close()
  t.true(body.equals(want))

  const cli = await mesh(['file', 'get', cid, '-o', join(dir, 'part.bin'), '--offset', '1000000', '--length', '1000000', '--api', net.nodes[3].api])
  t.is(cli.code, 0, cli.stderr)
  t.true((await readFile(join(dir, 'part.bin'))).equals(want))

  // Through a symlink: the file it names is written, and the link stays a link.
  await writeFile(join(dir, 'target.bin'), '')
  await symlink(join(dir, 'target.bin'), join(dir, 'link.bin'))
  const viaLink = await mesh(['file', 'get', cid, '-o', join(dir, 'link.bin'), '--offset', '1000000', '--length', '1000000', '--api', net.nodes[3].api])
  t.is(viaLink.code, 0, viaLink.stderr)
  t.true((await lstat(join(dir, 'link.bin'))).isSymbolicLink())
  t.true((await readFile(join(dir, 'target.bin'))).equals(want))
  // Into a FIFO, as into a pipe: written straight in, not replaced by a regular file.
  const fifo = join(dir, 'fifo')
  await new Promise<void>((resolve, reject) => { spawn('mkfifo', [fifo]).once('exit', c => { c === 0 ? resolve() : reject(new Error(`mkfifo exited ${c}`)) }) })
  const [intoFifo, fromFifo] = await Promise.all([
    mesh(['file', 'get', cid, '-o', fifo, '--offset', '1000000', '--length', '1000000', '--api', net.nodes[3].api]),
    readFile(fifo)
  ])
  t.is(intoFifo.code, 0, intoFifo.stderr)
  t.true(fromFifo.equals(want))
  t.true((await stat(fifo)).isFIFO())
  // To stdout, with a reader that stops early (`| head -c 10`): a quiet end, not an INTERNAL error.
  const early = spawn(process.execPath, [meshBin, 'file', 'get', cid, '-o', '-', '--api', net.nodes[3].api], { stdio: ['ignore', 'pipe', 'pipe'] })
  let earlyErr = ''
  early.stderr.on('data', d => { earlyErr += d })
  const earlyExit = new Promise<number | null>(resolve => early.once('exit', resolve))
  early.stdout.once('data', () => { early.stdout.destroy() })
  t.is(await earlyExit, 0, earlyErr)

  const bad = await fetch(`${net.nodes[4].api}/v1/files/${cid}`, { headers: { range: `bytes=${size}-` } })
  t.is(bad.status, 416)
  t.is(bad.headers.get('content-range'), `bytes */${size}`)
  t.is(((await bad.json()) as { error: { code: string } }).error.code, 'RANGE_NOT_SATISFIABLE')
})

test.serial('a file whose chunks repeat reads back byte-identical from a holder and from elsewhere, whole and in ranges', async t => {
  // Every 1 MiB chunk of this file is one of two, so a read holds the same chunk at several positions at once. The
  // HTTP route frees each chunk's memory once the socket has taken it (lib/release.ts): that is safe only because each
  // position gets a buffer of its own.
  const a = randomBytes(MiB)
  const b = randomBytes(MiB)
  const content = Buffer.concat([a, a, b, a, b, b, a, Buffer.from(a.subarray(0, 300_000))])
  const put = await net.client(0, { timeout: 60_000 }).request('POST', '/v1/files?name=repeats.bin', { body: content, timeout: null })
  const { cid, chunks } = await put.json() as { cid: string, chunks: number }
  t.is(chunks, 8)
  const s = await statOf(0, cid)
  t.is(new Set(s.chunkReplicas.map(c => c.cid)).size, 3)
  const holder = indexOf(s.holders[0])
  const outside = net.nodes.findIndex(n => !s.holders.includes(n.peerId))
  t.not(outside, -1)
  for (const i of [holder, outside]) {
    const whole = Buffer.from(await (await net.client(i).request('GET', `/v1/files/${cid}`, { timeout: null })).arrayBuffer())
    t.is(sha(whole), sha(content), `whole file from node ${i}`)
    const from = MiB - 1000
    const to = 6 * MiB + 1000
    const part = await net.client(i).request('GET', `/v1/files/${cid}`, { headers: { range: `bytes=${from}-${to}` }, timeout: null })
    t.is(part.status, 206)
    t.true(Buffer.from(await part.arrayBuffer()).equals(content.subarray(from, to + 1)), `range from node ${i}`)
  }
})

test.serial('bad input: unknown CID is NOT_FOUND, malformed CID a clear 400', async t => {
  const unknown = 'bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea'
  const r1 = await fetch(`${net.nodes[1].api}/v1/files/${unknown}`)
  t.is(r1.status, 404)
  t.is(((await r1.json()) as any).error.code, 'NOT_FOUND')
  const r2 = await fetch(`${net.nodes[1].api}/v1/files/not-a-cid`)
  t.is(r2.status, 400)
  const e2 = ((await r2.json()) as any).error
  t.is(e2.code, 'BAD_REQUEST')
  t.regex(e2.message, /not a CID/)
  const cli = await mesh(['file', 'get', 'not-a-cid', '-o', '/dev/null', '--api', net.nodes[1].api])
  t.is(cli.code, 64)
  t.regex(cli.stderr, /not a CID \(BAD_REQUEST\)/)
  const cli2 = await mesh(['file', 'stat', unknown, '--api', net.nodes[1].api])
  t.is(cli2.code, 1)
})

test.serial('a corrupted chunk on one node is detected on the next read and repaired; the user gets correct bytes', async t => {
  const data = randomBytes(4 * MiB)
  const put = await net.client(1).request('POST', '/v1/files?name=corrupt.bin', { body: data, timeout: null })
  const { cid } = await put.json() as { cid: string }
  const s = await statOf(1, cid)
  const holder = indexOf(s.holders.find(h => h !== net.nodes[1].peerId)!)
  const chunk = s.chunkReplicas[1].cid
  const path = join(net.nodes[holder].dataDir, 'files', 'chunks', chunk.slice(-2), chunk)
  const bytes = await readFile(path)
  bytes[4096] ^= 0xff
  bytes[4097] ^= 0x0f
  await writeFile(path, bytes)

  const before = await metric(holder, 'meshos_files_corrupt_chunks_total')
  const res = await net.client(holder).request('GET', `/v1/files/${cid}`)
  t.is(sha(Buffer.from(await res.arrayBuffer())), sha(data))
  t.is(await metric(holder, 'meshos_files_corrupt_chunks_total'), before + 1)
  t.true((await readFile(path)).equals(data.subarray(MiB, 2 * MiB)), 'the stored chunk was rewritten from a good replica')
})

test.serial('a get killed halfway and re-run does not refetch the chunks it already has', async t => {
  const dir = await tempDir(t)
  const data = randomBytes(48 * MiB)
  const put = await net.client(0).request('POST', '/v1/files?name=resume.bin', { body: data, timeout: null })
  const { cid, chunks } = await put.json() as { cid: string, chunks: number }
  const s = await statOf(0, cid)
  const reader = net.nodes.findIndex(n => !s.holders.includes(n.peerId))
  t.true(reader >= 0)
  const out = join(dir, 'resume.bin')
  const fetched = async (): Promise<number> => await metric(reader, 'meshos_files_chunks_fetched_total', '{source="remote"}')
  const start = await fetched()

  const child = spawn(process.execPath, [meshBin, 'file', 'get', cid, '-o', out, '--api', net.nodes[reader].api], { stdio: 'ignore' })
  const exited = new Promise(resolve => child.once('exit', resolve))
  t.teardown(async () => { if (child.exitCode == null && child.signalCode == null) { child.kill('SIGKILL'); await exited } })
  await waitFor('half the file to arrive', async () => (await stat(`${out}.part`).catch(() => ({ size: 0 }))).size >= data.length / 2, 60_000, 5)
  child.kill('SIGKILL')
  await exited
  const have = (await stat(`${out}.part`)).size
  t.true(have < data.length, 'killed before the end')
  // The node may still finish the few chunks that were in flight when the client went away: settled means no new
  // fetch for 3 s, longer than a slow chunk waits before it is hedged (HEDGE_AFTER, 2 s), so that none of the first
  // run's is counted as the second's.
  let firstRun = 0
  let stable = 0
  await waitFor('the first run to settle', async () => {
    const n = await fetched()
    stable = n === firstRun ? stable + 1 : 0
    firstRun = n
    return stable >= 10
  }, 60_000, 300)
  firstRun -= start

  const again = await mesh(['file', 'get', cid, '-o', out, '--api', net.nodes[reader].api, '--json'], { timeout: 120_000 })
  t.is(again.code, 0, again.stderr)
  t.is(JSON.parse(again.stdout).resumedFrom, have)
  t.is(sha(await readFile(out)), sha(data))
  const secondRun = await fetched() - start - firstRun
  const alreadyHad = Math.floor(have / MiB)
  t.log(`chunks ${chunks}; had ${have} bytes (${alreadyHad} whole chunks); second run fetched ${secondRun}`)
  t.true(secondRun <= chunks - alreadyHad, `second run fetched ${secondRun} of ${chunks} chunks though ${alreadyHad} were already here`)

  // Every byte arrived, but the run was killed before its rename: the re-run finds nothing left to fetch and finishes.
  await copyFile(out, `${out}.part`)
  await rm(out)
  await writeFile(`${out}.part.json`, JSON.stringify({ cid, offset: 0, length: null }))
  const done = await mesh(['file', 'get', cid, '-o', out, '--api', net.nodes[reader].api, '--json'])
  t.is(done.code, 0, done.stderr)
  t.is(JSON.parse(done.stdout).resumedFrom, data.length)
  t.is(sha(await readFile(out)), sha(data))
  // An empty range is a file too, and the node is still asked whether the file exists.
  const empty = await mesh(['file', 'get', cid, '-o', join(dir, 'empty.bin'), '--offset', '5', '--length', '0', '--api', net.nodes[reader].api])
  t.is(empty.code, 0, empty.stderr)
  t.is((await readFile(join(dir, 'empty.bin'))).byteLength, 0)
  const unknown = await mesh(['file', 'get', 'bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea', '-o', join(dir, 'none.bin'), '--length', '0', '--api', net.nodes[reader].api])
  t.is(unknown.code, 1, unknown.stderr)
})

test.serial('a frozen replica holder: get still succeeds; once it is declared dead, every chunk is back at 3 replicas within 60 s', async t => {
  const data = randomBytes(8 * MiB)
  const put = await net.client(0).request('POST', '/v1/files?name=repair.bin', { body: data, timeout: null })
  const { cid } = await put.json() as { cid: string }
  const s = await statOf(0, cid)
  t.is(s.holders.length, 3)
  const victim = indexOf(s.holders.find(h => h !== net.nodes[0].peerId)!)
  const reader = [1, 2, 3, 4].find(i => i !== victim && !s.holders.includes(net.nodes[i].peerId))!
  net.freeze(victim)
  t.teardown(() => { net.resume(victim) })

  const t0 = Date.now()
  const res = await net.client(reader, { timeout: 120_000 }).request('GET', `/v1/files/${cid}`)
  t.is(sha(Buffer.from(await res.arrayBuffer())), sha(data))
  t.log(`get with a frozen holder took ${((Date.now() - t0) / 1000).toFixed(1)} s`)

  const victimId = net.nodes[victim].peerId
  await waitFor('the frozen node to be declared dead', async () => {
    const { members } = await net.client(0).members()
    return members.find(m => m.peerId === victimId)?.state === 'dead'
  }, 60_000, 100)
  const deadAt = Date.now()
  await waitFor('every chunk back at 3 replicas', async () => {
    const st = await statOf(reader, cid)
    return st.chunkReplicas.every(c => c.replicas === 3) && !st.holders.includes(victimId)
  }, 60_000, 250)
  t.log(`restored ${((Date.now() - deadAt) / 1000).toFixed(1)} s after the dead declaration`)
  await waitFor('no node to report under-replicated chunks', async () => {
    const under = await Promise.all([0, 1, 2, 3, 4].filter(i => i !== victim).map(async i => await metric(i, 'meshos_files_under_replicated_chunks')))
    return under.every(n => n === 0)
  }, 30_000, 250)
  t.true((await statOf(reader, cid)).chunkReplicas.every(c => c.replicas === 3))
})

test.serial('rm unpins the file and collects its chunks on every replica', async t => {
  // The node frozen by the previous test is back: let every node see all five alive before choosing replicas.
  await net.waitForMembers({ timeout: 60_000 })
  const data = randomBytes(2 * MiB + 1)
  const put = await net.client(2).request('POST', '/v1/files?name=rm.bin&replicas=2', { body: data, timeout: null })
  const { cid, replicas } = await put.json() as { cid: string, replicas: number }
  // A replica can fail during the put (here, right after the previous test froze and resumed a node, a fresh RPC
  // stream to it may still fail); the put then reports fewer replicas and repair adds one. rm is what is tested here,
  // so wait for the file to be whole first.
  if (replicas < 2) t.log(`put stored ${replicas} replica(s); waiting for repair`)
  let s = await statOf(2, cid)
  await waitFor('the file at 2 replicas', async () => {
    s = await statOf(2, cid)
    return s.holders.length === 2 && s.underReplicated === 0
  }, 60_000)
  t.is(s.holders.length, 2)
  const r = await mesh(['file', 'rm', cid, '--api', net.nodes[3].api, '--json'])
  t.is(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  // A surplus copy (a pin that took after it timed out, which the next repair round drops) may be a third holder for
  // a while: rm removes it too. Every copy goes whole, and no node keeps a chunk.
  t.true(out.removed >= 2, JSON.stringify(out))
  t.is(out.collected, 4 * out.removed, 'manifest + 3 chunks on each replica')
  for (const { dataDir } of net.nodes) {
    for (const c of s.chunkReplicas) await t.throwsAsync(stat(join(dataDir, 'files', 'chunks', c.cid.slice(-2), c.cid)))
  }
  const gone = await fetch(`${net.nodes[0].api}/v1/files/${cid}`)
  t.is(gone.status, 404)
  // Node 2 read the manifest before the removal (its stat above): a get there is a clean 404 too, not a 200 and a
  // dropped connection, and stat says the file is gone rather than held by no one.
  const cached = await fetch(`${net.nodes[2].api}/v1/files/${cid}`)
  t.is(cached.status, 404)
  t.is(((await cached.json()) as { error: { code: string } }).error.code, 'NOT_FOUND')
  t.is((await fetch(`${net.nodes[2].api}/v1/files/${cid}/stat`)).status, 404)
  const dir = await tempDir(t)
  const target = join(dir, 'removed.bin')
  const get = await mesh(['file', 'get', cid, '-o', target, '--api', net.nodes[2].api, '--json'])
  t.is(get.code, 1, get.stdout + get.stderr)
  t.is(JSON.parse(get.stdout).error.code, 'NOT_FOUND')
  // Nothing to resume: no partial file and no state file are left behind.
  t.deepEqual(await readdir(dir), [])
})
