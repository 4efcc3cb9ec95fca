// The report of a simulated run: the figures, the SWIM paper's formulas beside them, and the
// text the CLI prints. Pure.

export interface Summary {
  count: number;
  mean: number;
  median: number;
  p99: number;
  max: number;
}

// Nearest-rank percentiles of the non-negative values (negative ones mean "did not happen").
export function summarize(values: readonly number[]): Summary {
  const sorted = values.filter((value) => value >= 0).sort((a, b) => a - b);
  const count = sorted.length;
  if (count === 0) return { count: 0, mean: NaN, median: NaN, p99: NaN, max: NaN };
  const rank = (q: number): number => sorted[Math.min(count - 1, Math.max(0, Math.ceil(q * count) - 1))]!;
  let sum = 0;
  for (const value of sorted) sum += value;
  return { count, mean: sum / count, median: rank(0.5), p99: rank(0.99), max: sorted[count - 1]! };
}

// SWIM (Das, Gupta, Motivala 2002), section 3.1: the expected number of protocol periods until
// some member pings a crashed one, 1/(1 − e^−q) with q the fraction of members that are up (here
// all but the victim, so q → 1).
export function expectedFirstDetectionPeriods(upFraction = 1): number {
  return 1 / (1 - Math.exp(-upFraction));
}

// The probability that one probe of a live member fails with independent loss on every
// datagram: the direct PING or ACK is lost, and so is at least one of the four datagrams of
// each of the K indirect paths.
export function expectedProbeFailure(lossRate: number, indirectChecks: number): number {
  const delivered = 1 - lossRate;
  return (1 - delivered ** 2) * (1 - delivered ** 4) ** indirectChecks;
}

export interface SimReport {
  seed: number;
  scenario: string;
  nodes: number;
  lossRate: number;
  simulatedS: number;
  probeIntervalMs: number;
  probeTimeoutMs: number;
  indirectChecks: number;
  // Wall time is the CLI's to fill in; the simulation never reads a clock.
  realS?: number;
  steps: number;
  events: number;
  eventHash: string;
  traffic: {
    fromS: number;
    packetsPerNodeS: number;
    bytesPerNodeS: number;
    gossipPacketsPerNodeS: number;
    pushPullBytesPerNodeS: number;
    pushPulls: number;
    pushPullsFailed: number;
    lost: number;
    cut: number;
  };
  probes: {
    all: number;
    // Mean time between two probes of one node: running node-seconds over probes.
    effectivePeriodMs: number;
    live: number;
    liveFailed: number;
    liveRaised: number;
    failureRate: number;
    raisedRate: number;
    formulaRate: number;
  };
  suspicions: { raised: number; withdrawn: number; refuted: number; deathsDeclared: number; lateTicks: number };
  falseDeaths: { count: number; ofPausedNodes: number; ofEarlierLives: number; examples: string[] };
  crashes: {
    count: number;
    complete: number;
    firstProbePeriods: { mean: number; formula: number; formulaEffective: number };
    firstProbeMs: Summary;
    firstSuspectMs: Summary;
    firstDeadMs: Summary;
    allDeadMs: Summary;
    deathSpreadMs: Summary;
  };
  joins: { count: number; complete: number; halfMs: Summary; mostMs: Summary; allMs: Summary };
  restarts: { count: number; complete: number; halfMs: Summary; mostMs: Summary; allMs: Summary };
  convergence: { converged: boolean; observersChecked: number; disagreements: number; examples: string[]; afterMs: number };
  notes: string[];
}

