import { createHook } from 'node:async_hooks'
import { join } from 'node:path'
import test from 'ava'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { resolveConfig } from '../node/config.js'
import { MeshNode } from '../node/node.js'
import { tempDir, waitFor } from './util.js'

// Every stateful part's stop() releases everything it holds: a timer of ours left running after stop keeps an
// embedding process (a test runner, a supervisor) alive, and fires into a node that is gone. The task manager's
// grace wait did, for 5 s.

// The repository's root: stack lines name its files as compiled (dist/) or, through source maps, as written.
const root = new URL('../../', import.meta.url).pathname

interface Tracked { timer: { hasRef?: () => boolean, _destroyed?: boolean }, where: string }

test('a stopped node leaves no timer of its own running', async t => {
  const timers = new Map<number, Tracked>()
  const hook = createHook({
    init (id, type, _trigger, resource) {
      if (type !== 'Timeout') return
      // Ours: the timer was set by the project's own code, which is the first frame outside Node itself (and this hook).
      const limit = Error.stackTraceLimit
      Error.stackTraceLimit = 20
      const stack = new Error().stack ?? ''
      Error.stackTraceLimit = limit
      const setter = stack.split('\n').slice(1).find(l => !l.includes('(node:') && !l.includes(' node:') && !l.includes('(<anonymous>)') && !l.includes(root + 'test/') && !l.includes(root + 'dist/test/'))
      const ours = setter != null && setter.includes(root) && !setter.includes('node_modules') ? setter : undefined
      if (ours != null) timers.set(id, { timer: resource as Tracked['timer'], where: ours.trim() })
    },
    destroy (id) { timers.delete(id) }
  })
  hook.enable()
  t.teardown(() => { hook.disable() })

  const nodes: MeshNode[] = []
  for (let i = 0; i < 2; i++) {
    const dataDir = await tempDir(t, 'meshos-stop-')
    const bootstrap = i === 0 ? [] : [nodes[0].addrs()[0]]
    const node = new MeshNode({ config: resolveConfig({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', bootstrap, logLevel: 'silent' }), privateKey: await generateKeyPair('Ed25519') })
    // After its data dir's teardown, so that it runs first (teardowns run last-registered first): a node that the test
    // did not get to stop is stopped before its directory goes.
    t.teardown(async () => { await node.stop({ leave: false }).catch(() => {}) })
    nodes.push(node)
    await node.start()
  }
  const [a, b] = nodes
  await waitFor('the two nodes to see each other alive', () =>
    a.membership.member(b.libp2p.peerId.toString())?.state === 'alive' && b.membership.member(a.libp2p.peerId.toString())?.state === 'alive', 60_000)
  t.true(timers.size > 0, 'running nodes have timers of their own, so the hook sees them')

  for (const n of [b, a]) await n.stop({ leave: false })
  const running = [...timers.values()].filter(x => x.timer.hasRef?.() === true && x.timer._destroyed !== true)
  t.deepEqual(running.map(x => x.where), [], 'timers of ours still running after stop, by the line that set them')
})

test('a stop that comes while the node starts stops everything the start went on to start; a second stop waits for it', async t => {
  const dataDir = await tempDir(t, 'meshos-stop-')
  const node = new MeshNode({ config: resolveConfig({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', logLevel: 'silent' }), privateKey: await generateKeyPair('Ed25519') })
  t.teardown(async () => { await node.stop({ leave: false }).catch(() => {}) })
  const starting = node.start()
  // While the start is under way (a SIGTERM early in `mesh start`). Stopping only what existed then left the API
  // server, storage and tasks running once the start carried on.
  const first = node.stop({ leave: false })
  const second = node.stop({ leave: false })
  await second
  // The second caller got back only once the node was stopped: its store can be opened again at once.
  const { ClassicLevel } = await import('classic-level')
  const db = new ClassicLevel(join(dataDir, 'storage'))
  await db.open()
  await db.close()
  await starting
  await first
  t.false(node.started)
  await t.throwsAsync(fetch(`${node.api.url}/v1/health`))
})
