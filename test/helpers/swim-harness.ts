// A tiny deterministic network for SwimCore tests: cores in one process, each with its own
// directory (as in dkvd), packets delivered FIFO after a fixed latency to the core whose host
// matches, time advanced only by `runUntil`. Optional loss: drop rules and a seeded loss rate.
// Nothing sleeps; every loop is bounded. Not a test file itself (tap runs it and finds none).

import { SeededRandom } from '../../src/lib/random.js';
import { swimConfig, type SwimConfig } from '../../src/swim/config.js';
import { type MembershipEvent, SwimCore } from '../../src/swim/core.js';
import { MemberDirectory } from '../../src/swim/directory.js';
import { SwimMessageType } from '../../src/wire/codes.js';
import { decodeDatagramHeader, encodeDatagramHeader } from '../../src/wire/datagram.js';
import { SwimReader, SwimWriter } from '../../src/wire/swim-codec.js';

export const UDP_PORT = 7946;
export const TCP_PORT = 7947;
export const HEADER = encodeDatagramHeader(null, false);

export const hostOf = (i: number): string => `10.0.0.${i + 1}`;
export const idOf = (i: number): string => `n${i}`;

// A fast configuration: probes every 100 ms, so a test covers many rounds in little simulated time.
export function testConfig(overrides: Partial<SwimConfig> = {}): SwimConfig {
  return swimConfig({
    probeIntervalMs: 100,
    probeTimeoutMs: 40,
    gossipIntervalMs: 20,
    pushPullIntervalMs: 5000,
    deadRetentionMs: 3000,
    ...overrides,
  });
}

export interface Packet {
  atMs: number;
  from: number;
  to: number; // -1: no core has that host
  host: string;
  port: number;
  bytes: Buffer;
  lost: boolean;
}

export interface Observed {
  atMs: number;
  by: string;
  event: MembershipEvent;
}

export interface HarnessOptions {
  count: number;
  config?: Partial<SwimConfig>;
  seed?: number;
  latencyMs?: number;
  // Start with every member knowing every other alive (seedMember), as if formed long ago.
  formed?: boolean;
  incarnations?: number[];
}

const STEPS_MAX = 1_000_000;

export class Harness {
  nowMs = 0;
  readonly config: SwimConfig;
  readonly nodes: SwimCore[] = [];
  readonly up: boolean[] = [];
  // Every packet taken from an outbox, delivered or not, in order.
  readonly packets: Packet[] = [];
  readonly observed: Observed[] = [];
  // A packet matching any rule is lost. Rules can be pushed and removed while running.
  readonly drops: Array<(p: Packet) => boolean> = [];
  lossRate = 0;
  // Serve the cores' push-pull requests by exchanging localState/mergeState, as the shell does.
  servePushPulls = true;
  private readonly latencyMs: number;
  private readonly queue: Packet[] = [];
  private queueHead = 0;
  private readonly loss: SeededRandom;
  private readonly seed: number;

  constructor(options: HarnessOptions) {
    this.config = testConfig(options.config);
    this.seed = options.seed ?? 1;
    this.latencyMs = options.latencyMs ?? 1;
    this.loss = new SeededRandom(this.seed ^ 0x5eed);
    for (let i = 0; i < options.count; i++) {
      this.nodes.push(this.makeCore(i, options.incarnations?.[i] ?? 0));
      this.up.push(true);
    }
    if (options.formed === true) {
      for (const core of this.nodes) {
        for (let j = 0; j < options.count; j++) {
          const index = core.directory.intern(idOf(j), hostOf(j), UDP_PORT, TCP_PORT);
          core.seedMember(index, options.incarnations?.[j] ?? 0, this.nowMs);
        }
      }
    }
  }

  private makeCore(i: number, incarnation: number): SwimCore {
    const self = { id: idOf(i), host: hostOf(i), udpPort: UDP_PORT, tcpPort: TCP_PORT };
    return new SwimCore(this.config, new MemberDirectory(), self, new SeededRandom(this.seed * 1000 + i), this.nowMs, incarnation);
  }

