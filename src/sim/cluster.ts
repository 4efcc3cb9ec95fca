// Many SWIM nodes in one process: the unchanged SwimCore, one per node, on one shared
// MemberDirectory, driven by virtual time through the simulated network. Nodes crash, restart,
// pause, run slow, join and leave when a scenario says so. Pure: one seed decides everything,
// so a run replays exactly.
//
// The loop: the earliest of (the next event: a datagram arriving, a push-pull exchange, a
// scenario's action) and (the next node deadline) runs; events win ties. After every call into
// a core (tick, receive, mergeState, leave) the cluster empties its outbox into the network,
// hands its membership events to the observers, starts the push-pulls it asked for, and re-reads
// its next deadline into the timer heap (one entry per node, moved in place).
//
// Push-pull is TCP in real life, so it is a reliable exchange here: the initiator's member list
// reaches the target after two one-way delays (connection set-up, then data), the target merges
// it and answers with its own list one delay later. It fails if the two cannot reach each other
// either way, or if the target is not running when the request arrives.
//
// A paused node (a stopped process, a long GC pause) runs nothing; datagrams for it wait in its
// socket buffer up to PAUSED_BACKLOG_MAX. On resume it first runs its overdue timers, telling
// the core how late it is (noteLateTick), then reads the buffered datagrams — the order of
// Node's event loop, timers before I/O. A slow node runs everything lagMs late, and says so.

import { assert } from '../lib/assert.js';
import { limits } from '../lib/limits.js';
import { SeededRandom, type Random } from '../lib/random.js';
import type { SwimConfig } from '../swim/config.js';
import { SwimCore, SwimStats, type MembershipEvent, type SelfAddress } from '../swim/core.js';
import { MemberDirectory } from '../swim/directory.js';
import { EventHeap, SimClock, TimerHeap } from './sim-clock.js';
import { SimNetwork, type NetworkOptions, type PacketSink } from './sim-network.js';

export const NodeStatus = {
  // Never started (an index the directory holds for another reason).
  ABSENT: 0,
  UP: 1,
  PAUSED: 2,
  CRASHED: 3,
  // Left gracefully and stopped.
  LEFT: 4,
} as const;
export type NodeStatus = (typeof NodeStatus)[keyof typeof NodeStatus];

// Datagrams a paused node's socket buffer holds: Linux's default 208 KiB receive buffer
// holds a few hundred of them (each costs a 768-byte-plus skb, whatever its payload).
export const PAUSED_BACKLOG_MAX = 256;
// Attempts of a joining (or restarted) node to push-pull with a seed, one virtual second apart.
export const JOIN_ATTEMPTS_MAX = 10;
// Steps run without virtual time moving before the loop declares a core stuck (a deadline that
// never advances). Ten thousand nodes due at one instant is normal; a hundred times more is not.
export const STEPS_AT_ONE_TIME_MAX = 10_000_000;

const UDP_PORT = 7946;
const TCP_PORT = 7947;

export interface ClusterOptions {
  seed: number;
  swim: SwimConfig;
  network: NetworkOptions;
  // A leaving node stops once its LEFT has been gossiped, or after this long.
  leaveDrainMs: number;
  // Keep every membership event as a line of text (for tests; large runs keep only a hash).
  keepEventLog: boolean;
}

// What the cluster tells the measurements and checkers. Every method is optional.
export interface SimObserver {
  // `observer` saw `subject` change (subject is the directory index of event.id).
  membership?(observer: number, subject: number, event: MembershipEvent, nowMs: number): void;
  // A probe of `target` by `prober` began (its PING left in a tick).
  probeStarted?(prober: number, target: number, nowMs: number): void;
  // That probe ended: failed (no ACK, direct or indirect: at the end of the interval, or when
  // every indirect prober has NACKed) and whether it raised a suspicion.
  probeFinished?(prober: number, target: number, startMs: number, nowMs: number, failed: boolean, raised: boolean): void;
  // A node started, crashed, restarted, paused, resumed or stopped after leaving.
  nodeStatus?(node: number, status: NodeStatus, nowMs: number): void;
}

const EventKind = {
  FREE: 0,
  PACKET: 1,
  PUSH_PULL_REQUEST: 2,
  PUSH_PULL_REPLY: 3,
  ACTION: 4,
} as const;