const ms = (value: number): string => (Number.isNaN(value) ? '-' : value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`);

function summaryLine(label: string, summary: Summary): string {
  if (summary.count === 0) return `  ${label.padEnd(36)} none`;
  return `  ${label.padEnd(36)} median ${ms(summary.median).padStart(8)}  p99 ${ms(summary.p99).padStart(8)}  mean ${ms(summary.mean).padStart(8)}  max ${ms(summary.max).padStart(8)}  (n=${summary.count})`;
}

function ratio(measured: number, expected: number): string {
  if (!(expected > 0) || Number.isNaN(measured)) return '';
  const r = measured / expected;
  return ` (measured/formula ${r.toFixed(3)}, ${r >= 0.9 && r <= 1.1 ? 'within' : 'outside'} 10%)`;
}

const thousands = (value: number): string => Math.round(value).toLocaleString('en-US');

export function formatReport(report: SimReport): string {
  const lines: string[] = [];
  const r = report;
  lines.push(
    `seed=${r.seed} scenario=${r.scenario} nodes=${r.nodes} loss=${r.lossRate} minutes=${(r.simulatedS / 60).toFixed(2)} ` +
      `probe=${r.probeIntervalMs}ms timeout=${r.probeTimeoutMs}ms K=${r.indirectChecks}`,
  );
  const real = r.realS === undefined ? '' : ` in ${r.realS.toFixed(1)} s real time (${(r.simulatedS / r.realS).toFixed(1)}× real time)`;
  lines.push(`simulated ${r.simulatedS.toFixed(0)} s${real}; ${thousands(r.steps)} steps, ${thousands(r.events)} membership events, event hash ${r.eventHash}`);
  const t = r.traffic;
  lines.push(`traffic from ${t.fromS} s on, per running node per second (UDP payload bytes, every datagram sent, lost ones included):`);
  lines.push(`  ${t.packetsPerNodeS.toFixed(2)} packets (${t.gossipPacketsPerNodeS.toFixed(2)} of them gossip-only), ${t.bytesPerNodeS.toFixed(1)} bytes`);
  lines.push(`  push-pull over TCP: ${thousands(t.pushPulls)} exchanges (${t.pushPullsFailed} failed), ${t.pushPullBytesPerNodeS.toFixed(1)} bytes/node/s`);
  lines.push(`  datagrams lost ${thousands(t.lost)}, cut by partitions ${thousands(t.cut)}`);
  const p = r.probes;
  lines.push(`probes ${thousands(p.all)}, effective period ${p.effectivePeriodMs.toFixed(0)} ms (configured ${r.probeIntervalMs} ms; Lifeguard stretches it)`);
  lines.push(
    `  per-probe failure of live targets: ${p.liveFailed} / ${thousands(p.live)} = ${p.failureRate.toExponential(3)}; ` +
      `formula (1−Δ²)(1−Δ⁴)^K = ${p.formulaRate.toExponential(3)}${ratio(p.failureRate, p.formulaRate)}`,
  );
  lines.push(`  suspicions raised against live targets: ${p.liveRaised} = ${p.raisedRate.toExponential(3)} per probe${ratio(p.raisedRate, p.formulaRate)}`);
  const s = r.suspicions;
  lines.push(
    `suspicions raised ${thousands(s.raised)} (withdrawn unannounced when the suspect answered the recheck ${thousands(s.withdrawn)}), ` +
      `accusations refuted ${thousands(s.refuted)}; deaths declared ${thousands(s.deathsDeclared)}; late ticks ${s.lateTicks}`,
  );
  const f = r.falseDeaths;
  lines.push(`false DEAD/LEFT (about a live node, the run and its convergence check): ${f.count}; about paused nodes ${f.ofPausedNodes}; about earlier lives of restarted nodes ${f.ofEarlierLives}`);
  for (const example of f.examples) lines.push(`  ${example}`);
  const c = r.crashes;
  if (c.count > 0) {
    lines.push(`crashes ${c.count} (every observer declared the victim dead in ${c.complete}):`);
    lines.push(
      `  first PING to the victim, in periods of T after the crash (⌈X/T⌉): mean ${c.firstProbePeriods.mean.toFixed(3)}; ` +
        `SWIM 1/(1−e^−1) = ${c.firstProbePeriods.formula.toFixed(3)}${ratio(c.firstProbePeriods.mean, c.firstProbePeriods.formula)}`,
    );
    lines.push(`  (with the effective period instead of T the formula gives ${c.firstProbePeriods.formulaEffective.toFixed(3)} periods of T)`);
    lines.push(summaryLine('first PING to the victim', c.firstProbeMs));
    lines.push(summaryLine('first suspicion (first observer)', c.firstSuspectMs));
    lines.push(summaryLine('first DEAD (first observer)', c.firstDeadMs));
    lines.push(summaryLine('DEAD at all live observers', c.allDeadMs));
    lines.push(summaryLine('death dissemination (first→all)', c.deathSpreadMs));
  }
  for (const [label, joins] of [
    ['joins of new nodes', r.joins],
    ['rejoins of restarted nodes', r.restarts],
  ] as const) {
    if (joins.count === 0) continue;
    lines.push(`${label} ${joins.count} (seen alive by every live node in ${joins.complete}), from the start of the join:`);
    lines.push(summaryLine('alive at 50% of nodes', joins.halfMs));
    lines.push(summaryLine('alive at 99% of nodes', joins.mostMs));
    lines.push(summaryLine('alive at all nodes', joins.allMs));
  }
  const v = r.convergence;
  lines.push(
    `convergence once the network heals at the end: ${v.converged ? 'yes' : 'NO'} (${v.observersChecked} observers checked, ${v.disagreements} disagreements)` +
      (v.afterMs > 0 ? `, after ${ms(v.afterMs)} more` : v.afterMs < 0 ? ', not within the budget' : ''),
  );
  for (const example of v.examples) lines.push(`  ${example}`);
  for (const note of r.notes) lines.push(`note: ${note}`);
  return lines.join('\n');
}
