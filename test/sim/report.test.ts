// The report's formulas and statistics, and a small scenario run end to end: every figure is
// there, the seed is printed, and the same seed gives the same report.
import t from 'tap';
import { expectedFirstDetectionPeriods, expectedProbeFailure, formatReport, summarize } from '../../src/sim/report.js';
import { runScenario } from '../../src/sim/scenario.js';

t.test('SWIM formulas', async (t) => {
  t.ok(Math.abs(expectedFirstDetectionPeriods() - 1.5819767) < 1e-6, 'e/(e−1)');
  t.ok(Math.abs(expectedFirstDetectionPeriods(0.5) - 1 / (1 - Math.exp(-0.5))) < 1e-12);
  // Δ = 0.95: (1 − 0.9025)(1 − 0.81450625)^3
  t.ok(Math.abs(expectedProbeFailure(0.05, 3) - 0.0975 * 0.18549375 ** 3) < 1e-12);
  t.equal(expectedProbeFailure(0, 3), 0);
  t.equal(expectedProbeFailure(1, 3), 1);
  t.equal(expectedProbeFailure(0.1, 0), 1 - 0.81, 'no indirect checks: the direct probe alone');
});

t.test('summaries: nearest rank, negatives left out', async (t) => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1);
  const summary = summarize([...values, -1, -1]);
  t.same(summary, { count: 100, mean: 50.5, median: 50, p99: 99, max: 100 });
  t.equal(summarize([-1]).count, 0);
  t.ok(Number.isNaN(summarize([]).median));
  t.same(summarize([7]), { count: 1, mean: 7, median: 7, p99: 7, max: 7 });
});

t.test('a small crash scenario reports every figure, and replays from its seed', async (t) => {
  const options = { scenario: 'crashes' as const, nodes: 24, minutes: 4, seed: 42, network: { lossRate: 0.05 }, crashEveryMs: 20_000, joins: 1 };
  const { report } = runScenario(options);
  t.equal(report.seed, 42);
  t.equal(report.nodes, 24);
  t.ok(report.crashes.count >= 3, `${report.crashes.count} crashes`);
  t.equal(report.crashes.complete, report.crashes.count, 'each found dead by everyone');
  t.ok(report.crashes.firstDeadMs.median > report.crashes.firstSuspectMs.median);
  t.ok(report.crashes.allDeadMs.max >= report.crashes.firstDeadMs.max);
  t.equal(report.joins.count, 1);
  t.equal(report.joins.complete, 1);
  t.equal(report.restarts.count, report.crashes.count, 'every victim restarted');
  t.equal(report.restarts.complete, report.restarts.count);
  t.equal(report.falseDeaths.count, 0);
  t.ok(report.convergence.converged, 'converged at the end');
  t.ok(report.traffic.packetsPerNodeS > 2 && report.traffic.packetsPerNodeS < 20, `${report.traffic.packetsPerNodeS} packets/node/s`);
  t.ok(report.traffic.bytesPerNodeS > 0);
  t.ok(report.probes.live > 0 && report.probes.live <= report.probes.all);
  t.ok(report.probes.effectivePeriodMs >= 1000 && report.probes.effectivePeriodMs < 1200);
  const text = formatReport(report);
  t.match(text, /^seed=42 scenario=crashes nodes=24 loss=0.05/);
  t.match(text, /first DEAD/);
  t.match(text, /1\/\(1−e\^−1\) = 1\.582/);
  const again = runScenario(options).report;
  t.same(again, report, 'the same seed, the same report');
});

t.test('the other scenarios run', async (t) => {
  for (const scenario of ['steady', 'pauses', 'slow', 'partition'] as const) {
    const { report } = runScenario({ scenario, nodes: 16, minutes: 2.5, seed: 3, network: { lossRate: 0.02 }, joins: 0 });
    t.equal(report.scenario, scenario);
    t.equal(report.crashes.count, 0, `${scenario}: no crashes`);
    if (scenario !== 'partition') t.equal(report.falseDeaths.count, 0, `${scenario}: no false DEAD`);
    t.ok(report.convergence.converged, `${scenario}: converged`);
  }
});
