// Connections to the other nodes: one pipelined client per peer, opened on first use and kept
// until the peer is dead, has left or moved to another address. Many requests share a connection
// in flight; the client reconnects with backoff after a failure.

import { DkvClient } from '../client/client.js';
import { DkvError } from '../lib/errors.js';
import { Opcode } from '../wire/codes.js';
import type { ClusterView } from './cluster-view.js';
import { ReplicaPutBatches, type ReplicaPutTarget } from './replica-puts.js';

const CONNECT_TIMEOUT_MS = 1000;

// How the coordinator and hinted handoff reach other nodes: PeerPool over TCP, or the
// simulator's in-memory network.
export interface Peers {
  request(id: string, opcode: number, body: unknown, timeoutMs: number): Promise<unknown>;
  requestRaw(id: string, opcode: number, body: unknown, timeoutMs: number): Promise<Buffer>;
  // A REPLICA_PUT body for peer `id`, sent with others to it (ReplicaPutBatches); `target` is
  // told its outcome once, with `slot`.
  replicaPut(id: string, body: Buffer, timeoutMs: number, target: ReplicaPutTarget, slot: number): void;
  // REPLICA_PUTS requests sent.
  readonly replicaPutBatchesSent: number;
}

export class PeerPool implements Peers {
  // By member id: the address the client was opened to, and the client.
  private readonly clients = new Map<string, { address: string; client: DkvClient }>();

  // The writes made while handling one chunk of a connection's input go out together, right
  // after it. Waiting for the end of the turn (setImmediate) gathers more, but starts the other
  // replicas' syncs later: YCSB-A (3 nodes, 384 in flight) lost 6-13% that way, while writes at
  // 51 in flight gained alike either way.
  private readonly batches = new ReplicaPutBatches({
    sendBatch: (id, body, timeoutMs) => this.requestRaw(id, Opcode.REPLICA_PUTS, body, timeoutMs),
    sendOne: (id, body, timeoutMs) => this.request(id, Opcode.REPLICA_PUT, body, timeoutMs),
    schedule: (flush) => process.nextTick(flush),
    nowMs: () => performance.now(),
  });

  constructor(private readonly view: ClusterView) {}

  private client(id: string): DkvClient {
    const address = this.view.addressOf(id);
    if (address === undefined) throw new DkvError('QUORUM_FAILED', `node ${id} is not a member`);
    const name = `${address.host}:${address.tcpPort}`;
    const open = this.clients.get(id);
    if (open !== undefined && open.address === name) return open.client;
    // A member that restarted elsewhere: its old connection goes.
    if (open !== undefined) this.drop(id);
    const client = new DkvClient({ host: address.host, port: address.tcpPort, connectTimeoutMs: CONNECT_TIMEOUT_MS });
    this.clients.set(id, { address: name, client });
    return client;
  }

  // Closes the connection to a member that is dead or gone; requests still waiting on it fail.
  // A later request opens a new one.
  drop(id: string): void {
    const open = this.clients.get(id);
    if (open === undefined) return;
    this.clients.delete(id);
    open.client.close().catch(() => undefined);
  }

  // Connections open (or being opened) to peers.
  get size(): number {
    return this.clients.size;
  }

  async request(id: string, opcode: number, body: unknown, timeoutMs: number): Promise<unknown> {
    return this.ready(id).request(opcode, body, timeoutMs);
  }

  async requestRaw(id: string, opcode: number, body: unknown, timeoutMs: number): Promise<Buffer> {
    return this.ready(id).requestRaw(opcode, body, timeoutMs);
  }

  replicaPut(id: string, body: Buffer, timeoutMs: number, target: ReplicaPutTarget, slot: number): void {
    this.batches.add(id, body, timeoutMs, target, slot);
  }

  get replicaPutBatchesSent(): number {
    return this.batches.sent;
  }

  // A peer that just refused a connection fails at once, so the coordinator moves on to a
  // fallback instead of waiting out the reconnect backoff.
  private ready(id: string): DkvClient {
    const client = this.client(id);
    if (client.backingOff) throw new DkvError('CANNOT_CONNECT', `node ${id} refused a connection moments ago`);
    return client;
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((open) => open.client.close().catch(() => undefined)));
    this.clients.clear();
  }
}
