// The far side of the rpc benchmark, in its own process: a libp2p node serving the diag service, and a raw node:net
// server speaking the same request/response pattern with a 4-byte length prefix.
import { createServer } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createMeshLibp2p } from '../node/libp2p.js'
import { diagHandlers, diagService } from '../node/diagnostics.js'
import { Rpc } from '../rpc/index.js'

const node = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], networkKey: process.env.BENCH_NETWORK_KEY })
const rpc = new Rpc({ libp2p: node })
await rpc.handle(diagService, diagHandlers())
// A bare stream echo with no RPC layer, to show what the layer itself costs.
await node.handle('/meshos/bench-echo/1.0.0', (stream) => { stream.addEventListener('message', (evt) => { stream.send(evt.data) }) })
await node.start()
await rpc.start()

const tcp = createServer((sock) => {
  sock.setNoDelay(true)
  let buf = Buffer.alloc(0)
  sock.on('data', (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0)
      if (buf.length < 4 + len) break
      const mode = buf[4]
      // mode 1: echo the payload back; mode 2: sink, answer with an empty frame.
      if (mode === 1) sock.write(buf.subarray(0, 4 + len))
      else { const h = Buffer.alloc(5); h.writeUInt32BE(1); h[4] = 2; sock.write(h) }
      buf = buf.subarray(4 + len)
    }
  })
})
await new Promise<void>(resolve => tcp.listen(0, '127.0.0.1', resolve))
process.stdout.write(JSON.stringify({ addr: node.getMultiaddrs()[0].toString(), tcpPort: (tcp.address() as { port: number }).port }) + '\n')
process.on('SIGTERM', () => { void Promise.resolve(node.stop()).then(() => process.exit(0)) })
