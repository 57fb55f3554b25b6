import type { Registry } from 'prom-client'

/**
 * The registry's text exposition, made to pass `promtool check metrics`. Collectors we do not own (prom-client's
 * Node.js defaults, libp2p's) break a few naming conventions: gauges with a counter's `_total` suffix, a gauge with a
 * histogram's `_bucket` suffix, and `_milliseconds` where Prometheus wants base units. Those families are renamed
 * (values untouched; a millisecond family becomes `_ms`) so operators' linting and recording rules see
 * conventional names.
 */
export async function exposition (registry: Registry): Promise<string> {
  const text = await registry.metrics()
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(m => [m[1], m[2]]))
  const renames = new Map<string, string>()
  /** Families converted from milliseconds to seconds: their values (not counts) are divided by 1000. */
  const millis = new Set<string>()
  for (const [name, type] of types) {
    let to = name
    if (type !== 'counter' && to.endsWith('_total')) {
      const base = to.slice(0, -'_total'.length)
      // Node's defaults have both `x` (by type) and `x_total` (all types) gauges.
      to = types.has(base) ? `${base}_overall` : base
    }
    if (type !== 'histogram' && to.endsWith('_bucket')) to += 's'
    if (/_milliseconds(?=_|$)/.test(to)) {
      to = to.replace(/_milliseconds(?=_|$)/, '_seconds')
      millis.add(to)
    }
    if (to !== name) renames.set(name, to)
  }
  if (renames.size === 0) return text
  return text.split('\n').map(line => {
    const name = line.startsWith('#') ? line.split(' ')[2] : line.split(/[{ ]/)[0]
    let family = name
    let to = family == null ? undefined : renames.get(family)
    let part = ''
    if (to == null && name != null && !line.startsWith('#')) {
      // A histogram or summary sample: name_bucket, name_sum, name_count.
      const m = /^(.*)_(bucket|sum|count)$/.exec(name)
      if (m != null && renames.has(m[1])) { family = m[1]; part = m[2]; to = renames.get(m[1])! + '_' + m[2] }
    }
    if (to == null || name == null || family == null) return line
    if (line.startsWith('#')) return line.replace(` ${name} `, ` ${to} `)
    let rest = line.slice(name.length)
    if (millis.has(renames.get(family)!)) {
      if (part === 'bucket') rest = rest.replace(/le="([^"]+)"/, (_, le: string) => `le="${le === '+Inf' ? le : String(Number(le) / 1000)}"`)
      else if (part !== 'count') rest = rest.replace(/ (\S+)$/, (_, v: string) => ` ${String(Number(v) / 1000)}`)
    }
    return to + rest
  }).join('\n')
}
