import anyTest, { type TestFn } from 'ava'
import { createTestnet, type Testnet } from '../testnet/index.js'

/*
 * Membership on real `mesh start` processes over TCP: a frozen process is declared dead and refutes when
 * it wakes up; a graceful stop is a `left`, never a `dead`. Everything is observed through /v1/members.
 */

const test = anyTest as TestFn<{ net: Testnet }>

interface Member { peerId: string, state: string, incarnation: number }

async function viewOf (net: Testnet, observer: number, subject: string): Promise<Member | undefined> {
  const { members } = await net.client(observer, { timeout: 5000 }).members()
  return (members as Member[]).find(m => m.peerId === subject)
}

/** Every observer's view of `subject`, polled until `check` holds for all of them. */
async function waitAll (net: Testnet, observers: number[], subject: string, what: string, check: (m: Member | undefined) => boolean, onView?: (m: Member | undefined) => void): Promise<Array<Member | undefined>> {
  let seen: Array<Member | undefined> = []
  await net.waitFor(what, async () => {
    const views = await Promise.all(observers.map(async i => await viewOf(net, i, subject)))
    for (const v of views) onView?.(v)
    seen = views
    return views.every(check)
  }, 30_000, 50)
  return seen
}

test.before(async t => {
  t.context.net = await createTestnet(5, { logLevel: 'warn' })
})

test.after.always(async t => {
  await t.context.net?.stop()
})

test.serial('a frozen node is declared dead by all others, and is alive again with a higher incarnation after SIGCONT', async t => {
  const { net } = t.context
  const victim = 4
  const others = [0, 1, 2, 3]
  const subject = net.nodes[victim].peerId
  const before = Math.max(...await Promise.all(others.map(async i => (await viewOf(net, i, subject))?.incarnation ?? -1)))
  t.true(before >= 0, 'every node knows the victim before it is frozen')

  net.freeze(victim)
  try {
    await waitAll(net, others, subject, 'every other node to mark the frozen node dead', m => m?.state === 'dead')
  } finally {
    net.resume(victim)
  }

  // The views that met the condition, all at once: polling again could catch a fresh, legitimate suspicion of a node
  // that has just woken on a loaded machine.
  const views = await waitAll(net, others, subject, 'every other node to see the resumed node alive again', m => m?.state === 'alive' && m.incarnation > before)
  for (const [k, i] of others.entries()) {
    const m = views[k]
    t.is(m?.state, 'alive', `node ${i}`)
    t.true((m?.incarnation ?? -1) > before, `node ${i}: incarnation ${m?.incarnation} > ${before}`)
  }
})

test.serial('a graceful stop shows as left, never dead, on all others', async t => {
  const { net } = t.context
  // Start from a healthy cluster: the previous test's refutation may still be spreading.
  await net.waitForMembers({ alive: 5 })
  const leaver = 3
  const others = [0, 1, 2, 4]
  const subject = net.nodes[leaver].peerId
  const seen = new Set<string>()
  await net.stopNode(leaver)
  await waitAll(net, others, subject, 'every other node to mark the stopped node left', m => m?.state === 'left', m => { if (m != null) seen.add(m.state) })
  t.false(seen.has('dead'), `states observed while leaving: ${[...seen].join(', ')}`)
  // Still left a little later: a late suspicion must not turn the leave into a death.
  for (const i of others) t.is((await viewOf(net, i, subject))?.state, 'left', `node ${i}`)
})
