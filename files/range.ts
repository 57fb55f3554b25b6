import { BadRequestError } from '../lib/errors.js'

export interface ByteRange { offset: number, length: number }

/**
 * Parses an HTTP `Range` header against a resource of `size` bytes (RFC 9110 14.1.2): one `bytes=` range, first-last,
 * first- or -suffix. Returns undefined when the header should be ignored (absent, another unit, several ranges: the
 * whole body is sent), 'unsatisfiable' for a 416, or the range.
 */
export function parseRange (header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (header == null) return undefined
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header.trim())
  if (m == null) {
    if (/^bytes=/.test(header.trim()) && !header.includes(',')) throw new BadRequestError(`malformed Range header: ${header}`)
    return undefined
  }
  const [, a, b] = m
  if (a === '' && b === '') throw new BadRequestError(`malformed Range header: ${header}`)
  if (a === '') {
    const suffix = Number(b)
    // An empty file has no last bytes to give (RFC 9110: a suffix range of an empty representation is unsatisfiable).
    if (suffix === 0 || size === 0) return 'unsatisfiable'
    const length = Math.min(suffix, size)
    return { offset: size - length, length }
  }
  const first = Number(a)
  if (first >= size) return 'unsatisfiable'
  const last = b === '' ? size - 1 : Math.min(Number(b), size - 1)
  if (last < first) throw new BadRequestError(`malformed Range header: ${header}`)
  return { offset: first, length: last - first + 1 }
}
