// Failure detection across real dkvd processes on loopback, measured the way
// ../shared/anchors/memberlist measures hashicorp/memberlist, so the two can be run side by side
// (bench/vs-memberlist.sh does).
//
//   node dist/bench/membership.js detect --nodes 16 --trials 8
//     N nodes join one seed; steady-state UDP traffic per member; then per trial a new node
//     joins (time from its "joining" log line until every member has logged it alive) and a
//     random member other than the seed is SIGKILLed (time until every other member has logged
//     it dead: first observer, median observer, all observers).
//   node dist/bench/membership.js saturate --nodes 5 --seconds 60
//     N nodes; redis-benchmark at pipeline 16 saturates node 0's data path for the given time;
//     counts DEAD declarations (all of them false: nothing is killed) and suspicions.
//
// Times come from the nodes' own log lines (pino's `time`, wall-clock ms, written by the
// membership thread as it acts), so polling adds nothing to them. Only 127.0.0.1 is used; every
// wait is bounded; every process is killed at the end.
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { DkvClient } from '../src/client/client.js';
import { ensureTool, removeDir, startDkvd, type Dkvd } from '../test/helpers/dkvd.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    nodes: { type: 'string', default: '16' },
    trials: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '60' },
    steady: { type: 'string', default: '10' },
    'probe-interval': { type: 'string', default: '200' },
    'probe-timeout': { type: 'string', default: '100' },
    'suspicion-mult': { type: 'string', default: '4' },
    'indirect-checks': { type: 'string', default: '3' },
    'gossip-interval': { type: 'string', default: '40' },
    'push-pull-interval': { type: 'string', default: '6000' },
    storage: { type: 'string', default: 'memory' },
    json: { type: 'boolean', default: false },
  },
});
const mode = positionals[0] ?? 'detect';
const NODES = Number(values.nodes);
const WAIT_MS = 30_000;
const SWIM_FLAGS = [
  '--probe-interval',
  values['probe-interval'],
  '--probe-timeout',
  values['probe-timeout'],
  '--suspicion-mult',
  values['suspicion-mult'],
  '--indirect-checks',
  values['indirect-checks'],
  '--gossip-interval',
  values['gossip-interval'],
  '--push-pull-interval',
  values['push-pull-interval'],
];

interface LogEntry {
  time: number;
  msg: string;
  member?: string;
}

const live: Dkvd[] = [];
const everyone: Dkvd[] = [];

function entries(node: Dkvd, msg: string, member?: string): LogEntry[] {
  const out: LogEntry[] = [];
  for (const line of node.logLines) {
    if (!line.includes(msg)) continue;
    const entry = JSON.parse(line) as LogEntry;
    if (entry.msg === msg && (member === undefined || entry.member === member)) out.push(entry);
  }
  return out;
}

async function startNode(id: string, seedPort: number | null, logLevel = 'info'): Promise<Dkvd> {
  const node = await startDkvd({
    storage: String(values.storage) as 'memory' | 'lmdb',
    args: [
      '--node-id',
      id,
      '--log-level',
      logLevel,
      ...SWIM_FLAGS,
      ...(seedPort === null ? [] : ['--join', `127.0.0.1:${seedPort}`]),
    ],
  });
  everyone.push(node);
  live.push(node);
  return node;
}

async function stats(node: Dkvd): Promise<Record<string, string | number>> {
  const client = new DkvClient({ port: node.tcpPort, timeoutMs: 10_000 });
  try {
    return await client.stats();
  } finally {
    await client.close();
  }
}

// Polls until `done()` or WAIT_MS; returns whether it happened.
async function until(done: () => boolean | Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < WAIT_MS / 20; i++) {
    if (await done()) return true;
    await sleep(20);
  }
  return false;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1) + 0.5))]!;
}

function summary(values: number[]): { min: number; median: number; max: number; n: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0] ?? NaN, median: percentile(sorted, 0.5), max: sorted.at(-1) ?? NaN, n: sorted.length };
}

function fmt(s: { min: number; median: number; max: number; n: number }): string {
  return `min ${Math.round(s.min)} / median ${Math.round(s.median)} / max ${Math.round(s.max)} ms (n=${s.n})`;
}

