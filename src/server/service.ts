// What request handlers of either dialect share: the store, the counters and the node's state.
import type { Logger } from '../lib/log.js';
import type { VersionedStore, WriteResult } from '../store/versioned-store.js';
import type { Clock } from '../version/dvv.js';
import type { QuorumOptions } from '../wire/messages.js';
import type { Membership } from '../swim/membership.js';
import type { ClusterView } from '../coordinator/cluster-view.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import type { ServerStats } from './stats.js';

export interface Service {
  readonly nodeId: string;
  readonly version: string;
  readonly store: VersionedStore;
  readonly stats: ServerStats;
  readonly log: Logger;
  readonly nowMs: () => number;
  // Set once the node has begun to shut down: new requests get SHUTTING_DOWN.
  readonly shuttingDown: boolean;
  readonly membership: Membership;
  // The ring and members' health, and the coordinator of requests across replicas.
  readonly cluster: ClusterView;
  readonly coordinator: Coordinator;
  // A client's PUT (value) or DELETE (null): the store's own write while this node is the whole
  // ring, the coordinator's across replicas otherwise.
  write(key: Uint8Array, value: Uint8Array | null, context: Clock | undefined, options: QuorumOptions): Promise<WriteResult>;
  // The same write without a context, for a reply that says only that it was acknowledged (RESP
  // SET): resolves then. While this node is the whole ring, writes made together share one
  // promise (the log batch's), so that a pipeline of them costs one promise, not one each.
  acknowledgedWrite(key: Uint8Array, value: Uint8Array, options: QuorumOptions): Promise<unknown>;
  // Leaves the cluster gracefully, then stops the node.
  leave(): Promise<void>;
  // The STATS reply and INFO's fields: name → value.
  statsSnapshot(): Record<string, string | number>;
}
