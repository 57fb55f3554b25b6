import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, realpath, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import test, { type ExecutionContext } from 'ava'
import { writeFileDurable, removeStaleTemps } from '../lib/durable.js'
import { DataDirLockedError } from '../lib/errors.js'
import { lockDataDir } from '../node/lock.js'
import { createTestnet } from '../testnet/index.js'
import { tempDir, waitFor } from './util.js'

test('a durable write replaces the whole file or fails leaving the old one; an exclusive one never replaces', async t => {
  const dir = await tempDir(t)
  const file = join(dir, 'state.json')
  await writeFileDurable(file, '{"a":1}')
  t.is(await readFile(file, 'utf8'), '{"a":1}')
  await writeFileDurable(file, '{"a":2}')
  t.is(await readFile(file, 'utf8'), '{"a":2}')
  const err = await t.throwsAsync(writeFileDurable(file, '{"a":3}', { exclusive: true }))
  t.is((err as NodeJS.ErrnoException).code, 'EEXIST')
  t.is(await readFile(file, 'utf8'), '{"a":2}')
  t.deepEqual(await readdir(dir), ['state.json'], 'no temp file left, after a success or a failure')
})

test('stale temp files go, only those asked for, and not ones another process may still be writing', async t => {
  const dir = await tempDir(t)
  await writeFile(join(dir, '.a.json.0011.durable-tmp'), 'x')
  await writeFile(join(dir, '.b.json.0022.durable-tmp'), 'x')
  await writeFile(join(dir, 'a.json'), 'keep')
  t.is(await removeStaleTemps(dir, { only: 'a.json', minAgeMs: 60_000 }), 0, 'too young')
  t.is(await removeStaleTemps(dir, { only: 'a.json' }), 1)
  t.deepEqual((await readdir(dir)).sort(), ['.b.json.0022.durable-tmp', 'a.json'])
  t.is(await removeStaleTemps(dir), 1)
  t.deepEqual(await readdir(dir), ['a.json'])
})

// The sequence of system calls is the claim, so it is read from strace where the machine has it (CI's does).
const strace = spawnSync('strace', ['-V']).status === 0
const traced = strace ? test : test.skip

