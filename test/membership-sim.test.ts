import test from 'ava'
import { minute, second } from '../lib/units.js'
import { Simulation, type SimNode } from '../membership/sim.js'

/** Counts `dead` events about anyone not in `expected`, across all nodes. */
function falseDeaths (nodes: SimNode[], expected: Set<string> = new Set()): () => string[] {
  const seen: string[] = []
  for (const n of nodes) {
    n.membership.events.on('dead', e => { if (!expected.has(e.member.peerId)) seen.push(`${n.id} saw ${e.member.peerId} dead`) })
  }
  return () => seen
}

test('N=100: every node sees all 100 alive after joining through one seed', t => {
  const sim = new Simulation({ seed: 1 })
  t.teardown(() => { sim.stop() })
  sim.addNodes(100, { staggerMs: 2 * second })
  t.true(sim.runUntil(() => sim.converged(sim.nodes), 30 * second, 100))
  t.log(`converged at ${sim.clock.now()} ms`)
})

test('N=100: a silent crash is seen as dead by every survivor, and nothing else dies', t => {
  const sim = new Simulation({ seed: 2 })
  t.teardown(() => { sim.stop() })
  const nodes = sim.addNodes(100, { staggerMs: 2 * second })
  t.true(sim.runUntil(() => sim.converged(sim.nodes), 30 * second, 100))
  sim.run(10 * second)
  const victim = nodes[42]
  const deaths = falseDeaths(nodes, new Set([victim.id]))
  const t0 = sim.clock.now()
  sim.crash(victim.id)
  const survivors = nodes.filter(n => n !== victim)
  t.true(sim.runUntil(() => sim.allSee(victim.id, 'dead', survivors), 15 * second, 5))
  const took = sim.clock.now() - t0
  t.log(`all survivors saw the crash as dead after ${took} ms`)
  t.true(took < 6 * second)
  sim.run(30 * second)
  t.deepEqual(deaths(), [])
  t.true(sim.allSee(victim.id, 'dead', survivors))
})

test('N=100: a 50/50 partition for 60 s heals by itself and every node sees all 100 alive', t => {
  const sim = new Simulation({ seed: 3 })
  t.teardown(() => { sim.stop() })
  const nodes = sim.addNodes(100, { staggerMs: 2 * second })
  t.true(sim.runUntil(() => sim.converged(sim.nodes), 30 * second, 100))
  const side = new Map(nodes.map(n => [n.id, n.index % 2]))
  sim.partitioned = (a, b) => side.get(a) !== side.get(b)
  sim.run(60 * second)
  // Each side has written the other off.
  const a = nodes.filter(n => n.index % 2 === 0)
  const b = nodes.filter(n => n.index % 2 === 1)
  t.true(sim.converged(a))
  t.true(sim.converged(b))
  t.true(nodes.every(n => n.membership.stateCounts().dead === 50))

  sim.partitioned = () => false
  const t0 = sim.clock.now()
  t.true(sim.runUntil(() => sim.converged(nodes), 60 * second, 100), 'the halves re-merge with no operator action')
  t.log(`re-merged ${sim.clock.now() - t0} ms after the partition healed`)
  const deaths = falseDeaths(nodes)
  sim.run(30 * second)
  t.deepEqual(deaths(), [])
  t.true(sim.converged(nodes), 'and stay merged')
})

test('N=100: 5% random message loss for three minutes causes no false deaths', t => {
  const sim = new Simulation({ seed: 4, loss: () => 0.05 })
  t.teardown(() => { sim.stop() })
  const nodes = sim.addNodes(100, { staggerMs: 2 * second })
  t.true(sim.runUntil(() => sim.converged(sim.nodes), 60 * second, 100))
  const deaths = falseDeaths(nodes)
  let suspicions = 0
  for (const n of nodes) n.membership.events.on('suspect', () => { suspicions++ })
  sim.run(3 * minute)
  t.log(`${suspicions} suspicions, all refuted; ${sim.dropped} messages lost`)
  t.deepEqual(deaths(), [])
  t.true(sim.converged(nodes))
})

