import type {
  WriteRequest, WriteResponse, ReadRequest, ReadResponse, ReadManyRequest, ReadManyResponse, FetchRequest, FetchResponse,
  MerkleRequest, MerkleResponse, FetchRangeRequest, FetchRangeResponse, ScanRequest, ScanResponse, PurgesRequest, PurgesResponse
} from './storage.js'

/**
 * How many replicas must answer. `one`: 1, `quorum`: floor(rf/2)+1, `all`: every replica.
 * `any` (writes only): one ack or one durable hint on the coordinator.
 */
export type ConsistencyLevel = 'any' | 'one' | 'quorum' | 'all'
export const consistencyLevels: readonly ConsistencyLevel[] = ['any', 'one', 'quorum', 'all']

export type MembershipEvent = 'join' | 'alive' | 'dead' | 'left'

/**
 * What storage needs to know about the mesh. Provided by the membership protocol.
 *
 * `members()` is the ring: nodes that hold data, including ones that are currently down
 * (they get hints). A node leaves the ring only by leaving or by being removed
 * (`left`); only then do its ranges move to other nodes and the replication factor is
 * restored by anti-entropy. `dead` means unreachable for now.
 */
export interface MembershipView {
  /** This node's peer id. */
  self(): string
  /** Peer ids in the ring, including self and down members. */
  members(): string[]
  /** Peer ids currently reachable, including self. */
  alive(): string[]
  isAlive(id: string): boolean
  /**
   * False while this node's view may still lack members (just after a restart, before it has heard the mesh's
   * table). A ring computed from such a view names the wrong replicas, so the coordinator refuses operations
   * (ViewNotReadyError) and anti-entropy, rebalancing and orphaned-hint forwarding wait. Absent means always ready.
   */
  ready?(): boolean
  /**
   * Ring members announced as joining: new to a mesh that holds data, still copying their ranges from the members
   * that hold them now (Cassandra's pending ranges). Writes go to them as well as to the replicas of the ring without
   * them, and reads go only to the latter, so a quorum read never counts a replica that has yet to receive what was
   * written before it came. Absent means none.
   */
  joining?(): string[]
  /**
   * This member's ring let go of `peer` (it left, or was dead past the ring's grace) since `peer` was last in it, and
   * `peer` has not yet said it is joining again: back now, it lacks the writes its ranges took on other members
   * meanwhile (see AbsenceGuard). Absent means never.
   */
  letGo?(peer: string): boolean
  /** Subscribe; returns the unsubscribe function. */
  on(event: MembershipEvent, listener: (peerId: string) => void): () => void
}

/**
 * What a coordinator, hint replayer and anti-entropy need from a remote replica.
 * Every method mirrors a {@link ReplicaService} method with the same protons messages,
 * so an RPC adapter is a table of (name, request codec, response codec).
 * Implementations throw a MeshError (e.g. NodeUnreachableError) on failure and honour the signal.
 */
export interface ReplicaTransport {
  write(peer: string, req: WriteRequest, signal: AbortSignal): Promise<WriteResponse>
  read(peer: string, req: ReadRequest, signal: AbortSignal): Promise<ReadResponse>
  readMany(peer: string, req: ReadManyRequest, signal: AbortSignal): Promise<ReadManyResponse>
  fetch(peer: string, req: FetchRequest, signal: AbortSignal): Promise<FetchResponse>
  merkle(peer: string, req: MerkleRequest, signal: AbortSignal): Promise<MerkleResponse>
  fetchRange(peer: string, req: FetchRangeRequest, signal: AbortSignal): Promise<FetchRangeResponse>
  scan(peer: string, req: ScanRequest, signal: AbortSignal): Promise<ScanResponse>
  purges(peer: string, req: PurgesRequest, signal: AbortSignal): Promise<PurgesResponse>
}

export type ReplicaMethod = keyof ReplicaTransport