/** Runs `script` (ESM, given the compiled modules' directory as DIST) under strace; the calls of the named syscalls, with fd paths. */
async function trace (t: ExecutionContext, script: string): Promise<string[]> {
  const dist = fileURLToPath(new URL('..', import.meta.url))
  const out = join(await tempDir(t), 'strace.txt')
  const child = spawn('strace', ['-f', '-y', '-qq', '-o', out, '-e', 'trace=openat,rename,renameat,renameat2,link,linkat,fsync,fdatasync,write',
    process.execPath, '--input-type=module', '-e', `const DIST = ${JSON.stringify(dist)};\n${script}`], { stdio: ['ignore', 'pipe', 'inherit'] })
  child.stdout.resume()
  const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
  if (code !== 0) throw new Error(`traced script exited with ${String(code)}`)
  return (await readFile(out, 'utf8')).split('\n')
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** Index of the first line at or after `from` matching `re`, or -1. */
function find (lines: string[], re: RegExp, from = 0): number {
  for (let i = from; i < lines.length; i++) if (re.test(lines[i])) return i
  return -1
}

traced('a block put fsyncs the block, renames it into its directory, then fsyncs that directory, before it resolves', async t => {
  const dir = await realpath(await tempDir(t)) // strace names fds by their real path
  const lines = await trace(t, `
    const { ChunkStore, chunkCid } = await import(DIST + 'files/index.js')
    const store = new ChunkStore({ dir: ${JSON.stringify(dir)} })
    await store.start()
    const data = new Uint8Array(64 * 1024).fill(7)
    const cid = chunkCid(data)
    await store.put(cid, data)
    process.stdout.write('PUT-RESOLVED ' + cid.toString().slice(-2) + '\\n')
  `)
  const done = find(lines, /write\(1.*PUT-RESOLVED/)
  t.true(done > 0, 'the script ran to its end')
  const fan = /PUT-RESOLVED (\w\w)/.exec(lines[done])![1]
  // strace may split a call across lines ("<unfinished ...>"), so a call is matched by its start.
  const fileSync = find(lines, new RegExp(`fsync\\(\\d+<${escape(dir)}/tmp/`))
  const rename = find(lines, new RegExp(`rename.*chunks/${fan}/`), fileSync)
  const dirSync = find(lines, new RegExp(`fsync\\(\\d+<${escape(dir)}/chunks/${fan}>`), rename)
  t.true(fileSync >= 0 && rename > fileSync && dirSync > rename && dirSync < done,
    `order fsync(file) ${fileSync} < rename ${rename} < fsync(dir) ${dirSync} < resolved ${done}`)
})

traced('a pin is written durably: temp file fsynced, renamed, directory fsynced, before the pin resolves', async t => {
  const dir = await realpath(await tempDir(t)) // strace names fds by their real path
  const lines = await trace(t, `
    const { PinStore } = await import(DIST + 'files/index.js')
    const pins = new PinStore(${JSON.stringify(dir)})
    await pins.start()
    await pins.set({ cid: 'bafyexample', name: 'n', size: 1, chunks: 1, replicas: 3, pinnedAt: 1, complete: true })
    process.stdout.write('PIN-RESOLVED\\n')
  `)
  const done = find(lines, /write\(1.*PIN-RESOLVED/)
  const fileSync = find(lines, new RegExp(`fsync\\(\\d+<${escape(dir)}/pins/\\.bafyexample\\.json\\.[0-9a-f]+\\.durable-tmp>`))
  const rename = find(lines, /rename.*\/pins\/bafyexample\.json"/, fileSync)
  const dirSync = find(lines, new RegExp(`fsync\\(\\d+<${escape(dir)}/pins>`), rename)
  t.true(fileSync >= 0 && rename > fileSync && dirSync > rename && dirSync < done,
    `order fsync(temp) ${fileSync} < rename ${rename} < fsync(dir) ${dirSync} < resolved ${done}`)
})

test('a lock whose pid now belongs to another process is stale; one held by its running daemon is not', async t => {
  const dir = await tempDir(t)
  const lockPath = join(dir, 'mesh.pid')
  const started = async (child: ChildProcess): Promise<number> => await waitFor('the process to start', async () => {
    if (child.pid == null) return undefined
    // Until exec, /proc shows the forking parent's command line.
    const args = await readFile(`/proc/${child.pid}/cmdline`, 'utf8').catch(() => '')
    return args.includes('sleep') || args.includes('bin.js') ? child.pid : undefined
  })

  // Left by a daemon that crashed, its pid since reused by an unrelated process.
  const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' })
  t.teardown(() => { sleeper.kill('SIGKILL') })
  await writeFile(lockPath, `${await started(sleeper)}\n`)
  const lock = await lockDataDir(dir)
  t.is((await readFile(lockPath, 'utf8')).trim(), String(process.pid))
  await lock.release()
  t.false(existsSync(lockPath))

  // Held by something that runs as `... bin.js start`, as a daemon does (a lock of an older version, no owner file).
  const bin = join(dir, 'bin.js')
  await writeFile(bin, 'setTimeout(() => {}, 600_000)\n')
  const daemon = spawn(process.execPath, [bin, 'start'], { stdio: 'ignore' })
  t.teardown(() => { daemon.kill('SIGKILL') })
  const pid = await started(daemon)
  await writeFile(lockPath, `${pid}\n`)
  await t.throwsAsync(lockDataDir(dir), { instanceOf: DataDirLockedError })

  // With the owner file, only that very process counts: the same pid started at another tick is another daemon.
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  const boot = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim()
  await writeFile(join(dir, 'mesh.pid.owner'), JSON.stringify({ pid, boot, start }))
  await t.throwsAsync(lockDataDir(dir), { instanceOf: DataDirLockedError }, 'its owner, exactly')
  await writeFile(join(dir, 'mesh.pid.owner'), JSON.stringify({ pid, boot, start: String(Number(start) - 1) }))
  const taken = await lockDataDir(dir)
  t.deepEqual(JSON.parse(await readFile(join(dir, 'mesh.pid.owner'), 'utf8')).pid, process.pid, 'a reused pid is stale; the new owner records itself')
  await taken.release()
  t.false(existsSync(join(dir, 'mesh.pid.owner')))
})

test('after a restart: an unreadable pin is rebuilt from the local manifest, stale temps and old task scratch dirs are gone', async t => {
  t.timeout(180_000)
  const net = await createTestnet(1, { logLevel: 'warn' })
  t.teardown(async () => { await net.stop() })
  const data = randomBytes(300 * 1024)
  const res0 = await net.client(0).request('POST', '/v1/files?name=keep.bin&replicas=1', { body: data, timeout: 60_000 })
  t.is(res0.status, 200)
  const put = await res0.json() as { cid: string }
  const dataDir = join(net.dir, 'node-0')
  await net.stopNode(0)

  const pins = join(dataDir, 'files', 'pins')
  await writeFile(join(pins, `${put.cid}.json`), '') // as a torn write would have left it before writes were durable
  await writeFile(join(pins, `${put.cid}.json.1a2b3c4d.tmp`), '{')
  await writeFile(join(pins, `.${put.cid}.json.0a0b0c0d0e0f.durable-tmp`), '{')
  const scratch = join(dataDir, 'tasks', 'scratch', 'left-by-a-crash-1-1')
  await mkdir(scratch, { recursive: true })
  await writeFile(join(scratch, 'input.bin'), randomBytes(1024))

  await net.startNode(0)
  const listed = await waitFor('the file listed again', async () => {
    const { files } = await net.client(0).json<{ files: Array<{ cid: string, size: number, name: string }> }>('GET', '/v1/files')
    return files.find(f => f.cid === put.cid)
  })
  t.is(listed.size, data.byteLength)
  const res = await net.client(0).request('GET', `/v1/files/${put.cid}`, { timeout: 60_000 })
  t.true(Buffer.from(await res.arrayBuffer()).equals(data))
  t.deepEqual(await readdir(pins), [`${put.cid}.json`])
  t.false(existsSync(scratch))
  t.regex(await readFile(join(dataDir, 'mesh.log'), 'utf8'), /rebuilt an unreadable pin/)
})

test('adverts saved by many concurrent calls end on disk as the last of them left them, and survive a restart', async t => {
  t.timeout(180_000)
  const net = await createTestnet(1, { logLevel: 'warn' })
  t.teardown(async () => { await net.stop() })
  const names = Array.from({ length: 40 }, (_, i) => `gpu-${i}`)
  // One node alone: its provides have no one to go to, so each call is the save and a local provide.
  await Promise.all(names.map(async n => { await net.client(0).json('POST', `/v1/resources/${n}`, undefined, { timeout: 60_000 }) }))
  await Promise.all(names.slice(0, 30).map(async n => { await net.client(0).json('DELETE', `/v1/resources/${n}`, undefined, { timeout: 60_000 }) }))
  const file = JSON.parse(await readFile(join(net.dir, 'node-0', 'dht-adverts.json'), 'utf8')) as { adverts: Array<{ name: string }>, withdrawn: Record<string, number> }
  t.deepEqual(file.adverts.map(a => a.name).sort(), names.slice(30).sort())
  t.is(Object.keys(file.withdrawn).length, 30)
  await net.restart(0)
  const { adverts } = await net.client(0).json<{ adverts: Array<{ name: string }> }>('GET', '/v1/resources')
  t.deepEqual(adverts.map(a => a.name).sort(), names.slice(30).sort())
})
