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
await mod.main(args)
process.exit(0)
