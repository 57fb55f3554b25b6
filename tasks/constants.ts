import { KiB, MiB, millisecond, second, minute, hour } from '../lib/units.js'

/** Retries after the node running a task dies (`--retries`). */
export const DEFAULT_RETRIES = 3
/** Upper bound of `--retries` and `--retry-failed`, so a bad spec cannot loop for ever. */
export const MAX_RETRIES = 100
/** A task runs at most this long unless it says otherwise (`--timeout`). */
export const DEFAULT_TIMEOUT = 1 * 60 * minute
export const MAX_TIMEOUT = 7 * 24 * 60 * minute
/** Between SIGTERM and SIGKILL; with the RPC hop this keeps cancel within 2 s. */
export const KILL_GRACE = 1 * second
/** Captured bytes of each of stdout and stderr; the rest is counted, not kept (the store's value limit is 1 MiB). */
export const MAX_OUTPUT_BYTES = 256 * KiB
/** Inline working files of a spec, all together. */
export const MAX_INLINE_FILES_BYTES = 64 * KiB
/** A spec as JSON, all together. */
export const MAX_SPEC_BYTES = 128 * KiB
/** Tasks one POST /v1/tasks may submit. */
export const MAX_BATCH = 10_000
/**
 * Largest body of one submission. JSON.parse of 64 MiB of empty specs took two minutes and 2.5 GiB before the count
 * could be checked; 16 MiB still carries a full batch of specs of 1.6 KiB, and `mesh task submit --batch` splits by
 * bytes as well as by count.
 */
export const MAX_SUBMIT_BYTES = 16 * MiB
/**
 * Store writes in flight for one batch submission. The store sends the writes of one turn to each replica as one
 * request (of at most 256 records), so this is also the size of the requests a large submission makes.
 */
export const SUBMIT_CONCURRENCY = 256

/** Idle thief's poll when no member advertises a backlog; a join or a metadata update wakes it sooner. */
export const STEAL_IDLE_INTERVAL = 100 * millisecond
/** Poll after a steal that brought work, so a backlog drains quickly. */
export const STEAL_BUSY_INTERVAL = 5 * millisecond
/** Longest back-off between empty probes of an idle mesh: bounds how long a backlog goes unnoticed. */
export const STEAL_MAX_BACKOFF = 250 * millisecond
/** A thief steals while it holds fewer than this many rounds of its slots (running + queued). */
export const STEAL_HOLD_ROUNDS = 4
/**
 * Deadline of the victim's store writes for one steal: a move that has not landed by then is abandoned (the tasks stay
 * with the victim), so that one slow replica does not keep a thief idle.
 */
export const STEAL_WRITE_TIMEOUT = 2 * second
/** Deadline of one steal as the thief sees it: the victim's writes and the round trip. */
export const STEAL_TIMEOUT = 3 * second
/**
 * Most tasks one steal may take. A steal takes the thief's fair share of the victim's backlog (half, between equal
 * nodes, as in Cilk), so that a few steals spread a large batch; this bounds the victim's store writes for one steal
 * and so the time the thief waits for its answer.
 */
export const STEAL_MAX_BATCH = 32
/** A victim's answer about its queue is trusted over its gossiped metadata for this long. */
export const VICTIM_VIEW_TTL = 1 * second
/** A victim that refused a steal is not asked again (unless probed) for this long: long enough not to thrash it. */
export const VICTIM_REFUSED_TTL = 200 * millisecond
/** Victims are drawn at random from this many of the most loaded members, so thieves do not all pick the same one. */
export const VICTIM_CANDIDATES = 2
/** Assumed cost of a steal before one has been measured. */
export const DEFAULT_STEAL_COST = 20 * millisecond
/** Assumed run time of a task before any has finished here. */
export const DEFAULT_TASK_DURATION = 100 * millisecond

/** Membership metadata is signed and gossiped: publish at most this often. */
export const META_INTERVAL = 1 * second
/** Heartbeat of the local loop; a late beat means the process was frozen (and may have been declared dead). */
export const TICK_INTERVAL = 250 * millisecond
/** A beat this late means others may have declared this node dead: check ownership before running anything more. */
export const GAP_THRESHOLD = 2 * second
/**
 * After a stall, every write of a task record re-reads the record at quorum first, for this long: the node may have
 * been declared dead and its tasks adopted, and its membership may not know yet.
 */
export const FENCE_WINDOW = 10 * GAP_THRESHOLD
/**
 * `running` is recorded only once a run has lasted this long: a shorter task goes from `queued` straight to its end in
 * one store write. The cost: a holder that dies within this time leaves the record `queued` under its name, so the
 * re-run does not spend a retry, and `status` says `queued` for the first moments of a run.
 */
export const RUNNING_RECORD_AFTER = 250 * millisecond
/** Tries of one task record write before it is given up (logged; the record keeps its last state). */
export const WRITE_TRIES = 5
/** First back-off between tries of a record write; it doubles. */
export const WRITE_RETRY_BACKOFF = 100 * millisecond
/**
 * A task's end (or a queued task's cancel) whose record write failed every try is written again this often, the task
 * held meanwhile, until it lands or the node stops: otherwise the store kept it queued or running under a live node
 * that held nothing, and no sweep would ever take it.
 */
export const END_RETRY_INTERVAL = 5 * second
/** A run longer than this may have outlived a false death verdict: check ownership before recording its end. */
export const VERIFY_AFTER = 2 * second
/** Backstop sweep for tasks whose holder is gone (e.g. an adopter that died mid-adoption). */
export const SWEEP_INTERVAL = 30 * second
/**
 * A node that is not the adopter looks for records under its own name that it does not hold every this many backstop
 * rounds when nothing says it should (every round when something does): each look reads every task record.
 */
export const OWN_SWEEP_ROUNDS = 10
/** A restart's recovery of the tasks under the node's name is tried this often, this many times, before it is left to the backstop rounds. */
export const RECOVERY_RETRY_INTERVAL = 2 * second
export const RECOVERY_TRIES = 30
/** Largest scan of task records at once. */
export const SCAN_LIMIT = 10_000
/**
 * How long a task's record, logs and idempotency key stay in the store after it ends (a TTL on their last write): as
 * Nomad collects finished jobs, so that a mesh running tasks for months does not keep every one. `status` of an older
 * task is NOT_FOUND.
 */
export const RETENTION = 24 * hour
/** Deadline of a store operation. */
export const STORE_TIMEOUT = 10 * second
/** Deadline of reading every task record, page after page (each page has STORE_TIMEOUT). */
export const SCAN_TIMEOUT = 2 * minute
/** Deadline of fetching inputs and storing outputs of one task. */
export const FILES_TIMEOUT = 2 * minute
/** Largest output file a task may store. */
export const MAX_OUTPUT_FILE = 1024 * MiB

/** Key prefixes in the replicated store. */
export const TASK_PREFIX = 'tasks/t/'
export const LOG_PREFIX = 'tasks/log/'
export const IDEMPOTENCY_PREFIX = 'tasks/idem/'
