import { KiB, MiB, hour, minute, second } from '../lib/units.js'

/** Default chunk size: large enough that per-chunk overhead (a CID, an RPC, an fsync) is small next to the bytes. */
export const CHUNK_SIZE = 1 * MiB
/** Smallest and largest chunk size a put may ask for; the largest must fit one RPC message with room to spare. */
export const MIN_CHUNK_SIZE = 4 * KiB
export const MAX_CHUNK_SIZE = 1 * MiB
/** Largest RPC message of the files service: a full chunk plus framing. */
export const MAX_MESSAGE_SIZE = 2 * MiB
/**
 * Largest manifest. It travels as one block in one RPC message; at ~62 bytes per chunk that is about 25,000 chunks, so
 * 25 GiB at the default chunk size.
 */
export const MAX_MANIFEST_BYTES = 1536 * KiB
/** Copies of each file unless a put asks for another number. */
export const REPLICAS = 3
export const MAX_REPLICAS = 7
/**
 * Chunk transfers in flight per pull, and chunk writes in flight to the local store during a put. Each in-flight chunk
 * costs several copies in the RPC and encryption layers; when a put sent to each replica from the node taking it, 8
 * per replica peaked that node near 290 MiB RSS for a 200 MiB put, 4 near 235 MiB.
 */
export const WINDOW = 4
/**
 * Chunks in flight down a put's pipeline of replicas. A chunk is done when the last replica has it on disk, so one
 * trip is a transfer, a hash and an fsync per replica, the fsyncs taking 50-300 ms on a busy disk here: with 4 in
 * flight the node taking a put spent ~80 % of a 100 MiB put waiting on the pipeline, and 8 put 12-15 % faster. The
 * first replica holds every chunk in flight twice (received, and re-encoded for the next), and at 8 it peaked at
 * 307 MiB RSS in a 1 GiB put: 6 is the compromise.
 */
export const PIPELINE_WINDOW = 6
/**
 * Largest put (by its declared size) whose node sends each chunk to every replica itself rather than down the
 * pipeline. Sent directly, a chunk takes one hop instead of two, and a 10 MiB put on the 5-node testnet returned in
 * 174-183 ms against 199-205 (medians of 10, three alternated pairs); at 100 MiB the two were level. Past this the
 * pipeline's saving matters more: the node taking the put sends each byte once instead of once per replica.
 */
export const DIRECT_PUT_LIMIT = 16 * MiB
/** Files of deleted blocks a node keeps to write new blocks into (ChunkStore.put), rather than allocating new files. */
export const SPARE_BLOCK_FILES = 32
/** Chunks in flight during a get. Twice this measured no faster on 2 cores and cost ~30 MiB more peak RSS. */
export const READ_WINDOW = 8
/**
 * Chunks in flight at the start of a get; one more each time a chunk is delivered, up to READ_WINDOW. The whole window
 * at once shares the reader's bandwidth among all its chunks, so the first one (and the first byte of the response)
 * arrived only with the last, a window's worth of transfer time later.
 */
export const READ_FIRST_WINDOW = 2
/** Deadline of one chunk transfer; a provider that misses it is dropped for the rest of the transfer. */
export const CHUNK_TIMEOUT = 15 * second
/**
 * A chunk not received after this long is asked of a second provider as well. Well above a loaded 1 MiB transfer
 * (tens of ms), well below CHUNK_TIMEOUT, so a frozen provider costs seconds, not a timeout per chunk.
 */
export const HEDGE_AFTER = 2 * second
/** Deadline of small control calls (has, pin, unpin, pins). */
export const CONTROL_TIMEOUT = 5 * second
/** Times an rm asks a member that does not answer its unpin, while the member is alive. */
export const UNPIN_ATTEMPTS = 3
/** Pause before an rm asks again, times the attempt's number. */
export const UNPIN_RETRY_DELAY = 0.25 * second
/** Removals whose answer a member remembers, for removers that ask again. */
export const UNPINNED_REMEMBERED = 1024
/** Deadline of a provider lookup before falling back to asking members. */
export const FIND_TIMEOUT = 5 * second
/** How long a manifest read here is reused for a file this node does not hold (it learns of no removal). */
export const MANIFEST_CACHE_TTL = 30 * second
/** How long a provider lookup's answer is reused by later reads of the same file. */
export const PROVIDER_CACHE_TTL = 30 * second
/** How often each node checks the replication of the files it holds, besides on membership events. */
export const REPAIR_INTERVAL = 30 * second
/** Membership events within this delay are handled by one repair round. */
export const REPAIR_DEBOUNCE = 1 * second
/** Re-announce held files well inside the DHT's record TTL (1 h). */
export const REPROVIDE_INTERVAL = 20 * minute
/** Unreferenced chunks younger than this are kept: they may belong to a put or pull still in progress. */
export const ORPHAN_GRACE = 1 * hour
/** How often unreferenced chunks are swept. */
export const SWEEP_INTERVAL = 1 * hour
/** How long a removal is remembered, so a replica that missed `rm` drops the file instead of re-replicating it. */
export const TOMBSTONE_TTL = 7 * 24 * hour
/** A removal or pin time a member sends further ahead of this node's clock than this is replaced by this clock's. */
export const MAX_TIME_AHEAD = 1 * hour
/** How long a block a put stores is kept from an unpin's collection, at most, waiting for the put's pin. */
export const BLOCK_HOLD = 10 * minute
/** Bound on the blocks held so (a map trimmed of lapsed holds, then of the oldest, when full). */
export const MAX_BLOCK_HOLDS = 100_000
/** How long a put waits for members to say when they saw the file removed, before it picks its pin time. */
export const REMOVALS_TIMEOUT = 2 * second
/** Default deadline of a whole operation (put, get, stat) that the caller gave none for. */
export const OPERATION_TIMEOUT = 1 * hour
/** Longest file name a put or a pin may carry, in UTF-16 code units. */
export const MAX_NAME_LENGTH = 1024

/**
 * Disk space a replica keeps free when it takes a file for repair: a pin it has no room for is refused, so that the
 * file's leader asks another member.
 */
export const DISK_RESERVE = 16 * MiB

/**
 * Pins per `pins` message, asked or answered. A name is up to MAX_NAME_LENGTH UTF-16 units, up to three UTF-8 bytes
 * each on the wire: at the worst a page is 512 × ~3.2 KiB, about 1.6 MiB, inside MAX_MESSAGE_SIZE.
 */
export const PINS_PAGE = 512

/** A member whose repair pin of a file timed out is not asked for that file again for this long. */
export const PIN_TIMEOUT_AVOID = 2 * minute
/**
 * After a block write here fails for lack of room, new copies are refused for this long even if statfs shows room
 * (inodes, quotas and reserved blocks run out where statfs's free bytes do not show it): otherwise a leader would
 * place its copy here again every repair round, and this node fetch and drop it each time.
 */
export const NO_ROOM_BACKOFF = 1 * minute
/** Bound on the pin timeouts remembered (a map cleared when full). */
export const MAX_PIN_TIMEOUTS = 10_000
/** Members declared dead or left that a put remembers, to fail blocks for them at once. */
export const MAX_GONE = 1024