export class ClusterStats {
  pushPulls = 0;
  pushPullsFailed = 0;
  pushPullBytes = 0;
  // Datagrams that reached a node that was not running.
  packetsToDownNodes = 0;
  // Datagrams dropped because a paused node's buffer was full.
  backlogDropped = 0;
  joinsFailed = 0;
  steps = 0;
}

export class SimCluster {
  readonly clock = new SimClock();
  readonly directory = new MemberDirectory();
  readonly network: SimNetwork;
  readonly stats = new ClusterStats();
  readonly options: ClusterOptions;
  readonly observers: SimObserver[] = [];
  // Membership events in order: a hash of all, and the text of all if asked for.
  eventCount = 0;
  eventHash = 0x811c9dc5;
  readonly eventLog: string[] = [];

  readonly cores: (SwimCore | null)[] = [];
  readonly status = new Uint8Array(limits.membersMax);
  readonly leaving = new Uint8Array(limits.membersMax);
  // Extra event-loop delay of a slow node.
  readonly lagMs = new Float64Array(limits.membersMax);
  // When the node's current life began (start or restart), and when its last pause ended.
  readonly upSinceMs = new Float64Array(limits.membersMax);
  readonly pauseEndedMs = new Float64Array(limits.membersMax).fill(-Infinity);
  readonly lives = new Int32Array(limits.membersMax);
  // The incarnation the node's current life started with: news about it below this is about an
  // earlier life.
  readonly lifeIncarnation = new Uint32Array(limits.membersMax);
  // Running (UP) nodes and the integral of their number over virtual time.
  private upCount = 0;
  private upNodeMs = 0;
  private upCountSinceMs = 0;

  // The probe each node has in flight, as seen from its datagrams.
  private readonly probeTarget = new Int32Array(limits.membersMax).fill(-1);
  private readonly probeStartMs = new Float64Array(limits.membersMax);

  private readonly timers = new TimerHeap(limits.membersMax);
  // When each node's timer was due, before any lag: lateness is measured against it.
  private readonly timerDueMs = new Float64Array(limits.membersMax);
  private readonly events = new EventHeap(4096);
  // Event slots: parallel arrays indexed by the heap's handle, and a free list.
  private slotKind = new Uint8Array(4096);
  private slotSource = new Int32Array(4096);
  private slotTarget = new Int32Array(4096);
  private slotLife = new Int32Array(4096);
  private slotBytes: (Uint8Array | null)[] = new Array<Uint8Array | null>(4096).fill(null);
  private slotAction: ((nowMs: number) => void)[] = [];
  private freeSlots = new Int32Array(4096);
  private freeCount = 0;
  private slotCount = 0;

  private readonly backlogs = new Map<number, { sources: number[]; bytes: Uint8Array[] }>();
  private readonly retiredStats = new SwimStats();
  private readonly random: Random;
  private readonly setupRandom: SeededRandom;
  private readonly sink: PacketSink;

  constructor(options: ClusterOptions) {
    this.options = options;
    // Separate streams, so that adding a scenario action does not change the network's draws.
    const master = new SeededRandom(options.seed);
    this.setupRandom = new SeededRandom(master.next32());
    this.random = new SeededRandom(master.next32());
    const cluster = this;
    this.sink = {
      schedulePacket(atMs: number, source: number, target: number, bytes: Uint8Array): void {
        const slot = cluster.allocSlot(EventKind.PACKET);
        cluster.slotSource[slot] = source;
        cluster.slotTarget[slot] = target;
        cluster.slotBytes[slot] = bytes;
        cluster.events.push(atMs + cluster.lagMs[target]!, slot);
      },
    };
    this.network = new SimNetwork(options.network, new SeededRandom(master.next32()), this.sink);
  }

  get nowMs(): number {
    return this.clock.nowMs;
  }

  get size(): number {
    return this.directory.size;
  }

  // The scenario's random source: choosing victims, times, seeds.
  get scenarioRandom(): Random {
    return this.random;
  }

  isUp(node: number): boolean {
    return this.status[node] === NodeStatus.UP;
  }

  // Up, and not on its way out: a DEAD or LEFT about it would be false.
  isLive(node: number): boolean {
    return this.status[node] === NodeStatus.UP && this.leaving[node] === 0;
  }

