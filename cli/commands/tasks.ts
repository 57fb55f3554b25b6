import type { Command } from 'commander'

/** `mesh task ...` and `mesh top`: distributed tasks. */
export function registerTaskCommands (_program: Command): void {}
