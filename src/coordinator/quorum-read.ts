// One GET across the key's replicas, as coordinator.ts describes: this node's copy first, then
// R − 1 other replicas, one more if R answers have not come within speculativeReadMs, and a
// replacement for each that fails. GET is the request a node coordinates most, so a read is one
// object with methods plus one small object per replica asked: no closures, no promise per
// replica, no copy of an answer that matches the first, and no timer of its own until it has
// waited speculativeReadMs (one timer in SpeculationQueue serves every read before that).

import type { PendingReply } from '../client/client.js';
import type { Timers } from '../lib/clock.js';
import type { DkvError } from '../lib/errors.js';
import { Opcode } from '../wire/codes.js';
import type { CoordinatorStats } from './coordinator.js';
import type { Peers } from './peer-pool.js';
import type { QuorumCount } from './quorum.js';

// What a read needs from its coordinator.
export interface ReadContext {
  readonly selfId: string;
  readonly peers: Peers;
  readonly timers: Timers;
  readonly speculation: SpeculationQueue;
  readonly speculativeReadMs: number;
  readonly stats: CoordinatorStats;
  // This node's own copy of the key as a REPLICA_GET answer body.
  localVersionsBody(key: Uint8Array): Buffer;
  // One reply from answers that differ: merged, with read repair.
  combine(key: Uint8Array, answers: Array<[string, Buffer]>): Buffer;
  countFailure(error: DkvError): void;
}

export class QuorumRead {
  readonly promise: Promise<Buffer>;
  private resolve!: (body: Buffer) => void;
  private reject!: (error: DkvError) => void;
  readonly startedMs: number;
  // Candidates asked so far, and asks without an answer yet.
  private asked = 0;
  private inFlight = 0;
  // Asks allowed beyond R: one after the speculative delay.
  private extra = 0;
  private timedOut = false;
  private done = false;
  // The first answer; every answer (the first included) once one differs from it.
  private first: Buffer | null = null;
  private firstId = '';
  private answers: Array<[string, Buffer]> | null = null;
  // Once speculated: the rest of the timeout.
  private timer: unknown = undefined;
  // SpeculationQueue's links.
  queued = false;
  prev: QuorumRead | null = null;
  next: QuorumRead | null = null;