  // Node i learns of node j as the simulator seeds it: alive, without news or events.
  introduce(i: number, j: number, incarnation = 0): void {
    const core = this.nodes[i]!;
    core.seedMember(core.directory.intern(idOf(j), hostOf(j), UDP_PORT, TCP_PORT), incarnation, this.nowMs);
  }

  node(i: number): SwimCore {
    return this.nodes[i]!;
  }

  indexOfHost(host: string): number {
    for (let i = 0; i < this.nodes.length; i++) if (hostOf(i) === host) return i;
    return -1;
  }

  // Takes node i's outbox into the network and its events into `observed`.
  flush(i: number): void {
    const core = this.nodes[i]!;
    for (let k = 0; k < core.outboxCount; k++) {
      const out = core.outbox[k]!;
      const to = this.indexOfHost(out.host);
      const packet: Packet = { atMs: this.nowMs, from: i, to, host: out.host, port: out.port, bytes: out.bytes, lost: false };
      packet.lost = to < 0 || this.drops.some((rule) => rule(packet)) || (this.lossRate > 0 && this.loss.next() < this.lossRate);
      this.packets.push(packet);
      if (!packet.lost) this.queue.push(packet);
    }
    core.clearOutbox();
    for (const event of core.events) this.observed.push({ atMs: this.nowMs, by: core.id, event });
    core.events.length = 0;
    if (this.servePushPulls) {
      const requests = core.pushPulls.splice(0);
      for (const request of requests) {
        const j = this.indexOfHost(request.host);
        if (j < 0 || !this.up[j]) continue;
        this.pushPull(i, j);
      }
    } else {
      core.pushPulls.length = 0;
    }
  }

  // A push-pull exchange between i and j: each merges the other's state.
  pushPull(i: number, j: number): void {
    const a = this.nodes[i]!;
    const b = this.nodes[j]!;
    const aState = a.localState();
    const bState = b.localState();
    if (!b.mergeState(aState, this.nowMs)) throw new Error(`${b.id} refused ${a.id}'s state`);
    if (!a.mergeState(bState, this.nowMs)) throw new Error(`${a.id} refused ${b.id}'s state`);
    this.flush(j);
    this.flush(i);
  }

  flushAll(): void {
    for (let i = 0; i < this.nodes.length; i++) this.flush(i);
  }

  // Delivers queued packets due by now, in order (those sent by the receivers go to the back).
  deliverDue(): void {
    for (let steps = 0; this.queueHead < this.queue.length; steps++) {
      if (steps > STEPS_MAX) throw new Error('delivery did not settle');
      const packet = this.queue[this.queueHead]!;
      if (packet.atMs + this.latencyMs > this.nowMs) break;
      this.queueHead++;
      if (!this.up[packet.to]) continue;
      this.nodes[packet.to]!.receive(hostOf(packet.from), packet.port, packet.bytes, this.nowMs);
      this.flush(packet.to);
    }
    if (this.queueHead > 4096) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  // Runs every live core's deadlines and every packet up to endMs, in time order.
  runUntil(endMs: number): void {
    this.flushAll();
    for (let steps = 0; ; steps++) {
      if (steps > STEPS_MAX) throw new Error(`no quiescence by ${this.nowMs} ms`);
      this.deliverDue();
      let next = Infinity;
      let who = -1;
      for (let i = 0; i < this.nodes.length; i++) {
        if (!this.up[i]) continue;
        const deadline = this.nodes[i]!.nextDeadlineMs();
        if (deadline < next) {
          next = deadline;
          who = i;
        }
      }
      const packetAt = this.queueHead < this.queue.length ? this.queue[this.queueHead]!.atMs + this.latencyMs : Infinity;
      const at = Math.min(next, packetAt);
      if (at > endMs) break;
      if (at > this.nowMs) this.nowMs = at;
      if (packetAt <= next) continue; // delivered at the top of the loop
      this.nodes[who]!.tick(this.nowMs);
      this.flush(who);
    }
    this.nowMs = Math.max(this.nowMs, endMs);
  }

  run(forMs: number): void {
    this.runUntil(this.nowMs + forMs);
  }

  crash(i: number): void {
    this.up[i] = false;
  }

  // A new process at node i's address: a fresh core (empty directory) with this incarnation.
  restart(i: number, incarnation: number): SwimCore {
    const core = this.makeCore(i, incarnation);
    this.nodes[i] = core;
    this.up[i] = true;
    return core;
  }

  // How `by` sees `about`: its status, or undefined if `by` does not hold it.
  statusOf(by: number, about: number): string | undefined {
    return this.nodes[by]!.members().find((m) => m.id === idOf(about))?.status;
  }

  // Whether every live node holds every node in `expected` with that status.
  agree(expected: Record<number, string | undefined>): boolean {
    for (let i = 0; i < this.nodes.length; i++) {
      if (!this.up[i]) continue;
      for (const [about, status] of Object.entries(expected)) {
        if (Number(about) === i) continue;
        if (this.statusOf(i, Number(about)) !== status) return false;
      }
    }
    return true;
  }

  eventsAbout(about: number, status?: string): Observed[] {
    return this.observed.filter((o) => o.event.id === idOf(about) && (status === undefined || o.event.status === status));
  }
}

// ---- packets, built and read ----

export interface Message {
  type: number;
  number: number;
  id?: string;
  host?: string;
  from?: string;
  udpPort?: number;
  tcpPort?: number;
}

export const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(SwimMessageType).map(([name, code]) => [code, name]));

