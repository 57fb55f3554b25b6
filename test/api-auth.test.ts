import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import { MeshClient } from '../cli/client.js'
import { TokenStore, createToken } from '../node/tokens.js'
import { mesh, startDaemon, tempDir, waitFor } from './util.js'

test('an API off loopback refuses to start without a token', async t => {
  const dir = await tempDir(t)
  const d = startDaemon(t, ['--data-dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '0.0.0.0:0'])
  t.is(await d.exited, 78)
  t.regex(d.output(), /not on loopback and no token exists; create one with `mesh token create/)
})

test('with tokens: no token is 401, a read-only token is 403 on writes, a read-write token may write', async t => {
  const dir = await tempDir(t)
  const rw = await mesh(['token', 'create', '--data-dir', dir, '--json'])
  const ro = await mesh(['token', 'create', '--data-dir', dir, '--read-only', '--json'])
  t.is(rw.code, 0, rw.stderr)
  const rwToken = JSON.parse(rw.stdout).token as string
  const roToken = JSON.parse(ro.stdout).token as string
  const d = startDaemon(t, ['--data-dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '0.0.0.0:0'])
  const info = await d.info()
  const api = info.api.replace('0.0.0.0', '127.0.0.1')

  const anon = new MeshClient({ api })
  t.is((await anon.request('GET', '/v1/health')).status, 200, 'health stays public')
  const noToken = await fetch(`${api}/v1/status`)
  t.is(noToken.status, 401)
  t.is(((await noToken.json()) as any).error.code, 'UNAUTHORIZED')
  t.is((await fetch(`${api}/v1/status`, { headers: { authorization: 'Bearer wrong' } })).status, 401)

  const reader = new MeshClient({ api, token: roToken })
  t.is((await reader.status()).peerId, info.peerId)
  const denied = await fetch(`${api}/v1/pubsub/t`, { method: 'POST', body: 'x', headers: { authorization: `Bearer ${roToken}` } })
  t.is(denied.status, 403)
  t.is(((await denied.json()) as any).error.code, 'FORBIDDEN')

  const writer = new MeshClient({ api, token: rwToken })
  t.deepEqual((await writer.publish('t', 'x')).topic, 't')

  const cli = await mesh(['status', '--api', api, '--json'])
  t.is(cli.code, 77)
  t.is(JSON.parse(cli.stdout).error.code, 'UNAUTHORIZED')
  const cliOk = await mesh(['status', '--api', api, '--json'], { env: { MESH_TOKEN: roToken } })
  t.is(cliOk.code, 0, cliOk.stderr)

  // Removing the token file revokes its tokens: they used to keep working until the node restarted.
  await rm(join(dir, 'tokens.json'))
  await waitFor('the removed file\'s tokens to be refused', async () => (await fetch(`${api}/v1/status`, { headers: { authorization: `Bearer ${rwToken}` } })).status === 401, 10_000)
  t.is((await fetch(`${api}/v1/status`, { headers: { authorization: `Bearer ${roToken}` } })).status, 401)
})

test('the token store keeps only hashes and grants each token its access', async t => {
  const dir = await tempDir(t)
  const w = await createToken(dir, 'write')
  const r = await createToken(dir, 'read')
  const text = await (await import('node:fs/promises')).readFile(`${dir}/tokens.json`, 'utf8')
  t.false(text.includes(w.token))
  const store = new TokenStore(dir, 'an-extra-flag-token')
  await store.load()
  t.is(store.check(w.token), 'write')
  t.is(store.check(r.token), 'read')
  t.is(store.check('an-extra-flag-token'), 'write')
  t.is(store.check(w.token.slice(0, -1)), undefined)
})