async function formCluster(): Promise<Dkvd> {
  const started = Date.now();
  const seed = await startNode('b000', null);
  // Start the rest a few at a time: each dkvd spends a few hundred ms of CPU starting.
  for (let i = 1; i < NODES; i += 4) {
    const batch = [];
    for (let j = i; j < Math.min(NODES, i + 4); j++) batch.push(startNode(`b${String(j).padStart(3, '0')}`, seed.tcpPort));
    await Promise.all(batch);
  }
  const formed = await until(async () => Number((await stats(seed)).swimMembersAlive) === NODES);
  if (!formed) throw new Error(`the seed did not see ${NODES} alive members within ${WAIT_MS} ms`);
  const everywhere = await until(async () =>
    (await Promise.all(live.map(stats))).every((s) => Number(s.swimMembersAlive) === NODES),
  );
  if (!everywhere) throw new Error(`not every node saw ${NODES} alive members within ${WAIT_MS} ms`);
  console.log(`formation: all ${NODES} members see ${NODES} alive ${Date.now() - started} ms after the first process was spawned`);
  return seed;
}

async function steadyTraffic(seconds: number): Promise<{ packets: number; bytes: number }> {
  const before = await Promise.all(live.map(stats));
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const after = await Promise.all(live.map(stats));
  const elapsed = (performance.now() - t0) / 1000;
  let packets = 0;
  let bytes = 0;
  for (let i = 0; i < live.length; i++) {
    packets += Number(after[i]!.swimPacketsOut) - Number(before[i]!.swimPacketsOut);
    bytes += Number(after[i]!.swimBytesOut) - Number(before[i]!.swimBytesOut);
  }
  return { packets: packets / live.length / elapsed, bytes: bytes / live.length / elapsed };
}

async function detect(): Promise<void> {
  const trials = Number(values.trials);
  const seed = await formCluster();
  const traffic = await steadyTraffic(Number(values.steady));
  console.log(
    `steady state over ${values.steady} s: UDP sent per member ${traffic.packets.toFixed(2)} pkt/s, ${Math.round(traffic.bytes)} B/s (payload, avg packet ${(traffic.bytes / traffic.packets).toFixed(1)} B)`,
  );
  const joinAll: number[] = [];
  const joinMedian: number[] = [];
  const deadAll: number[] = [];
  const deadFirst: number[] = [];
  const deadPerObserver: number[] = [];
  const killed = new Set<string>();
  for (let trial = 0; trial < trials; trial++) {
    // Join: from the joiner's "joining" line until every member already up has logged it alive.
    const observers = [...live];
    const joinerId = `j${String(trial).padStart(3, '0')}`;
    // At debug level a joiner logs failed join attempts, which explain a slow join.
    const joiner = await startNode(joinerId, seed.tcpPort, 'debug');
    const joined = await until(() => observers.every((o) => entries(o, 'member alive', joinerId).length > 0));
    const t0 = entries(joiner, 'joining')[0]?.time ?? NaN;
    const joinTimes = observers.map((o) => (entries(o, 'member alive', joinerId)[0]?.time ?? NaN) - t0);
    const joinSummary = summary(joinTimes.filter(Number.isFinite));
    if (joined) {
      joinAll.push(joinSummary.max);
      joinMedian.push(joinSummary.median);
    }
    if (!joined || joinSummary.max > 1000) {
      const late = observers.filter((o) => (entries(o, 'member alive', joinerId)[0]?.time ?? Infinity) - t0 > 1000);
      console.log(`  slow join: late at ${late.map((o) => o.nodeId).join(', ')}; joiner's log:`);
      for (const line of joiner.logLines.filter((l) => l.includes('"component":"swim"')).slice(0, 8)) console.log(`    ${line}`);
    }
    await sleep(1000);
    // Crash: SIGKILL a random member other than the seed.
    const candidates = live.filter((n) => n !== seed && n !== joiner);
    const victim = candidates[Math.floor(Math.random() * candidates.length)]!;
    live.splice(live.indexOf(victim), 1);
    killed.add(victim.nodeId);
    const killedAt = Date.now();
    victim.child.kill('SIGKILL');
    await victim.exited;
    const seen = await until(() => live.every((o) => entries(o, 'member dead', victim.nodeId).length > 0));
    const times = live.map((o) => (entries(o, 'member dead', victim.nodeId)[0]?.time ?? NaN) - killedAt).filter(Number.isFinite);
    const s = summary(times);
    deadPerObserver.push(...times);
    if (seen) {
      deadAll.push(s.max);
      deadFirst.push(s.min);
    }
    console.log(
      `trial ${trial}: joiner ${joinerId} known by all ${observers.length} in ${Math.round(joinSummary.max)} ms (median ${Math.round(joinSummary.median)}${joined ? '' : ', NOT ALL'}) | victim ${victim.nodeId} dead at all ${live.length} in ${Math.round(s.max)} ms (first ${Math.round(s.min)}, median ${Math.round(s.median)}${seen ? '' : ', NOT ALL'})`,
    );
    await sleep(1000);
  }
  const falseDeaths = everyone.flatMap((o) =>
    entries(o, 'member dead').filter((e) => !killed.has(e.member!)).map((e) => `${o.nodeId}->${e.member}`),
  );
  const report = {
    nodes: NODES,
    trials,
    flags: SWIM_FLAGS.join(' '),
    steadyPacketsPerMemberPerS: traffic.packets,
    steadyBytesPerMemberPerS: traffic.bytes,
    joinAll: summary(joinAll),
    joinMedianObserver: summary(joinMedian),
    deadAll: summary(deadAll),
    deadFirst: summary(deadFirst),
    deadPerObserver: summary(deadPerObserver),
    falseDeaths,
  };
  console.log(`SUMMARY dkv N=${NODES} (${report.flags})`);
  console.log(`  join known by ALL members : ${fmt(report.joinAll)}`);
  console.log(`  crash -> dead at ALL      : ${fmt(report.deadAll)}`);
  console.log(`  crash -> dead at FIRST    : ${fmt(report.deadFirst)}`);
  console.log(`  crash -> dead per observer: ${fmt(report.deadPerObserver)}`);
  console.log(`  false dead declarations: ${falseDeaths.length === 0 ? 'none' : falseDeaths.join(', ')}`);
  if (values.json) console.log(JSON.stringify(report));
}

