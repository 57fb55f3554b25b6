import test from 'ava'
import { TokenBuckets } from '../lib/token-bucket.js'

test('a flooding key stays limited however many fresh keys come after it', t => {
  let now = 0
  const buckets = new TokenBuckets(10, () => now)
  let granted = 0
  while (buckets.take('flood', 100)) granted++
  t.is(granted, 100, 'one burst')
  // Fresh identities by the hundred, as a peer with the network key can make: they fill the table many times over.
  for (let i = 0; i < 1000; i++) {
    now += 0.01
    t.true(buckets.take(`fresh-${i}`, 100))
  }
  t.false(buckets.take('flood', 100), 'its bucket was not reset by the churn')
  // Keys that have refilled are the ones that made room; the table stays within its bound.
  t.true((buckets as unknown as { buckets: Map<string, unknown> }).buckets.size <= 10)
})
