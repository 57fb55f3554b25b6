import { readFile } from 'node:fs/promises'
import { Option, type Command } from 'commander'
import { MeshError } from '../../lib/errors.js'
import { clientCommand, action, print, type ClientOpts } from '../common.js'
import { MeshClient } from '../client.js'
import { KvClient, type Consistency } from '../kv-client.js'

const levels = ['any', 'one', 'quorum', 'all']

/** `any` (a hint counts as an ack) is for writes only. */
function consistencyOption (write = true): Option {
  return new Option('--consistency <level>', 'consistency level').choices(write ? levels : levels.filter(l => l !== 'any'))
}

/**
 * A value as one field of a `key<TAB>value` line: as it is when it is one line of printable UTF-8, JSON-quoted when it
 * has line breaks, tabs or other control characters, and only its size when it is not UTF-8 (`--json` has the bytes).
 */
function scanText (bytes: Buffer): string {
  const text = bytes.toString('utf8')
  if (!bytes.equals(Buffer.from(text, 'utf8'))) return `(${bytes.byteLength} bytes, not UTF-8; --json has them in base64)`
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(text) ? JSON.stringify(text) : text
}

function kv (opts: ClientOpts): KvClient {
  return new KvClient(new MeshClient({ api: opts.api, token: opts.token }))
}

/** `mesh kv ...`: the replicated key-value store. */
export function registerKvCommands (program: Command): void {
  const group = program.command('kv').description('the replicated key-value store')

  clientCommand(group.command('put').description('store a value (from VALUE or --file)')
    .argument('<key>')
    .argument('[value]')
    .option('--file <path>', 'read the value from a file (- for stdin)')
    .addOption(consistencyOption())
    .option('--ttl <duration>', 'expire after this long, e.g. 30s, 5m, 1h; a bare number is seconds'))
    .action(action(async (key: string, value: string | undefined, opts: ClientOpts & { file?: string, consistency?: Consistency, ttl?: string }) => {
      if ((value == null) === (opts.file == null)) throw new MeshError('BAD_REQUEST', 'give either VALUE or --file')
      let bytes: Uint8Array
      if (opts.file === '-') {
        const chunks: Buffer[] = []
        for await (const c of process.stdin) chunks.push(c as Buffer)
        bytes = Buffer.concat(chunks)
      } else if (opts.file != null) {
        bytes = await readFile(opts.file)
      } else {
        bytes = Buffer.from(value as string, 'utf8')
      }
      const r = await kv(opts).put(key, bytes, { consistency: opts.consistency, ttl: opts.ttl })
      print(opts, r, () => { process.stdout.write(`stored ${key} (${r.acks} acks${r.hinted > 0 ? `, ${r.hinted} hinted` : ''})\n`) })
    }))

  clientCommand(group.command('get').description('print a value (raw bytes; --json for {key,value(base64),timestamp})')
    .argument('<key>')
    .addOption(consistencyOption(false))
    .addOption(new Option('--replica <peerId>', 'read only this replica (implies --consistency one); for debugging').hideHelp()))
    .action(action(async (key: string, opts: ClientOpts & { consistency?: Consistency, replica?: string }) => {
      const r = await kv(opts).get(key, { consistency: opts.consistency, replica: opts.replica })
      print(opts, { key: r.key, value: Buffer.from(r.value).toString('base64'), timestamp: r.timestamp }, () => { process.stdout.write(r.value) })
    }))

  clientCommand(group.command('del').alias('delete').description('delete a key')
    .argument('<key>')
    .addOption(consistencyOption()))
    .action(action(async (key: string, opts: ClientOpts & { consistency?: Consistency }) => {
      const r = await kv(opts).delete(key, { consistency: opts.consistency })
      print(opts, r, () => { process.stdout.write(`deleted ${key}\n`) })
    }))

  clientCommand(group.command('scan').description('list keys with a prefix')
    .requiredOption('--prefix <prefix>', 'key prefix ("" for all)')
    .option('--limit <n>', 'at most this many entries', (v) => {
      const n = Number(v)
      if (!Number.isInteger(n) || n < 1) throw new MeshError('BAD_REQUEST', '--limit must be a positive integer')
      return n
    })
    .option('--after <key>', 'only keys after this one (page on from the last key printed)'))
    .action(action(async (opts: ClientOpts & { prefix: string, limit?: number, after?: string }) => {
      const r = await kv(opts).scan({ prefix: opts.prefix, limit: opts.limit, after: opts.after })
      print(opts, r, () => {
        for (const e of r.entries) process.stdout.write(`${e.key}\t${scanText(Buffer.from(e.value, 'base64'))}\n`)
        if (r.unreachable.length > 0) process.stderr.write(`mesh: ${r.unreachable.length} node(s) unreachable; results may be incomplete\n`)
        const last = r.entries[r.entries.length - 1]
        if (r.more && last != null) process.stderr.write(`mesh: more keys follow; page on with --after ${JSON.stringify(last.key)}\n`)
      })
    }))
}