// The messages of a datagram, or null if it is malformed.
export function messagesOf(bytes: Uint8Array): Message[] | null {
  const reader = new SwimReader();
  let payloadStart: number;
  try {
    payloadStart = decodeDatagramHeader(bytes).payloadStart;
  } catch {
    return null;
  }
  reader.reset(bytes, payloadStart, bytes.length);
  const messages: Message[] = [];
  for (let steps = 0; steps <= bytes.length; steps++) {
    const type = reader.next();
    if (type === 0) return messages;
    if (type < 0) return null;
    const m: Message = { type, number: reader.number };
    if (type !== SwimMessageType.ACK && type !== SwimMessageType.NACK) m.id = reader.id();
    if (type === SwimMessageType.SUSPECT || type === SwimMessageType.DEAD) m.from = reader.from();
    if (type === SwimMessageType.ALIVE) {
      m.host = reader.host();
      m.udpPort = reader.udpPort;
      m.tcpPort = reader.tcpPort;
    }
    messages.push(m);
  }
  return null;
}

// A datagram: the header, then messages (each a Buffer, or written through a SwimWriter).
export function datagram(...messages: Array<Buffer | ((w: SwimWriter) => void)>): Buffer {
  const writer = new SwimWriter(65_000);
  writer.begin(HEADER);
  for (const m of messages) {
    if (typeof m === 'function') m(writer);
    else writer.append(m);
  }
  return writer.finish();
}

export const ping = (seq: number, target: string) => (w: SwimWriter) => w.ping(seq, Buffer.from(target));
export const pingReq = (seq: number, target: string) => (w: SwimWriter) => w.pingReq(seq, Buffer.from(target));
export const ack = (seq: number) => (w: SwimWriter) => w.ack(seq);
export const nack = (seq: number) => (w: SwimWriter) => w.nack(seq);

// The outbox of a core as (host, messages) pairs; the outbox is left as it is.
export function outboxOf(core: SwimCore): Array<{ host: string; port: number; length: number; label: string | null; messages: Message[] }> {
  const out = [];
  for (let k = 0; k < core.outboxCount; k++) {
    const o = core.outbox[k]!;
    const messages = messagesOf(o.bytes);
    if (messages === null) throw new Error(`${core.id} sent a malformed datagram`);
    out.push({ host: o.host, port: o.port, length: o.bytes.length, label: decodeDatagramHeader(o.bytes).label, messages });
  }
  return out;
}

