import type { Command } from 'commander'

/** `mesh kv ...`: the replicated key-value store. */
export function registerKvCommands (_program: Command): void {}
