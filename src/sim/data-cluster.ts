// The replicated data path in virtual time: real coordinators, versioned stores (memory engines),
// hinted handoff and cluster views on several simulated nodes, connected by an in-memory network
// that delays, refuses or silently drops requests. Membership is the scenario's to set
// (markDown / markUp), so quorum and handoff logic can be driven through failures exactly and
// replayed from a seed.
//
// Requests and replies go through msgpack as they would on the wire. Virtual time advances only
// in `runFor`: due timers fire in (time, scheduling order), and after each one the microtasks
// its promises started are drained before the next.

import { ClusterView } from '../coordinator/cluster-view.js';
import { Coordinator, type CoordinatorConfig } from '../coordinator/coordinator.js';
import { HintedHandoff } from '../coordinator/hinted-handoff.js';
import type { Peers } from '../coordinator/peer-pool.js';
import { ReplicaPutBatches } from '../coordinator/replica-puts.js';
import type { Timers } from '../lib/clock.js';
import { DkvError } from '../lib/errors.js';
import { createRootLogger } from '../lib/log.js';
import { SeededRandom } from '../lib/random.js';
import { MemoryEngine } from '../store/memory-engine.js';
import { VersionedStore } from '../store/versioned-store.js';
import { Opcode } from '../wire/codes.js';
import {
  decodeBody,
  decodeDeleteRequest,
  decodePutRequest,
  encodeBody,
  readQuorumOptions,
} from '../wire/messages.js';
import { EventHeap } from './sim-clock.js';

interface TimerEntry {
  callback: () => void;
  cancelled: boolean;
}

// Timers on a virtual clock.
export class VirtualTimers implements Timers {
  private now = 0;
  private readonly heap = new EventHeap();
  private readonly entries: Array<TimerEntry | undefined> = [];
  private readonly free: number[] = [];

  nowMs(): number {
    return this.now;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const entry: TimerEntry = { callback, cancelled: false };
    const handle = this.free.pop() ?? this.entries.length;
    this.entries[handle] = entry;
    this.heap.push(this.now + Math.max(0, ms), handle);
    return entry;
  }

  clearTimeout(entry: unknown): void {
    if (entry !== undefined && entry !== null) (entry as TimerEntry).cancelled = true;
  }

  // Runs every timer due within `ms` of virtual time, each followed by the promise work it set
  // off; bounded by `eventsMax`.
  async runFor(ms: number, eventsMax = 1_000_000): Promise<void> {
    const end = this.now + ms;
    await drainMicrotasks();
    for (let events = 0; events < eventsMax && this.heap.peekTimeMs() <= end; events++) {
      const at = this.heap.peekTimeMs();
      const handle = this.heap.pop();
      const entry = this.entries[handle]!;
      this.entries[handle] = undefined;
      this.free.push(handle);
      this.now = at;
      if (!entry.cancelled) entry.callback();
      await drainMicrotasks();
    }
    this.now = end;
  }
}

// Lets every queued promise reaction run (setImmediate comes after the microtask queue).
function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export interface DataClusterOptions {
  nodes: number;
  seed: number;
  replicas: number;
  coordinator: CoordinatorConfig;
  // One-way network delay: base plus a uniform random part, in ms.
  delayMs: number;
  jitterMs: number;
  vnodes?: number;
}

// What the network does to requests towards a node.
export type LinkFault = 'none' | 'refuse' | 'drop';

export interface SimDataNode {
  id: string;
  engine: MemoryEngine;
  store: VersionedStore;
  view: ClusterView;
  hints: HintedHandoff;
  coordinator: Coordinator;
  // The process is down: requests to it are refused (a closed port on a live host).
  down: boolean;
}

const silent = createRootLogger('silent');
// The simulated wall clock (a version's tsMs) starts at 2026-01-01 00:00 UTC.
const WALL_CLOCK_START_MS = 1_767_225_600_000;

export class SimDataCluster {
  readonly timers = new VirtualTimers();
  readonly nodes = new Map<string, SimDataNode>();
  private readonly random: SeededRandom;
  // Faults on requests towards a node, on top of `down`.
  readonly faults = new Map<string, LinkFault>();
  requestsSent = 0;

  constructor(readonly options: DataClusterOptions) {
    this.random = new SeededRandom(options.seed);
    const ids = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
    for (const id of ids) this.nodes.set(id, this.makeNode(id, ids));
  }

  get ids(): string[] {
    return [...this.nodes.keys()];
  }

  node(id: string): SimDataNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  // The process stops: others' membership sees it dead (with `noticed`), and requests to it are
  // refused either way.
  crash(id: string, noticed = true): void {
    this.node(id).down = true;
    if (noticed) this.setStatus(id, 'dead');
  }

  // It is back (with its disk, or `wiped` of everything): others see it alive and deliver its
  // hints.
  restart(id: string, wiped = false): void {
    if (wiped) this.nodes.set(id, this.makeNode(id, this.ids));
    this.node(id).down = false;
    this.setStatus(id, 'alive');
    for (const other of this.nodes.values()) if (other.id !== id && !other.down) other.hints.deliver(id);
  }

