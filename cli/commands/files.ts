import type { Command } from 'commander'

/** `mesh file ...`: the distributed file system. */
export function registerFileCommands (_program: Command): void {}
