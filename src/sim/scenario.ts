// Scenarios: a formed cluster, a schedule of faults, the measurements, and the report. Pure;
// the CLI (main.ts) and the benchmarks run these, the tests build smaller ones by hand.
//
//   steady      uniform loss and `joins` new nodes only: traffic and false suspicion
//   crashes     plus a crash every crashEveryMs (the next waits until the last is declared dead
//               everywhere), each victim restarted restartAfterMs later
//   pauses      plus a pause of pauseMinMs..pauseMaxMs every pauseEveryMs (a stopped process)
//   slow        plus slowFraction of the nodes running slowLagMs late from the warm-up on
//   partition   plus a split into two random halves for partitionMs, then healed
//
// Crashes, joins and restarts stop early enough for their news to settle before the end, where
// membership must have converged.

import { assert } from '../lib/assert.js';
import { swimConfig, type SwimConfig } from '../swim/config.js';
import { checkConvergence, FalseDeathChecker, runUntilConverged } from './checkers.js';
import { SimCluster } from './cluster.js';
import { CrashMeter, JoinMeter, ProbeMeter, TrafficMeter } from './measure.js';
import { expectedFirstDetectionPeriods, expectedProbeFailure, summarize, type SimReport } from './report.js';
import { networkOptions, type NetworkOptions } from './sim-network.js';