  get upNodes(): number {
    return this.upCount;
  }

  // Node-milliseconds of running nodes so far (the denominator of per-node rates).
  upNodeMsSoFar(): number {
    return this.upNodeMs + this.upCount * (this.clock.nowMs - this.upCountSinceMs);
  }

  idOf(node: number): string {
    return nodeId(node);
  }

  // Sums of every core's counters, those of crashed and stopped lives included.
  totalStats(): SwimStats {
    const total = new SwimStats();
    addStats(total, this.retiredStats);
    for (const core of this.cores) if (core !== null) addStats(total, core.stats);
    return total;
  }

  // ---- forming and changing the cluster ----

  // Starts n nodes that know each other already, as if the cluster had formed long ago: no
  // join storm, no news. Each node's probe order is its own random permutation (seedMember
  // appends in call order).
  form(n: number): void {
    assert(this.directory.size === 0, 'form an empty cluster');
    assert(n >= 1 && n <= limits.membersMax, 'cluster size within membersMax');
    const nowMs = this.clock.nowMs;
    // Intern every id first so each core sizes its arrays once.
    for (let i = 0; i < n; i++) this.directory.intern(nodeId(i), nodeHost(i), UDP_PORT, TCP_PORT);
    for (let i = 0; i < n; i++) this.spawn(i, 0, nowMs);
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    const random = this.setupRandom;
    for (let i = 0; i < n; i++) {
      const core = this.cores[i]!;
      for (let k = n - 1; k > 0; k--) {
        const j = random.int(k + 1);
        const swap = order[k]!;
        order[k] = order[j]!;
        order[j] = swap;
      }
      for (let k = 0; k < n; k++) core.seedMember(order[k]!, 0, nowMs);
    }
    for (let i = 0; i < n; i++) this.reschedule(i);
  }

  // A new node joins by push-pull through `seed` (a random running node if -1). Returns its index.
  join(seed = -1): number {
    const index = this.directory.size;
    assert(index < limits.membersMax, 'room for another node');
    const nowMs = this.clock.nowMs;
    this.spawn(index, 0, nowMs);
    this.reschedule(index);
    this.joinThrough(index, seed, 0);
    return index;
  }

  crash(node: number): void {
    const status = this.status[node];
    assert(status === NodeStatus.UP || status === NodeStatus.PAUSED, 'only a running node crashes');
    this.stop(node, NodeStatus.CRASHED);
  }

  // A crashed or stopped node starts again: a fresh core with the same id and address, an
  // incarnation above any its earlier life can have reached (virtual seconds since the start,
  // plus one, as a real node would derive it from its clock), joining through a random seed.
  restart(node: number, seed = -1): void {
    const status = this.status[node];
    assert(status === NodeStatus.CRASHED || status === NodeStatus.LEFT, 'only a stopped node restarts');
    const nowMs = this.clock.nowMs;
    this.lives[node]!++;
    this.spawn(node, Math.floor(nowMs / 1000) + 1, nowMs);
    this.reschedule(node);
    this.joinThrough(node, seed, 0);
  }

  pause(node: number): void {
    assert(this.status[node] === NodeStatus.UP, 'only a running node pauses');
    this.setStatus(node, NodeStatus.PAUSED);
    this.timers.set(node, Infinity);
  }

  resume(node: number): void {
    assert(this.status[node] === NodeStatus.PAUSED, 'only a paused node resumes');
    const nowMs = this.clock.nowMs;
    this.setStatus(node, NodeStatus.UP);
    this.pauseEndedMs[node] = nowMs;
    // Timers first (they are overdue), then the buffered datagrams: Node's event loop order.
    if (this.timerDueMs[node]! <= nowMs) this.tickNode(node, nowMs);
    const backlog = this.backlogs.get(node);
    if (backlog !== undefined) {
      this.backlogs.delete(node);
      for (let i = 0; i < backlog.sources.length && this.isUp(node); i++) {
        this.deliver(backlog.sources[i]!, node, backlog.bytes[i]!, nowMs);
      }
    }
    this.reschedule(node);
  }

  // From now on the node runs everything lagMs late (0: back to normal).
  slow(node: number, lagMs: number): void {
    assert(lagMs >= 0 && lagMs < Infinity, 'lag is a finite duration');
    this.lagMs[node] = lagMs;
    if (this.status[node] === NodeStatus.UP) this.reschedule(node);
  }

