import { readFileSync } from 'node:fs'

/** The package version, read once from package.json two levels above the compiled file (dist/<folder>/). */
export const version: string = (() => {
  try {
    return JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version
  } catch {
    return '0.0.0'
  }
})()