export const SCENARIOS = ['steady', 'crashes', 'pauses', 'slow', 'partition'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface ScenarioOptions {
  scenario: ScenarioName;
  nodes: number;
  minutes: number;
  seed: number;
  network: Partial<NetworkOptions>;
  swim: Partial<SwimConfig>;
  // Traffic and probe counts start after this (the formed cluster's first self-announcements).
  warmupMs: number;
  crashEveryMs: number;
  // 0: victims stay down.
  restartAfterMs: number;
  // New nodes joining during the run.
  joins: number;
  pauseEveryMs: number;
  pauseMinMs: number;
  pauseMaxMs: number;
  slowFraction: number;
  slowLagMs: number;
  partitionMs: number;
  // Observers sampled by the final convergence check (each costs one members()).
  convergenceObservers: number;
  // After the run, keep running up to this long for membership to converge.
  convergenceBudgetMs: number;
  keepEventLog: boolean;
}

export const DEFAULT_SCENARIO: Readonly<ScenarioOptions> = {
  scenario: 'crashes',
  nodes: 1000,
  minutes: 10,
  seed: 1,
  network: {},
  swim: {},
  warmupMs: 10_000,
  crashEveryMs: 20_000,
  restartAfterMs: 40_000,
  joins: 2,
  pauseEveryMs: 10_000,
  pauseMinMs: 500,
  pauseMaxMs: 4_000,
  slowFraction: 0.05,
  slowLagMs: 600,
  partitionMs: 5_000,
  convergenceObservers: 64,
  convergenceBudgetMs: 60_000,
  keepEventLog: false,
};

// A crash window stays open at most this long waiting for every observer's DEAD.
const CRASH_WAIT_MAX_MS = 120_000;
// Virtual time run between two progress callbacks.
const PROGRESS_STEP_MS = 10_000;

export interface Progress {
  simulatedMs: number;
  endMs: number;
  steps: number;
  upNodes: number;
}

export interface ScenarioRun {
  cluster: SimCluster;
  report: SimReport;
}

// `prepare` sees the cluster before it forms (to add observers, say).
export function runScenario(
  overrides: Partial<ScenarioOptions>,
  onProgress?: (progress: Progress) => void,
  prepare?: (cluster: SimCluster) => void,
): ScenarioRun {
  const options: ScenarioOptions = { ...DEFAULT_SCENARIO, ...overrides };
  assert(Number.isInteger(options.nodes) && options.nodes >= 2, 'at least two nodes');
  assert(options.minutes > 0, 'a positive duration');
  const swim = swimConfig(options.swim);
  const network = networkOptions(options.network);
  const cluster = new SimCluster({ seed: options.seed, swim, network, leaveDrainMs: 5_000, keepEventLog: options.keepEventLog });
  const random = cluster.scenarioRandom;
  const endMs = Math.round(options.minutes * 60_000);
  const warmupMs = Math.min(options.warmupMs, endMs / 2);
  const notes: string[] = [];

  const falseDeaths = new FalseDeathChecker(cluster);
  const probes = new ProbeMeter(cluster, warmupMs);
  const crashes = new CrashMeter(cluster);
  const joins = new JoinMeter(cluster);
  const traffic = new TrafficMeter(cluster);
  cluster.observers.push(falseDeaths, probes, crashes, joins);

  prepare?.(cluster);
  cluster.form(options.nodes);
  cluster.at(warmupMs, () => traffic.start());

  // Faults stop this long before the end so that their news settles.
  const quietMs = Math.max(60_000, options.restartAfterMs + 45_000);
  const faultsEndMs = endMs - quietMs;

  if (options.joins > 0 && faultsEndMs > warmupMs) {
    const span = faultsEndMs - warmupMs;
    for (let k = 0; k < options.joins; k++) {
      cluster.at(warmupMs + ((k + 0.5) * span) / options.joins, (nowMs) => {
        const node = cluster.join();
        joins.joined(node, 'join', nowMs);
      });
    }
  }

  if (options.scenario === 'crashes' && faultsEndMs > warmupMs) {
    const crashNext = (nowMs: number): void => {
      if (nowMs >= faultsEndMs) return;
      const open = crashes.open;
      if (open !== null && !crashes.complete && nowMs < open.crashMs + CRASH_WAIT_MAX_MS) {
        cluster.at(nowMs + 1000, crashNext);
        return;
      }
      const victim = pickVictim(cluster, nowMs);
      if (victim >= 0) {
        crashes.crashing(victim, nowMs);
        cluster.crash(victim);
        if (options.restartAfterMs > 0) {
          cluster.at(nowMs + options.restartAfterMs, (restartMs) => {
            cluster.restart(victim);
            joins.joined(victim, 'restart', restartMs);
          });
        }
      }
      cluster.at(nowMs + options.crashEveryMs, crashNext);
    };
    cluster.at(warmupMs + 5_000, crashNext);
  }

  if (options.scenario === 'pauses' && faultsEndMs > warmupMs) {
    const pauseNext = (nowMs: number): void => {
      if (nowMs >= faultsEndMs) return;
      const node = cluster.randomUpNode(-1);
      if (node >= 0) {
        cluster.pause(node);
        const pauseMs = options.pauseMinMs + random.next() * (options.pauseMaxMs - options.pauseMinMs);
        cluster.at(nowMs + pauseMs, () => cluster.resume(node));
      }
      cluster.at(nowMs + options.pauseEveryMs, pauseNext);
    };
    cluster.at(warmupMs + 5_000, pauseNext);
  }

  if (options.scenario === 'slow') {
    cluster.at(warmupMs, () => {
      const count = Math.max(1, Math.round(options.nodes * options.slowFraction));
      for (let i = 0; i < count; i++) {
        const node = cluster.randomUpNode(-1);
        if (node >= 0 && cluster.lagMs[node] === 0) cluster.slow(node, options.slowLagMs);
      }
    });
  }

  if (options.scenario === 'partition') {
    cluster.at(warmupMs + 5_000, () => {
      const half: number[] = [];
      for (let node = 0; node < cluster.size; node++) if (random.next() < 0.5) half.push(node);
      cluster.network.partition([half]);
    });
    cluster.at(warmupMs + 5_000 + options.partitionMs, () => cluster.network.healPartitions());
    notes.push(
      `the network was split in two for ${options.partitionMs} ms: DEAD about nodes across the split counts as false ` +
        `by the checker's definition (they were up), though no failure detector can tell them from crashed ones`,
    );
  }

  for (let atMs = cluster.nowMs; atMs < endMs; ) {
    atMs = Math.min(endMs, atMs + PROGRESS_STEP_MS);
    cluster.runUntil(atMs);
    onProgress?.({ simulatedMs: atMs, endMs, steps: cluster.stats.steps, upNodes: cluster.upNodes });
  }
  // Everything measured so far is the run. Then liveness: the network heals (no loss, no
  // partition) and membership must converge within the budget; under loss a large cluster is
  // never converged at any one instant (some suspicion is always on its way to refutation).
  const trafficFigures = traffic.read();
  const totals = cluster.totalStats();
  const probeCounts = { ...probes };
  crashes.close();
  joins.close();
  const reportEndMs = cluster.nowMs;
  cluster.network.healPartitions();
  cluster.network.clearLinkLoss();
  cluster.network.setUniformLoss(0);
  const convergedAfterMs = runUntilConverged(cluster, options.convergenceBudgetMs, 1000, options.convergenceObservers);
  const convergence = checkConvergence(cluster, options.convergenceObservers);

  const crashRecords = crashes.records;
  const periods = crashRecords.filter((r) => r.firstProbeMs >= 0).map((r) => Math.ceil(r.firstProbeMs / swim.probeIntervalMs));
  const effectivePeriodMs = probeCounts.probes > 0 ? (trafficFigures.nodeSeconds * 1000) / probeCounts.probes : NaN;
  const joinRecords = joins.records.filter((r) => r.kind === 'join');
  const restartRecords = joins.records.filter((r) => r.kind === 'restart');
  const joinSummary = (records: typeof joinRecords): SimReport['joins'] => ({
    count: records.length,
    complete: records.filter((r) => r.allMs >= 0).length,
    halfMs: summarize(records.map((r) => r.halfMs)),
    mostMs: summarize(records.map((r) => r.mostMs)),
    allMs: summarize(records.map((r) => r.allMs)),
  });

  const report: SimReport = {
    seed: options.seed,
    scenario: options.scenario,
    nodes: options.nodes,
    lossRate: network.lossRate,
    simulatedS: reportEndMs / 1000,
    probeIntervalMs: swim.probeIntervalMs,
    probeTimeoutMs: swim.probeTimeoutMs,
    indirectChecks: swim.indirectChecks,
    steps: cluster.stats.steps,
    events: cluster.eventCount,
    eventHash: `0x${cluster.eventHash.toString(16).padStart(8, '0')}`,
    traffic: {
      fromS: warmupMs / 1000,
      packetsPerNodeS: trafficFigures.packetsPerNodeS,
      bytesPerNodeS: trafficFigures.bytesPerNodeS,
      gossipPacketsPerNodeS: trafficFigures.gossipPacketsPerNodeS,
      pushPullBytesPerNodeS: trafficFigures.pushPullBytesPerNodeS,
      pushPulls: cluster.stats.pushPulls,
      pushPullsFailed: cluster.stats.pushPullsFailed,
      lost: cluster.network.stats.lost,
      cut: cluster.network.stats.cut,
    },
    probes: {
      all: probeCounts.probes,
      effectivePeriodMs,
      live: probeCounts.liveProbes,
      liveFailed: probeCounts.liveFailed,
      liveRaised: probeCounts.liveRaised,
      failureRate: probeCounts.liveProbes > 0 ? probeCounts.liveFailed / probeCounts.liveProbes : NaN,
      raisedRate: probeCounts.liveProbes > 0 ? probeCounts.liveRaised / probeCounts.liveProbes : NaN,
      formulaRate: expectedProbeFailure(network.lossRate, swim.indirectChecks),
    },
    suspicions: {
      raised: totals.suspicionsRaised,
      refuted: totals.suspicionsRefuted,
      withdrawn: totals.suspicionsWithdrawn,
      deathsDeclared: totals.deathsDeclared,
      lateTicks: totals.lateTicks,
    },
    falseDeaths: {
      count: falseDeaths.falseDeaths,
      ofPausedNodes: falseDeaths.deathsOfPausedNodes,
      ofEarlierLives: falseDeaths.deathsOfEarlierLives,
      examples: falseDeaths.examples
        .slice(0, 10)
        .map((d) => `at ${d.atMs.toFixed(1)} ms ${cluster.idOf(d.observer)} declared ${cluster.idOf(d.subject)} ${d.status} ${d.incarnation} (${d.subjectState})`),
    },
    crashes: {
      count: crashRecords.length,
      complete: crashRecords.filter((r) => r.allDeadMs >= 0).length,
      firstProbePeriods: {
        mean: periods.length > 0 ? periods.reduce((a, b) => a + b, 0) / periods.length : NaN,
        formula: expectedFirstDetectionPeriods(),
        formulaEffective: 1 / (1 - Math.exp(-swim.probeIntervalMs / effectivePeriodMs)),
      },
      firstProbeMs: summarize(crashRecords.map((r) => r.firstProbeMs)),
      firstSuspectMs: summarize(crashRecords.map((r) => r.firstSuspectMs)),
      firstDeadMs: summarize(crashRecords.map((r) => r.firstDeadMs)),
      allDeadMs: summarize(crashRecords.map((r) => r.allDeadMs)),
      deathSpreadMs: summarize(crashRecords.map((r) => (r.allDeadMs >= 0 && r.firstDeadMs >= 0 ? r.allDeadMs - r.firstDeadMs : -1))),
    },
    joins: joinSummary(joinRecords),
    restarts: joinSummary(restartRecords),
    convergence: {
      converged: convergence.converged,
      observersChecked: convergence.observersChecked,
      disagreements: convergence.disagreements,
      examples: convergence.examples.slice(0, 10),
      afterMs: convergedAfterMs,
    },
    notes,
  };
  return { cluster, report };
}

// A live node that has been up a while (a victim that just restarted would blur its own join
// measurement), or any live node if none has.
function pickVictim(cluster: SimCluster, nowMs: number): number {
  for (let attempt = 0; attempt < 64; attempt++) {
    const node = cluster.randomUpNode(-1);
    if (node < 0) return -1;
    if (cluster.upSinceMs[node]! <= nowMs - 60_000 || cluster.upSinceMs[node] === 0) return node;
  }
  return cluster.randomUpNode(-1);
}
