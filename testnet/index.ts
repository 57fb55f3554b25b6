export { createTestnet, Testnet } from './testnet.js'
export type { TestnetOptions, TestnetNodeInfo } from './testnet.js'