  // Graceful leave: the node gossips LEFT and stops once that is out (or after leaveDrainMs).
  leave(node: number): void {
    assert(this.isLive(node), 'only a live node leaves');
    const nowMs = this.clock.nowMs;
    this.leaving[node] = 1;
    const core = this.cores[node]!;
    core.leave(nowMs);
    this.flush(node, core, false);
    const life = this.lives[node]!;
    this.at(nowMs + this.options.leaveDrainMs, () => {
      if (this.lives[node] === life && this.status[node] === NodeStatus.UP && this.leaving[node] === 1) {
        this.stop(node, NodeStatus.LEFT);
      }
    });
  }

  // An operator-initiated push-pull (a `join` of a running node through another): the way two
  // sides that declared each other dead during a long partition learn of each other again.
  pushPull(source: number, target: number): void {
    assert(this.isUp(source), 'the initiator is running');
    this.startPushPull(source, target, -1);
  }

  // Runs `action` at virtual time atMs (not before now).
  at(atMs: number, action: (nowMs: number) => void): void {
    const slot = this.allocSlot(EventKind.ACTION);
    this.slotAction[slot] = action;
    this.events.push(Math.max(atMs, this.clock.nowMs), slot);
  }

  // ---- running ----

  runFor(durationMs: number): void {
    this.runUntil(this.clock.nowMs + durationMs);
  }

  runUntil(endMs: number): void {
    assert(endMs >= this.clock.nowMs, 'run forward in time');
    const events = this.events;
    const timers = this.timers;
    const clock = this.clock;
    let lastMs = clock.nowMs;
    let stepsAtOneTime = 0;
    for (;;) {
      const eventMs = events.peekTimeMs();
      const timerMs = timers.peekTimeMs();
      const nextMs = eventMs <= timerMs ? eventMs : timerMs;
      if (nextMs > endMs) break;
      if (nextMs === lastMs) {
        if (++stepsAtOneTime > STEPS_AT_ONE_TIME_MAX) {
          assert(false, `seed=${this.options.seed}: ${STEPS_AT_ONE_TIME_MAX} steps at ${nextMs} ms without time moving`);
        }
      } else {
        stepsAtOneTime = 0;
        lastMs = nextMs;
      }
      clock.advanceTo(nextMs);
      this.stats.steps++;
      if (eventMs <= timerMs) this.runEvent(events.pop(), nextMs);
      else this.tickNode(timers.peekKey(), nextMs);
    }
    clock.advanceTo(endMs);
  }

  private runEvent(slot: number, nowMs: number): void {
    const kind = this.slotKind[slot]!;
    const source = this.slotSource[slot]!;
    const target = this.slotTarget[slot]!;
    const life = this.slotLife[slot]!;
    const bytes = this.slotBytes[slot]!;
    const action = kind === EventKind.ACTION ? this.slotAction[slot]! : null;
    this.freeSlot(slot);
    switch (kind) {
      case EventKind.PACKET:
        this.deliver(source, target, bytes, nowMs);
        return;
      case EventKind.PUSH_PULL_REQUEST:
        this.pushPullArrived(source, target, life, bytes, nowMs);
        return;
      case EventKind.PUSH_PULL_REPLY:
        this.pushPullReplied(source, target, life, bytes, nowMs);
        return;
      case EventKind.ACTION:
        action!(nowMs);
        return;
      default:
        assert(false, 'known event kind');
    }
  }

  private deliver(source: number, target: number, bytes: Uint8Array, nowMs: number): void {
    const status = this.status[target];
    if (status === NodeStatus.UP) {
      const core = this.cores[target]!;
      const stats = core.stats;
      const failed = stats.probesFailed;
      const raised = stats.suspicionsRaised;
      core.receive(this.directory.hosts[source]!, UDP_PORT, bytes, nowMs);
      // The last NACK of a probe's indirect stage ends it at once.
      if (stats.probesFailed !== failed) this.probeEnded(target, nowMs, true, stats.suspicionsRaised !== raised);
      this.flush(target, core, false);
      return;
    }
    if (status === NodeStatus.PAUSED) {
      let backlog = this.backlogs.get(target);
      if (backlog === undefined) {
        backlog = { sources: [], bytes: [] };
        this.backlogs.set(target, backlog);
      }
      if (backlog.sources.length >= PAUSED_BACKLOG_MAX) {
        this.stats.backlogDropped++;
        return;
      }
      backlog.sources.push(source);
      backlog.bytes.push(bytes);
      return;
    }
    this.stats.packetsToDownNodes++;
  }

