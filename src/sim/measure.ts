// Measurements of a simulated run, taken from what the cluster reports: probes (from the
// datagrams), membership events, node status changes. Pure.
//
// How the crash-detection figure is made comparable with the SWIM paper. The paper's analysis
// is synchronous: every protocol period each of the N−1 other members pings one member chosen
// at random, so a crashed member is first pinged in the k-th period after its crash with
// probability (1−p)^(k−1)·p, p = 1−(1−1/(N−1))^(N−1) → 1−e^−1, and the expected number of
// periods until someone finds it is 1/(1−e^−1) ≈ 1.582. Here members probe on their own
// clocks, each from a random phase, round-robin through their own shuffle, so the probes that
// reach the victim are close to a Poisson stream of rate 1/T. Cutting the time after the crash
// into periods of T (the configured probe interval), the period in which the first PING to the
// victim leaves is k = ⌈X/T⌉ for X the time from the crash to that PING, and with X exponential
// of mean T, P(k > j) = e^−j: the same geometric law, mean 1/(1−e^−1). So `firstProbePeriods`
// (k, averaged) is the paper's quantity, measured. The time until the victim is actually found
// unresponsive is later: the prober decides at the end of its probe, when the last indirect
// prober's NACK arrives (the relays NACK at 80% of the probe timeout, so about 0.9 s after the
// PING with the LAN profile) or else at the end of its interval; so first suspicion ≈ X + 0.9 to
// 1 s. Both are reported.
//
// Per-probe false suspicion. A probe of a live target fails when the PING or its ACK is lost
// (1−Δ²) and then each of the K indirect paths (PING_REQ, PING, ACK, ACK) loses at least one
// of its four datagrams ((1−Δ⁴)^K), Δ = 1 − loss. Only probes whose target was running
// throughout (up since before the probe, not paused since) and whose prober was not paused
// count; failures among them over their number is the measured rate. Suspicions raised (a
// failed probe of a target still seen alive) are counted alongside.

import { assert } from '../lib/assert.js';
import type { MembershipEvent } from '../swim/core.js';
import { NodeStatus, type SimCluster, type SimObserver } from './cluster.js';

export class ProbeMeter implements SimObserver {
  probes = 0;
  failed = 0;
  raised = 0;
  liveProbes = 0;
  liveFailed = 0;
  liveRaised = 0;

  constructor(
    private readonly cluster: SimCluster,
    private readonly fromMs: number,
  ) {}

  probeFinished(prober: number, target: number, startMs: number, _nowMs: number, failed: boolean, raised: boolean): void {
    if (startMs < this.fromMs) return;
    this.probes++;
    if (failed) this.failed++;
    if (raised) this.raised++;
    const cluster = this.cluster;
    const live =
      cluster.isLive(target) &&
      cluster.upSinceMs[target]! <= startMs &&
      cluster.pauseEndedMs[target]! < startMs &&
      cluster.pauseEndedMs[prober]! < startMs &&
      cluster.lagMs[target] === 0 &&
      cluster.lagMs[prober] === 0;
    if (!live) return;
    this.liveProbes++;
    if (failed) this.liveFailed++;
    if (raised) this.liveRaised++;
  }
}

export interface CrashRecord {
  victim: number;
  crashMs: number;
  // Live nodes at the crash, the victim excepted, less those that stopped since.
  observers: number;
  // Times after the crash, or -1 if it did not happen within the window.
  firstProbeMs: number;
  firstSuspectMs: number;
  firstDeadMs: number;
  halfDeadMs: number;
  allDeadMs: number;
  deadObservers: number;
}

// Follows one crash at a time: a window opens at a crash and closes at the next crash or at
// `close()`. Scenarios space crashes so that windows do not overlap.
export class CrashMeter implements SimObserver {
  readonly records: CrashRecord[] = [];
  private current: CrashRecord | null = null;
  // Per node: 0 not an observer of the current crash, 1 expected, 2 has declared it dead.
  private marks = new Uint8Array(0);

  constructor(private readonly cluster: SimCluster) {}

  get open(): CrashRecord | null {
    return this.current;
  }

  // Call just before cluster.crash(victim).
  crashing(victim: number, nowMs: number): void {
    this.close();
    const cluster = this.cluster;
    if (this.marks.length < cluster.size) this.marks = new Uint8Array(cluster.size * 2);
    else this.marks.fill(0);
    let observers = 0;
    for (let node = 0; node < cluster.size; node++) {
      if (node !== victim && cluster.isLive(node)) {
        this.marks[node] = 1;
        observers++;
      }
    }
    this.current = {
      victim,
      crashMs: nowMs,
      observers,
      firstProbeMs: -1,
      firstSuspectMs: -1,
      firstDeadMs: -1,
      halfDeadMs: -1,
      allDeadMs: -1,
      deadObservers: 0,
    };
  }

  // Whether the open window has seen its victim declared dead by every observer.
  get complete(): boolean {
    return this.current !== null && this.current.allDeadMs >= 0;
  }

  close(): void {
    if (this.current !== null) this.records.push(this.current);
    this.current = null;
  }

  probeStarted(_prober: number, target: number, nowMs: number): void {
    const record = this.current;
    if (record !== null && target === record.victim && record.firstProbeMs < 0) record.firstProbeMs = nowMs - record.crashMs;
  }

  membership(observer: number, subject: number, event: MembershipEvent, nowMs: number): void {
    const record = this.current;
    if (record === null || subject !== record.victim) return;
    if (event.status === 'suspect') {
      if (record.firstSuspectMs < 0) record.firstSuspectMs = nowMs - record.crashMs;
      return;
    }
    if (event.status !== 'dead') return;
    if (record.firstDeadMs < 0) record.firstDeadMs = nowMs - record.crashMs;
    if (observer < this.marks.length && this.marks[observer] === 1) {
      this.marks[observer] = 2;
      record.deadObservers++;
      this.progress(record, nowMs);
    }
  }

