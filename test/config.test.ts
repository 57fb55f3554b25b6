import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import { configFromEnv, configFromFile, durationMs, resolveConfig, defaults } from '../node/config.js'
import { MeshError } from '../lib/errors.js'
import { storageEnv } from '../node/storage.js'
import { mesh, tempDir } from './util.js'

const id = '12D3KooWPpq66L6e4HoDvgdFW37tRo8EBxc5D25UgK7TDLccyeRM'

test('defaults are the documented ones', t => {
  const c = resolveConfig()
  t.deepEqual(c.listen, ['/ip4/0.0.0.0/tcp/7946'])
  t.is(c.api, '127.0.0.1:7947')
  t.true(c.dataDir.endsWith('.meshos'))
  t.deepEqual(defaults.bootstrap, [])
})

test('flags win over env, env over the file, the file over defaults', async t => {
  const dir = await tempDir(t)
  const file = join(dir, 'mesh.json')
  await writeFile(file, JSON.stringify({ api: '127.0.0.1:1000', logLevel: 'debug', dataDir: '/tmp/file', listen: ['/ip4/127.0.0.1/tcp/1'] }))
  const env = configFromEnv({ MESH_API_LISTEN: '127.0.0.1:2000', MESH_DATA_DIR: '/tmp/env', MESH_BOOTSTRAP: `/ip4/127.0.0.1/tcp/5/p2p/${id}` })
  const c = resolveConfig(await configFromFile(file), env, { dataDir: '/tmp/flag', listen: undefined })
  t.is(c.dataDir, '/tmp/flag')
  t.is(c.api, '127.0.0.1:2000')
  t.is(c.logLevel, 'debug')
  t.deepEqual(c.listen, ['/ip4/127.0.0.1/tcp/1'])
  t.deepEqual(c.bootstrap, [`/ip4/127.0.0.1/tcp/5/p2p/${id}`])
})

test('a config file takes the flags\' names in camelCase, durations as the flag writes them', async t => {
  const dir = await tempDir(t)
  const file = join(dir, 'mesh.json')
  await writeFile(file, JSON.stringify({ taskRetention: '12h', taskTag: 'gpu', replicationFactor: 1 }))
  const c = resolveConfig(await configFromFile(file))
  t.is(c.taskRetentionMs, 12 * 3_600_000)
  t.deepEqual(c.taskTags, ['gpu'])
  await writeFile(file, JSON.stringify({ taskRetentionMs: '7d', taskTags: ['gpu', 'ssd'] }))
  const d = resolveConfig(await configFromFile(file))
  t.is(d.taskRetentionMs, 7 * 86_400_000)
  t.deepEqual(d.taskTags, ['gpu', 'ssd'])
  await writeFile(file, JSON.stringify({ taskRetention: '12h', taskRetentionMs: 1000 }))
  const err = await t.throwsAsync(configFromFile(file))
  t.is((err as MeshError).code, 'INVALID_CONFIG')
})

test('every bad field is reported by name', t => {
  const err = t.throws(() => resolveConfig({ listen: ['nope'], api: 'x', bootstrap: ['/ip4/1.2.3.4/tcp/1'], logLevel: 'loud', extra: 1 }))
  t.true(err instanceof MeshError)
  t.is((err as MeshError).code, 'INVALID_CONFIG')
  for (const field of ['listen.0', 'api', 'bootstrap.0', 'logLevel', 'extra']) t.true(err!.message.includes(field), `${field} named in: ${err!.message}`)
})

test('the largest KV value is configurable, within bounds that keep one value inside a replica message', t => {
  t.is(resolveConfig().kvMaxValueBytes, 1024 * 1024)
  t.is(resolveConfig({}, configFromEnv({ MESH_KV_MAX_VALUE_BYTES: '2048' })).kvMaxValueBytes, 2048)
  t.is(resolveConfig({}, {}, { kvMaxValueBytes: 4 * 1024 * 1024 }).kvMaxValueBytes, 4 * 1024 * 1024)
  for (const bad of [100, 4 * 1024 * 1024 + 1, 1.5]) {
    const err = t.throws(() => resolveConfig({}, {}, { kvMaxValueBytes: bad }))
    t.is((err as MeshError).code, 'INVALID_CONFIG')
    t.regex(err!.message, /kvMaxValueBytes/)
  }
})

