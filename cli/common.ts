import { Command, Option } from 'commander'
import { BadRequestError, MeshError, toMeshError } from '../lib/errors.js'
import { MeshClient, defaultApi } from './client.js'

export const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value]

export interface ClientOpts { api: string, json?: boolean, token?: string }

/** Adds the options every client command shares. */
export function clientCommand (cmd: Command): Command {
  return cmd
    .addOption(new Option('--api <url>', 'API of the node to talk to').env('MESH_API').default(defaultApi))
    .addOption(new Option('--token <token>', 'API bearer token').env('MESH_TOKEN'))
    .option('--json', 'print JSON instead of text')
}

export function client (opts: ClientOpts): MeshClient {
  return new MeshClient({ api: opts.api, token: opts.token })
}

let jsonErrors = false

export function setJsonErrors (on: boolean): void { jsonErrors = on }

/** Runs a command body; any error becomes one line (or JSON with --json) and the exit code of its error code. */
export function action<A extends any[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const cmd = args[args.length - 1] as Command
    jsonErrors = cmd.opts().json === true
    try {
      await fn(...args)
    } catch (err) {
      fail(localPathError(err) ?? toMeshError(err))
    }
  }
}

/** Why a path on this machine could not be used, for the errno codes a user's own path gives. */
const PATH_REASONS: { [code: string]: string } = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  EEXIST: 'it already exists',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links'
}

/**
 * A file or directory the user named (an input, an output, a data dir) that cannot be used is bad input (exit 64),
 * not a fault of the program (INTERNAL, exit 70).
 */
export function localPathError (err: unknown): MeshError | undefined {
  const e = err as { code?: unknown, path?: unknown, dest?: unknown, syscall?: unknown } | undefined
  if (typeof e?.code !== 'string' || typeof e.path !== 'string' || typeof e.syscall !== 'string') return undefined
  const reason = PATH_REASONS[e.code]
  if (reason == null) return undefined
  const path = typeof e.dest === 'string' && (e.code === 'EISDIR' || e.code === 'EEXIST') ? e.dest : e.path
  return new BadRequestError(`cannot use ${path}: ${reason}`)
}

export function fail (e: MeshError): never {
  if (jsonErrors) process.stdout.write(JSON.stringify(e.toJSON()) + '\n')
  else process.stderr.write(`mesh: ${e.message} (${e.code})\n`)
  process.exit(e.exitCode)
}

export function print (opts: { json?: boolean }, value: unknown, text: () => void): void {
  if (opts.json === true) process.stdout.write(JSON.stringify(value, null, 2) + '\n')
  else text()
}

