import test from 'ava'
import { EventEmitter } from 'node:events'
import { membershipView, DEAD_GRACE_MS, KV_META_KEY, KV_JOINING } from '../node/storage.js'
import type { MeshNode } from '../node/node.js'
import type { MemberInfo, MemberState } from '../membership/index.js'
import { minute, second } from '../lib/units.js'

/**
 * A member table as SWIM keeps it, with its events: the view under test reads nothing else of the node. Time is the
 * test's own (the view reads Date.now).
 */
class Table {
  readonly members = new Map<string, MemberInfo>()
  private readonly emitter = new EventEmitter()
  readonly events = { on: (ev: string, fn: (e: unknown) => void) => { this.emitter.on(ev, fn); return () => { this.emitter.off(ev, fn) } } }
  constructor (readonly peerId: string, readonly clock: { now: number }) {}
  set (peerId: string, state: MemberState, tags: Record<string, string> = {}): void {
    const previous = this.members.get(peerId)?.state
    const info: MemberInfo = { peerId, addrs: [], state, incarnation: 0, meta: { tags } as any, stateSince: this.clock.now }
    this.members.set(peerId, info)
    // As membership/membership.ts says it: back from dead or left is a join.
    const event = state === 'alive' ? (previous === 'dead' || previous === 'left' || previous == null ? 'join' : previous === 'suspect' ? 'alive' : undefined) : state
    if (event != null) this.emitter.emit(event, { member: info, previous })
  }

  /** SWIM forgets dead and left members after a while. */
  reap (peerId: string): void { this.members.delete(peerId) }
  view (): MembershipView {
    const node = { membership: { peerId: this.peerId, members: () => [...this.members.values()], member: (p: string) => this.members.get(p), events: this.events } }
    return membershipView(node as unknown as MeshNode)
  }
}
type MembershipView = ReturnType<typeof membershipView>

function setup (t: import('ava').ExecutionContext): { table: Table, view: MembershipView, clock: { now: number } } {
  const clock = { now: 1_000_000 }
  const real = Date.now
  Date.now = () => clock.now
  t.teardown(() => { Date.now = real })
  const table = new Table('self', clock)
  const view = table.view()
  t.teardown(() => { view.close() })
  table.set('b', 'alive')
  return { table, view, clock }
}

test.serial('a member dead past the ring\'s grace, or gone, is let go of; one dead for less is not', t => {
  const { table, view, clock } = setup(t)
  t.false(view.letGo!('b'))
  table.set('b', 'dead')
  clock.now += DEAD_GRACE_MS - second
  t.false(view.letGo!('b'), 'still in the ring')
  clock.now += 2 * second
  t.true(view.letGo!('b'), 'out of the ring')
  table.set('b', 'alive')
  view.members()
  t.true(view.letGo!('b'), 'back, and not yet joining')
  // Once it says it is joining, the answer is spent: a later short absence is not one the ring let go of.
  table.set('b', 'alive', { [KV_META_KEY]: KV_JOINING })
  view.members()
  t.false(view.letGo!('b'))
  table.set('b', 'dead')
  clock.now += 20 * second
  table.set('b', 'alive')
  t.false(view.letGo!('b'), 'dead for 20 s only')
})

test.serial('a leave counts at once, and a long absence still counts after SWIM has forgotten the member', t => {
  const { table, view, clock } = setup(t)
  table.set('b', 'left')
  t.true(view.letGo!('b'))
  clock.now += 40 * minute
  table.reap('b')
  t.true(view.letGo!('b'), 'asked before it is seen back')
  table.set('b', 'alive')
  t.true(view.letGo!('b'), 'seen back as a new member')
  table.set('c', 'alive')
  table.set('c', 'dead')
  clock.now += 40 * minute
  table.reap('c')
  t.true(view.letGo!('c'))
})

test.serial('a member that came back is told it was let go of for a while, not for ever', t => {
  const { table, view, clock } = setup(t)
  table.set('b', 'dead')
  clock.now += DEAD_GRACE_MS + second
  table.set('b', 'alive')
  clock.now += 9 * minute
  t.true(view.letGo!('b'))
  clock.now += 2 * minute
  t.false(view.letGo!('b'))
})

test.serial('a member let go of in the middle of a join, back with the tag it had, is told so: its join began before', t => {
  const { table, view, clock } = setup(t)
  table.set('b', 'alive', { [KV_META_KEY]: KV_JOINING })
  view.members()
  table.set('b', 'dead', { [KV_META_KEY]: KV_JOINING })
  clock.now += DEAD_GRACE_MS + second
  table.set('b', 'alive', { [KV_META_KEY]: KV_JOINING })
  view.members()
  t.true(view.letGo!('b'))
  // Seen without the tag (its join over), then with it again: that is this return's rejoin.
  table.set('b', 'alive')
  view.members()
  t.true(view.letGo!('b'))
  table.set('b', 'alive', { [KV_META_KEY]: KV_JOINING })
  view.members()
  t.false(view.letGo!('b'))
})
