// Connections to the other nodes: one pipelined client per peer, opened on first use and kept.
// Many requests share a connection in flight; the client reconnects with backoff after a
// failure.

import { DkvClient } from '../client/client.js';
import { DkvError } from '../lib/errors.js';
import type { ClusterView } from './cluster-view.js';

const CONNECT_TIMEOUT_MS = 1000;

// How the coordinator and hinted handoff reach other nodes: PeerPool over TCP, or the
// simulator's in-memory network.
export interface Peers {
  request(id: string, opcode: number, body: unknown, timeoutMs: number): Promise<unknown>;
  requestRaw(id: string, opcode: number, body: unknown, timeoutMs: number): Promise<Buffer>;
}

export class PeerPool implements Peers {
  private readonly clients = new Map<string, DkvClient>();

  constructor(private readonly view: ClusterView) {}

  private client(id: string): DkvClient {
    const address = this.view.addressOf(id);
    if (address === undefined) throw new DkvError('QUORUM_FAILED', `node ${id} is not a member`);
    const name = `${address.host}:${address.tcpPort}`;
    let client = this.clients.get(name);
    if (client === undefined) {
      client = new DkvClient({ host: address.host, port: address.tcpPort, connectTimeoutMs: CONNECT_TIMEOUT_MS });
      this.clients.set(name, client);
    }
    return client;
  }

  async request(id: string, opcode: number, body: unknown, timeoutMs: number): Promise<unknown> {
    return this.ready(id).request(opcode, body, timeoutMs);
  }

  async requestRaw(id: string, opcode: number, body: unknown, timeoutMs: number): Promise<Buffer> {
    return this.ready(id).requestRaw(opcode, body, timeoutMs);
  }

  // A peer that just refused a connection fails at once, so the coordinator moves on to a
  // fallback instead of waiting out the reconnect backoff.
  private ready(id: string): DkvClient {
    const client = this.client(id);
    if (client.backingOff) throw new DkvError('CANNOT_CONNECT', `node ${id} refused a connection moments ago`);
    return client;
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close().catch(() => undefined)));
    this.clients.clear();
  }
}
