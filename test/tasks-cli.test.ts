/** `mesh task` commands against no node, or a stand-in that answers as a node would: what the CLI itself decides. */
import test from 'ava'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mesh } from './util.js'

test('task submit --batch checks every line before it sends any, and names the line of the file', async t => {
  // Line 4, after a blank line; no node listens there, so an error from the node would be NODE_UNREACHABLE.
  const input = ['{"cmd":"true"}', '', '{"cmd":"true","args":["x"]}', '{"cmd":"true","timout":"5s"}', '{"cmd":"true"}'].join('\n')
  const r = await mesh(['task', 'submit', '--batch', '-', '--api', 'http://127.0.0.1:9', '--json'], { input })
  t.is(r.code, 64, r.stdout)
  t.regex(JSON.parse(r.stdout).error.message, /^line 4 of the batch: .*unknown field "timout"/)
  const notJson = await mesh(['task', 'submit', '--batch', '-', '--api', 'http://127.0.0.1:9'], { input: '{"cmd":"true"}\n\n{cmd\n' })
  t.is(notJson.code, 64)
  t.regex(notJson.stderr, /line 3 of the batch is not JSON/)
})

test('task submit --batch: when a later request fails, the tasks the node took are printed before the error', async t => {
  // A node that takes the first request (1,000 specs) and refuses the second over its third task.
  let requests = 0
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', c => { body += c })
    req.on('end', () => {
      const specs = (JSON.parse(body) as { tasks: unknown[] }).tasks
      res.setHeader('content-type', 'application/json')
      if (++requests % 2 === 1) {
        res.end(JSON.stringify({ tasks: specs.map((_, i) => ({ id: `task-${i}`, state: 'queued' })) }))
      } else {
        res.statusCode = 400
        res.end(JSON.stringify({ error: { code: 'BAD_REQUEST', message: 'task 2: cpu 64 is more than any node offers (the largest has 2 slots)' } }))
      }
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const input = Array.from({ length: 1005 }, () => '{"cmd":"true"}').join('\n')
  const text = await mesh(['task', 'submit', '--batch', '-', '--api', api], { input })
  t.is(text.code, 64)
  const ids = text.stdout.trim().split('\n')
  t.is(ids.length, 1000)
  t.is(ids[999], 'task-999')
  t.regex(text.stderr, /line 1003 of the batch: cpu 64 is more than any node offers .*lines 1-1000 were submitted \(1000, ids printed\), those from line 1001 on were not/)
  const json = await mesh(['task', 'submit', '--batch', '-', '--api', api, '--json'], { input })
  t.is(json.code, 64)
  const out = JSON.parse(json.stdout) as { tasks: Array<{ id: string }>, error: { code: string, message: string } }
  t.is(out.tasks.length, 1000)
  t.is(out.error.code, 'BAD_REQUEST')
  t.regex(out.error.message, /^line 1003 of the batch/)
})
