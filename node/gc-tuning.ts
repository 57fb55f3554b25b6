import { setFlagsFromString } from 'node:v8'

/**
 * Flags the daemon's Node process should start with; the testnet, the systemd unit, the container's `mesh` wrapper
 * and the `mesh` script's shebang pass them. Node 24 lets the young generation grow to 2 x 64 MiB: a node moving file
 * chunks filled it and held ~50 MiB more RSS than with 4 MiB semi-spaces, with no measured loss in speed, and that
 * headroom is what pays for `tuneGc` below within the 300 MiB a transfer may use.
 */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=4']

/**
 * Counts buffers outside the JS heap (every chunk, socket read and cipher output is one) towards V8's one global
 * limit, instead of starting a full mark-compact for each 64 MiB of them. Moving a file allocates several times its
 * size in such buffers along the way (socket reads, two cipher layers, framing), so a node moving 60 MiB/s ran 5-9 full
 * collections a second, 10-20 % of a core each; with this flag a 200 MiB get ran ~40 % faster and a put ~25 %
 * (BENCHMARKS.md, files). Set at run time, before the node allocates much: V8 reads it at each collection.
 */
export function tuneGc (): void {
  setFlagsFromString('--external-memory-accounted-in-global-limit')
}
