import { KiB, MiB, second } from '../lib/units.js'

/** A call that names no deadline gets this one. */
export const defaultTimeout = 10 * second
/** A handler that runs longer than this is abandoned and its caller gets TIMEOUT. */
export const handlerTimeout = 30 * second
/** Largest request or response body a service accepts unless it sets its own. */
export const maxMessageSize = 4 * MiB
/** Room for the frame's own fields around the body. */
export const frameOverhead = 1024
/** Requests one stream may have in flight at a server before it stops reading from that stream. */
export const maxInFlight = 64
/** Calls share a persistent stream, so few are needed per connection; the rest guard against a peer opening many. */
export const maxInboundStreams = 64
export const maxOutboundStreams = 64
/** Requests per second one peer may make of one service; far above what any subsystem needs of a single peer. */
export const ratePerPeer = 20_000
/** Rate-limit state is dropped wholesale past this many (peer, service) pairs, bounding its memory. */
export const maxRateBuckets = 10_000
/** How long a stream that lost framing is given to carry its error frame to the peer before it is aborted. */
export const errorCloseGrace = 1 * second
/** Frames queued for one stream are sent at once past this many bytes rather than at the end of the tick. */
export const flushBytes = 256 * KiB
