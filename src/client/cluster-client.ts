// A ring-aware client: it fetches the ring from any node (ROUTING), sends each request straight
// to a healthy replica of its key, so that a GET costs that replica's round trips to R − 1 others
// and no forwarding hop, and falls back to the key's other replicas and then to any node when
// one fails. Requests carry the ring's checksum; a reply that says the ring changed makes the
// client fetch ROUTING again.

import { DkvError, isDkvError } from '../lib/errors.js';
import { Ring } from '../ring/ring.js';
import { tokenOf } from '../ring/token.js';
import { Opcode } from '../wire/codes.js';
import {
  DkvClient,
  parseAddress,
  type ClientOptions,
  type DeleteResult,
  type GetResult,
  type Key,
  type PutResult,
  type ReadOptions,
  type Value,
  type WriteOptions,
} from './client.js';

export interface RoutingMember {
  id: string;
  tcpAddress: string;
  state: 'alive' | 'suspect' | 'dead';
}

export interface Routing {
  ring: Ring;
  checksum: number;
  replicas: number;
  members: RoutingMember[];
}

export interface KeyPlacement {
  token: number;
  replicas: RoutingMember[];
}

export class ClusterClient {
  private routing: Routing | null = null;
  private readonly clients = new Map<string, DkvClient>();
  private refreshing: Promise<void> | null = null;
  private readonly seeds: string[];

  private constructor(
    seeds: string[],
    private readonly options: Omit<ClientOptions, 'host' | 'port'>,
  ) {
    this.seeds = seeds;
  }

  // Connects through any of the seeds (host:port) and loads the ring.
  static async connect(seeds: string | string[], options: Omit<ClientOptions, 'host' | 'port'> = {}): Promise<ClusterClient> {
    const client = new ClusterClient(typeof seeds === 'string' ? [seeds] : seeds, options);
    await client.refresh();
    return client;
  }

  get ring(): Routing {
    if (this.routing === null) throw new DkvError('CANNOT_CONNECT', 'no ring loaded');
    return this.routing;
  }

  // Fetches ROUTING from a member (or a seed), replacing the ring.
  async refresh(): Promise<void> {
    this.refreshing ??= this.load().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async load(): Promise<void> {
    const candidates = [...(this.routing?.members.filter((m) => m.state === 'alive').map((m) => m.tcpAddress) ?? []), ...this.seeds];
    let lastError: unknown = new DkvError('CANNOT_CONNECT', 'no node to ask for the ring');
    for (const address of candidates) {
      try {
        const body = (await this.client(address).request(Opcode.ROUTING, null)) as {
          ring?: unknown;
          vnodes?: unknown;
          replicas?: unknown;
          members?: unknown;
        };
        if (typeof body?.ring !== 'number' || typeof body.vnodes !== 'number' || !Array.isArray(body.members)) {
          throw new DkvError('PROTOCOL_VIOLATION', `ROUTING reply from ${address} is malformed`);
        }
        const members = body.members as RoutingMember[];
        const ring = new Ring(
          members.map((m) => m.id),
          body.vnodes,
        );
        this.routing = { ring, checksum: body.ring, replicas: Number(body.replicas), members };
        return;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  // Where a key lives: its replicas in preference order, with their states.
  where(key: Key): KeyPlacement {
    const routing = this.ring;
    const bytes = typeof key === 'string' ? Buffer.from(key) : key;
    const ids = routing.ring.preferenceList(bytes, routing.replicas);
    const byId = new Map(routing.members.map((m) => [m.id, m]));
    return { token: tokenOf(bytes), replicas: ids.map((id) => byId.get(id)!) };
  }

  async get(key: Key, options: ReadOptions = {}): Promise<GetResult | null> {
    return this.routed(key, (client, ring) => client.get(key, { ...options, ring }));
  }

  async put(key: Key, value: Value, options: WriteOptions = {}): Promise<PutResult> {
    return this.routed(key, (client, ring) => client.put(key, value, { ...options, ring }));
  }

  async del(key: Key, options: WriteOptions = {}): Promise<DeleteResult> {
    return this.routed(key, (client, ring) => client.del(key, { ...options, ring }));
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    this.clients.clear();
  }

  // Tries the key's alive replicas in order, then any other alive node; a node that cannot be
  // reached is skipped (the request was not sent, or got no answer: a write may retry).
  private async routed<T>(key: Key, call: (client: DkvClient, ring: number) => Promise<T>): Promise<T> {
    const routing = this.ring;
    const placement = this.where(key);
    const order = [
      ...placement.replicas.filter((m) => m.state === 'alive'),
      ...routing.members.filter((m) => m.state === 'alive' && !placement.replicas.includes(m)),
    ];
    let lastError: unknown = new DkvError('CANNOT_CONNECT', 'no alive node in the ring');
    for (const member of order) {
      const client = this.client(member.tcpAddress);
      if (client.backingOff) continue;
      try {
        const result = await call(client, routing.checksum);
        if (client.staleRing !== null) {
          client.staleRing = null;
          void this.refresh().catch(() => undefined);
        }
        return result;
      } catch (error) {
        lastError = error;
        if (!isDkvError(error, 'CANNOT_CONNECT') && !isDkvError(error, 'CONNECTION_CLOSED') && !isDkvError(error, 'SHUTTING_DOWN')) {
          throw error;
        }
        void this.refresh().catch(() => undefined);
      }
    }
    throw lastError;
  }

  private client(address: string): DkvClient {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new DkvClient({ ...this.options, ...parseAddress(address) });
      this.clients.set(address, client);
    }
    return client;
  }
}