  private tickNode(node: number, nowMs: number): void {
    const core = this.cores[node]!;
    // Late against the time the shell's timer was set for (a deadline already past when it was
    // set fires at once, and is not late).
    const dueMs = this.timerDueMs[node]!;
    if (nowMs > dueMs) core.noteLateTick(nowMs - dueMs);
    const stats = core.stats;
    const probes = stats.probes;
    const failed = stats.probesFailed;
    const raised = stats.suspicionsRaised;
    core.tick(nowMs);
    // finishProbe runs before startProbe: a change in either count ends the probe in flight.
    if (stats.probes !== probes || stats.probesFailed !== failed) {
      this.probeEnded(node, nowMs, stats.probesFailed !== failed, stats.suspicionsRaised !== raised);
    }
    this.flush(node, core, stats.probes !== probes);
  }

  private probeEnded(node: number, nowMs: number, failed: boolean, raised: boolean): void {
    const target = this.probeTarget[node]!;
    if (target < 0) return;
    this.probeTarget[node] = -1;
    const observers = this.observers;
    for (let i = 0; i < observers.length; i++) {
      observers[i]!.probeFinished?.(node, target, this.probeStartMs[node]!, nowMs, failed, raised);
    }
  }

  // Empties a core's outbox, events and push-pull requests, and re-reads its deadline. With
  // `probeStarted`, the tick began a probe: the core says of which member.
  private flush(node: number, core: SwimCore, probeStarted: boolean): void {
    const nowMs = this.clock.nowMs;
    const network = this.network;
    const outbox = core.outbox;
    // Directory indexes are node numbers here.
    const probed = core.probeTargetIndex;
    if (probeStarted && probed >= 0) {
      this.probeTarget[node] = probed;
      this.probeStartMs[node] = nowMs;
      const observers = this.observers;
      for (let k = 0; k < observers.length; k++) observers[k]!.probeStarted?.(node, probed, nowMs);
    }
    for (let i = 0; i < core.outboxCount; i++) {
      const entry = outbox[i]!;
      const target = network.nodeAt(entry.host, entry.port);
      if (target >= 0) network.send(node, target, entry.bytes, nowMs);
      else network.sendTo(node, entry.host, entry.port, entry.bytes, nowMs);
    }
    core.clearOutbox();
    const events = core.events;
    if (events.length > 0) {
      for (let i = 0; i < events.length; i++) this.record(node, events[i]!, nowMs);
      events.length = 0;
    }
    const pushPulls = core.pushPulls;
    if (pushPulls.length > 0) {
      for (let i = 0; i < pushPulls.length; i++) {
        const target = this.directory.find(pushPulls[i]!.id);
        if (target !== undefined) this.startPushPull(node, target, -1);
      }
      pushPulls.length = 0;
    }
    if (this.leaving[node] === 1 && core.gossipPending === 0 && this.status[node] === NodeStatus.UP) {
      this.stop(node, NodeStatus.LEFT);
      return;
    }
    this.reschedule(node);
  }

  private record(observer: number, event: MembershipEvent, nowMs: number): void {
    const subject = this.directory.find(event.id)!;
    const code = STATUS_CODES[event.status];
    let h = this.eventHash;
    h = fnv(h, Math.floor(nowMs * 1000));
    h = fnv(h, observer);
    h = fnv(h, subject);
    h = fnv(h, code);
    h = fnv(h, event.incarnation);
    this.eventHash = h;
    this.eventCount++;
    if (this.options.keepEventLog) {
      this.eventLog.push(`${nowMs.toFixed(3)} ${nodeId(observer)} ${event.id} ${event.status} ${event.incarnation}`);
    }
    const observers = this.observers;
    for (let i = 0; i < observers.length; i++) observers[i]!.membership?.(observer, subject, event, nowMs);
  }

