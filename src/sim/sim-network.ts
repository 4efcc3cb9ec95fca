// The simulated network: an in-memory PacketTransport that loses (uniformly and per link),
// delays, reorders, duplicates and partitions (both ways or one way) datagrams, all drawn from
// one seeded Random so that a run replays exactly. Pure: it schedules deliveries through a
// sink (the cluster's event queue) and never touches a socket or a timer.
//
// Nodes are small integers (their index in the shared MemberDirectory); addresses map to them
// through `register`. The bytes are the real datagrams from the real codec, passed by
// reference: a receiver only reads them.

import { assert } from '../lib/assert.js';
import { limits } from '../lib/limits.js';
import type { Random } from '../lib/random.js';

// What a shell sends datagrams through. The UDP shell's socket and the simulator's endpoint
// both fit it.
export interface PacketTransport {
  send(host: string, port: number, bytes: Uint8Array): void;
}

export interface NetworkOptions {
  // Probability that any one datagram is lost.
  lossRate: number;
  // One-way delay: delayMinMs plus a uniform draw in [0, delayJitterMs). Independent draws
  // reorder datagrams whose sending times are closer than the jitter.
  delayMinMs: number;
  delayJitterMs: number;
  // Probability that a datagram is held back a further uniform [0, reorderDelayMs), so it
  // arrives after later ones.
  reorderRate: number;
  reorderDelayMs: number;
  // Probability that a datagram arrives twice (the copy with its own delay).
  duplicateRate: number;
}

// A quiet LAN: sub-millisecond to a few milliseconds, nothing lost.
export const LAN_NETWORK: Readonly<NetworkOptions> = {
  lossRate: 0,
  delayMinMs: 0.2,
  delayJitterMs: 2,
  reorderRate: 0,
  reorderDelayMs: 50,
  duplicateRate: 0,
};

export function networkOptions(overrides: Partial<NetworkOptions> = {}): NetworkOptions {
  const options = { ...LAN_NETWORK, ...overrides };
  for (const name of ['lossRate', 'reorderRate', 'duplicateRate'] as const) {
    assert(options[name] >= 0 && options[name] <= 1, `${name} is a probability`);
  }
  for (const name of ['delayMinMs', 'delayJitterMs', 'reorderDelayMs'] as const) {
    assert(options[name] >= 0 && options[name] < Infinity, `${name} is a finite duration`);
  }
  return options;
}

// Where the network hands a datagram for delivery at a later virtual time.
export interface PacketSink {
  schedulePacket(atMs: number, source: number, target: number, bytes: Uint8Array): void;
}

export class NetworkStats {
  sent = 0;
  bytesSent = 0;
  lost = 0;
  // Dropped by a partition or a link whose loss is total.
  cut = 0;
  duplicated = 0;
  reordered = 0;
  // Sent to an address no node has.
  unroutable = 0;
}

// Partitions are drawn as sides: every node is on a side (0 unless placed), and a cut from side
// a to side b drops everything sent from a to b. Sides are few, so the check is one array read.
const SIDES_MAX = 16;

export class SimNetwork {
  readonly stats = new NetworkStats();
  readonly options: NetworkOptions;
  // Simulated nodes each have their own host; the port is checked, not hashed.
  private readonly hosts = new Map<string, number>();
  private readonly ports = new Int32Array(limits.membersMax).fill(-1);
  private readonly sides = new Uint8Array(limits.membersMax);
  private readonly cuts = new Uint8Array(SIDES_MAX * SIDES_MAX);
  private cutCount = 0;
  // Per-link loss, keyed source · membersMax + target.
  private readonly linkLoss = new Map<number, number>();

  constructor(
    options: NetworkOptions,
    private readonly random: Random,
    private readonly sink: PacketSink,
  ) {
    this.options = networkOptions(options);
  }

  register(host: string, port: number, node: number): void {
    assert(node >= 0 && node < limits.membersMax, 'node index fits the network');
    const known = this.hosts.get(host);
    assert(known === undefined || known === node, 'one node per simulated host');
    this.hosts.set(host, node);
    this.ports[node] = port;
  }

  // The node at an address, or -1.
  nodeAt(host: string, port: number): number {
    const node = this.hosts.get(host);
    return node !== undefined && this.ports[node] === port ? node : -1;
  }

  // The transport a shell running node `source` would send through.
  endpoint(source: number, clock: { readonly nowMs: number }): PacketTransport {
    return {
      send: (host, port, bytes) => this.sendTo(source, host, port, bytes, clock.nowMs),
    };
  }

