import { spawnSync } from 'node:child_process'
import test from 'ava'
import { createTestnet } from '../testnet/index.js'
import { waitFor } from './util.js'

const promtool = spawnSync('promtool', ['--version']).status === 0

test('/metrics passes promtool check metrics and covers the subsystems', async t => {
  const net = await createTestnet(2, { logLevel: 'warn' })
  t.teardown(async () => { await net.stop() })
  // Some traffic, so that labelled series exist.
  await net.client(0).members()
  const res = await net.client(0).request('GET', '/metrics')
  t.regex(res.headers.get('content-type') ?? '', /^text\/plain/)
  const text = await res.text()
  for (const family of ['meshos_membership_', 'meshos_rpc_', 'libp2p_', 'meshos_process_']) t.true(text.includes(family), `has ${family}*`)

  // The KV engine's commits are counted: a durable write is at least one fsynced commit.
  await waitFor('a kv write', async () => await net.client(0).request('PUT', '/v1/kv/metrics-probe?consistency=one', { body: 'x' }))
  const after = await (await net.client(0).request('GET', '/metrics')).text()
  const value = (line: string): number => Number(after.split('\n').find(l => l.startsWith(line))?.split(' ').pop() ?? NaN)
  t.true(value('meshos_kv_engine_writes_total ') >= 1)
  t.true(value('meshos_kv_engine_commits_total{synced="true"} ') >= 1)
  if (!promtool) {
    // CI installs Debian's prometheus package (.ci/run); a developer machine may lack it.
    t.log('promtool not installed: only the content was checked')
    return
  }
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text })
  t.is(check.status, 0, check.stdout.toString() + check.stderr.toString())
})
