import { randomBytes, createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { z } from 'zod'
import { removeStaleTemps, writeFileDurable } from '../lib/durable.js'
import { InvalidConfigError } from '../lib/errors.js'
import { minute } from '../lib/units.js'
import type { Access, ApiTokens } from './api.js'

export const tokensFile = 'tokens.json'

const tokenRecord = z.object({ id: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), access: z.enum(['read', 'write']), createdAt: z.string() })
const tokensSchema = z.object({ tokens: z.array(tokenRecord) })
type TokenRecord = z.infer<typeof tokenRecord>

const digest = (token: string): Buffer => createHash('sha256').update(token).digest()

/** Creates a token, stores only its hash in the data dir, and returns the token itself (shown once). */
export async function createToken (dataDir: string, access: Access): Promise<{ id: string, token: string, access: Access }> {
  const path = join(dataDir, tokensFile)
  const existing = await readTokens(path)
  const id = randomBytes(4).toString('hex')
  const token = `mesh_${access === 'write' ? 'rw' : 'ro'}_${randomBytes(24).toString('base64url')}`
  existing.push({ id, sha256: digest(token).toString('hex'), access, createdAt: new Date().toISOString() })
  // Durable before the token is shown: a token file torn by a power loss would stop the node from starting.
  await writeFileDurable(path, JSON.stringify({ tokens: existing }, null, 2) + '\n', { mode: 0o600 })
  return { id, token, access }
}

async function readTokens (path: string): Promise<TokenRecord[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  return parseTokens(path, text)
}

function parseTokens (path: string, text: string): TokenRecord[] {
  const parsed = tokensSchema.safeParse((() => { try { return JSON.parse(text) } catch { return null } })())
  if (!parsed.success) throw new InvalidConfigError(`${path} is not a valid token file`)
  return parsed.data.tokens
}

/**
 * The tokens a node accepts: those in DATA_DIR/tokens.json (re-read when the file changes, so `mesh token create`
 * takes effect without a restart) plus an optional --api-token, which grants read-write. Presented tokens are
 * hashed and compared in constant time.
 */
export class TokenStore implements ApiTokens {
  private records: TokenRecord[] = []
  private mtimeMs = 0
  private checkedAt = 0
  private readonly path: string

  constructor (dataDir: string, private readonly extra?: string) {
    this.path = join(dataDir, tokensFile)
  }

  async load (): Promise<void> {
    // A minute old at least: `mesh token create` may be writing right now, from another process.
    await removeStaleTemps(dirname(this.path), { only: tokensFile, minAgeMs: minute })
    this.records = await readTokens(this.path)
    this.mtimeMs = (await stat(this.path).catch(() => undefined))?.mtimeMs ?? 0
  }

  get size (): number { return this.records.length + (this.extra != null ? 1 : 0) }

  check (token: string): Access | undefined {
    this.refresh()
    const presented = digest(token)
    let granted: Access | undefined
    // Every stored token is compared, so the time taken does not reveal which one matched.
    if (this.extra != null && timingSafeEqual(presented, digest(this.extra))) granted = 'write'
    for (const r of this.records) {
      if (timingSafeEqual(presented, Buffer.from(r.sha256, 'hex')) && granted == null) granted = r.access
    }
    return granted
  }

  /**
   * Re-reads the file, at most once a second, before the check that follows: synchronously (a stat, and a read of a
   * few hundred bytes when it changed), so that a token removed from the file is refused from the next request on,
   * and a removed file revokes every token in it (it used to keep them all). A file that does not parse keeps the
   * tokens last read, as a half-edited one should not open or shut the API.
   */
  private refresh (): void {
    const now = Date.now()
    if (now - this.checkedAt < 1000) return
    this.checkedAt = now
    let mtimeMs = 0
    try {
      mtimeMs = statSync(this.path).mtimeMs
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return
    }
    if (mtimeMs === this.mtimeMs) return
    try {
      this.records = mtimeMs === 0 ? [] : parseTokens(this.path, readFileSync(this.path, 'utf8'))
      this.mtimeMs = mtimeMs
    } catch {}
  }
}

/**
 * Exactly `localhost`, `::1` or a literal IPv4 address in 127/8. A name that merely starts with "127." (such as
 * 127.0.0.1.example.com) can resolve anywhere, and a DNS-rebinding page can send it as its Host header.
 */
export function isLoopback (host: string): boolean {
  const h = host.toLowerCase()
  if (h === 'localhost' || h === '::1') return true
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h)
  return m != null && m.slice(1).every(x => Number(x) <= 255)
}