  nodeStatus(node: number, status: NodeStatus, nowMs: number): void {
    const record = this.current;
    if (record === null || status === NodeStatus.UP || node >= this.marks.length) return;
    // An observer that stops before it has heard cannot hear any more.
    if (this.marks[node] === 1) {
      this.marks[node] = 0;
      record.observers--;
      this.progress(record, nowMs);
    }
  }

  private progress(record: CrashRecord, nowMs: number): void {
    if (record.halfDeadMs < 0 && record.deadObservers * 2 >= record.observers) record.halfDeadMs = nowMs - record.crashMs;
    if (record.allDeadMs < 0 && record.deadObservers >= record.observers) record.allDeadMs = nowMs - record.crashMs;
  }
}

export interface JoinRecord {
  node: number;
  kind: 'join' | 'restart';
  startMs: number;
  observers: number;
  seen: number;
  // Times after the start until 50%, 99% and all of the observers had it alive, or -1.
  halfMs: number;
  mostMs: number;
  allMs: number;
}

interface JoinWindow {
  record: JoinRecord;
  marks: Uint8Array;
  mostNeeded: number;
}

// Dissemination of a join: from the moment a new (or restarted) node starts its join until every
// node that was live then sees it alive in its new life. Windows may overlap; each has its own.
export class JoinMeter implements SimObserver {
  readonly records: JoinRecord[] = [];
  private readonly windows = new Map<number, JoinWindow>();

  constructor(private readonly cluster: SimCluster) {}

  // Call just after cluster.join() or cluster.restart().
  joined(node: number, kind: 'join' | 'restart', nowMs: number): void {
    this.finish(node);
    const cluster = this.cluster;
    const marks = new Uint8Array(cluster.size);
    let observers = 0;
    for (let other = 0; other < cluster.size; other++) {
      if (other !== node && cluster.isLive(other)) {
        marks[other] = 1;
        observers++;
      }
    }
    const record: JoinRecord = { node, kind, startMs: nowMs, observers, seen: 0, halfMs: -1, mostMs: -1, allMs: -1 };
    this.windows.set(node, { record, marks, mostNeeded: Math.ceil(observers * 0.99) });
  }

  membership(observer: number, subject: number, event: MembershipEvent, nowMs: number): void {
    if (event.status !== 'alive') return;
    const window = this.windows.get(subject);
    if (window === undefined || event.incarnation < this.cluster.lifeIncarnation[subject]!) return;
    if (observer >= window.marks.length || window.marks[observer] !== 1) return;
    window.marks[observer] = 2;
    window.record.seen++;
    this.progress(window, nowMs);
  }

  nodeStatus(node: number, status: NodeStatus, nowMs: number): void {
    if (status === NodeStatus.UP) return;
    // The subject stopped: its window ends as it stands.
    if (this.windows.has(node)) this.finish(node);
    for (const window of this.windows.values()) {
      if (node < window.marks.length && window.marks[node] === 1) {
        window.marks[node] = 0;
        window.record.observers--;
        window.mostNeeded = Math.ceil(window.record.observers * 0.99);
        this.progress(window, nowMs);
      }
    }
  }

  // Ends every open window (at the end of a run).
  close(): void {
    for (const node of [...this.windows.keys()]) this.finish(node);
  }

  private finish(node: number): void {
    const window = this.windows.get(node);
    if (window === undefined) return;
    this.windows.delete(node);
    this.records.push(window.record);
  }

  private progress(window: JoinWindow, nowMs: number): void {
    const record = window.record;
    const elapsed = nowMs - record.startMs;
    if (record.halfMs < 0 && record.seen * 2 >= record.observers) record.halfMs = elapsed;
    if (record.mostMs < 0 && record.seen >= window.mostNeeded) record.mostMs = elapsed;
    if (record.allMs < 0 && record.seen >= record.observers) {
      record.allMs = elapsed;
      this.finish(record.node);
    }
  }
}

// Datagrams and bytes sent per running node per second over a window of the run.
export class TrafficMeter {
  private startSent = 0;
  private startBytes = 0;
  private startPushPullBytes = 0;
  private startGossipPackets = 0;
  private startUpNodeMs = 0;
  private started = false;

  constructor(private readonly cluster: SimCluster) {}

  start(): void {
    const cluster = this.cluster;
    this.startSent = cluster.network.stats.sent;
    this.startBytes = cluster.network.stats.bytesSent;
    this.startPushPullBytes = cluster.stats.pushPullBytes;
    this.startGossipPackets = cluster.totalStats().gossipPackets;
    this.startUpNodeMs = cluster.upNodeMsSoFar();
    this.started = true;
  }

  read(): { packetsPerNodeS: number; bytesPerNodeS: number; gossipPacketsPerNodeS: number; pushPullBytesPerNodeS: number; nodeSeconds: number } {
    assert(this.started, 'the traffic window has started');
    const cluster = this.cluster;
    const nodeSeconds = (cluster.upNodeMsSoFar() - this.startUpNodeMs) / 1000;
    const per = (value: number): number => (nodeSeconds > 0 ? value / nodeSeconds : 0);
    return {
      packetsPerNodeS: per(cluster.network.stats.sent - this.startSent),
      bytesPerNodeS: per(cluster.network.stats.bytesSent - this.startBytes),
      gossipPacketsPerNodeS: per(cluster.totalStats().gossipPackets - this.startGossipPackets),
      pushPullBytesPerNodeS: per(cluster.stats.pushPullBytes - this.startPushPullBytes),
      nodeSeconds,
    };
  }
}
