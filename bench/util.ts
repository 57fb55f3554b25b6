import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { execSync } from 'node:child_process'

export function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))
  return sorted[i]
}

export function summarize (samples: number[]): { n: number, p50: number, p99: number, p999: number, mean: number, max: number } {
  const s = [...samples].sort((a, b) => a - b)
  return { n: s.length, p50: percentile(s, 0.5), p99: percentile(s, 0.99), p999: percentile(s, 0.999), mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length), max: s[s.length - 1] }
}

export function machine (): { cpu: string, cores: number, memGiB: number, node: string, commit: string } {
  let commit = 'unknown'
  try { commit = execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() } catch {}
  return { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, commit }
}

export function table (header: string[], rows: Array<Array<string | number>>): string {
  const cells = rows.map(r => r.map(c => typeof c === 'number' ? fmt(c) : c))
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map(r => r[i].length)))
  const line = (r: string[]): string => '| ' + r.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |'
  return [line(header), '|' + widths.map(w => '-'.repeat(w + 2)).join('|') + '|', ...cells.map(line)].join('\n')
}

function fmt (n: number): string {
  if (!Number.isFinite(n)) return String(n)
  if (Math.abs(n) >= 100) return n.toFixed(0)
  if (Math.abs(n) >= 10) return n.toFixed(1)
  if (Math.abs(n) >= 1) return n.toFixed(2)
  return n.toFixed(3)
}

export async function writeResult (name: string, result: unknown): Promise<string> {
  const dir = new URL('../../bench/results/', import.meta.url)
  await mkdir(dir, { recursive: true })
  const file = new URL(`${name}.json`, dir)
  await writeFile(file, JSON.stringify({ date: new Date().toISOString(), machine: machine(), ...result as object }, null, 2) + '\n')
  return file.pathname
}
