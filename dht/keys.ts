import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { BadRequestError } from '../lib/errors.js'
import { day, hour, millisecond, minute, second } from './units.js'
import { RESOURCE_KEY_PREFIX, RESOURCE_NAME_MAX, RESOURCE_NAME_PATTERN } from './constants.js'

/** Throws a 400 (BAD_REQUEST) MeshError unless `name` is a valid resource name; returns it. */
export function validateResourceName (name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw new BadRequestError('a resource name is required')
  if (name.length > RESOURCE_NAME_MAX) throw new BadRequestError(`a resource name is at most ${RESOURCE_NAME_MAX} characters (got ${name.length})`)
  if (!RESOURCE_NAME_PATTERN.test(name)) {
    throw new BadRequestError(`bad resource name ${JSON.stringify(name)}: use letters, digits and . _ : / @ + -, starting with a letter or digit`)
  }
  return name
}

/**
 * The DHT key of a resource: CIDv1, raw codec, sha256 of `"meshos:resource:" + name` (UTF-8). Deterministic, so any
 * DHT client (meshos or a stock libp2p node) can compute it.
 */
export async function resourceKey (name: string): Promise<CID> {
  validateResourceName(name)
  const digest = await sha256.digest(new TextEncoder().encode(RESOURCE_KEY_PREFIX + name))
  return CID.create(1, raw.code, digest)
}

/** Parses a CID string (for content ids); throws BAD_REQUEST on a malformed one. */
export function parseKey (key: string): CID {
  try { return CID.parse(key) } catch { throw new BadRequestError(`bad content id ${JSON.stringify(key)}`) }
}

const durationUnits: Record<string, number> = { ms: millisecond, s: second, m: minute, h: hour, d: day }

/** Parses `1500ms`, `30s`, `10m`, `2h`, `7d` or a bare number of milliseconds; throws BAD_REQUEST otherwise. */
export function parseDuration (value: unknown, what = 'duration'): number {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return value
  if (typeof value === 'string') {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim())
    if (m != null) {
      const ms = Number(m[1]) * durationUnits[m[2] ?? 'ms']
      if (ms > 0 && Number.isFinite(ms)) return ms
    }
  }
  throw new BadRequestError(`bad ${what} ${JSON.stringify(value)}: use e.g. 500ms, 30s, 10m, 2h or 7d`)
}
