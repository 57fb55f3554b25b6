import { connect, createServer } from 'node:net'
import { access, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import test, { type ExecutionContext } from 'ava'
import { MeshClient } from '../cli/client.js'
import { startDaemon, tempDir, waitFor } from './util.js'
import { reservePort, releasePort } from '../testnet/index.js'

/** A port of this test's own below the kernel's ephemeral range (see reservePort), given back when the test ends. */
async function freePort (t: ExecutionContext): Promise<number> {
  const port = await reservePort()
  t.teardown(() => { releasePort(port) })
  return port
}

const local = ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--log-level', 'info']

test('a node restarted on the same data dir keeps its peer id, and its key is owner-only', async t => {
  const dir = await tempDir(t)
  const first = startDaemon(t, ['--data-dir', dir, ...local])
  const a = await first.info()
  t.is((await stat(join(dir, 'identity.key'))).mode & 0o777, 0o600)
  first.child.kill('SIGTERM')
  t.is(await first.exited, 0)
  const second = startDaemon(t, ['--data-dir', dir, ...local])
  const b = await second.info()
  t.is(b.peerId, a.peerId)
  const status = await new MeshClient({ api: b.api }).status()
  t.is(status.peerId, a.peerId)
})

test('a second daemon on the same data dir exits with a clear error and the first is unharmed', async t => {
  const dir = await tempDir(t)
  const first = startDaemon(t, ['--data-dir', dir, ...local])
  const info = await first.info()
  const second = startDaemon(t, ['--data-dir', dir, ...local])
  const code = await second.exited
  t.is(code, 73)
  t.regex(second.output(), /data dir .* is in use by another mesh daemon \(pid \d+\).*DATA_DIR_LOCKED/)
  const status = await new MeshClient({ api: info.api }).status()
  t.is(status.peerId, info.peerId)
  t.is(first.child.exitCode, null)
  t.is(Number((await readFile(join(dir, 'mesh.pid'), 'utf8')).trim()), info.pid)
})

test('SIGINT stops the node gracefully and releases the data dir', async t => {
  const dir = await tempDir(t)
  const d = startDaemon(t, ['--data-dir', dir, ...local])
  await d.info()
  d.child.kill('SIGINT')
  t.is(await d.exited, 0)
  await t.throwsAsync(access(join(dir, 'mesh.pid')))
  await t.throwsAsync(access(join(dir, 'node.json')))
  t.regex(d.output(), /stopping gracefully/)
})

test('a bootstrap peer that is down is retried with backoff until it comes up', async t => {
  const seedDir = await tempDir(t)
  const joinerDir = await tempDir(t)
  // Start the seed once to learn its peer id, then stop it so that it is down when the joiner starts.
  const port = await freePort(t)
  const seedArgs = ['--data-dir', seedDir, '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--api', '127.0.0.1:0']
  const once = startDaemon(t, seedArgs)
  const seedInfo = await once.info()
  once.child.kill('SIGTERM')
  await once.exited

  const joiner = startDaemon(t, ['--data-dir', joinerDir, ...local, '--bootstrap', `/ip4/127.0.0.1/tcp/${port}/p2p/${seedInfo.peerId}`])
  const info = await joiner.info()
  await waitFor('a failed bootstrap attempt to be logged', () => joiner.output().includes('bootstrap peer unreachable'))
  t.is(joiner.child.exitCode, null, 'the node does not exit because its bootstrap peer is down')

  startDaemon(t, seedArgs)
  const client = new MeshClient({ api: info.api })
  const status = await waitFor('the joiner to connect to the seed', async () => {
    const s = await client.status()
    return s.connections >= 1 ? s : undefined
  }, 60_000)
  t.true(status.connections >= 1)
})

test('a peer or API address already in use stops the start with LISTEN_FAILED, naming the address', async t => {
  const port = await freePort(t)
  const holder = createServer()
  await new Promise<void>(resolve => holder.listen(port, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise(resolve => holder.close(resolve)) })
  for (const [which, args] of [
    ['peer', ['--listen', `/ip4/127.0.0.1/tcp/${port}`, '--api', '127.0.0.1:0']],
    ['API', ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', `127.0.0.1:${port}`]]
  ] as const) {
    const d = startDaemon(t, ['--data-dir', await tempDir(t), ...args])
    t.is(await d.exited, 71, `${which}: ${d.output()}`)
    t.regex(d.output(), new RegExp(`mesh: cannot (listen on /ip4/127\\.0\\.0\\.1/tcp/${port}|serve the API on 127\\.0\\.0\\.1:${port}): the address is already in use.*\\(LISTEN_FAILED\\)`), which)
  }
})

for (const which of ['peer', 'API'] as const) {
  test(`a start that fails (${which} port taken) leaves no identity behind, so the next start of a seedless node serves KV at once`, async t => {
    await startAfterFailedStart(t, which)
  })
}

async function startAfterFailedStart (t: ExecutionContext, which: 'peer' | 'API'): Promise<void> {
  const dir = await tempDir(t)
  const port = await freePort(t)
  const holder = createServer()
  await new Promise<void>(resolve => holder.listen(port, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise(resolve => holder.close(resolve)) })
  // The API starts last: a start that fails there has run storage (which may have saved its ring peers) first.
  const args = which === 'peer' ? ['--listen', `/ip4/127.0.0.1/tcp/${port}`, '--api', '127.0.0.1:0'] : ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', `127.0.0.1:${port}`]
  const failed = startDaemon(t, ['--data-dir', dir, ...args])
  t.is(await failed.exited, 71, failed.output())
  // A key left by the failed start made the next one take the node for one that had lost its store: it waited, with
  // no seed to ask, for a mesh to rebuild from, and answered every KV request with UNAVAILABLE.
  await t.throwsAsync(access(join(dir, 'identity.key')))
  // A failed start that ran storage long enough left its ring peers behind too: the identity it threw away. The next
  // start's readiness then waited for that member for ever. Left here by hand, as the failure's timing decides it.
  await mkdir(join(dir, 'storage'), { recursive: true })
  await writeFile(join(dir, 'storage', 'peers.json'), JSON.stringify(['12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq']))
  const d = startDaemon(t, ['--data-dir', dir, ...local])
  const { api, peerId } = await d.info()
  const put = await waitFor('a KV put to be taken', async () => {
    const r = await fetch(`${api}/v1/kv/after-failed-start`, { method: 'PUT', body: 'v', headers: { 'content-type': 'application/octet-stream' } })
    return r.status === 503 ? undefined : r
  }, 30_000)
  t.is(put.status, 200, await put.text())
  t.is((await stat(join(dir, 'identity.key'))).mode & 0o777, 0o600)
  d.child.kill('SIGTERM')
  t.is(await d.exited, 0)
  const again = startDaemon(t, ['--data-dir', dir, ...local])
  t.is((await again.info()).peerId, peerId)
}

test('--kv-max-value-bytes sets the largest value the KV API takes, below and above the 1 MiB default; --replication-factor also sets a file\'s copies', async t => {
  for (const limit of [2048, 2 * 1024 * 1024]) {
    const d = startDaemon(t, ['--data-dir', await tempDir(t), ...local, '--replication-factor', '1', '--allow-exec', '--kv-max-value-bytes', String(limit)])
    const api = (await d.info()).api
    const put = async (key: string, size: number): Promise<{ status: number, body: any }> => {
      const r = await fetch(`${api}/v1/kv/${key}`, { method: 'PUT', body: new Uint8Array(size).fill(7), headers: { 'content-type': 'application/octet-stream' } })
      return { status: r.status, body: await r.json() }
    }
    // A node takes KV requests once it knows its ring: a fresh single node does so at once, but retry briefly anyway.
    const fits = await waitFor('a value at the limit to be stored', async () => { const r = await put('at-limit', limit); return r.status === 503 ? undefined : r }, 30_000)
    t.is(fits.status, 200, JSON.stringify(fits.body))
    const got = await fetch(`${api}/v1/kv/at-limit`)
    t.is((await got.arrayBuffer()).byteLength, limit)
    const over = await put('over-limit', limit + 1)
    t.is(over.status, 413)
    t.is(over.body.error.code, 'PAYLOAD_TOO_LARGE')
    // The limit is the KV API's: the node's own records (tasks, stored in the same store) keep their 1 MiB.
    const task = await fetch(`${api}/v1/tasks`, { method: 'POST', body: JSON.stringify({ cmd: 'true', args: ['x'.repeat(6000)] }), headers: { 'content-type': 'application/json' } })
    t.is(task.status, 200, await task.clone().text())
    const id = ((await task.json()) as { id: string }).id
    await waitFor('the task to succeed', async () => ((await (await fetch(`${api}/v1/tasks/${id}`)).json()) as { state: string }).state === 'succeeded', 30_000)
    // --replication-factor is a file's default number of copies as well as a key's.
    const file = await fetch(`${api}/v1/files?name=f.bin`, { method: 'POST', body: new Uint8Array(10).fill(1), headers: { 'content-type': 'application/octet-stream' } })
    t.is(file.status, 200, await file.clone().text())
    t.deepEqual(((await (await fetch(`${api}/v1/files`)).json()) as { files: Array<{ replicas: number }> }).files.map(f => f.replicas), [1])
    d.child.kill('SIGTERM')
    t.is(await d.exited, 0)
  }
})

test('mesh leave stops the node gracefully', async t => {
  const dir = await tempDir(t)
  const d = startDaemon(t, ['--data-dir', dir, ...local])
  const info = await d.info()
  const { mesh } = await import('./util.js')
  const r = await mesh(['leave', '--api', info.api, '--json'])
  t.is(r.code, 0, r.stderr)
  t.is(JSON.parse(r.stdout).leaving, true)
  t.is(await d.exited, 0)
  t.regex(d.output(), /stopping gracefully/)
})

test('a SIGTERM that arrives while a mesh leave is stopping the node does not force its exit', async t => {
  // A node alone stops in about 200 ms: a test worker starved for longer (a loaded machine) sees the stop only once
  // it is over, too late to send the signal during it. Then the scenario is run again; it is never a pass.
  let d: ReturnType<typeof startDaemon> | undefined
  for (let attempt = 1; attempt <= 5 && d == null; attempt++) {
    const dir = await tempDir(t)
    const candidate = startDaemon(t, ['--data-dir', dir, ...local])
    const info = await candidate.info()
    const res = await fetch(`${info.api}/v1/leave`, { method: 'POST' })
    t.is(res.status, 202, await res.text())
    // The operator's next step (`systemctl stop`): it used to count as the second signal, and exited 130 mid-handoff.
    await waitFor('the leave to start stopping the node', async () => /stopping gracefully/.test(candidate.output()), 10_000, 5)
    if (candidate.child.exitCode === null) d = candidate
    else t.log(`attempt ${attempt}: the node had stopped before the signal could be sent; again`)
  }
  if (d == null) { t.fail('the node always stopped before the signal could be sent'); return }
  d.child.kill('SIGTERM')
  t.is(await d.exited, 0, d.output().slice(-2000))
  t.notRegex(d.output(), /forcing exit/)
})

test('a tokenless API refuses foreign Host and Origin headers (DNS rebinding, cross-origin pages)', async t => {
  const dir = await tempDir(t)
  const d = startDaemon(t, ['--data-dir', dir, ...local])
  const info = await d.info()
  const { request } = await import('node:http')
  const url = new URL(info.api)
  const status = async (headers: Record<string, string>): Promise<number> => await new Promise(resolve => {
    const req = request({ host: url.hostname, port: url.port, path: '/v1/status', headers }, res => { res.resume(); resolve(res.statusCode ?? 0) })
    req.end()
  })
  t.is(await status({}), 200)
  t.is(await status({ host: 'localhost:1' }), 200)
  t.is(await status({ host: 'evil.example:7947' }), 403)
  // Names that only look like loopback addresses resolve wherever their owner likes.
  t.is(await status({ host: '127.evil.example' }), 403)
  t.is(await status({ host: '127.0.0.1.nip.io:7947' }), 403)
  t.is(await status({ host: '127.1.2.3:7947' }), 200)
  t.is(await status({ host: '[::1]:7947' }), 200)
  t.is(await status({ origin: 'http://evil.example' }), 403)
  t.is(await status({ origin: `http://127.0.0.1:${url.port}` }), 200)
})

/** Sends `raw` on a new connection, half-closes it, and returns everything the server wrote back. */
async function rawExchange (api: string, raw: string): Promise<string> {
  const url = new URL(api)
  return await new Promise<string>((resolve, reject) => {
    const s = connect(Number(url.port), url.hostname, () => { s.end(raw) })
    let got = ''
    s.on('data', (c) => { got += c.toString() })
    s.on('error', reject)
    s.on('close', () => { resolve(got) })
  })
}

test('requests the HTTP parser refuses get the JSON error and a count, like any other bad request', async t => {
  const d = startDaemon(t, ['--data-dir', await tempDir(t), ...local])
  const { api } = await d.info()
  const split = (reply: string): { status: number, body: any } => {
    const [head, body] = reply.split('\r\n\r\n')
    return { status: Number(head.split(' ')[1]), body: JSON.parse(body) }
  }
  const big = split(await rawExchange(api, `GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`))
  t.is(big.status, 431)
  t.is(big.body.error.code, 'HEADERS_TOO_LARGE')
  const junk = split(await rawExchange(api, 'NOT HTTP AT ALL\r\n\r\n'))
  t.is(junk.status, 400)
  t.is(junk.body.error.code, 'BAD_REQUEST')
  // A body cut short: the client declared 100 bytes, sent 3, and closed its side.
  const cut = split(await rawExchange(api, 'PUT /v1/kv/trunc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\nabc'))
  t.is(cut.status, 400)
  t.is(cut.body.error.code, 'BAD_REQUEST')
  // Bytes that are not UTF-8 in the query were turned into U+FFFD and used as such (a scan of prefix "\uFFFD").
  const badQuery = await fetch(`${api}/v1/kv?prefix=%ff`)
  t.is(badQuery.status, 400)
  t.is(((await badQuery.json()) as { error: { code: string } }).error.code, 'BAD_REQUEST')
  // A lone '%' is not an escape, and is taken as it is, as before; valid UTF-8 escapes too.
  t.not((await fetch(`${api}/v1/kv?prefix=50%`)).status, 400)
  t.not((await fetch(`${api}/v1/kv?prefix=%C3%BF`)).status, 400)
  t.is((await fetch(`${api}/v1/health`)).status, 200, 'the node still serves')
  const metrics = await (await fetch(`${api}/metrics`)).text()
  t.regex(metrics, /^meshos_api_malformed_requests_total\{reason="HPE_HEADER_OVERFLOW"\} 1$/m)
  t.regex(metrics, /^meshos_api_requests_total\{method="GET",route="\/v1\/health",status="200"\} 1$/m, metrics.split('\n').filter(l => l.startsWith('meshos_api')).join('\n'))
})

test('a node listening beyond loopback without a network key says so in its log; one on loopback does not', async t => {
  const open = startDaemon(t, ['--data-dir', await tempDir(t), '--listen', '/ip4/0.0.0.0/tcp/0', '--api', '127.0.0.1:0'])
  await open.info()
  await waitFor('the warning', () => open.output().includes('without a network key'), 30_000)
  const closed = startDaemon(t, ['--data-dir', await tempDir(t), ...local])
  await closed.info()
  await waitFor('node started', () => closed.output().includes('node started'), 30_000)
  t.false(closed.output().includes('without a network key'))
  for (const d of [open, closed]) d.child.kill('SIGTERM')
  t.deepEqual(await Promise.all([open.exited, closed.exited]), [0, 0])
})
