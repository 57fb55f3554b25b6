// Regenerates every *.proto in the source folders into a sibling .ts file with protons.
// The generated files are committed so that a build needs only tsc.
import { execFileSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const roots = ['lib', 'rpc', 'node', 'membership', 'dht', 'storage', 'files', 'tasks']
const protos = []
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) walk(p)
    else if (name.endsWith('.proto')) protos.push(p)
  }
}
for (const r of roots) { try { walk(r) } catch {} }
if (protos.length > 0) execFileSync('node_modules/.bin/protons', protos, { stdio: 'inherit' })
console.log(`protons: ${protos.length} schema(s)`)
