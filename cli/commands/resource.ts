import type { Command } from 'commander'

/** `mesh resource ...` and `mesh peer ...`: DHT resource advertisement and peer routing. */
export function registerResourceCommands (_program: Command): void {}