test('how long ended tasks are kept is configurable as a duration, within bounds', t => {
  t.is(resolveConfig().taskRetentionMs, undefined, 'the tasks default (24 h)')
  t.is(resolveConfig({}, configFromEnv({ MESH_TASK_RETENTION: '7d' })).taskRetentionMs, 7 * 86_400_000)
  t.is(resolveConfig({}, {}, { taskRetentionMs: durationMs('90m') }).taskRetentionMs, 90 * 60_000)
  for (const bad of ['soon', '10s', '400d']) {
    const err = t.throws(() => resolveConfig({}, configFromEnv({ MESH_TASK_RETENTION: bad })))
    t.is((err as MeshError).code, 'INVALID_CONFIG')
    t.regex(err!.message, /taskRetentionMs/)
  }
})

test('a bootstrap address whose /p2p/ part is not a peer id is refused by name, before anything starts', t => {
  for (const bad of ['/ip4/127.0.0.1/tcp/1/p2p/1111111111', '/ip4/127.0.0.1/tcp/1/p2p/bafkqaaa']) {
    const err = t.throws(() => resolveConfig({ bootstrap: [bad] }))
    t.is((err as MeshError).code, 'INVALID_CONFIG')
    t.regex(err!.message, /bootstrap\.0: .*valid peer id/)
  }
})

test('mesh start with bad flags exits with a clear one-line error', async t => {
  const dir = await tempDir(t)
  const r = await mesh(['start', '--data-dir', dir, '--listen', 'bogus', '--api', 'nope'])
  t.is(r.code, 78)
  t.regex(r.stderr, /listen\.0: not a valid multiaddr/)
  t.regex(r.stderr, /api: expected HOST:PORT/)
})

test('a config file that is not JSON is a clear error', async t => {
  const dir = await tempDir(t)
  const file = join(dir, 'bad.json')
  await writeFile(file, '{ nope')
  await t.throwsAsync(configFromFile(file), { message: /not valid JSON/ })
  const r = await mesh(['start', '--config', join(dir, 'missing.json')])
  t.is(r.code, 78)
  t.regex(r.stderr, /cannot read config file/)
})

test('every way of starting the daemon passes the Node flags it is meant to start with', async t => {
  const { readFile } = await import('node:fs/promises')
  const { DAEMON_NODE_FLAGS } = await import('../node/gc-tuning.js')
  const root = new URL('../../', import.meta.url)
  const starters = {
    'cli/bin.ts (shebang)': (await readFile(new URL('cli/bin.ts', root), 'utf8')).split('\n')[0],
    'deploy/meshos.service': (await readFile(new URL('deploy/meshos.service', root), 'utf8')).split('\n').find(l => l.startsWith('ExecStart=')) ?? '',
    Dockerfile: (await readFile(new URL('Dockerfile', root), 'utf8')).split('\n').find(l => l.includes('/usr/local/bin/mesh')) ?? ''
  }
  for (const [name, line] of Object.entries(starters)) {
    for (const flag of DAEMON_NODE_FLAGS) t.true(line.includes(flag), `${name} passes ${flag}: ${line}`)
  }
  // The image's daemon starts through that wrapper.
  t.regex((await readFile(new URL('Dockerfile', root), 'utf8')).split('\n').find(l => l.startsWith('ENTRYPOINT')) ?? '', /"\/usr\/local\/bin\/mesh", "start"/)
})

test('the storage test knobs are read from the environment and checked', t => {
  t.deepEqual(storageEnv({}), { antiEntropyInterval: undefined, tombstoneMinAge: undefined, joinDelay: undefined })
  t.deepEqual(storageEnv({ MESH_KV_ANTI_ENTROPY_MS: '100', MESH_KV_TOMBSTONE_MIN_AGE_MS: '0', MESH_KV_JOIN_DELAY_MS: '250' }), { antiEntropyInterval: 100, tombstoneMinAge: 0, joinDelay: 250 })
  for (const name of ['MESH_KV_TOMBSTONE_MIN_AGE_MS', 'MESH_KV_JOIN_DELAY_MS']) {
    for (const bad of ['-1', 'soon', '']) {
      const err = t.throws(() => storageEnv({ [name]: bad }))
      t.is((err as MeshError).code, 'INVALID_CONFIG')
      t.true((err as Error).message.includes(name))
    }
  }
  t.throws(() => storageEnv({ MESH_KV_ANTI_ENTROPY_MS: '10' }), { message: /at least 50/ })
})