  private reschedule(node: number): void {
    const core = this.cores[node];
    if (core === null || core === undefined || this.status[node] !== NodeStatus.UP) {
      this.timers.set(node, Infinity);
      return;
    }
    const nowMs = this.clock.nowMs;
    const deadlineMs = core.nextDeadlineMs();
    // A deadline can lie in the past (news queued after a quiet spell is due at once).
    const dueMs = deadlineMs > nowMs ? deadlineMs : nowMs;
    this.timerDueMs[node] = dueMs;
    this.timers.set(node, dueMs + this.lagMs[node]!);
  }

  // ---- push-pull ----

  // `attempt` ≥ 0 marks a join: on failure it tries another seed a second later.
  private startPushPull(source: number, target: number, attempt: number): void {
    const core = this.cores[source]!;
    const state = core.localState();
    this.stats.pushPulls++;
    this.stats.pushPullBytes += state.length;
    const slot = this.allocSlot(EventKind.PUSH_PULL_REQUEST);
    this.slotSource[slot] = source;
    this.slotTarget[slot] = target;
    // The life of the initiator, and whether this is a join attempt (as attempt + 1).
    this.slotLife[slot] = this.lives[source]! * (JOIN_ATTEMPTS_MAX + 2) + attempt + 1;
    this.slotBytes[slot] = state;
    this.events.push(this.clock.nowMs + 2 * this.network.delayMs(), slot);
  }

  private pushPullArrived(source: number, target: number, tag: number, state: Uint8Array, nowMs: number): void {
    const attempt = (tag % (JOIN_ATTEMPTS_MAX + 2)) - 1;
    const life = Math.floor(tag / (JOIN_ATTEMPTS_MAX + 2));
    if (this.status[target] !== NodeStatus.UP || !this.network.canConnect(source, target)) {
      this.stats.pushPullsFailed++;
      if (attempt >= 0 && this.lives[source] === life && this.status[source] !== NodeStatus.CRASHED) {
        this.at(nowMs + 1000, () => {
          if (this.lives[source] === life && this.isUp(source)) this.joinThrough(source, -1, attempt + 1);
        });
      }
      return;
    }
    const core = this.cores[target]!;
    const merged = core.mergeState(state, nowMs);
    assert(merged, 'a simulated node sends well-formed member lists');
    const reply = core.localState();
    this.stats.pushPullBytes += reply.length;
    this.flush(target, core, false);
    const slot = this.allocSlot(EventKind.PUSH_PULL_REPLY);
    this.slotSource[slot] = source;
    this.slotTarget[slot] = target;
    this.slotLife[slot] = life;
    this.slotBytes[slot] = reply;
    this.events.push(nowMs + this.network.delayMs(), slot);
  }

  private pushPullReplied(source: number, target: number, life: number, state: Uint8Array, nowMs: number): void {
    // The initiator must still be the process that asked, and reachable.
    if (this.lives[source] !== life || this.status[source] !== NodeStatus.UP || !this.network.canConnect(source, target)) {
      this.stats.pushPullsFailed++;
      return;
    }
    const core = this.cores[source]!;
    const merged = core.mergeState(state, nowMs);
    assert(merged, 'a simulated node sends well-formed member lists');
    this.flush(source, core, false);
  }

  private joinThrough(node: number, seed: number, attempt: number): void {
    if (attempt >= JOIN_ATTEMPTS_MAX) {
      this.stats.joinsFailed++;
      return;
    }
    let through = seed;
    if (through < 0 || !this.isUp(through)) through = this.randomUpNode(node);
    if (through < 0) {
      this.stats.joinsFailed++;
      return;
    }
    this.startPushPull(node, through, attempt);
  }

  // A uniformly random running node other than `except`, or -1. Bounded: random draws, then a
  // sweep.
  randomUpNode(except: number): number {
    const n = this.directory.size;
    if (n === 0) return -1;
    for (let attempt = 0; attempt < 64; attempt++) {
      const node = this.random.int(n);
      if (node !== except && this.isLive(node)) return node;
    }
    const start = this.random.int(n);
    for (let i = 0; i < n; i++) {
      const node = (start + i) % n;
      if (node !== except && this.isLive(node)) return node;
    }
    return -1;
  }

  // ---- node lives ----