  private setStatus(id: string, status: 'alive' | 'dead'): void {
    for (const other of this.nodes.values()) {
      if (other.id !== id) other.view.update(id, status, { host: id, tcpPort: 1 });
    }
  }

  private makeNode(id: string, ids: string[]): SimDataNode {
    const o = this.options;
    const engine = new MemoryEngine();
    const store = new VersionedStore(engine, id, () => WALL_CLOCK_START_MS + this.timers.nowMs(), null);
    const view = new ClusterView(id, { host: id, tcpPort: 1 }, o.replicas, o.vnodes ?? 64);
    for (const other of ids) if (other !== id) view.update(other, 'alive', { host: other, tcpPort: 1 });
    const peers = this.peersOf(id);
    const hints = new HintedHandoff(engine, view, peers, silent, () => WALL_CLOCK_START_MS + this.timers.nowMs());
    const coordinator = new Coordinator(view, store, peers, hints, o.coordinator, silent, this.timers);
    return { id, engine, store, view, hints, coordinator, down: false };
  }

  private peersOf(from: string): Peers {
    const send = (to: string, opcode: number, body: unknown, timeoutMs: number, raw: boolean): Promise<unknown> =>
      new Promise((resolve, reject) => {
        this.requestsSent++;
        // As the real client does, a body already encoded goes as it is.
        const bytes = Buffer.isBuffer(body) ? body : Buffer.from(encodeBody(body));
        const fault = this.faults.get(to) ?? 'none';
        const target = this.nodes.get(to);
        let settled = false;
        const timer = this.timers.setTimeout(() => {
          if (settled) return;
          settled = true;
          reject(new DkvError('TIMEOUT', `${from} -> ${to}: no reply within ${timeoutMs} ms`));
        }, timeoutMs);
        const settle = (fn: () => void): void => {
          if (settled) return;
          settled = true;
          this.timers.clearTimeout(timer);
          fn();
        };
        if (fault === 'drop') return;
        this.timers.setTimeout(() => {
          if (target === undefined || target.down || fault === 'refuse') {
            this.timers.setTimeout(() => settle(() => reject(new DkvError('CANNOT_CONNECT', `${to} refused`))), this.delay());
            return;
          }
          this.handle(target, opcode, bytes).then(
            (reply) => {
              const replyBytes = Buffer.isBuffer(reply) ? reply : Buffer.from(encodeBody(reply));
              this.timers.setTimeout(
                () => settle(() => resolve(raw ? replyBytes : decodeBody(replyBytes, 0, replyBytes.length))),
                this.delay(),
              );
            },
            (error: unknown) => this.timers.setTimeout(() => settle(() => reject(error)), this.delay()),
          );
        }, this.delay());
      });
    // Replica writes made at one virtual instant go to a peer together, as a dkvd's writes made
    // for one chunk of input do.
    const batches = new ReplicaPutBatches({
      sendBatch: (to, body, timeoutMs) => send(to, Opcode.REPLICA_PUTS, body, timeoutMs, true) as Promise<Buffer>,
      sendOne: (to, body, timeoutMs) => send(to, Opcode.REPLICA_PUT, body, timeoutMs, false),
      schedule: (flush) => this.timers.setTimeout(flush, 0),
      nowMs: () => this.timers.nowMs(),
    });
    return {
      request: (to, opcode, body, timeoutMs) => send(to, opcode, body, timeoutMs, false),
      requestRaw: (to, opcode, body, timeoutMs) => send(to, opcode, body, timeoutMs, true) as Promise<Buffer>,
      replicaPut: (to, body, timeoutMs, target, slot) => batches.add(to, body, timeoutMs, target, slot),
      get replicaPutBatchesSent() {
        return batches.sent;
      },
    };
  }

  // A node answering a request from another node, as its dispatcher would.
  private async handle(node: SimDataNode, opcode: number, bytes: Buffer): Promise<unknown> {
    if (opcode === Opcode.REPLICA_PUT) {
      await node.coordinator.replicaPutBody(bytes, 0, bytes.length);
      return {};
    }
    if (opcode === Opcode.REPLICA_PUTS) return node.coordinator.replicaPuts(bytes, 0, bytes.length);
    const body = decodeBody(bytes, 0, bytes.length);
    switch (opcode) {
      case Opcode.REPLICA_GET:
        return node.coordinator.localVersionsBody((body as { key: Uint8Array }).key);
      case Opcode.PUT: {
        const put = decodePutRequest(body);
        const result = await node.coordinator.write(put.key, put.value, put.context, readQuorumOptions(body));
        return { context: result.context };
      }
      case Opcode.DELETE: {
        const del = decodeDeleteRequest(body);
        const result = await node.coordinator.write(del.key, null, del.context, readQuorumOptions(body));
        return { existed: result.existed, context: result.context };
      }
      default:
        throw new DkvError('UNKNOWN_OPCODE', `opcode ${opcode}`);
    }
  }

  private delay(): number {
    return this.options.delayMs + this.random.next() * this.options.jitterMs;
  }
}
