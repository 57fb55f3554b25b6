import test from 'ava'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mesh } from './util.js'

test('mesh --version and mesh help work', async t => {
  const v = await mesh(['--version'])
  t.is(v.code, 0)
  t.regex(v.stdout.trim(), /^\d+\.\d+\.\d+$/)
  const h = await mesh(['help'])
  t.is(h.code, 0)
  for (const cmd of ['start', 'status', 'pubsub', 'testnet']) t.true(h.stdout.includes(cmd), `help lists ${cmd}`)
})

const oneLine = (s: string): boolean => s.trim().split('\n').length === 1 && !s.includes('    at ')

test('an unknown flag gives a one-line error and a non-zero exit', async t => {
  const r = await mesh(['status', '--bogus'])
  t.not(r.code, 0)
  t.true(oneLine(r.stderr), r.stderr)
  t.regex(r.stderr, /unknown option '--bogus'/)
})

test('with --json, an argument error is JSON on stdout too', async t => {
  const r = await mesh(['kv', 'get', 'k', '--consistency', 'bogus', '--json'])
  t.is(r.code, 64)
  t.is(JSON.parse(r.stdout).error.code, 'BAD_REQUEST')
  t.regex(r.stderr, /bogus/)
})

test('with --json, a bad option value is JSON on stdout too; a --json after -- belongs to the task', async t => {
  for (const args of [['task', 'list', '--limit', '0'], ['kv', 'scan', '--prefix', 'x', '--limit', '0'], ['task', 'submit', '--cpu', '0'], ['task', 'wait', 'x', '--timeout', 'soon']]) {
    const r = await mesh([...args, '--json'])
    t.is(r.code, 64, args.join(' '))
    t.is(JSON.parse(r.stdout).error.code, 'BAD_REQUEST', args.join(' '))
  }
  const plain = await mesh(['task', 'submit', '--cpu', '0', '--', 'echo', '--json'])
  t.is(plain.code, 64)
  t.is(plain.stdout, '')
  t.true(oneLine(plain.stderr), plain.stderr)
})

test('task wait --timeout takes a duration, or a whole number of ms as before', async t => {
  for (const timeout of ['5s', '1500', '2m']) {
    const r = await mesh(['task', 'wait', 'x', '--timeout', timeout, '--api', 'http://127.0.0.1:1', '--json'])
    t.is(JSON.parse(r.stdout).error.code, 'NODE_UNREACHABLE', timeout)
  }
})

test('a node that is not reachable gives a one-line error and a non-zero exit', async t => {
  const r = await mesh(['status', '--api', 'http://127.0.0.1:1'])
  t.is(r.code, 69)
  t.true(oneLine(r.stderr), r.stderr)
  t.regex(r.stderr, /cannot reach the mesh node.*NODE_UNREACHABLE/)
  const j = await mesh(['status', '--api', 'http://127.0.0.1:1', '--json'])
  t.is(j.code, 69)
  t.is(JSON.parse(j.stdout).error.code, 'NODE_UNREACHABLE')
  // File transfers go through node:http streams rather than fetch; the same error either way.
  const f = await mesh(['file', 'get', 'bagaaieraeedwvtrscljegwxunep5bbb5oviazxsuhbjkwhw2s4zignafuu3a', '-o', '-', '--api', 'http://127.0.0.1:1', '--json'])
  t.is(f.code, 69)
  t.is(JSON.parse(f.stdout).error.code, 'NODE_UNREACHABLE')
})

test('a malformed argument gives a one-line error and a non-zero exit', async t => {
  const r = await mesh(['status', '--api', 'not a url'])
  t.is(r.code, 64)
  t.true(oneLine(r.stderr), r.stderr)
  t.regex(r.stderr, /--api must be an http\(s\) URL/)
  const n = await mesh(['testnet', '--nodes', 'many'])
  t.is(n.code, 64)
  t.true(oneLine(n.stderr), n.stderr)
})

test('MESH_API is honoured by client commands', async t => {
  const r = await mesh(['status'], { env: { MESH_API: 'http://127.0.0.1:2' } })
  t.is(r.code, 69)
  t.regex(r.stderr, /127\.0\.0\.1:2/)
})

test('a path of this machine that cannot be used is bad input (64), not an internal error; get -o DIR is refused before any transfer', async t => {
  const cases = [
    ['kv', 'put', 'k', '--file', '/nonexistent/value'],
    ['task', 'submit', '--batch', '/nonexistent/tasks.jsonl'],
    ['file', 'get', 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', '-o', '/nonexistent/dir/out.bin'],
    ['file', 'get', 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', '-o', '/tmp']
  ]
  for (const args of cases) {
    // No node listens there: each is refused before the API is asked.
    const r = await mesh([...args, '--api', 'http://127.0.0.1:9', '--json'])
    t.is(r.code, 64, `${args.join(' ')}: ${r.stdout}`)
    const e = JSON.parse(r.stdout).error
    t.is(e.code, 'BAD_REQUEST', args.join(' '))
    t.regex(e.message, /nonexistent|is a directory/, args.join(' '))
  }
})

test('an empty key is refused by name; a read offers no `any` level', async t => {
  const empty = await mesh(['kv', 'put', '', 'v', '--api', 'http://127.0.0.1:9', '--json'])
  t.is(empty.code, 64)
  t.deepEqual(JSON.parse(empty.stdout).error, { code: 'BAD_REQUEST', message: 'the key is empty' })
  const any = await mesh(['kv', 'get', 'k', '--consistency', 'any', '--api', 'http://127.0.0.1:9'])
  t.is(any.code, 64)
  t.regex(any.stderr, /Allowed choices are one, quorum, all/)
})

test('a server that is not a mesh node (a wrong --api) is NODE_UNREACHABLE, and its page never passes for a value', async t => {
  const server = createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<html>not a mesh node</html>') })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const dir = await mkdtemp(join(tmpdir(), 'meshos-wrong-api-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  await writeFile(join(dir, 'in.txt'), 'hello')
  const cid = 'bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea'
  for (const args of [['kv', 'get', 'k'], ['status'], ['file', 'get', cid, '-o', join(dir, 'out.bin')], ['file', 'get', cid, '-o', join(dir, 'part.bin'), '--offset', '2'], ['file', 'put', join(dir, 'in.txt')]]) {
    const r = await mesh([...args, '--api', api, '--json'])
    t.is(r.code, 69, args.join(' '))
    t.is(JSON.parse(r.stdout).error.code, 'NODE_UNREACHABLE', args.join(' '))
    t.false(r.stdout.includes('<html>'), args.join(' '))
  }
  t.deepEqual((await readdir(dir)).sort(), ['in.txt'], 'no page saved as a file, no part left')
})

test('token create in a dir where no node has started says so, and still makes the token for the first start', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'meshos-token-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const r = await mesh(['token', 'create', '--data-dir', join(dir, 'node')])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout.trim(), /^mesh_rw_/)
  t.regex(r.stderr, /no node has started in .*node yet/)
})
