export { createTestnet, Testnet } from './testnet.js'
export { reservePort, releasePort, sweepStalePorts } from './ports.js'
export type { TestnetOptions, TestnetNodeInfo } from './testnet.js'
