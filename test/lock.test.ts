import test from 'ava'
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

test('daemons starting at the same moment on one data dir: exactly one takes it, each time', async t => {
  const dir = await tempDir(t, 'meshos-lock-')
  const script = join(dir, 'bin.js')
  await writeFile(script, CONTENDER)
  const wrong: string[] = []
  for (let round = 0; round < 40; round++) {
    const dataDir = join(dir, `data-${round}`)
    await mkdir(dataDir)
    const answers = await contend(script, dataDir, 3)
    if (answers.filter(a => a === 'locked').length !== 1 || answers.filter(a => a === 'refused DATA_DIR_LOCKED').length !== 2) wrong.push(`round ${round}: ${answers.join(', ')}`)
  }
  t.deepEqual(wrong, [], 'each round: one daemon locked, two refused with DATA_DIR_LOCKED')
})

test('a stale lock is taken over by exactly one of several daemons starting at once, and no debris is left', async t => {
  const dir = await tempDir(t, 'meshos-lock-stale-')
  const script = join(dir, 'bin.js')
  await writeFile(script, CONTENDER)
  const wrong: string[] = []
  for (let round = 0; round < 20; round++) {
    const dataDir = join(dir, `data-${round}`)
    await mkdir(dataDir)
    // Left by a daemon that crashed: a pid no process has (above the kernel's pid_max).
    await writeFile(join(dataDir, 'mesh.pid'), '4194305\n')
    const answers = await contend(script, dataDir, 3)
    if (answers.filter(a => a === 'locked').length !== 1) wrong.push(`round ${round}: ${answers.join(', ')}`)
    t.deepEqual((await readdir(dataDir)).filter(f => f.startsWith('mesh.pid.') && f !== 'mesh.pid.owner'), [], 'no temp or stale lock files')
  }
  t.deepEqual(wrong, [], 'each round: exactly one daemon took the stale lock over')
})
