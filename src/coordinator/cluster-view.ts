// What the data path knows of the cluster: the ring (every member that has joined and not left:
// alive, suspect or dead) and which members are healthy (alive) right now, fed by membership
// events. A crash is not a departure: a dead member keeps its place on the ring, and its writes
// go to fallback nodes with hints until it is back. Pure.

import { assert } from '../lib/assert.js';
import { Ring } from '../ring/ring.js';
import { tokenOf } from '../ring/token.js';

export type PeerStatus = 'alive' | 'suspect' | 'dead' | 'left' | 'forgotten';

export interface PeerAddress {
  host: string;
  tcpPort: number;
}

export interface ReplicaPlan {
  // The key's preference list: min(N, ring size) members, first replica first.
  replicas: string[];
  // Healthy members after the preference list, clockwise: where writes for unhealthy replicas
  // go, with hints.
  fallbacks: string[];
}

export class ClusterView {
  private readonly status = new Map<string, PeerStatus>();
  private readonly addresses = new Map<string, PeerAddress>();
  private current: Ring;
  private dirty = false;
  private readonly indices: Int32Array;

  constructor(
    readonly selfId: string,
    selfAddress: PeerAddress,
    readonly replicasN: number,
    readonly vnodes: number,
  ) {
    assert(replicasN >= 1, 'at least one replica per key');
    this.status.set(selfId, 'alive');
    this.addresses.set(selfId, selfAddress);
    this.current = new Ring([selfId], vnodes);
    this.indices = new Int32Array(64);
  }

  // A membership event about another member.
  update(id: string, status: PeerStatus, address: PeerAddress): void {
    if (id === this.selfId) return;
    const before = this.status.get(id);
    if (status === 'left' || status === 'forgotten') {
      if (before !== undefined) {
        this.status.delete(id);
        this.addresses.delete(id);
        this.dirty = true;
      }
      return;
    }
    this.status.set(id, status);
    this.addresses.set(id, address);
    if (before === undefined) this.dirty = true;
  }

  get ring(): Ring {
    if (this.dirty) {
      this.current = new Ring(this.status.keys(), this.vnodes);
      this.dirty = false;
    }
    return this.current;
  }

  get checksum(): number {
    return this.ring.checksum;
  }

  get size(): number {
    return this.status.size;
  }

  isHealthy(id: string): boolean {
    return this.status.get(id) === 'alive';
  }

  statusOf(id: string): PeerStatus | undefined {
    return this.status.get(id);
  }

  addressOf(id: string): PeerAddress | undefined {
    return this.addresses.get(id);
  }

  members(): Array<{ id: string; status: PeerStatus; address: PeerAddress }> {
    return this.ring.members.map((id) => ({ id, status: this.status.get(id)!, address: this.addresses.get(id)! }));
  }

  // The key's replicas and, with `withFallbacks`, the healthy members after them.
  plan(key: Uint8Array, withFallbacks = false): ReplicaPlan {
    const ring = this.ring;
    const n = Math.min(this.replicasN, ring.size);
    const want = withFallbacks ? Math.min(ring.size, this.indices.length) : n;
    const found = ring.preferenceIndices(tokenOf(key), want, this.indices);
    const replicas: string[] = [];
    const fallbacks: string[] = [];
    for (let i = 0; i < found; i++) {
      const id = ring.members[this.indices[i]!]!;
      if (i < n) replicas.push(id);
      else if (this.isHealthy(id)) fallbacks.push(id);
    }
    return { replicas, fallbacks };
  }
}
