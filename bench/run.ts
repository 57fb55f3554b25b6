// `npm run bench -- NAME [args]` runs bench/NAME.ts's main(args). Each benchmark prints a table and writes
// bench/results/NAME.json.
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
const available = readdirSync(here).filter(f => f.endsWith('.js') && !['run.js', 'util.js'].includes(f) && !f.includes('-worker') && !f.includes('-server')).map(f => f.slice(0, -3))
const [name, ...args] = process.argv.slice(2)
if (name == null || !available.includes(name)) {
  process.stderr.write(`usage: npm run bench -- NAME [args]\navailable: ${available.join(', ')}\n`)
  process.exit(name == null ? 0 : 64)
}
const mod = await import(`./${name}.js`) as { main: (args: string[]) => Promise<void> }
// Deadlines in the code under test are AbortSignal.timeout timers, which do not keep a process alive; a benchmark
// whose last pending work is waiting on one would otherwise exit mid-run instead of measuring the wait.
const keepAlive = setInterval(() => {}, 60_000)
try {
  await mod.main(args)
} finally {
  clearInterval(keepAlive)
}
process.exit(0)
