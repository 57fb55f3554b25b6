import test, { type ExecutionContext } from 'ava'
import { systemClock } from '../lib/clock.js'
import { MeshError } from '../lib/errors.js'
import { KeyNotFoundError, LocalMembership, type StorageInit, type ReplicaService } from '../storage/index.js'
import { Cluster, fastInit, waitFor, text } from './storage-helpers.js'

// A ring grace of a second stands for the 45 s a daemon's ring keeps a member that is down, and no clock slack: these
// nodes share one clock. The tests run one at a time: a test process whose event loop stalls past the grace (twenty
// clusters at once on a loaded machine did) passes for a frozen one, and its replicas check themselves.
const ringGrace = 1000
const init: StorageInit = {
  ...fastInit,
  replicationFactor: 3,
  absence: { ringGrace, aliveInterval: 50, clockSlack: 0, retryInterval: 20, timeout: 2000 },
  // A replica back from an absence joins again; these nodes share one membership, which every member hears at once.
  joinDelay: 0
}

/** Stops `id` gracefully and takes it out of the ring, as the others do with a member that stays down. */
async function away (c: Cluster, id = 'node-3'): Promise<number> {
  await c.stopNode(id)
  c.membership.drop(id)
  return Date.now()
}

/** Waits out the ring's grace (the clock, not an event: the absence itself is what is measured), then restarts node-3. */
async function comeBack (c: Cluster, since: number, grace = ringGrace): Promise<void> {
  await waitFor(() => Date.now() - since > grace * 2, 'the absence to outlast the ring grace')
  c.membership.join('node-3')
  await c.startNode('node-3')
}

async function settled (c: Cluster, id: string): Promise<void> {
  await waitFor(async () => {
    const s = await c.node(id).stats()
    return s.ready && !s.quarantined && !s.rebuilding && !s.joining
  }, `${id} back in service`)
}

async function purgedOnOthers (c: Cluster, key: string): Promise<void> {
  await waitFor(async () => (await c.node('node-1').service.getStored(key)) == null && (await c.node('node-2').service.getStored(key)) == null, `${key}'s tombstone purged on nodes 1 and 2`)
}

/**
 * Writes `zombie` (and `kept`) to all three, takes node-3 away, deletes `zombie` and waits until nodes 1 and 2 have
 * purged its tombstone: node-3 then holds the only version of the key, the deleted value.
 */
async function missedDelete (c: Cluster, beforeLeaving?: () => Promise<void>): Promise<number> {
  await c.node('node-1').put('zombie', 'old', { consistency: 'all' })
  await c.node('node-1').put('kept', 'x', { consistency: 'all' })
  await beforeLeaving?.()
  const since = await away(c)
  await c.node('node-1').delete('zombie', { consistency: 'all' })
  await purgedOnOthers(c, 'zombie')
  return since
}

/** Holds node's answers to `purges` until the returned function is called. */
function holdPurges (service: ReplicaService): () => void {
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  const purges = service.purges.bind(service)
  service.purges = async (req, signal) => { await gate; return await purges(req, signal) }
  return release
}