async function saturate(): Promise<void> {
  if (!ensureTool('redis-benchmark', 'redis-tools')) throw new Error('redis-benchmark is not available');
  const seconds = Number(values.seconds);
  await formCluster();
  const target = live[0]!;
  const before = await Promise.all(live.map(stats));
  console.log(`saturating ${target.nodeId} (tcp ${target.tcpPort}) with redis-benchmark -P 16 -c 50 SET/GET for ${seconds} s`);
  const bench = spawn(
    'redis-benchmark',
    ['-h', '127.0.0.1', '-p', String(target.tcpPort), '-t', 'set,get', '-P', '16', '-c', '50', '-d', '100', '-r', '100000', '-n', '2000000000', '-q', '-l'],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  const healthMax = new Map<string, number>();
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    await sleep(1000);
    const all = await Promise.all(live.map((n) => stats(n).catch(() => null)));
    all.forEach((s, i) => {
      if (s !== null) healthMax.set(live[i]!.nodeId, Math.max(healthMax.get(live[i]!.nodeId) ?? 0, Number(s.swimHealth)));
    });
  }
  bench.kill('SIGKILL');
  const after = await Promise.all(live.map(stats));
  const requests = Number(after[0]!['requests.resp.set'] ?? 0) + Number(after[0]!['requests.resp.get'] ?? 0) -
    Number(before[0]!['requests.resp.set'] ?? 0) - Number(before[0]!['requests.resp.get'] ?? 0);
  const deaths = live.flatMap((o) => entries(o, 'member dead').map((e) => `${o.nodeId}->${e.member}`));
  const suspicions = live.flatMap((o) => entries(o, 'member suspect').map((e) => `${o.nodeId}->${e.member}`));
  console.log(`served ${requests} requests on ${target.nodeId} (${Math.round(requests / seconds)}/s)`);
  for (let i = 0; i < live.length; i++) {
    const d = (name: string): number => Number(after[i]![name]) - Number(before[i]![name]);
    console.log(
      `  ${live[i]!.nodeId}: probes ${d('swimProbes')}, failed ${d('swimProbesFailed')}, suspicions raised ${d('swimSuspicionsRaised')}, refuted ${d('swimSuspicionsRefuted')}, late ticks ${d('swimLateTicks')}, health max ${healthMax.get(live[i]!.nodeId) ?? 0}`,
    );
  }
  console.log(`SUMMARY saturate N=${NODES} ${seconds}s (${SWIM_FLAGS.join(' ')}): false DEAD ${deaths.length}${deaths.length ? ` (${deaths.join(', ')})` : ''}; suspect events ${suspicions.length}`);
  if (values.json) console.log(JSON.stringify({ nodes: NODES, seconds, requests, falseDeaths: deaths, suspicions }));
}

async function main(): Promise<void> {
  try {
    if (mode === 'detect') await detect();
    else if (mode === 'saturate') await saturate();
    else throw new Error(`unknown mode ${mode}: detect or saturate`);
  } finally {
    await Promise.all(everyone.map((n) => n.kill()));
    for (const n of everyone) removeDir(n.dataDir);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
