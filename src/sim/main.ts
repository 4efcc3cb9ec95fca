// dkv-sim: runs a simulated SWIM cluster and prints its report.
//
//   npm run sim -- --nodes 1000 --loss 0.05 --minutes 60 --seed 7
//   npm run sim -- --scenario steady --nodes 10000 --minutes 10 --json
//
// The only impure lines of src/sim are here: the wall time of the run (performance.now) and,
// when no --seed is given, a seed drawn from the operating system. The run itself reads no
// clock and no global randomness; the seed it prints replays it exactly.

import sade from 'sade';
import { formatReport } from './report.js';
import { DEFAULT_SCENARIO, runScenario, SCENARIOS, type ScenarioName, type ScenarioOptions } from './scenario.js';

interface Flags {
  nodes: number;
  loss: number;
  minutes: number;
  seed?: number;
  scenario: string;
  json?: boolean;
  quiet?: boolean;
  'probe-ms': number;
  'timeout-ms': number;
  'delay-ms': number;
  'jitter-ms': number;
  duplicate: number;
  reorder: number;
  'crash-every-s': number;
  'restart-after-s': number;
  joins: number;
  'pause-max-ms': number;
  'slow-fraction': number;
  'slow-lag-ms': number;
  'partition-s': number;
  'warmup-s': number;
  'retransmit-mult': number;
  'push-pull-s': number;
}

function usage(message: string): never {
  process.stderr.write(`dkv-sim: ${message}\n`);
  process.exit(2);
}

function number(flags: Flags, name: keyof Flags, min: number, max: number): number {
  const value = Number(flags[name]);
  if (!Number.isFinite(value) || value < min || value > max) usage(`--${name} must be a number from ${min} to ${max}`);
  return value;
}

function run(flags: Flags): void {
  if (!(SCENARIOS as readonly string[]).includes(flags.scenario)) usage(`--scenario is one of ${SCENARIOS.join(', ')}`);
  const seed = flags.seed === undefined ? crypto.getRandomValues(new Uint32Array(1))[0]! : number(flags, 'seed', 0, 0xffffffff);
  const probeMs = number(flags, 'probe-ms', 10, 60_000);
  const options: Partial<ScenarioOptions> = {
    scenario: flags.scenario as ScenarioName,
    nodes: Math.floor(number(flags, 'nodes', 2, 65_000)),
    minutes: number(flags, 'minutes', 0.01, 24 * 60),
    seed: Math.floor(seed),
    network: {
      lossRate: number(flags, 'loss', 0, 1),
      delayMinMs: number(flags, 'delay-ms', 0, 10_000),
      delayJitterMs: number(flags, 'jitter-ms', 0, 10_000),
      duplicateRate: number(flags, 'duplicate', 0, 1),
      reorderRate: number(flags, 'reorder', 0, 1),
    },
    swim: {
      probeIntervalMs: probeMs,
      probeTimeoutMs: Math.min(probeMs, Math.floor(number(flags, 'timeout-ms', 1, 60_000))),
      // Gossip four times per probe period, as the LAN profile does (200 ms against 1 s).
      gossipIntervalMs: Math.max(1, Math.floor(probeMs / 5)),
      retransmitMult: Math.floor(number(flags, 'retransmit-mult', 1, 100)),
      pushPullIntervalMs: Math.floor(number(flags, 'push-pull-s', 0.001, 1e6) * 1000),
    },
    warmupMs: number(flags, 'warmup-s', 0, 3600) * 1000,
    crashEveryMs: number(flags, 'crash-every-s', 1, 3600) * 1000,
    restartAfterMs: number(flags, 'restart-after-s', 0, 3600) * 1000,
    joins: Math.floor(number(flags, 'joins', 0, 1000)),
    pauseMaxMs: number(flags, 'pause-max-ms', DEFAULT_SCENARIO.pauseMinMs, 600_000),
    slowFraction: number(flags, 'slow-fraction', 0, 1),
    slowLagMs: number(flags, 'slow-lag-ms', 0, 60_000),
    partitionMs: number(flags, 'partition-s', 0, 3600) * 1000,
  };
  process.stderr.write(`seed=${options.seed}\n`);
  const startedMs = performance.now();
  const { report } = runScenario(options, (progress) => {
    if (flags.quiet) return;
    const realS = (performance.now() - startedMs) / 1000;
    process.stderr.write(
      `  ${(progress.simulatedMs / 1000).toFixed(0)}/${(progress.endMs / 1000).toFixed(0)} s simulated, ` +
        `${realS.toFixed(1)} s real, ${progress.steps} steps, ${progress.upNodes} nodes up\n`,
    );
  });
  report.realS = (performance.now() - startedMs) / 1000;
  process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
}

sade('dkv-sim', true)
  .describe('Simulate a dkv SWIM cluster in virtual time and report failure detection, dissemination and traffic.')
  .option('--nodes', 'Nodes in the formed cluster', DEFAULT_SCENARIO.nodes)
  .option('--loss', 'Probability that a datagram is lost', 0)
  .option('--minutes', 'Simulated minutes', DEFAULT_SCENARIO.minutes)
  .option('--seed', 'Seed of every random choice (default: a fresh one, printed)')
  .option('--scenario', `One of ${SCENARIOS.join(', ')}`, DEFAULT_SCENARIO.scenario)
  .option('--probe-ms', 'Probe interval (gossip runs at a fifth of it)', 1000)
  .option('--timeout-ms', 'Probe timeout', 500)
  .option('--delay-ms', 'Minimum one-way delay', 0.2)
  .option('--jitter-ms', 'Uniform extra one-way delay', 2)
  .option('--duplicate', 'Probability that a datagram arrives twice', 0)
  .option('--reorder', 'Probability that a datagram is held back up to 50 ms', 0)
  .option('--crash-every-s', 'crashes: seconds between crashes', DEFAULT_SCENARIO.crashEveryMs / 1000)
  .option('--restart-after-s', 'crashes: seconds until a victim restarts (0: never)', DEFAULT_SCENARIO.restartAfterMs / 1000)
  .option('--joins', 'New nodes that join during the run', DEFAULT_SCENARIO.joins)
  .option('--pause-max-ms', 'pauses: the longest pause', DEFAULT_SCENARIO.pauseMaxMs)
  .option('--slow-fraction', 'slow: the fraction of nodes that run late', DEFAULT_SCENARIO.slowFraction)
  .option('--slow-lag-ms', 'slow: how late they run', DEFAULT_SCENARIO.slowLagMs)
  .option('--partition-s', 'partition: how long the split lasts', DEFAULT_SCENARIO.partitionMs / 1000)
  .option('--retransmit-mult', 'Each piece of news is sent this many times log10(N+1)', 4)
  .option('--push-pull-s', 'Seconds between push-pull exchanges (doubling per doubling of the cluster past 32)', 30)
  .option('--warmup-s', 'Seconds before traffic and probes are counted', DEFAULT_SCENARIO.warmupMs / 1000)
  .option('--json', 'Print the report as JSON')
  .option('--quiet', 'No progress lines on stderr')
  .example('--nodes 1000 --loss 0.05 --minutes 60 --seed 7')
  .example('--scenario steady --nodes 10000 --minutes 10')
  .action(run)
  .parse(process.argv);