  private spawn(node: number, incarnation: number, nowMs: number): void {
    const self: SelfAddress = { id: nodeId(node), host: nodeHost(node), udpPort: UDP_PORT, tcpPort: TCP_PORT };
    const core = new SwimCore(this.options.swim, this.directory, self, new SeededRandom(this.setupRandom.next32()), nowMs, incarnation);
    assert(core.selfIndex === node, 'node index is its directory index');
    while (this.cores.length <= node) this.cores.push(null);
    this.cores[node] = core;
    this.network.register(self.host, UDP_PORT, node);
    this.leaving[node] = 0;
    this.upSinceMs[node] = nowMs;
    this.lifeIncarnation[node] = incarnation;
    this.probeTarget[node] = -1;
    this.setStatus(node, NodeStatus.UP);
  }

  private stop(node: number, status: typeof NodeStatus.CRASHED | typeof NodeStatus.LEFT): void {
    const core = this.cores[node]!;
    addStats(this.retiredStats, core.stats);
    this.cores[node] = null;
    this.backlogs.delete(node);
    this.probeTarget[node] = -1;
    this.timers.set(node, Infinity);
    this.setStatus(node, status);
  }

  private setStatus(node: number, status: NodeStatus): void {
    const nowMs = this.clock.nowMs;
    const wasUp = this.status[node] === NodeStatus.UP;
    const isUp = status === NodeStatus.UP;
    if (wasUp !== isUp) {
      this.upNodeMs += this.upCount * (nowMs - this.upCountSinceMs);
      this.upCountSinceMs = nowMs;
      this.upCount += isUp ? 1 : -1;
    }
    this.status[node] = status;
    const observers = this.observers;
    for (let i = 0; i < observers.length; i++) observers[i]!.nodeStatus?.(node, status, nowMs);
  }

  // ---- event slots ----

  private allocSlot(kind: number): number {
    let slot: number;
    if (this.freeCount > 0) slot = this.freeSlots[--this.freeCount]!;
    else {
      if (this.slotCount === this.slotKind.length) this.growSlots();
      slot = this.slotCount++;
    }
    this.slotKind[slot] = kind;
    return slot;
  }

  private freeSlot(slot: number): void {
    this.slotKind[slot] = EventKind.FREE;
    this.slotBytes[slot] = null;
    if (this.slotAction.length > slot) this.slotAction[slot] = NO_ACTION;
    this.freeSlots[this.freeCount++] = slot;
  }

  private growSlots(): void {
    const capacity = this.slotKind.length * 2;
    const kind = new Uint8Array(capacity);
    kind.set(this.slotKind);
    this.slotKind = kind;
    const source = new Int32Array(capacity);
    source.set(this.slotSource);
    this.slotSource = source;
    const target = new Int32Array(capacity);
    target.set(this.slotTarget);
    this.slotTarget = target;
    const life = new Int32Array(capacity);
    life.set(this.slotLife);
    this.slotLife = life;
    const free = new Int32Array(capacity);
    free.set(this.freeSlots);
    this.freeSlots = free;
    for (let i = this.slotBytes.length; i < capacity; i++) this.slotBytes.push(null);
  }
}

const NO_ACTION = (): void => {};

const STATUS_CODES = { alive: 1, suspect: 2, dead: 3, left: 4, forgotten: 5 } as const;

export function nodeId(node: number): string {
  return `node-${node}`;
}

export function nodeHost(node: number): string {
  return `10.${(node >> 16) & 255}.${(node >> 8) & 255}.${node & 255}`;
}

function fnv(hash: number, value: number): number {
  let h = hash;
  // Four bytes of the value (as a u32), then the high part for larger numbers.
  const low = value >>> 0;
  const high = Math.floor(value / 4294967296) >>> 0;
  for (let shift = 0; shift < 32; shift += 8) h = Math.imul(h ^ ((low >>> shift) & 255), 0x01000193);
  if (high !== 0) for (let shift = 0; shift < 32; shift += 8) h = Math.imul(h ^ ((high >>> shift) & 255), 0x01000193);
  return h >>> 0;
}

function addStats(total: SwimStats, stats: SwimStats): void {
  const t = total as unknown as Record<string, number>;
  const s = stats as unknown as Record<string, number>;
  for (const key of Object.keys(s)) t[key] = (t[key] ?? 0) + s[key]!;
}
