// Regenerates docs/dashboard.png: a 5-node testnet with some keys and files, one member frozen (suspect, then dead)
// and one gone (left), as the dashboard of node 0 shows it.
//
//   npm run build && node docs/dashboard-screenshot.mjs [out.png]
//
// Needs Debian's chromium at /usr/bin/chromium and the playwright-core devDependency.
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { createTestnet } from '../dist/testnet/index.js'

const out = process.argv[2] ?? fileURLToPath(new URL('./dashboard.png', import.meta.url))
const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

const net = await createTestnet(5, { logLevel: 'warn' })
let browser
try {
  const api = net.nodes[0].api
  for (let i = 0; i < 300; i++) {
    const res = await fetch(`${api}/v1/kv/${i % 3 === 0 ? 'config' : i % 3 === 1 ? 'users' : 'jobs'}/${i}`, { method: 'PUT', body: `value ${i} `.repeat(20) })
    if (!res.ok) throw new Error(`put failed: ${res.status} ${await res.text()}`)
  }
  for (const [name, size] of [['release-0.1.0.tar.gz', 3_400_000], ['model-weights.bin', 9_800_000], ['README.md', 4200]]) {
    const res = await fetch(`${api}/v1/files?name=${encodeURIComponent(name)}`, { method: 'POST', body: new Uint8Array(size).map((_, j) => (j * 31 + size) & 0xff) })
    if (!res.ok) throw new Error(`file upload failed: ${res.status} ${await res.text()}`)
  }
  await net.stopNode(4)
  net.freeze(3)

  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args })
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 })
  await page.goto(api + '/')
  await page.waitForFunction((id) => document.querySelector(`#members tr[data-peer="${id}"]`)?.getAttribute('data-state') === 'suspect', net.nodes[3].peerId, { timeout: 60_000 })
  await page.waitForFunction(() => !/loading/.test(document.querySelector('main')?.textContent ?? ''), undefined, { timeout: 60_000 })
  // A moment for the slower sections (files every 5 s) to show the latest figures.
  await page.waitForTimeout(6000)
  await page.screenshot({ path: out, fullPage: true })
  console.log(`wrote ${out}`)
} finally {
  net.resume(3)
  await browser?.close()
  await net.stop()
}
