import { createHash } from 'node:crypto'
import type { ApiServer } from './api.js'
import { dashboardHtml } from './dashboard-page.js'

/** `'sha256-…'` sources for every inline element of the kind, so the page's CSP allows exactly its own code. */
function inlineHashes (html: string, tag: 'script' | 'style'): string {
  const re = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g')
  return [...html.matchAll(re)].map(m => `'sha256-${createHash('sha256').update(m[1], 'utf8').digest('base64')}'`).join(' ')
}

/**
 * The page may run only its own inline script and style, talk only to this API, and not be framed (clickjacking) or
 * submit forms anywhere.
 */
export const dashboardCsp = [
  "default-src 'none'",
  `script-src ${inlineHashes(dashboardHtml, 'script')}`,
  `style-src ${inlineHashes(dashboardHtml, 'style')}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

const headers = {
  'content-type': 'text/html; charset=utf-8',
  'content-length': Buffer.byteLength(dashboardHtml),
  'content-security-policy': dashboardCsp,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache'
}

/**
 * `GET /`: the web dashboard, a single static page that uses the JSON API. The page holds no data, so it is public;
 * every JSON call it makes carries the operator's token when tokens are in force (see dashboard-page.ts).
 */
export function dashboardRoutes (api: ApiServer): void {
  api.route({
    method: 'GET',
    path: '/',
    access: 'public',
    handler: ({ req, res }) => {
      res.writeHead(200, headers)
      res.end(req.method === 'HEAD' ? undefined : dashboardHtml)
      return undefined
    }
  })
}