// Everything observable about a core's membership, to compare before and after an input.
export function snapshotOf(core: SwimCore): unknown {
  return {
    members: core.members(),
    state: core.localState().toString('hex'),
    incarnation: core.currentIncarnation,
    memberCount: core.memberCount,
    gossipPending: core.gossipPending,
    outboxCount: core.outboxCount,
    events: core.events.length,
    pushPulls: core.pushPulls.length,
    awareness: core.awareness.score,
    deadline: core.nextDeadlineMs(),
  };
}

// ---- one core, fed crafted datagrams ----

export interface Sent {
  atMs: number;
  host: string;
  port: number;
  length: number;
  label: string | null;
  messages: Message[];
}

// Core n0 at 10.0.0.1 (or n`self`), driven by hand: `feed` delivers a datagram from node `from`'s address.
export class Solo {
  nowMs = 0;
  readonly core: SwimCore;

  constructor(config: Partial<SwimConfig> = {}, seed = 1, incarnation = 0, self = 0) {
    this.core = new SwimCore(
      testConfig(config),
      new MemberDirectory(),
      { id: idOf(self), host: hostOf(self), udpPort: UDP_PORT, tcpPort: TCP_PORT },
      new SeededRandom(seed),
      0,
      incarnation,
    );
  }

  feed(from: number, ...messages: Array<Buffer | ((w: SwimWriter) => void)>): void {
    this.core.receive(hostOf(from), UDP_PORT, datagram(...messages), this.nowMs);
  }

  feedBytes(from: number, bytes: Uint8Array): void {
    this.core.receive(hostOf(from), UDP_PORT, bytes, this.nowMs);
  }

  tick(atMs: number): void {
    this.nowMs = atMs;
    this.core.tick(atMs);
  }

  // Ticks, then answers every PING in the outbox with an ACK from its target (so probes succeed).
  tickAnswering(atMs: number): void {
    this.tick(atMs);
    const pings = [];
    for (const packet of outboxOf(this.core)) {
      for (const m of packet.messages) if (m.type === SwimMessageType.PING) pings.push([this.indexOfHost(packet.host), m.number] as const);
    }
    for (const [from, seq] of pings) if (from >= 0) this.feed(from, ack(seq));
  }

  indexOfHost(host: string): number {
    for (let i = 0; i < 1024; i++) if (hostOf(i) === host) return i;
    return -1;
  }

  // Takes the events and outgoing datagrams since the last drain (also kept in `events`, `sent`).
  drain(): { events: MembershipEvent[]; out: Sent[] } {
    const events = this.core.events.splice(0);
    const out = outboxOf(this.core).map((o) => ({ ...o, atMs: this.nowMs }));
    this.core.clearOutbox();
    this.core.pushPulls.length = 0;
    this.events.push(...events);
    this.sent.push(...out);
    return { events, out };
  }

  readonly events: MembershipEvent[] = [];
  readonly sent: Sent[] = [];

  // Ticks at every deadline up to endMs, draining after each; with `answer`, every PING is
  // ACKed by its target. Returns what was sent.
  runTo(endMs: number, answer = false): Sent[] {
    // A deadline already past (news queued outside a tick, say) is due now.
    endMs = Math.max(endMs, this.nowMs);
    const first = this.sent.length;
    this.drain();
    for (let steps = 0; ; steps++) {
      if (steps > 100_000) throw new Error(`no progress by ${this.nowMs} ms`);
      const at = Math.max(this.core.nextDeadlineMs(), this.nowMs);
      if (at > endMs) break;
      if (answer) this.tickAnswering(at);
      else this.tick(at);
      this.drain();
    }
    this.nowMs = Math.max(this.nowMs, endMs);
    return this.sent.slice(first);
  }

  statusOf(i: number): string | undefined {
    return this.core.members().find((m) => m.id === idOf(i))?.status;
  }

  incarnationOf(i: number): number | undefined {
    return this.core.members().find((m) => m.id === idOf(i))?.incarnation;
  }
}