  sendTo(source: number, host: string, port: number, bytes: Uint8Array, nowMs: number): void {
    const target = this.nodeAt(host, port);
    if (target < 0) {
      this.stats.sent++;
      this.stats.bytesSent += bytes.length;
      this.stats.unroutable++;
      return;
    }
    this.send(source, target, bytes, nowMs);
  }

  // Sends one datagram from node to node: counts it, then loses, cuts, delays, holds back or
  // duplicates it as the options and the partitions say.
  send(source: number, target: number, bytes: Uint8Array, nowMs: number): void {
    const stats = this.stats;
    stats.sent++;
    stats.bytesSent += bytes.length;
    if (this.cutCount > 0 && this.cuts[this.sides[source]! * SIDES_MAX + this.sides[target]!] === 1) {
      stats.cut++;
      return;
    }
    const options = this.options;
    const random = this.random;
    let loss = options.lossRate;
    if (this.linkLoss.size > 0) {
      const link = this.linkLoss.get(source * limits.membersMax + target);
      if (link !== undefined) {
        if (link >= 1) {
          stats.cut++;
          return;
        }
        // Independent causes: the datagram survives both or is lost.
        loss = 1 - (1 - loss) * (1 - link);
      }
    }
    if (loss > 0 && random.next() < loss) {
      stats.lost++;
      return;
    }
    this.sink.schedulePacket(nowMs + this.delayMs(), source, target, bytes);
    if (options.duplicateRate > 0 && random.next() < options.duplicateRate) {
      stats.duplicated++;
      this.sink.schedulePacket(nowMs + this.delayMs(), source, target, bytes);
    }
  }

  // One draw of the one-way delay.
  delayMs(): number {
    const options = this.options;
    let delay = options.delayMinMs;
    if (options.delayJitterMs > 0) delay += this.random.next() * options.delayJitterMs;
    if (options.reorderRate > 0 && this.random.next() < options.reorderRate) {
      this.stats.reordered++;
      delay += this.random.next() * options.reorderDelayMs;
    }
    return delay;
  }

  // Whether a TCP connection between a and b can work: both directions open.
  canConnect(a: number, b: number): boolean {
    if (this.cutCount > 0) {
      const sa = this.sides[a]!;
      const sb = this.sides[b]!;
      if (this.cuts[sa * SIDES_MAX + sb] === 1 || this.cuts[sb * SIDES_MAX + sa] === 1) return false;
    }
    if (this.linkLoss.size > 0) {
      if ((this.linkLoss.get(a * limits.membersMax + b) ?? 0) >= 1) return false;
      if ((this.linkLoss.get(b * limits.membersMax + a) ?? 0) >= 1) return false;
    }
    return true;
  }

  setLinkLoss(source: number, target: number, rate: number): void {
    assert(rate >= 0 && rate <= 1, 'link loss is a probability');
    const key = source * limits.membersMax + target;
    if (rate === 0) this.linkLoss.delete(key);
    else this.linkLoss.set(key, rate);
  }

  setUniformLoss(rate: number): void {
    assert(rate >= 0 && rate <= 1, 'loss is a probability');
    this.options.lossRate = rate;
  }

  // Splits the network: each group on its own side, every node not listed on one more side,
  // and nothing crosses between sides in either direction. Replaces any earlier partition.
  partition(groups: readonly (readonly number[])[]): void {
    assert(groups.length >= 1 && groups.length < SIDES_MAX, 'between 1 and 15 groups');
    this.healPartitions();
    groups.forEach((group, g) => {
      for (const node of group) this.sides[node] = g + 1;
    });
    for (let a = 0; a <= groups.length; a++) {
      for (let b = 0; b <= groups.length; b++) if (a !== b) this.cut(a, b);
    }
  }

  // Datagrams from `sources` to `targets` are dropped; the other way still works (a one-way
  // partition: a firewall rule, a broken route). Replaces any earlier partition.
  blockOneWay(sources: readonly number[], targets: readonly number[]): void {
    this.healPartitions();
    for (const node of sources) this.sides[node] = 1;
    for (const node of targets) {
      assert(this.sides[node] !== 1, 'a node is not both a source and a target of a one-way cut');
      this.sides[node] = 2;
    }
    this.cut(1, 2);
  }

  healPartitions(): void {
    this.sides.fill(0);
    this.cuts.fill(0);
    this.cutCount = 0;
  }

  clearLinkLoss(): void {
    this.linkLoss.clear();
  }

  private cut(from: number, to: number): void {
    const key = from * SIDES_MAX + to;
    if (this.cuts[key] === 1) return;
    this.cuts[key] = 1;
    this.cutCount++;
  }
}
