import { hour } from '../lib/units.js'
export { millisecond, second, minute, hour } from '../lib/units.js'
export const day = 24 * hour