test('N=100: 60 s idle, no false deaths and under 4 messages per node per second', t => {
  const sim = new Simulation({ seed: 5 })
  t.teardown(() => { sim.stop() })
  const nodes = sim.addNodes(100, { staggerMs: 2 * second })
  t.true(sim.runUntil(() => sim.converged(sim.nodes), 30 * second, 100))
  sim.run(30 * second)
  const deaths = falseDeaths(nodes)
  sim.resetCounters()
  sim.run(60 * second)
  const perNode = sim.totals().messagesSent / 100 / 60
  t.log(`${perNode.toFixed(2)} messages per node per second`)
  t.true(perNode < 4)
  t.deepEqual(deaths(), [])
})

test('N=20: a node frozen for 1.5 s may be suspected but is never declared dead', t => {
  const sim = new Simulation({ seed: 6 })
  t.teardown(() => { sim.stop() })
  const nodes = sim.addNodes(20)
  t.true(sim.runUntil(() => sim.converged(), 10 * second))
  const deaths = falseDeaths(nodes)
  let suspected = 0
  for (const n of nodes) n.membership.events.on('suspect', () => { suspected++ })
  // Several freezes, at different phases of the protocol period, of different nodes.
  for (let i = 0; i < 8; i++) {
    const frozen = nodes[1 + (i * 7) % 19]
    sim.run(1_000 + i * 137)
    sim.freeze(frozen.id)
    sim.run(1_500)
    sim.resume(frozen.id)
    sim.run(10 * second)
    t.true(sim.allSee(frozen.id, 'alive'), `${frozen.id} is alive everywhere after resuming`)
  }
  t.log(`${suspected} suspicions during 8 freezes`)
  t.true(suspected > 0, 'the freezes were long enough to be noticed')
  t.deepEqual(deaths(), [])
})

test('N=20: a join is seen by all within 1 s and a leave within 0.5 s', async t => {
  const sim = new Simulation({ seed: 7 })
  t.teardown(() => { sim.stop() })
  const nodes = sim.addNodes(20)
  t.true(sim.runUntil(() => sim.converged(), 10 * second))
  sim.run(5 * second)
  const joiner = sim.addNode({ seeds: [nodes[3].addr] })
  const t0 = sim.clock.now()
  joiner.membership.start()
  t.true(sim.runUntil(() => sim.converged(), 1 * second, 1))
  t.log(`join seen by all after ${sim.clock.now() - t0} ms`)
  sim.run(5 * second)
  const t1 = sim.clock.now()
  const leaving = sim.leave(nodes[9].id)
  t.true(sim.runUntil(() => sim.allSee(nodes[9].id, 'left', sim.live().filter(n => n !== nodes[9])), 500, 1))
  t.log(`leave seen by all after ${sim.clock.now() - t1} ms`)
  sim.run(second)
  await leaving
})

test('N=10: the seedless first node restarted before it is declared dead learns every member within 3 s', t => {
  const sim = new Simulation({ seed: 7 })
  t.teardown(() => { sim.stop() })
  const nodes = sim.addNodes(10, { staggerMs: second })
  t.true(sim.runUntil(() => sim.converged(sim.nodes), 30 * second, 100))
  sim.run(5 * second)
  const first = nodes[0].id
  sim.crash(first)
  // Back within a probe period or two: the others at most suspect it, so none of them heals with it.
  sim.run(300)
  const t0 = sim.clock.now()
  const restarted = sim.restart(first)
  t.true(sim.runUntil(() => restarted.membership.stateCounts().alive === 10 && sim.converged(sim.nodes), 20 * second, 10))
  const took = sim.clock.now() - t0
  t.log(`the restarted node knew all 10 members alive after ${took} ms`)
  t.true(took < 3 * second, `took ${took} ms`)
})
