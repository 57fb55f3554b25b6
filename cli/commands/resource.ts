import { clientCommand, action, client, print, type ClientOpts } from '../common.js'
import type { Command } from 'commander'

const enc = encodeURIComponent

/** `mesh resource ...` and `mesh peer ...`: DHT resource advertisement and peer routing. */
export function registerResourceCommands (program: Command): void {
  const resource = program.command('resource').description('advertise and find resources (gpu, service:postgres, ...) through the DHT')

  clientCommand(resource.command('advertise <name>').description('advertise that this node provides NAME (kept across restarts)'))
    .option('--ttl <duration>', 'stop advertising after this long (e.g. 30m, 2h; a bare number is ms); default: until withdrawn')
    .action(action(async (name: string, opts: ClientOpts & { ttl?: string }) => {
      const res = await client(opts).json('POST', `/v1/resources/${enc(name)}`, opts.ttl != null ? { ttl: opts.ttl } : {})
      print(opts, res, () => {
        process.stdout.write(`advertising ${res.name} (key ${res.key}); record stored on ${res.storedOn} peers${res.expiresAt != null ? `; until ${res.expiresAt}` : ''}\n`)
      })
    }))

  clientCommand(resource.command('withdraw <name>').description('stop advertising NAME'))
    .action(action(async (name: string, opts: ClientOpts) => {
      const res = await client(opts).json('DELETE', `/v1/resources/${enc(name)}`)
      print(opts, res, () => { process.stdout.write(res.withdrawn === true ? `withdrew ${name}\n` : `${name} was not advertised here (withdraw notice sent anyway)\n`) })
    }))

  clientCommand(resource.command('find <name>').description('list the peers that provide NAME'))
    .option('--timeout <duration>', 'lookup deadline (e.g. 2s; a bare number is ms); default 5s')
    .action(action(async (name: string, opts: ClientOpts & { timeout?: string }) => {
      const q = opts.timeout != null ? `?timeout=${enc(opts.timeout)}` : ''
      const res = await client(opts).json('GET', `/v1/resources/${enc(name)}${q}`)
      print(opts, res, () => {
        if (res.providers.length === 0) process.stdout.write(`no providers of ${name}\n`)
        for (const p of res.providers) process.stdout.write(`${p.peerId}  ${p.addrs.join(' ')}\n`)
        if (res.timedOut === true) process.stdout.write('(lookup timed out; the list may be incomplete)\n')
      })
    }))

  clientCommand(resource.command('list').description('list the names this node advertises'))
    .action(action(async (opts: ClientOpts) => {
      const res = await client(opts).json('GET', '/v1/resources')
      print(opts, res, () => {
        for (const a of res.adverts) process.stdout.write(`${a.name}${a.expiresAt != null ? `  until ${a.expiresAt}` : ''}\n`)
      })
    }))

  const peer = program.command('peer').description('peer routing through the DHT')
  clientCommand(peer.command('find <peerId>').description("find a peer's addresses"))
    .action(action(async (id: string, opts: ClientOpts) => {
      const res = await client(opts).json('GET', `/v1/peers/${enc(id)}`)
      print(opts, res, () => { for (const a of res.addrs) process.stdout.write(`${a}\n`) })
    }))
}
