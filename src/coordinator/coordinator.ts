// The coordinator: any node takes a client's GET, PUT or DELETE and meets its R or W across the
// key's replicas (protocol.md, "Cluster").
//
// GET   reads its own copy if it is a replica, and R − 1 other healthy replicas (more only if one
//       fails, or one more if R answers have not come within speculativeReadMs), over pooled
//       node-to-node connections. Identical answers go back as they are;
//       otherwise the versions are merged, and the replicas that answered with less get the
//       merge in the background (read repair).
// PUT   is coordinated by a replica, which mints the new version's dot from its own copy of the
//       key's clock: a node that is not a replica forwards the write to the first healthy one.
//       The coordinator makes the write durable locally while it sends the new versions to the
//       other replicas (with the other writes made with it, in one REPLICA_PUTS to each); an
//       unhealthy replica's copy goes to the next healthy node on the ring with a hint naming
//       it (sloppy quorum). It answers after W durable copies.

import { realTimers, sleep, type Timers } from '../lib/clock.js';
import { asDkvError, DkvError, isDkvError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import type { Logger } from '../lib/log.js';
import { RECORD_HEADER_BYTES, type LocalWrite, type VersionedStore } from '../store/versioned-store.js';
import { mergeVersions, sameVersions, type Clock, type Versioned } from '../version/dvv.js';
import { Opcode } from '../wire/codes.js';
import {
  decodeBody,
  decodeGetReply,
  decodeReplicaPut,
  decodeVersionsBody,
  encodeBody,
  encodeContext,
  encodeReplicaPutBody,
  errorBodyOf,
  getReplyOf,
  NOT_FOUND_REPLY,
  readArrayHeaderInPlace,
  readBinInPlace,
  readReplicaPutInPlace,
  replicaPutsAllDurable,
  versionedFromReply,
  type ArrayHead,
  type QuorumOptions,
  type Span,
} from '../wire/messages.js';
import type { ClusterView, ReplicaPlan } from './cluster-view.js';
import type { HintedHandoff } from './hinted-handoff.js';
import type { Peers } from './peer-pool.js';
import { QuorumCount } from './quorum.js';
import type { ReplicaPutTarget } from './replica-puts.js';

export interface CoordinatorConfig {
  readQuorum: number;
  writeQuorum: number;
  requestTimeoutMs: number;
  // A GET still short of R answers this long after it began asks one more replica, if there is
  // one: a replica that is alive but silent (stopped, overloaded) then costs this much, not the
  // whole timeout.
  speculativeReadMs: number;
  // How long a write waits for W replicas to become reachable before it fails.
  writeWaitMs: number;
}

export class CoordinatorStats {
  gets = 0;
  writes = 0;
  // Replica reads and writes sent to other nodes: with a client that routes by key, a GET costs
  // R − 1 replica reads and no forward.
  replicaReadsSent = 0;
  replicaWritesSent = 0;
  hintedWritesSent = 0;
  forwards = 0;
  readRepairs = 0;
  quorumFailures = 0;
  replicaTimeouts = 0;
  // Extra replica reads sent because a GET was still short of R after speculativeReadMs.
  speculativeReads = 0;
}

export interface WriteOutcome {
  context: Uint8Array;
  existed: boolean;
}

const WRITE_WAIT_POLL_MS = 25;
const NOT_FOUND = Buffer.from(NOT_FOUND_REPLY);

export class Coordinator {
  readonly stats = new CoordinatorStats();
  // What a ReplicatedWrite needs of this coordinator.
  private readonly replication: Replication;
  // Where replicaPuts() and replicaPutBody() find what they read in place.
  private readonly arrayHead: ArrayHead = { count: 0, next: 0 };
  private readonly entrySpan: Span = { start: 0, end: 0 };
  private readonly keySpan: Span = { start: 0, end: 0 };
  private readonly versionsSpan: Span = { start: 0, end: 0 };

  constructor(
    private readonly view: ClusterView,
    private readonly store: VersionedStore,
    private readonly peers: Peers,
    private readonly hints: HintedHandoff,
    readonly config: CoordinatorConfig,
    private readonly log: Logger,
    private readonly timers: Timers = realTimers,
  ) {
    this.replication = { view, peers, hints, timers, stats: this.stats, countFailure: (error) => this.countFailure(error) };
  }

  // The GET reply body for `key`: its versions merged from R replicas. `replicaBody`: the
  // REPLICA_GET body already encoded, if the caller has it.
  async get(key: Uint8Array, options: QuorumOptions, replicaBody?: Buffer): Promise<Buffer> {
    this.stats.gets++;
    const self = this.view.selfId;
    const { replicas } = this.view.plan(key);
    const r = Math.min(options.r ?? this.config.readQuorum, replicas.length);
    const timeoutMs = options.timeoutMs ?? this.config.requestTimeoutMs;
    // This node first (no network), then healthy replicas in preference order, then suspects.
    const candidates: string[] = [];
    if (replicas.includes(self)) candidates.push(self);
    for (const id of replicas) if (id !== self && this.view.isHealthy(id)) candidates.push(id);
    for (const id of replicas) if (id !== self && this.view.statusOf(id) === 'suspect') candidates.push(id);
    const quorum = new QuorumCount(r, candidates.length);
    if (quorum.state === 'failed') {
      this.stats.quorumFailures++;
      throw quorum.error('GET', false, timeoutMs);
    }
    const answers = await new Promise<Array<[string, Buffer]>>((resolve, reject) => {
      const answered: Array<[string, Buffer]> = [];
      let next = 0;
      let inFlight = 0;
      // Reads allowed in flight beyond those R needs: one after the speculative delay.
      let extra = 0;
      let done = false;
      // One timer per GET: first the speculative delay (when it is the shorter), then the rest of
      // the timeout.
      const speculateAtMs = this.config.speculativeReadMs;
      const onTimer = (): void => {
        if (speculateAtMs < timeoutMs) {
          extra = 1;
          const before = next;
          launch();
          if (next > before) this.stats.speculativeReads++;
          timer = this.timers.setTimeout(() => finish(quorum.error('GET', true, timeoutMs)), timeoutMs - speculateAtMs);
          return;
        }
        finish(quorum.error('GET', true, timeoutMs));
      };
      let timer = this.timers.setTimeout(onTimer, Math.min(speculateAtMs, timeoutMs));
      const finish = (error?: DkvError): void => {
        if (done) return;
        done = true;
        this.timers.clearTimeout(timer);
        if (error === undefined) {
          resolve(answered);
        } else {
          this.countFailure(error);
          reject(error);
        }
      };
      const onAnswer = (id: string, body: Buffer): void => {
        inFlight--;
        if (done) return;
        answered.push([id, body]);
        if (quorum.succeed() === 'met') finish();
      };
      const onFailure = (): void => {
        inFlight--;
        if (done) return;
        if (quorum.fail() === 'failed') finish(quorum.error('GET', false, timeoutMs));
        else launch();
      };
      const launch = (): void => {
        while (!done && quorum.answered + inFlight < r + extra && next < candidates.length) {
          const id = candidates[next++]!;
          inFlight++;
          if (id === self) {
            onAnswer(id, this.localVersionsBody(key));
          } else {
            this.stats.replicaReadsSent++;
            this.peers.requestRaw(id, Opcode.REPLICA_GET, replicaBody ?? { key }, timeoutMs).then(
              (body) => onAnswer(id, body),
              () => onFailure(),
            );
          }
        }
      };
      launch();
    });
    return this.combine(key, answers);
  }

  // PUT (value) or DELETE (value null).
  write(key: Uint8Array, value: Uint8Array | null, context: Clock | undefined, options: QuorumOptions): Promise<WriteOutcome> {
    const plan = this.view.plan(key, true);
    if (!plan.replicas.includes(this.view.selfId) && !options.forwarded) return this.forward(key, value, context, options, plan.replicas);
    this.stats.writes++;
    const w = Math.min(options.w ?? this.config.writeQuorum, plan.replicas.length);
    // Too few replicas reachable: wait for more, up to writeWaitMs.
    if (this.reachable(plan) < w) return this.writeOnceReachable(key, value, context, options, w);
    return this.replicate(key, value, context, options, plan, w);
  }

  // Sloppy quorum: this node if it is a replica, healthy replicas, and fallbacks standing in
  // for the unhealthy ones.
  private reachable(plan: ReplicaPlan): number {
    const self = this.view.selfId;
    let reachable = 0;
    let unhealthy = 0;
    for (const id of plan.replicas) {
      if (id === self || this.view.isHealthy(id)) reachable++;
      else unhealthy++;
    }
    return reachable + Math.min(unhealthy, plan.fallbacks.length);
  }

  private async writeOnceReachable(
    key: Uint8Array,
    value: Uint8Array | null,
    context: Clock | undefined,
    options: QuorumOptions,
    w: number,
  ): Promise<WriteOutcome> {
    const waitUntil = this.timers.nowMs() + this.config.writeWaitMs;
    let plan = this.view.plan(key, true);
    while (this.reachable(plan) < w) {
      if (this.timers.nowMs() >= waitUntil) {
        this.stats.quorumFailures++;
        const reachable = this.reachable(plan);
        throw new DkvError(
          'QUORUM_FAILED',
          `${value === null ? 'DELETE' : 'PUT'}: ${reachable} of the ${w} replicas it needs are reachable (waited ${this.config.writeWaitMs} ms)`,
          { details: { answered: reachable, needed: w } },
        );
      }
      await sleep(this.timers, WRITE_WAIT_POLL_MS);
      plan = this.view.plan(key, true);
    }
    return this.replicate(key, value, context, options, plan, w);
  }

  // Writes locally and sends the new versions to the other replicas (ReplicatedWrite).
  private replicate(
    key: Uint8Array,
    value: Uint8Array | null,
    context: Clock | undefined,
    options: QuorumOptions,
    plan: ReplicaPlan,
    w: number,
  ): Promise<WriteOutcome> {
    let local: LocalWrite;
    try {
      local = this.store.writeLocal(key, value, context);
    } catch (error) {
      // A write the store refuses (too large, too many siblings, storage failed) fails as a
      // rejection, as every other outcome of write() does.
      return Promise.reject(error);
    }
    const write = new ReplicatedWrite(this.replication, key, local, plan, w, options.timeoutMs ?? this.config.requestTimeoutMs, value === null);
    return write.promise;
  }

  private countFailure(error: DkvError): void {
    if (error.code === 'REPLICA_TIMEOUT') this.stats.replicaTimeouts++;
    else this.stats.quorumFailures++;
  }

  // A replica's REPLICA_PUTS, the body bytes[start, end): each entry is merged as REPLICA_PUT
  // merges it, and the promise resolves, once every entry has settled, with the reply body (nil
  // for each durable entry, an error map for each failed one). A body whose entries cannot be
  // told apart is refused whole, before any is applied. The bytes are read before this returns.
  replicaPuts(bytes: Uint8Array, start: number, end: number): Promise<Buffer> {
    const head = this.arrayHead;
    const entry = this.entrySpan;
    if (!readArrayHeaderInPlace(bytes, start, end, head)) throw new DkvError('BAD_REQUEST', 'REPLICA_PUTS needs an array of bin');
    const count = head.count;
    if (count > limits.multiKeysMax) throw new DkvError('TOO_MANY_KEYS', `REPLICA_PUTS holds ${count} writes; at most ${limits.multiKeysMax}`);
    let at = head.next;
    for (let i = 0; i < count; i++) {
      at = readBinInPlace(bytes, at, end, entry);
      if (at < 0) throw new DkvError('BAD_REQUEST', `REPLICA_PUTS entry ${i} is not a bin within the body`);
    }
    if (at !== end) throw new DkvError('BAD_REQUEST', 'REPLICA_PUTS has bytes after its array');
    // An entry's outcome: its durability promise (entries of one log batch share one, so there is
    // one wait per distinct promise), or the error it failed with at once.
    const outcomes: Array<DkvError | Promise<void>> = new Array(count);
    const waits: Array<Promise<void>> = [];
    let failedAtOnce = false;
    at = head.next;
    for (let i = 0; i < count; i++) {
      at = readBinInPlace(bytes, at, end, entry);
      let outcome: DkvError | Promise<void>;
      try {
        outcome = this.replicaPutBody(bytes, entry.start, entry.end);
        if (outcome !== waits.at(-1)) waits.push(outcome);
      } catch (error) {
        outcome = asDkvError(error);
        failedAtOnce = true;
      }
      outcomes[i] = outcome;
    }
    return new Promise((resolve) => {
      const failures = new Map<Promise<void>, DkvError>();
      let left = waits.length + 1;
      const settled = (): void => {
        if (--left > 0) return;
        if (!failedAtOnce && failures.size === 0) {
          resolve(replicaPutsAllDurable(count));
          return;
        }
        const results = outcomes.map((outcome) => {
          const error = outcome instanceof Promise ? failures.get(outcome) : outcome;
          return error === undefined ? null : errorBodyOf(error);
        });
        resolve(Buffer.from(encodeBody(results)));
      };
      for (const wait of waits) {
        wait.then(settled, (error: unknown) => {
          failures.set(wait, asDkvError(error));
          settled();
        });
      }
      settled();
    });
  }

  // A REPLICA_PUT body bytes[start, end), applied: in place when it can be, else decoded. The
  // bytes are read before this returns.
  replicaPutBody(bytes: Uint8Array, start: number, end: number): Promise<void> {
    const key = this.keySpan;
    const versions = this.versionsSpan;
    if (readReplicaPutInPlace(bytes, start, end, key, versions)) {
      const merged = this.store.mergeInPlace(bytes, key.start, key.end, versions.start, versions.end);
      if (merged !== undefined) return merged;
    }
    const put = decodeReplicaPut(decodeBody(bytes, start, end));
    return this.replicaPut(put.key, put.versions, put.hintFor, put.body);
  }

  // A replica's REPLICA_PUT: a hint for another replica, or a merge into this node's copy.
  private async replicaPut(key: Uint8Array, versions: Versioned, hintFor: string | undefined, body?: Uint8Array): Promise<void> {
    if (hintFor !== undefined && hintFor !== this.view.selfId) await this.hints.hold(hintFor, key, versions);
    else await this.store.merge(key, versions, body);
  }

  private async forward(
    key: Uint8Array,
    value: Uint8Array | null,
    context: Clock | undefined,
    options: QuorumOptions,
    replicas: string[],
  ): Promise<WriteOutcome> {
    const timeoutMs = options.timeoutMs ?? this.config.requestTimeoutMs;
    const waitUntil = this.timers.nowMs() + this.config.writeWaitMs;
    let target = replicas.find((id) => this.view.isHealthy(id));
    while (target === undefined) {
      if (this.timers.nowMs() >= waitUntil) {
        this.stats.quorumFailures++;
        throw new DkvError('QUORUM_FAILED', `no replica of the key is reachable (waited ${this.config.writeWaitMs} ms)`, {
          details: { answered: 0, needed: Math.min(options.w ?? this.config.writeQuorum, replicas.length) },
        });
      }
      await sleep(this.timers, WRITE_WAIT_POLL_MS);
      target = this.view.plan(key).replicas.find((id) => this.view.isHealthy(id));
    }
    this.stats.forwards++;
    const body = {
      key,
      ...(value === null ? {} : { value }),
      ...(context === undefined ? {} : { context: encodeContext(context) }),
      ...(options.w === undefined ? {} : { w: options.w }),
      timeoutMs,
      forwarded: true,
    };
    const reply = (await this.peers.request(target, value === null ? Opcode.DELETE : Opcode.PUT, body, timeoutMs + 1000)) as {
      context?: unknown;
      existed?: unknown;
    };
    if (!(reply?.context instanceof Uint8Array)) throw new DkvError('INTERNAL', `replica ${target} answered a write without a context`);
    return { context: reply.context, existed: reply.existed === true };
  }

  // This node's own copy of the key as a GET reply body (what REPLICA_GET answers).
  localVersionsBody(key: Uint8Array): Buffer {
    const record = this.store.readRecord(key, 0, key.length);
    if (record === undefined) return NOT_FOUND;
    // The engine's buffer is shared: copy the body out.
    return Buffer.from(new Uint8Array(record.buffer, record.byteOffset + RECORD_HEADER_BYTES, record.length - RECORD_HEADER_BYTES));
  }

  // One reply from R answers: as it is if they agree byte for byte (the usual case), else
  // merged, with the merge sent to every replica that answered with less.
  private combine(key: Uint8Array, answers: Array<[string, Buffer]>): Buffer {
    const first = answers[0]![1];
    if (answers.every(([, body]) => body.equals(first))) return first;
    const decoded = answers.map(([id, body]) => [id, decodeVersionsBody(body)] as const);
    let merged: Versioned | undefined;
    for (const [, versions] of decoded) merged = mergeVersions(merged, versions);
    if (merged === undefined) return NOT_FOUND;
    const mergedBody = Buffer.from(encodeBody(getReplyOf(merged)));
    for (const [id, versions] of decoded) {
      if (sameVersions(versions, merged)) continue;
      this.stats.readRepairs++;
      const repair =
        id === this.view.selfId
          ? this.store.merge(key, merged)
          : this.peers.request(id, Opcode.REPLICA_PUT, { key, versions: mergedBody }, this.config.requestTimeoutMs);
      repair.catch((error: unknown) => this.log.debug({ replica: id, err: error }, 'read repair failed'));
    }
    return mergedBody;
  }
}

// What ReplicatedWrite uses of its coordinator.
interface Replication {
  view: ClusterView;
  peers: Peers;
  hints: HintedHandoff;
  timers: Timers;
  stats: CoordinatorStats;
  countFailure(error: DkvError): void;
}

// One write's replication (Coordinator.write): its local copy becoming durable and each other
// replica's answer (or a stand-in's) counted against W, under one deadline; `promise` resolves
// with the write's outcome. One object with methods rather than a closure per step: the
// coordinator's write used to allocate about 2.5 KB per put (heap sampling), most of it
// closures and their contexts.
class ReplicatedWrite implements ReplicaPutTarget {
  readonly promise: Promise<WriteOutcome>;
  private resolve!: (outcome: WriteOutcome) => void;
  private reject!: (error: DkvError) => void;
  private readonly quorum: QuorumCount;
  private readonly others: string[] = [];
  private readonly selfIsReplica: boolean;
  private readonly versionsBody: Buffer;
  private readonly timer: unknown;
  private done = false;
  private fallbackNext = 0;

  constructor(
    private readonly r: Replication,
    private readonly key: Uint8Array,
    private readonly local: LocalWrite,
    private readonly plan: ReplicaPlan,
    w: number,
    private readonly timeoutMs: number,
    private readonly isDelete: boolean,
  ) {
    const self = r.view.selfId;
    for (const id of plan.replicas) if (id !== self) this.others.push(id);
    this.selfIsReplica = this.others.length < plan.replicas.length;
    this.quorum = new QuorumCount(w, this.others.length + (this.selfIsReplica ? 1 : 0));
    this.versionsBody = local.record.subarray(RECORD_HEADER_BYTES);
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.timer = r.timers.setTimeout(this.timedOut, timeoutMs);
    if (this.selfIsReplica) local.durable.then(this.localDurable, this.localFailed);
    else local.durable.catch(() => undefined);
    // Every healthy replica gets the same bytes, encoded once.
    let body: Buffer | undefined;
    for (let slot = 0; slot < this.others.length; slot++) {
      const id = this.others[slot]!;
      if (!r.view.isHealthy(id)) {
        this.standIn(id);
        continue;
      }
      r.stats.replicaWritesSent++;
      body ??= encodeReplicaPutBody(key, this.versionsBody);
      r.peers.replicaPut(id, body, timeoutMs, this, slot);
    }
  }

  replicaPutDone(slot: number, error: DkvError | null): void {
    if (error === null) this.succeed();
    else this.standIn(this.others[slot]!);
  }

  private readonly localDurable = (): void => this.succeed();
  private readonly localFailed = (error: unknown): void => this.fail(error);
  private readonly timedOut = (): void => this.finish(this.quorum.error(this.what, true, this.timeoutMs));

  private get what(): string {
    return this.isDelete ? 'DELETE' : 'PUT';
  }

  private succeed(): void {
    if (!this.done && this.quorum.succeed() === 'met') this.finish(undefined);
  }

  private fail(error?: unknown): void {
    if (this.done || this.quorum.fail() !== 'failed') return;
    this.finish(isDkvError(error, 'STORAGE_FAILED') ? error : this.quorum.error(this.what, false, this.timeoutMs));
  }

  // A replica that cannot take its copy: the next healthy fallback holds it with a hint; with
  // none left, this node keeps the hint itself (it does not count towards W).
  private standIn(owner: string): void {
    const r = this.r;
    const fallback = this.plan.fallbacks[this.fallbackNext++];
    if (fallback === undefined) {
      const body = this.versionsBody;
      r.hints.hold(owner, this.key, versionedFromReply(decodeGetReply(decodeBody(body, 0, body.length)))).catch(() => undefined);
      this.fail();
      return;
    }
    r.stats.hintedWritesSent++;
    r.peers.request(fallback, Opcode.REPLICA_PUT, { key: this.key, versions: this.versionsBody, hint: owner }, this.timeoutMs).then(
      () => this.succeed(),
      () => this.standIn(owner),
    );
  }

  private finish(error: DkvError | undefined): void {
    if (this.done) return;
    this.done = true;
    this.r.timers.clearTimeout(this.timer);
    if (error !== undefined) {
      this.r.countFailure(error);
      this.reject(error);
    } else if (this.selfIsReplica) {
      this.resolve(this.local.result);
    } else {
      // A forwarded write's coordinator keeps its own copy too (its dot counters must not
      // repeat), and answers once that copy is durable.
      this.local.durable.then(
        () => this.resolve(this.local.result),
        (cause: unknown) => this.reject(asDkvError(cause)),
      );
    }
  }
}
