import test, { type ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from './util.js'

const lockModule = fileURLToPath(new URL('../node/lock.js', import.meta.url))

// A stand-in daemon: a script at `<dir>/bin.js` run with `start`, as the lock's owner check expects of a mesh daemon.
// It takes the lock, says whether it got it, and holds it until its stdin closes.
const CONTENDER = `
import { lockDataDir } from ${JSON.stringify(lockModule)}
const dir = process.argv[3]
let lock
try { lock = await lockDataDir(dir); process.stdout.write('locked\\n') } catch (err) { process.stdout.write('refused ' + (err.code ?? err.message) + '\\n') }
process.stdin.resume()
process.stdin.on('end', async () => { await lock?.release(); process.exit(0) })
`

async function contend (script: string, dataDir: string, n: number): Promise<string[]> {
  const children = Array.from({ length: n }, () => spawn(process.execPath, [script, 'start', dataDir], { stdio: ['pipe', 'pipe', 'inherit'] }))
  try {
    return await Promise.all(children.map(async c => await new Promise<string>((resolve, reject) => {
      let out = ''
      c.stdout.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('\n')) resolve(out.trim()) })
      c.once('exit', code => { reject(new Error(`contender exited ${code} before answering: ${out}`)) })
    })))
  } finally {
    await Promise.all(children.map(async c => {
      if (c.exitCode != null || c.signalCode != null) return
      const exited = new Promise(resolve => c.once('exit', resolve))
      c.stdin.end()
      await exited
    }))
  }
}

/**
 * `rounds` rounds of three stand-in daemons starting at once, each on a data dir of its own that `prepare` may seed;
 * the rounds whose answers `ok` refuses, and the data dirs' lock debris (temp or stale lock files) after each round.
 */
async function contention (t: ExecutionContext, rounds: number, ok: (answers: string[]) => boolean, prepare?: (dataDir: string) => Promise<void>): Promise<{ wrong: string[], debris: string[] }> {
  const dir = await tempDir(t, 'meshos-lock-')
  const script = join(dir, 'bin.js')
  await writeFile(script, CONTENDER)
  const wrong: string[] = []
  const debris: string[] = []
  for (let round = 0; round < rounds; round++) {
    const dataDir = join(dir, `data-${round}`)
    await mkdir(dataDir)
    await prepare?.(dataDir)
    const answers = await contend(script, dataDir, 3)
    if (!ok(answers)) wrong.push(`round ${round}: ${answers.join(', ')}`)
    debris.push(...(await readdir(dataDir)).filter(f => f.startsWith('mesh.pid.') && f !== 'mesh.pid.owner'))
  }
  return { wrong, debris }
}

const count = (answers: string[], answer: string): number => answers.filter(a => a === answer).length

test('daemons starting at the same moment on one data dir: exactly one takes it, each time', async t => {
  const { wrong } = await contention(t, 40, a => count(a, 'locked') === 1 && count(a, 'refused DATA_DIR_LOCKED') === 2)
  t.deepEqual(wrong, [], 'each round: one daemon locked, two refused with DATA_DIR_LOCKED')
})

test('a stale lock is taken over by exactly one of several daemons starting at once, and no debris is left', async t => {
  // Left by a daemon that crashed: a pid no process has (above the kernel's pid_max).
  const { wrong, debris } = await contention(t, 20, a => count(a, 'locked') === 1, async dataDir => { await writeFile(join(dataDir, 'mesh.pid'), '4194305\n') })
  t.deepEqual(wrong, [], 'each round: exactly one daemon took the stale lock over')
  t.deepEqual(debris, [], 'no temp or stale lock files')
})
