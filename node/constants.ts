import { MiB, millisecond, minute, second } from '../lib/units.js'

/** Largest JSON body an API route accepts unless it sets its own. */
export const apiMaxBody = 1 * MiB
export const apiRequestTimeout = 5 * minute
/** How long an upload that streams past apiRequestTimeout may go without a byte before its connection is closed. */
export const apiStreamIdleTimeout = 2 * minute
export const apiHeadersTimeout = 30 * second
/**
 * How often the API server checks the headers and request deadlines. Node's default, 30 s, let a client that
 * dribbles headers hold its connection for up to a minute.
 */
export const apiConnectionsCheckInterval = 5 * second
/**
 * Connections the API server holds at once; past it new ones are closed at once. The node's descriptors are shared
 * with its peers, blocks and store: 20,000 idle API connections (which a client without a token can open, as the
 * token is checked only once the headers are in) left none for a file repair.
 */
export const apiMaxConnections = 2048
/**
 * How long an idle keep-alive connection stays open. A client that sends on a connection just as the server closes it
 * gets ECONNRESET, and many clients never learn the server's limit: a Node agent made without a `timeout` ignores the
 * `Keep-Alive` hint, and Go (90 s), curl (118 s) and browsers keep idle connections far longer than Node's default of
 * 5 s (6 s with its buffer). Load scripts driving the KV API hit that race now and then; past these clients' own idle
 * limits, they close first.
 */
export const apiKeepAliveTimeout = 2 * minute
/**
 * Past this share of `apiMaxConnections` held, a connection that goes idle is kept only `apiCrowdedKeepAliveTimeout`,
 * so that clients that leave connections open cannot lock new ones out for a whole keep-alive timeout.
 */
export const apiCrowdedShare = 0.75
export const apiCrowdedKeepAliveTimeout = 5 * second

/** Bootstrap dials back off from this to the maximum, with jitter, and never give up. */
export const bootstrapInitialBackoff = 500
export const bootstrapMaxBackoff = 30 * second
export const bootstrapDialTimeout = 5 * second

/** How long a graceful stop may take before the daemon exits anyway. */
export const gracefulStopTimeout = 20 * second
/**
 * The shares of that stop the subsystems that wait on others take, one after another: tasks (its running tasks
 * killed and their records written back), then storage's handoff, then membership's leave (LEAVE_TIMEOUT, 2 s).
 * They add up to less than gracefulStopTimeout, so that a slow mesh still gets the leave, and LevelDB its close:
 * with 15 s and 8 s the daemon was forced out mid-stop and the others saw it die instead of leave.
 */
export const tasksStopTimeout = 8 * second
export const handoffTimeout = 7 * second
/** How often a node started by a testnet (MESH_PARENT_PID) checks that its parent still runs. */
export const parentCheckInterval = 1 * second

/** New inbound connections per second per remote host; libp2p's default of 5 drops a testnet's start-up burst. */
export const inboundConnectionThreshold = 100
export const maxConnections = 1000

/** Largest message published on a pub/sub topic. */
export const maxPubsubMessage = 64 * 1024
/** Topics the mesh's own protocols publish on (see dht/constants.ts NOTICE_TOPIC); the API does not publish there. */
export const reservedTopicPrefix = '/meshos/'

/** Bytes waiting for one pub/sub API subscriber beyond which its messages are dropped (and counted) until it reads. */
export const maxSubscriberBuffer = 1024 * 1024

/** Garbage a node may pile up between full collections (see GcHeadroom), and the bounds of the growing factor. */
export const gcHeadroom = 64 * MiB
export const gcMaxGrowingPercent = 150
export const gcMinGrowingPercent = 50
export const gcSoftMemoryLimit = 280 * MiB

/**
 * Buffers allocated between young collections that YoungBufferCollector allows, and how often it looks: every
 * `youngBufferActiveInterval` while buffers are being allocated, every `youngBufferIdleInterval` otherwise.
 */
export const youngBufferStep = 16 * MiB
/** The step counts only when reached within this window, i.e. buffers growing at 32 MiB/s or more. */
export const youngBufferWindow = 500 * millisecond
export const youngBufferActiveInterval = 10 * millisecond
export const youngBufferIdleInterval = 250 * millisecond
/** Looks in a row that each see buffers grow by less than a 64th of the step, after which it looks at the idle pace. */
export const youngBufferQuietChecks = 20

/**
 * How often the event-loop delay histogram behind `meshos_process_nodejs_eventloop_lag_*` samples. prom-client's 10 ms
 * woke an idle node 100 times a second, about 40 % of its wake-ups; at 50 ms an idle node in a 4-node testnet used
 * 3-5 ms of CPU a second less (of ~30).
 */
export const eventLoopMonitoringPrecision = 50 * millisecond