const value = (s: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(s)

/** `key` is held by none of `holders`, and a read of it through node-1 at `consistency` finds it deleted. */
async function staysDeleted (t: ExecutionContext, c: Cluster, key: string, holders: string[], consistency: 'quorum' | 'all' = 'all'): Promise<void> {
  for (const id of holders) t.is(await c.node(id).service.getStored(key), undefined, `${key} on ${id}`)
  await t.throwsAsync(c.node('node-1').get(key, { consistency }), { instanceOf: KeyNotFoundError })
}

test.serial('a replica away while a delete it missed was purged everywhere else does not bring the value back', async t => {
  const c = await Cluster.create(t, 3, init)
  const since = await missedDelete(c)
  await comeBack(c, since)
  await settled(c, 'node-3')
  await t.throwsAsync(c.node('node-1').get('zombie', { consistency: 'all' }), { instanceOf: KeyNotFoundError })
  t.is(await c.node('node-3').service.getStored('zombie'), undefined)
  // What is not deleted comes back to it from its co-replicas.
  t.is(text((await c.node('node-3').get('kept', { consistency: 'one', replica: 'node-3' })).value), 'x')
})

test.serial('without the guard the same absence brings the deleted value back (what the guard is for)', async t => {
  const c = await Cluster.create(t, 3, { ...init, absence: { ...init.absence, enabled: false } })
  const since = await missedDelete(c)
  await comeBack(c, since)
  await waitFor(async () => await c.node('node-1').get('zombie', { consistency: 'all' }).then(() => true, () => false), 'anti-entropy to copy the old value back')
  t.is(text((await c.node('node-1').get('zombie', { consistency: 'all' })).value), 'old')
})

// A daemon that crashes before it first saves its ring members starts again with the hint that it may have been wiped.
// Its data says otherwise: it was checked as a wiped replica is not, and a delete it missed came back.
test.serial('a replica started as if wiped, whose data shows it was in service, is checked like any replica back from an absence', async t => {
  const c = await Cluster.create(t, 3, init)
  const since = await missedDelete(c)
  await waitFor(() => Date.now() - since > ringGrace * 2, 'the absence to outlast the ring grace')
  c.membership.join('node-3')
  await c.startNode('node-3', { rebuild: true })
  await settled(c, 'node-3')
  await staysDeleted(t, c, 'zombie', ['node-1', 'node-2', 'node-3'])
  t.is(text((await c.node('node-1').get('kept', { consistency: 'one', replica: 'node-3' })).value), 'x')
})

test.serial('a replica whose first start finds most of the ring down records that it is in service all the same: started again as if wiped, it keeps its data', async t => {
  const view = new LocalMembership(['node-1', 'node-2', 'node-3'])
  view.setAlive('node-1', false)
  view.setAlive('node-2', false)
  const c = await Cluster.create(t, 3, init, {}, { 'node-3': view })
  const ts = { wall: BigInt(Date.now()), logical: 0, node: 'node-1' }
  await c.node('node-3').service.write({ records: [{ key: 'taken', value: value('v'), ts, tombstone: false, expiresAt: 0n }] })
  await c.stopNode('node-3')
  await c.startNode('node-3', { rebuild: true })
  t.false((await c.node('node-3').stats()).rebuilding, 'not taken for a wiped replica')
  t.is(text((await c.node('node-3').service.getStored('taken'))?.record?.value ?? new Uint8Array()), 'v')
})

test.serial('a replica keeps its data when nothing that died while it was away was purged', async t => {
  // A longer grace: a stall of the test process past it during the delete (a loaded machine) left node-3's last
  // record of service from before the delete, and the purge of it then rightly counted as one it may have missed.
  const grace = 3 * ringGrace
  const c = await Cluster.create(t, 3, { ...init, absence: { ...init.absence, ringGrace: grace } })
  await c.node('node-1').put('kept', 'x', { consistency: 'all' })
  // node-3's records of being in service, as AbsenceGuard makes them.
  const service = c.node('node-3').service
  const mark = service.markAlive.bind(service)
  let marked = 0
  service.markAlive = async (at, ring) => { await mark(at, ring); marked = Math.max(marked, at) }
  // Deleted before it left: it holds the tombstone, and the others' purge of it while it is away changes nothing.
  await c.node('node-1').put('gone', 'y', { consistency: 'all' })
  const deleted = Number((await c.node('node-1').delete('gone', { consistency: 'all' })).timestamp.wall)
  // It has recorded being in service since the delete. (A stall of this process past the grace in between, on a loaded
  // machine, otherwise left its last record from before the delete, which then rightly counted as possibly missed.)
  await waitFor(() => marked > deleted, 'node-3 to record that it was in service after the delete')
  const since = await away(c)
  await purgedOnOthers(c, 'gone')
  await comeBack(c, since, grace)
  await settled(c, 'node-3')
  const stored = await c.node('node-3').service.getStored('kept')
  t.is(text(stored?.record?.value ?? new Uint8Array()), 'x')
  // The record it held before, not a copy pulled again by a rebuild.
  t.true(Number(stored?.storedAt) < since)
  // Its tombstone of the deleted key (if its own GC has not purged it yet), not a value. (A read at ALL could race that
  // purge: a digest of the tombstone, then no record left to fetch, answers UNAVAILABLE.)
  const gone = await c.node('node-3').service.getStored('gone')
  t.true(gone == null || gone.record?.tombstone === true)
})

test.serial('until the members answer, a returning replica serves no data, sends none, and keeps the writes it takes', async t => {
  const c = await Cluster.create(t, 3, init)
  const since = await missedDelete(c)
  const releases = [holdPurges(c.node('node-1').service), holdPurges(c.node('node-2').service)]
  await comeBack(c, since)
  const s3 = c.node('node-3')
  t.true(s3.service.quarantined)
  t.false((await s3.stats()).ready)
  await t.throwsAsync(s3.service.read({ key: 'zombie', digestOnly: false }), { code: 'UNAVAILABLE' })
  await t.throwsAsync(s3.service.merkle({ ranges: [], depth: 0 }), { code: 'UNAVAILABLE' })
  await t.throwsAsync(s3.service.fetch({ keys: ['zombie'] }), { code: 'UNAVAILABLE' })
  await t.throwsAsync(s3.get('zombie', { consistency: 'one', replica: 'node-3' }))
  // Its own background work waits too: the others run many anti-entropy rounds, and none brings the value back.
  const rounds = c.node('node-1').antiEntropy.stats().rounds
  await waitFor(() => c.node('node-1').antiEntropy.stats().rounds > rounds + 20, 'anti-entropy rounds on node-1')
  t.is(await c.node('node-1').service.getStored('zombie'), undefined)
  t.is(await c.node('node-2').service.getStored('zombie'), undefined)
  // A write that only it takes meanwhile is new, and stays: the rebuild could not bring it back from anyone.
  const ts = { wall: BigInt(Date.now()), logical: 0, node: 'node-9' }
  await s3.service.write({ records: [{ key: 'only3', value: value('new'), ts, tombstone: false, expiresAt: 0n }] })
  for (const release of releases) release()
  await settled(c, 'node-3')
  t.is(await s3.service.getStored('zombie'), undefined)
  t.is(text((await s3.service.getStored('only3'))?.record?.value ?? new Uint8Array()), 'new')
})

test.serial('a member that does not answer is waited for, until it answers or the ring drops it', async t => {
  const c = await Cluster.create(t, 3, init)
  await c.node('node-1').put('kept', 'x', { consistency: 'all' })
  const since = await away(c)
  c.network.setDown('node-2', 'throw')
  await comeBack(c, since)
  const rounds = c.node('node-1').antiEntropy.stats().rounds
  await waitFor(() => c.node('node-1').antiEntropy.stats().rounds > rounds + 20, 'time to pass on node-1')
  t.true(c.node('node-3').service.quarantined, 'no decision while a member is silent')
  // node-2 leaves the ring (as a daemon's view drops a member dead past its grace): node-1's answer decides.
  c.membership.drop('node-2')
  await settled(c, 'node-3')
  const stored = await c.node('node-3').service.getStored('kept')
  t.true(Number(stored?.storedAt) < since, 'nothing purged: its data kept')
})

test.serial('a rebuild the check decided survives a restart of the replica before it ends', async t => {
  const c = await Cluster.create(t, 3, init)
  const since = await missedDelete(c)
  // node-2 answers the check but takes no part in anti-entropy, so the rebuild cannot end.
  c.network.unknownMethods.set('node-2', new Set(['merkle', 'fetchRange', 'fetch']))
  await comeBack(c, since)
  await waitFor(async () => (await c.node('node-3').stats()).rebuilding, 'the rebuild to begin')
  await c.stopNode('node-3')
  await c.startNode('node-3')
  await waitFor(async () => (await c.node('node-3').stats()).rebuilding, 'the rebuild to resume after the restart')
  await t.throwsAsync(c.node('node-3').get('kept', { consistency: 'one', replica: 'node-3' }))
  c.network.unknownMethods.delete('node-2')
  await settled(c, 'node-3')
  t.is(text((await c.node('node-3').get('kept', { consistency: 'one', replica: 'node-3' })).value), 'x')
  t.is(await c.node('node-3').service.getStored('zombie'), undefined)
})

test.serial('away again before an earlier rebuild ended: the replica checks afresh, and drops what it took meanwhile too', async t => {
  const c = await Cluster.create(t, 3, init)
  // As a replica leaves it when it goes down in the middle of a rebuild that would drop nothing more.
  const since = await missedDelete(c, async () => { await c.node('node-3').service.setAbsence({ phase: 'rebuilding', before: 0, awayFrom: 0 }) })
  await comeBack(c, since)
  await settled(c, 'node-3')
  t.is(await c.node('node-3').service.getStored('zombie'), undefined)
  await t.throwsAsync(c.node('node-1').get('zombie', { consistency: 'all' }), { instanceOf: KeyNotFoundError })
})

test.serial('a member of a version that cannot say what it purged is taken to have purged nothing', async t => {
  const c = await Cluster.create(t, 3, init)
  await c.node('node-1').put('kept', 'x', { consistency: 'all' })
  const since = await away(c)
  c.network.unknownMethods.set('node-1', new Set(['purges']))
  c.network.unknownMethods.set('node-2', new Set(['purges']))
  await comeBack(c, since)
  await settled(c, 'node-3')
  t.true(Number((await c.node('node-3').service.getStored('kept'))?.storedAt) < since, 'its data kept')
})

/**
 * Freezes node-3 (its clock stands still, as a stopped process's does, its background work stops and it answers
 * nothing) while the others drop it from their ring and purge the delete it missed; then its clock jumps back.
 */
async function freezeWhileDeleted (c: Cluster, frozen: { at?: number }): Promise<void> {
  await c.node('node-1').put('zombie', 'old', { consistency: 'all' })
  frozen.at = systemClock.now()
  await c.node('node-3').antiEntropy.stop()
  c.network.setDown('node-3', 'timeout')
  c.membership.drop('node-3')
  await c.node('node-1').delete('zombie', { consistency: 'all' })
  await purgedOnOthers(c, 'zombie')
  await waitFor(() => systemClock.now() - (frozen.at as number) > ringGrace * 2, 'the freeze to outlast the ring grace')
  frozen.at = undefined
}

function freezableClock (frozen: { at?: number }): typeof systemClock {
  return { ...systemClock, now: () => frozen.at ?? systemClock.now() }
}

test.serial('a replica frozen past the grace, and back without a restart, is checked before it serves or sends anything', async t => {
  const frozen: { at?: number } = {}
  const c = await Cluster.create(t, 3, init, { 'node-3': freezableClock(frozen) })
  const n3 = c.node('node-3')
  await freezeWhileDeleted(c, frozen)
  // Resumed: it answers again, and its background work goes on where it stopped.
  c.membership.join('node-3')
  c.network.setDown('node-3', false)
  n3.antiEntropy.start()
  await settled(c, 'node-3')
  t.is(await n3.service.getStored('zombie'), undefined)
  await t.throwsAsync(c.node('node-1').get('zombie', { consistency: 'all' }), { instanceOf: KeyNotFoundError })
  t.is(await c.node('node-1').service.getStored('zombie'), undefined)
})

test.serial('a replica stopped right after a freeze it has not yet noticed leaves the absence for its next start to find', async t => {
  const frozen: { at?: number } = {}
  const c = await Cluster.create(t, 3, init, { 'node-3': freezableClock(frozen) })
  await freezeWhileDeleted(c, frozen)
  await c.stopNode('node-3')
  c.network.setDown('node-3', false)
  c.membership.join('node-3')
  await c.startNode('node-3')
  await settled(c, 'node-3')
  t.is(await c.node('node-3').service.getStored('zombie'), undefined)
  await t.throwsAsync(c.node('node-1').get('zombie', { consistency: 'all' }), { instanceOf: KeyNotFoundError })
})

/**
 * Cuts `inside` off from the rest of the ring: no request crosses, each side holds the other dead (`view` is how the
 * inside sees the ring; the shared membership is how the outside does). Returns when the cut began.
 */
function cut (c: Cluster, inside: string[], view: LocalMembership): number {
  const outside = c.ids.filter(id => !inside.includes(id))
  for (const a of inside) for (const b of outside) c.network.sever(a, b)
  for (const a of inside) c.membership.setAlive(a, false)
  for (const b of outside) view.setAlive(b, false)
  return Date.now()
}

function mendCut (c: Cluster, inside: string[]): void {
  for (const a of inside) for (const b of c.ids.filter(id => !inside.includes(id))) c.network.mend(a, b)
}

async function outlastGrace (since: number): Promise<void> {
  await waitFor(() => Date.now() - since > ringGrace * 2, 'the cut to outlast the ring grace')
}

/** Time passing, measured in node's anti-entropy rounds rather than slept. */
async function rounds (c: Cluster, id: string, n = 20): Promise<void> {
  const start = c.node(id).antiEntropy.stats().rounds
  await waitFor(() => c.node(id).antiEntropy.stats().rounds > start + n, `${n} anti-entropy rounds on ${id}`)
}

/**
 * node-3 cut off alone while `zombie` is deleted and purged by the others (each side's ring drops the other); then, if
 * `minorityWrite`, it takes `minority` at ONE. Returns when the cut began.
 */
async function cutWhileDeleted (c: Cluster, view: LocalMembership, minorityWrite = true): Promise<number> {
  await c.node('node-1').put('zombie', 'old', { consistency: 'all' })
  await c.node('node-1').put('kept', 'x', { consistency: 'all' })
  const since = cut(c, ['node-3'], view)
  c.membership.drop('node-3')
  view.drop('node-1')
  view.drop('node-2')
  await c.node('node-1').delete('zombie', { consistency: 'all' })
  await purgedOnOthers(c, 'zombie')
  if (minorityWrite) await c.node('node-3').put('minority', 'taken in the cut', { consistency: 'one' })
  return since
}

test.serial('healed on one side first: the others reach a replica that still holds them dead, and get nothing from it until it is checked', async t => {
  const view = new LocalMembership(['node-1', 'node-2', 'node-3'])
  const c = await Cluster.create(t, 3, init, {}, { 'node-3': view })
  const since = await cutWhileDeleted(c, view, false)
  await outlastGrace(since)
  // The others see node-3 again first, and their anti-entropy asks it for its data; it still holds them dead.
  mendCut(c, ['node-3'])
  c.membership.join('node-3')
  await rounds(c, 'node-1')
  const n3 = c.node('node-3')
  t.is(await c.node('node-1').service.getStored('zombie'), undefined)
  t.is(await c.node('node-2').service.getStored('zombie'), undefined)
  t.true(n3.service.quarantined, 'a request from beyond the cut quarantines it')
  // Its own ring, without the others, has no one to ask what was purged: the check waits until it sees them.
  t.true(n3.service.quarantined, 'no decision out of sight of the ring')
  view.join('node-1')
  view.join('node-2')
  await settled(c, 'node-3')
  t.is(await n3.service.getStored('zombie'), undefined)
  await t.throwsAsync(c.node('node-1').get('zombie', { consistency: 'all' }), { instanceOf: KeyNotFoundError })
  t.is(text((await n3.get('kept', { consistency: 'one', replica: 'node-3' })).value), 'x')
})

function healCut (c: Cluster, view: LocalMembership): void {
  mendCut(c, ['node-3'])
  c.membership.join('node-3')
  view.join('node-1')
  view.join('node-2')
}

test.serial('a write a replica took on its side of a cut, after the others\' last purge, survives the rebuild its return decides', async t => {
  const view = new LocalMembership(['node-1', 'node-2', 'node-3'])
  const c = await Cluster.create(t, 3, init, {}, { 'node-3': view })
  // `minority` is stamped after every purge: no purged delete can have deleted it. (Taken at ONE here; a minority of
  // two replicas of a key meets its quorum the same way.)
  const since = await cutWhileDeleted(c, view)
  const n3 = c.node('node-3')
  await outlastGrace(since)
  healCut(c, view)
  await settled(c, 'node-3')
  await staysDeleted(t, c, 'zombie', ['node-1', 'node-2', 'node-3'])
  t.is(text((await n3.service.getStored('minority'))?.record?.value ?? new Uint8Array()), 'taken in the cut')
  await waitFor(async () => await c.node('node-1').get('minority', { consistency: 'all' }).then(r => text(r.value) === 'taken in the cut', () => false), 'the write taken in the cut on every replica')
  t.is(text((await c.node('node-1').get('kept', { consistency: 'one', replica: 'node-3' })).value), 'x')
})

test.serial('a member that cannot say what it purged, beside one that purged, leaves the rebuild nothing to keep', async t => {
  const view = new LocalMembership(['node-1', 'node-2', 'node-3'])
  const c = await Cluster.create(t, 3, init, {}, { 'node-3': view })
  const since = await cutWhileDeleted(c, view)
  // Its purges may be later than node-1's, and the write taken in the cut may be one of the values they deleted.
  c.network.unknownMethods.set('node-2', new Set(['purges']))
  await outlastGrace(since)
  healCut(c, view)
  await settled(c, 'node-3')
  await staysDeleted(t, c, 'zombie', ['node-1', 'node-2', 'node-3'])
  t.is(await c.node('node-3').service.getStored('minority'), undefined)
})

test.serial('a member the others report, but that the check did not hear, leaves the rebuild nothing to keep', async t => {
  const view = new LocalMembership(['node-1', 'node-2', 'node-3'])
  const c = await Cluster.create(t, 3, init, {}, { 'node-3': view })
  const since = await cutWhileDeleted(c, view)
  // node-2 has since purged a record that died after the write node-3 took, which may be one it deleted.
  await c.node('node-2').service.notePurging(Date.now() + 1)
  await outlastGrace(since)
  // Back in touch through node-1 alone: node-2, dropped from node-3's ring during the cut, is not asked.
  mendCut(c, ['node-3'])
  c.membership.join('node-3')
  view.join('node-1')
  await settled(c, 'node-3')
  t.is(await c.node('node-3').service.getStored('minority'), undefined)
  view.join('node-2')
  await staysDeleted(t, c, 'zombie', ['node-1', 'node-2', 'node-3'])
})

test.serial('a member that never answers holds a check that has heard of a purge only for a while: the rebuild then keeps nothing', async t => {
  const view = new LocalMembership(['node-1', 'node-2', 'node-3'])
  const c = await Cluster.create(t, 3, init, {}, { 'node-3': view })
  const since = await cutWhileDeleted(c, view)
  // Alive to membership, but its answers never come (a stuck store, a one-way link).
  const release = holdPurges(c.node('node-2').service)
  t.teardown(release)
  await outlastGrace(since)
  healCut(c, view)
  await settled(c, 'node-3')
  await staysDeleted(t, c, 'zombie', ['node-1', 'node-3'])
  t.is(await c.node('node-3').service.getStored('minority'), undefined)
})

test.serial('cut off with others, a replica serves them on; the first peer from beyond the cut quarantines it until it sees the ring', async t => {
  const ids = ['node-1', 'node-2', 'node-3', 'node-4', 'node-5']
  const minority = new LocalMembership(ids)
  const c = await Cluster.create(t, 5, init, {}, { 'node-4': minority, 'node-5': minority })
  await c.node('node-1').put('k', 'v', { consistency: 'all' })
  const since = cut(c, ['node-4', 'node-5'], minority)
  await outlastGrace(since)
  const s4 = c.node('node-4').service
  // The rest of the minority was cut off with it, and purged nothing it did not see.
  await s4.read({ key: 'k', digestOnly: false }, undefined, 'node-5')
  await s4.merkle({ ranges: [], depth: 0 }, undefined, 'node-5')
  t.false(s4.quarantined)
  await t.throwsAsync(s4.merkle({ ranges: [], depth: 0 }, undefined, 'node-1'), { code: 'UNAVAILABLE' })
  t.true(s4.quarantined)
  await t.throwsAsync(s4.read({ key: 'k', digestOnly: false }, undefined, 'node-5'), { code: 'UNAVAILABLE' })
  await rounds(c, 'node-1')
  t.true(s4.quarantined, 'no decision out of sight of the ring')
  mendCut(c, ['node-4', 'node-5'])
  for (const id of ['node-1', 'node-2', 'node-3']) minority.setAlive(id, true)
  for (const id of ['node-4', 'node-5']) c.membership.setAlive(id, true)
  await settled(c, 'node-4')
  await settled(c, 'node-5')
  t.true(Number((await s4.getStored('k'))?.storedAt ?? 0) < since || (await s4.getStored('k')) == null, 'nothing purged: its data kept')
})

test.serial('a replica cut off alone that sees a peer from beyond the cut alive again quarantines itself before sending it anything', async t => {
  const ids = ['node-1', 'node-2', 'node-3', 'node-4', 'node-5']
  const view = new LocalMembership(ids)
  const c = await Cluster.create(t, 5, init, {}, { 'node-5': view })
  const since = cut(c, ['node-5'], view)
  await outlastGrace(since)
  await rounds(c, 'node-1')
  await c.node('node-5').stats()
  t.false(c.node('node-5').service.quarantined, 'nothing yet says it is back')
  // One peer in sight is not most of the ring, but it is contact: node-5's anti-entropy would send it data.
  c.network.mend('node-5', 'node-1')
  view.setAlive('node-1', true)
  await waitFor(() => c.node('node-5').service.quarantined, 'node-5 to quarantine itself')
  t.false((await c.node('node-5').stats()).ready)
  await rounds(c, 'node-1')
  t.true(c.node('node-5').service.quarantined, 'the members beyond the cut are waited for')
  mendCut(c, ['node-5'])
  for (const id of ['node-2', 'node-3', 'node-4']) view.setAlive(id, true)
  c.membership.setAlive('node-5', true)
  await settled(c, 'node-5')
})

test.serial('survivors of a mesh that lost most of its members for good are not held by a new member that asks them for data', async t => {
  const c = await Cluster.create(t, 5, init)
  await c.node('node-1').put('k', 'v', { consistency: 'all' })
  for (const id of ['node-3', 'node-4', 'node-5']) {
    await c.stopNode(id)
    c.membership.setAlive(id, false)
  }
  const since = Date.now()
  for (const id of ['node-3', 'node-4', 'node-5']) c.membership.drop(id)
  await outlastGrace(since)
  // Most of the ring as it was is gone, so the survivors never count as in touch again; a new member asks node-1.
  c.membership.join('node-6')
  await c.startNode('node-6')
  await t.throwsAsync(c.node('node-1').service.read({ key: 'k', digestOnly: false }, undefined, 'node-6'), { code: 'UNAVAILABLE' })
  await settled(c, 'node-1')
  t.is(text((await c.node('node-1').get('k', { consistency: 'one', replica: 'node-1' })).value), 'v')
  // Out of touch with most of the ring it had, but let go of by no member alive: it holds what it held, and is read.
  t.deepEqual(c.rejoined, [])
})

test.serial('a companion that comes back first is not served stale data by the rest of the minority, still cut off', async t => {
  const ids = ['node-1', 'node-2', 'node-3', 'node-4', 'node-5']
  const v4 = new LocalMembership(ids)
  const v5 = new LocalMembership(ids)
  const c = await Cluster.create(t, 5, { ...init, replicationFactor: 5 }, {}, { 'node-4': v4, 'node-5': v5 })
  await c.node('node-1').put('zombie', 'old', { consistency: 'all' })
  await c.node('node-1').put('kept', 'x', { consistency: 'all' })
  const majority = ['node-1', 'node-2', 'node-3']
  const minority = ['node-4', 'node-5']
  for (const a of minority) for (const b of majority) c.network.sever(a, b)
  for (const a of minority) c.membership.setAlive(a, false)
  for (const b of majority) { v4.setAlive(b, false); v5.setAlive(b, false) }
  const since = Date.now()
  for (const a of minority) c.membership.drop(a)
  for (const b of majority) { v4.drop(b); v5.drop(b) }
  await c.node('node-1').delete('zombie', { consistency: 'all' })
  await waitFor(async () => {
    for (const id of majority) if ((await c.node(id).service.getStored('zombie')) != null) return false
    return true
  }, 'the tombstone purged on the majority')
  await outlastGrace(since)
  // The cut heals for node-4 alone: it checks itself, drops its data and rebuilds from its co-replicas, node-5 among them.
  for (const b of majority) { c.network.mend('node-4', b); v4.join(b) }
  c.membership.join('node-4')
  await waitFor(() => c.node('node-5').service.quarantined, 'node-5, asked by node-4\'s check, to check itself too')
  await rounds(c, 'node-1')
  t.is(await c.node('node-4').service.getStored('zombie'), undefined)
  t.is(await c.node('node-1').service.getStored('zombie'), undefined)
  for (const b of majority) { c.network.mend('node-5', b); v5.join(b) }
  c.membership.join('node-5')
  for (const id of ids) await settled(c, id)
  await t.throwsAsync(c.node('node-1').get('zombie', { consistency: 'all' }), { instanceOf: KeyNotFoundError })
  t.is(text((await c.node('node-4').get('kept', { consistency: 'one', replica: 'node-4' })).value), 'x')
})

/** node-5 cut off alone; past the grace, node-1 reaches it (a merkle request) and is then lost for good. */
async function contactThenLost (c: Cluster, view: LocalMembership, afterContact?: () => Promise<void>): Promise<void> {
  const others = ['node-1', 'node-2', 'node-3', 'node-4']
  const since = cut(c, ['node-5'], view)
  c.membership.drop('node-5')
  for (const b of others) view.drop(b)
  await afterContact?.()
  await outlastGrace(since)
  c.network.mend('node-5', 'node-1')
  await refused(c.node('node-5').service.merkle({ ranges: [], depth: 0 }, undefined, 'node-1'))
}

async function refused (p: Promise<unknown>): Promise<void> {
  await p.then(() => { throw new Error('served') }, (err: { code?: string }) => { if (err.code !== 'UNAVAILABLE') throw err })
}

async function loseForGood (c: Cluster, id: string): Promise<void> {
  await c.stopNode(id)
  c.membership.setAlive(id, false)
  c.membership.drop(id)
}

test.serial('a peer that reaches a returning replica and is then lost for good does not hold it quarantined', async t => {
  const view = new LocalMembership(['node-1', 'node-2', 'node-3', 'node-4', 'node-5'])
  const c = await Cluster.create(t, 5, init, {}, { 'node-5': view })
  await c.node('node-1').put('k', 'v', { consistency: 'all' })
  await contactThenLost(c, view)
  t.true(c.node('node-5').service.quarantined)
  await loseForGood(c, 'node-1')
  mendCut(c, ['node-5'])
  for (const b of ['node-2', 'node-3', 'node-4']) view.join(b)
  c.membership.join('node-5')
  await settled(c, 'node-5')
  t.is(text((await c.node('node-5').get('k', { consistency: 'quorum' })).value), 'v')
})

test.serial('a member that said it purged, and is then lost for good, does not hold the returning replica quarantined', async t => {
  const view = new LocalMembership(['node-1', 'node-2', 'node-3', 'node-4', 'node-5'])
  const c = await Cluster.create(t, 5, init, {}, { 'node-5': view })
  await c.node('node-1').put('zombie', 'old', { consistency: 'all' })
  let answered = false
  const purges = c.node('node-1').service.purges.bind(c.node('node-1').service)
  c.node('node-1').service.purges = async (req, signal, caller) => {
    const res = await purges(req, signal, caller)
    if (caller === 'node-5') answered = true
    return res
  }
  await contactThenLost(c, view, async () => {
    await c.node('node-1').delete('zombie', { consistency: 'all' })
    await waitFor(async () => {
      for (const id of ['node-1', 'node-2', 'node-3', 'node-4']) if ((await c.node(id).service.getStored('zombie')) != null) return false
      return true
    }, 'the tombstone purged on the others')
  })
  await waitFor(() => answered, 'node-1 to tell node-5 it purged')
  await loseForGood(c, 'node-1')
  mendCut(c, ['node-5'])
  for (const b of ['node-2', 'node-3', 'node-4']) view.join(b)
  c.membership.join('node-5')
  await settled(c, 'node-5')
  t.is(await c.node('node-5').service.getStored('zombie'), undefined)
  await t.throwsAsync(c.node('node-2').get('zombie', { consistency: 'all' }), { instanceOf: KeyNotFoundError })
})

const five = ['node-1', 'node-2', 'node-3', 'node-4', 'node-5']

/**
 * {node-4, node-5} cut off from {node-1, node-2, node-3} (each with a view of its own), each side dropping the other past
 * the grace, while the majority deletes `zombie` and purges its tombstone.
 */
async function minorityCutWhileDeleted (t: ExecutionContext): Promise<{ c: Cluster, v4: LocalMembership, v5: LocalMembership }> {
  const v4 = new LocalMembership(five)
  const v5 = new LocalMembership(five)
  const c = await Cluster.create(t, 5, { ...init, replicationFactor: 5 }, {}, { 'node-4': v4, 'node-5': v5 })
  await c.node('node-1').put('zombie', 'old', { consistency: 'all' })
  const since = Date.now()
  for (const a of ['node-4', 'node-5']) for (const b of ['node-1', 'node-2', 'node-3']) c.network.sever(a, b)
  for (const a of ['node-4', 'node-5']) { c.membership.setAlive(a, false); c.membership.drop(a) }
  for (const b of ['node-1', 'node-2', 'node-3']) { for (const v of [v4, v5]) { v.setAlive(b, false); v.drop(b) } }
  await c.node('node-1').delete('zombie', { consistency: 'all' })
  await waitFor(async () => {
    for (const id of ['node-1', 'node-2', 'node-3']) if ((await c.node(id).service.getStored('zombie')) != null) return false
    return true
  }, 'the tombstone purged on the majority')
  await outlastGrace(since)
  return { c, v4, v5 }
}

/** Heals the cut (after more time in it) and checks that the deleted value stays deleted. */
async function healWithoutZombie (t: ExecutionContext, c: Cluster, v4: LocalMembership, v5: LocalMembership): Promise<void> {
  await outlastGrace(Date.now())
  mendCut(c, ['node-4', 'node-5'])
  for (const b of ['node-1', 'node-2', 'node-3']) { v4.join(b); v5.join(b) }
  for (const a of ['node-4', 'node-5']) c.membership.join(a)
  await rounds(c, 'node-1', 40)
  t.is(await c.node('node-1').service.getStored('zombie'), undefined, 'the deleted value came back')
  for (const id of five) await settled(c, id)
  await t.throwsAsync(c.node('node-1').get('zombie', { consistency: 'all' }), { instanceOf: KeyNotFoundError })
}

test.serial('a check made inside a cut (a companion lost for a moment) does not count as the return: the real return is checked too', async t => {
  const { c, v4, v5 } = await minorityCutWhileDeleted(t)
  // A missed probe: node-5 is no companion of node-4's any more, and node-4 checks itself, inside the cut.
  v4.setAlive('node-5', false)
  v4.setAlive('node-5', true)
  await waitFor(() => c.node('node-4').service.quarantined, 'node-4 to check itself')
  await settled(c, 'node-4')
  await settled(c, 'node-5')
  await healWithoutZombie(t, c, v4, v5)
})

test.serial('a replica restarted inside a cut checks itself there, and again on its return', async t => {
  const { c, v4, v5 } = await minorityCutWhileDeleted(t)
  await c.stopNode('node-5')
  await c.startNode('node-5')
  await settled(c, 'node-5')
  await settled(c, 'node-4')
  await healWithoutZombie(t, c, v4, v5)
})

test.serial('a companion asked before the asker saw the ring again is asked once more, and told it is back', async t => {
  const { c, v4, v5 } = await minorityCutWhileDeleted(t)
  const told: boolean[] = []
  const s5 = c.node('node-5').service
  const purges = s5.purges.bind(s5)
  s5.purges = async (req, signal, caller) => {
    if (caller === 'node-4') told.push(req.back)
    return await purges(req, signal, caller)
  }
  // The majority reaches node-4 first; node-4's own view still lacks it when it asks node-5.
  for (const b of ['node-1', 'node-2', 'node-3']) c.network.mend('node-4', b)
  c.membership.join('node-4')
  await waitFor(() => told.length > 0, 'node-4 to ask node-5')
  t.false(told[0])
  for (const b of ['node-1', 'node-2', 'node-3']) v4.join(b)
  await waitFor(() => told.includes(true), 'node-4, back, to ask node-5 again')
  await waitFor(() => c.node('node-5').service.quarantined, 'node-5 to check itself')
  await rounds(c, 'node-1', 40)
  t.is(await c.node('node-4').service.getStored('zombie'), undefined)
  t.is(await c.node('node-1').service.getStored('zombie'), undefined)
  mendCut(c, ['node-5'])
  for (const b of ['node-1', 'node-2', 'node-3']) v5.join(b)
  c.membership.join('node-5')
  for (const id of five) await settled(c, id)
})

test.serial('a quick restart during a rebuild resumes it: no new check, and nothing it fetched is dropped again', async t => {
  // A longer grace here: the restarted replica's view stays empty for a while below, which past the grace would be
  // an absence of its own (as in a daemon that takes that long to join again).
  const grace = 3 * ringGrace
  const view = new LocalMembership(['node-1', 'node-2', 'node-3'])
  const c = await Cluster.create(t, 3, { ...init, absence: { ...init.absence, ringGrace: grace } }, {}, { 'node-3': view })
  await c.node('node-1').put('zombie', 'old', { consistency: 'all' })
  await c.node('node-1').put('kept', 'x', { consistency: 'all' })
  const since = await away(c)
  await c.node('node-1').delete('zombie', { consistency: 'all' })
  await purgedOnOthers(c, 'zombie')
  // node-2 answers the check but takes no part in anti-entropy, so the rebuild cannot end.
  c.network.unknownMethods.set('node-2', new Set(['merkle', 'fetchRange', 'fetch']))
  await waitFor(() => Date.now() - since > grace * 2, 'the absence to outlast the ring grace')
  c.membership.join('node-3')
  await c.startNode('node-3')
  await waitFor(async () => (await c.node('node-3').stats()).rebuilding && !c.node('node-3').service.quarantined, 'the rebuild to begin')
  await waitFor(async () => (await c.node('node-3').service.getStored('kept')) != null, 'the rebuild to fetch kept')
  await c.stopNode('node-3')
  // As in a daemon, its view shows no one alive until it has joined again.
  view.setAlive('node-1', false)
  view.setAlive('node-2', false)
  await c.startNode('node-3')
  const s3 = c.node('node-3').service
  // Resuming, it drops again what it held from before the absence (should it have stopped before doing so): the
  // rebuild's own records stay.
  await waitFor(() => !s3.quarantined, 'the rebuild to resume')
  const before = s3.absence?.before
  let forgets = 0
  const forget = s3.forgetRecordsFromBefore.bind(s3)
  s3.forgetRecordsFromBefore = async (b, signal, keepAfter) => { forgets++; return await forget(b, signal, keepAfter) }
  let quarantined = false
  let asked = 0
  const merkle = s3.merkle.bind(s3)
  s3.merkle = async (req, signal, caller) => {
    asked++
    quarantined ||= s3.quarantined
    try { return await merkle(req, signal, caller) } finally { quarantined ||= s3.quarantined }
  }
  // The others' anti-entropy reaches it while its view is empty, and after it has filled.
  await waitFor(() => asked >= 1, 'node-1 to ask node-3 for its trees')
  view.setAlive('node-1', true)
  view.setAlive('node-2', true)
  await rounds(c, 'node-1', 40)
  t.false(quarantined, 'quarantined again with no new absence')
  t.is(s3.absence?.before, before)
  t.is(forgets, 0, `what it fetched dropped again ${forgets} times`)
  t.not(await s3.getStored('kept'), undefined)
  c.network.unknownMethods.delete('node-2')
  await settled(c, 'node-3')
})

test.serial('a node left alone by a graceful leave is in touch with a ring of one, and is not checked at each restart', async t => {
  const c = await Cluster.create(t, 2, { ...init, replicationFactor: 1 })
  await c.stopNode('node-2')
  c.membership.leave('node-2')
  await outlastGrace(Date.now())
  await c.stopNode('node-1')
  await c.startNode('node-1')
  await settled(c, 'node-1')
  await outlastGrace(Date.now())
  const stopped = Date.now()
  await c.stopNode('node-1')
  await c.startNode('node-1')
  const last = c.node('node-1').service.lastAliveBeforeStart ?? 0
  t.true(stopped - last < ringGrace, `its last record of being in service was ${stopped - last} ms old when it stopped`)
  t.false(c.node('node-1').service.quarantined)
})

test.serial('a rebuild decided inside a cut and still under way when the cut heals does not end the absence', async t => {
  const { c, v4 } = await minorityCutWhileDeleted(t)
  // Inside the cut the minority deletes a key of its own, and node-5 purges its tombstone: node-4's check there finds
  // that purge and decides a rebuild, which node-5 keeps from ending (it answers no anti-entropy for now).
  await c.node('node-4').put('j', 'x', { consistency: 'all' })
  await c.node('node-4').delete('j', { consistency: 'all' })
  await waitFor(async () => (await c.node('node-5').service.getStored('j')) == null, 'node-5 to purge j')
  c.network.unknownMethods.set('node-5', new Set(['merkle', 'fetchRange', 'fetch']))
  v4.setAlive('node-5', false)
  v4.setAlive('node-5', true)
  await waitFor(async () => (await c.node('node-4').stats()).rebuilding && !c.node('node-4').service.quarantined, 'node-4 rebuilding inside the cut')
  let toldBack = false
  const s5 = c.node('node-5').service
  const purges = s5.purges.bind(s5)
  s5.purges = async (req, signal, caller) => {
    if (caller === 'node-4' && req.back) toldBack = true
    return await purges(req, signal, caller)
  }
  // The cut heals for node-4 alone, while its rebuild runs.
  for (const b of ['node-1', 'node-2', 'node-3']) { c.network.mend('node-4', b); v4.join(b) }
  c.membership.join('node-4')
  await waitFor(() => toldBack, 'node-4 to check itself again, and tell node-5 it is back')
  c.network.unknownMethods.delete('node-5')
  await rounds(c, 'node-1', 60)
  await staysDeleted(t, c, 'zombie', ['node-4', 'node-1'], 'quorum')
})

test.serial('a restart during the check resumes it, and keeps the writes taken during it', async t => {
  const c = await Cluster.create(t, 3, init)
  const since = await missedDelete(c)
  const releases = [holdPurges(c.node('node-1').service), holdPurges(c.node('node-2').service)]
  await comeBack(c, since)
  const s3 = (): ReplicaService => c.node('node-3').service
  await waitFor(() => s3().absence?.phase === 'checking', 'the check on disk')
  const before = s3().absence?.before
  const ts = { wall: BigInt(Date.now()), logical: 0, node: 'node-9' }
  await s3().write({ records: [{ key: 'only3', value: value('new'), ts, tombstone: false, expiresAt: 0n }] })
  // A quick restart while the check still waits for the members.
  await c.stopNode('node-3')
  await c.startNode('node-3')
  t.true(s3().quarantined)
  t.is(s3().absence?.before, before)
  for (const release of releases) release()
  await settled(c, 'node-3')
  t.is(await s3().getStored('zombie'), undefined)
  t.is(text((await s3().getStored('only3'))?.record?.value ?? new Uint8Array()), 'new')
})

test.serial('a replica down long in the middle of its check starts a new one: what it took during the first can be stale too', async t => {
  const c = await Cluster.create(t, 3, init)
  const since = await missedDelete(c)
  const releases = [holdPurges(c.node('node-1').service), holdPurges(c.node('node-2').service)]
  await comeBack(c, since)
  await waitFor(() => c.node('node-3').service.absence?.phase === 'checking', 'the check on disk')
  // A write taken during the check, as a coordinator sends it to all three replicas.
  await c.node('node-1').put('w', 'during the check', { consistency: 'all' })
  t.not(await c.node('node-3').service.getStored('w'), undefined)
  // Down again before the check ends, for long: meanwhile w is deleted, and purged on the others.
  const down = await away(c)
  await c.node('node-1').delete('w', { consistency: 'all' })
  await purgedOnOthers(c, 'w')
  for (const release of releases) release()
  await comeBack(c, down)
  await settled(c, 'node-3')
  await rounds(c, 'node-1')
  await staysDeleted(t, c, 'w', ['node-3', 'node-1'])
})

test.serial('a rebuild whose drop failed is taken up again, even if the members no longer say they purged', async t => {
  const c = await Cluster.create(t, 3, init)
  const since = await missedDelete(c)
  // The members say they purged at the first question only (as if the purger then left the ring).
  for (const id of ['node-1', 'node-2']) {
    const s = c.node(id).service
    const purges = s.purges.bind(s)
    let asked = 0
    s.purges = async (req, signal, caller) => {
      const res = await purges(req, signal, caller)
      return ++asked <= 1 ? res : { ...res, lastPurgeAt: 0n }
    }
  }
  let failures = 0
  const failOnce = (service: ReplicaService): void => {
    const forget = service.forgetRecordsFromBefore.bind(service)
    service.forgetRecordsFromBefore = async (before, signal, keepAfter) => {
      if (failures++ === 0) throw new Error('engine failure in the middle of the drop')
      return await forget(before, signal, keepAfter)
    }
  }
  c.membership.join('node-3')
  await waitFor(() => Date.now() - since > ringGrace * 2, 'the absence to outlast the ring grace')
  const n3 = await c.startNode('node-3', {}, failOnce)
  t.truthy(n3)
  await settled(c, 'node-3')
  t.true(failures >= 2)
  t.is(await c.node('node-3').service.getStored('zombie'), undefined)
})

test.serial('a replica cut off during its rebuild, and restarted soon after the heal, checks itself again', async t => {
  const view = new LocalMembership(['node-1', 'node-2', 'node-3'])
  const c = await Cluster.create(t, 3, init, {}, { 'node-3': view })
  const since = await missedDelete(c)
  // node-2 answers node-3's check, and takes no part in anti-entropy with it: the rebuild cannot end.
  const s2 = c.node('node-2').service
  let refusing = true
  const refuse = (caller?: string): void => { if (refusing && caller === 'node-3') throw new MeshError('UNAVAILABLE', 'refused for the test') }
  const [merkle, fetchRange, fetch] = [s2.merkle.bind(s2), s2.fetchRange.bind(s2), s2.fetch.bind(s2)]
  s2.merkle = async (req, signal, caller) => { refuse(caller); return await merkle(req, signal, caller) }
  s2.fetchRange = async (req, signal, caller) => { refuse(caller); return await fetchRange(req, signal, caller) }
  s2.fetch = async (req, signal, caller) => { refuse(caller); return await fetch(req, signal, caller) }
  await comeBack(c, since)
  await waitFor(async () => (await c.node('node-3').stats()).rebuilding && !c.node('node-3').service.quarantined, 'the rebuild to begin')
  // A write taken during the rebuild, after its line.
  await c.node('node-1').put('z2', 'old', { consistency: 'all' })
  t.not(await c.node('node-3').service.getStored('z2'), undefined)
  // Cut off alone past the grace: the others drop it, delete z2 and purge its tombstone.
  const cutAt = cut(c, ['node-3'], view)
  c.membership.drop('node-3')
  await c.node('node-1').delete('z2', { consistency: 'quorum' })
  await purgedOnOthers(c, 'z2')
  await outlastGrace(cutAt)
  // Stopped inside the cut; the cut heals; it starts again at once.
  await c.stopNode('node-3')
  refusing = false
  mendCut(c, ['node-3'])
  for (const b of ['node-1', 'node-2']) view.setAlive(b, true)
  c.membership.join('node-3')
  await c.startNode('node-3')
  await settled(c, 'node-3')
  await rounds(c, 'node-1', 40)
  await staysDeleted(t, c, 'z2', ['node-3', 'node-1'])
})

test.serial('a replica back in a ring that let go of it joins again: it is not read from until it has copied what its ranges took meanwhile', async t => {
  // No background repair or hint replay: what node-5 and node-4 lack stays lacking, as in the moments after a return.
  const slow = { ...init, antiEntropy: { ...init.antiEntropy, interval: 10 * 60_000 }, hints: { ...init.hints, sweepInterval: 10 * 60_000 } }
  const c = await Cluster.create(t, 5, slow)
  const with5 = c.node('node-1').ring()
  const since = await away(c, 'node-5')
  const without5 = c.node('node-1').ring()
  // Keys node-5 takes back from a member X that stood in for it, with node-4 a replica throughout, and R the third one.
  const keys: Array<{ key: string, r: string }> = []
  for (let i = 0; keys.length < 20 && i < 100_000; i++) {
    const key = `back/${i}`
    const now = with5.replicas(key, 3)
    if (!now.includes('node-5') || !now.includes('node-4')) continue
    const r = now.find(p => p !== 'node-5' && p !== 'node-4') as string
    if (without5.replicas(key, 3).includes(r)) keys.push({ key, r })
  }
  t.true(keys.length >= 5, `${keys.length} keys`)
  // Written while node-5 is away and node-4 misses them: acknowledged by X and R, a quorum of that ring.
  c.network.setDown('node-4', 'throw')
  for (const { key } of keys) {
    const coord = c.other('node-4', 'node-5')
    const w = await c.node(coord).put(key, `v-${key}`)
    t.is(w.acks, 2)
  }
  c.network.setDown('node-4', false)
  // node-5 comes back past the ring's grace; its check hears of no purge and it keeps its data, but it lacks those keys.
  await comeBackAs(c, 'node-5', since, { joinDelay: 10 * 60_000 })
  await waitFor(() => !c.node('node-5').service.quarantined, 'node-5\'s check')
  t.true(c.node('node-5').joining())
  t.true(c.membership.isJoining('node-5'), 'announced as joining')
  t.deepEqual(c.rejoined, ['node-5'])
  // Each key read with its R down: from node-5 and node-4 (neither holds it) if node-5 were read from; from X instead.
  for (const { key, r } of keys) {
    c.network.setDown(r, 'throw')
    const coord = c.other('node-4', 'node-5', r)
    t.is(await readOutcome(c.node(coord).get(key)), `v-${key}`, `${key} through ${coord} with ${r} down`)
    c.network.setDown(r, false)
  }
  // A coordinator that has not heard of the join yet, and asks node-5, is refused rather than told it has no such key.
  await t.throwsAsync(c.node('node-5').service.read({ key: keys[0].key, digestOnly: false }, undefined, 'node-1'), { message: /joining/ })
  t.is(await readOutcome(c.node('node-1').get(keys[0].key, { consistency: 'one', replica: 'node-5' })), 'UNAVAILABLE')
  // Restarted, it goes on joining (as a daemon does from its marker), copies its ranges and is read from again.
  await c.stopNode('node-5')
  await c.startNode('node-5', { joinDelay: 0 })
  await waitFor(() => !c.node('node-5').joining() && !c.membership.isJoining('node-5'), 'node-5\'s join to end')
  for (const { key } of keys) t.is(await readOutcome(c.node('node-1').get(key, { consistency: 'one', replica: 'node-5' })), `v-${key}`, `${key} on node-5`)
})

/** Waits out the ring's grace, then restarts `id` (taken back into the ring). */
async function comeBackAs (c: Cluster, id: string, since: number, init: Partial<StorageInit> = {}): Promise<void> {
  await waitFor(() => Date.now() - since > ringGrace * 2, 'the absence to outlast the ring grace')
  c.membership.join(id)
  await c.startNode(id, init)
}

async function readOutcome (p: Promise<{ value: Uint8Array }>): Promise<string> {
  try { return text((await p).value) } catch (err) { return (err as { code?: string }).code ?? String(err) }
}

test.serial('of two nodes, the one that stayed and took the writes does not join again when the other is back past the grace; that one does', async t => {
  const c = await Cluster.create(t, 2, init)
  const since = await away(c, 'node-2')
  const keys = Array.from({ length: 20 }, (_, i) => `alone/${i}`)
  for (const k of keys) await c.node('node-1').put(k, k)
  await comeBackAs(c, 'node-2', since)
  await settled(c, 'node-2')
  await settled(c, 'node-1')
  t.deepEqual(c.rejoined, ['node-2'])
  for (const k of keys) {
    t.is(await readOutcome(c.node('node-2').get(k)), k, `${k} through node-2`)
    t.is(await readOutcome(c.node('node-1').get(k, { consistency: 'one', replica: 'node-2' })), k, `${k} on node-2`)
  }
})

test.serial('a rejoin whose record fails is made again when the check runs again, though the members no longer say so', async t => {
  const c = await Cluster.create(t, 2, init)
  const since = await away(c, 'node-2')
  c.failRejoins = 1
  await comeBackAs(c, 'node-2', since, { joinDelay: 10 * 60_000 })
  await waitFor(() => !c.node('node-2').service.quarantined, 'node-2\'s check')
  t.deepEqual(c.rejoined, ['node-2', 'node-2'])
  t.true(c.node('node-2').joining())
})
