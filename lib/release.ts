import { KiB } from './units.js'

/**
 * Frees the memory behind `view` now, instead of when a garbage collection finds it dead, if `view` is most of a
 * large buffer of its own; returns whether it did. The caller must be the buffer's only holder: every other view of it
 * becomes empty.
 *
 * Why: a buffer that lives a few tens of milliseconds (a file chunk waiting its turn in a read window, then in a
 * socket's queue) outlives two young collections, moves to the old generation, and is then freed only by a full
 * collection, which marks the whole heap. A reader streaming a file out over HTTP ran one every ~300 ms for that alone.
 *
 * The size test keeps it off buffers that are shared by design: Node's pool for small buffers (8 KiB slabs) and the
 * socket and cipher buffers (at most 64 KiB) that small messages are views of.
 */
export function releaseBuffer (view: Uint8Array): boolean {
  const buffer = view.buffer
  if (!(buffer instanceof ArrayBuffer) || buffer.detached || buffer.byteLength < minReleasable || view.byteLength * 2 < buffer.byteLength) return false
  try {
    // Detaching drops the only reference to the backing store, which frees it; the new zero-length buffer is dropped.
    buffer.transfer(0)
    return true
  } catch {
    // Not detachable (a WebAssembly memory, or a buffer Node has pinned): left to the collector.
    return false
  }
}

const minReleasable = 128 * KiB