  // `candidates`: this node first if it is a replica, then the others in the order to ask them.
  // `body`: the REPLICA_GET body.
  constructor(
    private readonly context: ReadContext,
    private readonly key: Uint8Array,
    private readonly candidates: readonly string[],
    private readonly quorum: QuorumCount,
    private readonly timeoutMs: number,
    private readonly body: unknown,
  ) {
    this.startedMs = context.timers.nowMs();
    this.promise = new Promise<Buffer>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  start(): void {
    this.launch();
    if (this.done) return;
    const context = this.context;
    if (context.speculativeReadMs < this.timeoutMs) context.speculation.add(this);
    else this.timer = context.timers.setTimeout(() => this.finish(this.quorum.error('GET', true, this.timeoutMs)), this.timeoutMs);
  }

  // Called by SpeculationQueue once the read has waited speculativeReadMs.
  speculate(nowMs: number): void {
    if (this.done) return;
    this.extra = 1;
    const before = this.asked;
    this.launch();
    if (this.asked > before) this.context.stats.speculativeReads++;
    if (this.done) return;
    const restMs = Math.max(0, this.timeoutMs - (nowMs - this.startedMs));
    this.timer = this.context.timers.setTimeout(() => this.finish(this.quorum.error('GET', true, this.timeoutMs)), restMs);
  }

  // An answer: `bytes` [start, end) is a REPLICA_GET answer body, which `owned` says the read may
  // keep as it is (otherwise it is valid only during the call).
  answer(id: string, bytes: Buffer, start: number, end: number, owned: boolean): void {
    this.inFlight--;
    if (this.done) return;
    if (this.first === null) {
      this.first = owned ? bytes : Buffer.from(bytes.subarray(start, end));
      this.firstId = id;
    } else if (this.answers !== null || this.first.compare(bytes, start, end) !== 0) {
      this.answers ??= [[this.firstId, this.first]];
      this.answers.push([id, owned ? bytes : Buffer.from(bytes.subarray(start, end))]);
    }
    if (this.quorum.succeed() === 'met') this.finish(null);
  }

  failure(error: DkvError): void {
    this.inFlight--;
    if (this.done) return;
    if (error.code === 'TIMEOUT') this.timedOut = true;
    if (this.quorum.fail() === 'failed') this.finish(this.quorum.error('GET', this.timedOut, this.timeoutMs));
    else this.launch();
  }

  private launch(): void {
    const context = this.context;
    const candidates = this.candidates;
    while (!this.done && this.quorum.answered + this.inFlight < this.quorum.needed + this.extra && this.asked < candidates.length) {
      const id = candidates[this.asked++]!;
      this.inFlight++;
      if (id === context.selfId) {
        const body = context.localVersionsBody(this.key);
        this.answer(id, body, 0, body.length, true);
      } else {
        context.stats.replicaReadsSent++;
        context.peers.sendTo(id, Opcode.REPLICA_GET, this.body, this.timeoutMs, new ReplicaAnswer(this, id));
      }
    }
  }

  private finish(error: DkvError | null): void {
    if (this.done) return;
    this.done = true;
    const context = this.context;
    context.speculation.remove(this);
    if (this.timer !== undefined) context.timers.clearTimeout(this.timer);
    if (error !== null) {
      context.countFailure(error);
      this.reject(error);
      return;
    }
    if (this.answers === null) {
      this.resolve(this.first!);
      return;
    }
    try {
      this.resolve(context.combine(this.key, this.answers));
    } catch (failure) {
      this.reject(failure as DkvError);
    }
  }
}

// One replica asked: where its answer goes.
class ReplicaAnswer implements PendingReply {
  opcode = 0;
  deadlineMs = 0;

  constructor(
    private readonly read: QuorumRead,
    private readonly id: string,
  ) {}

  onReply(bytes: Buffer, start: number, end: number): void {
    this.read.answer(this.id, bytes, start, end, false);
  }

  onError(error: DkvError): void {
    this.read.failure(error);
  }
}

// Reads still short of R, in the order they began (so the first is the next to speculate), and
// one timer for the first.
export class SpeculationQueue {
  private head: QuorumRead | null = null;
  private tail: QuorumRead | null = null;
  private timer: unknown = undefined;

  constructor(
    private readonly timers: Timers,
    private readonly delayMs: number,
  ) {}

  add(read: QuorumRead): void {
    read.queued = true;
    read.prev = this.tail;
    read.next = null;
    if (this.tail === null) this.head = read;
    else this.tail.next = read;
    this.tail = read;
    if (this.timer === undefined) this.arm(read);
  }

  remove(read: QuorumRead): void {
    if (!read.queued) return;
    read.queued = false;
    if (read.prev === null) this.head = read.next;
    else read.prev.next = read.next;
    if (read.next === null) this.tail = read.prev;
    else read.next.prev = read.prev;
    read.prev = read.next = null;
  }

  private arm(first: QuorumRead): void {
    this.timer = this.timers.setTimeout(this.fire, Math.max(0, first.startedMs + this.delayMs - this.timers.nowMs()));
  }

  // The first read may have finished since the timer was set: then the timer is early for the
  // new first, and is set again.
  private readonly fire = (): void => {
    this.timer = undefined;
    const nowMs = this.timers.nowMs();
    while (this.head !== null && this.head.startedMs + this.delayMs <= nowMs) {
      const read = this.head;
      this.remove(read);
      read.speculate(nowMs);
    }
    if (this.head !== null) this.arm(this.head);
  };
}
