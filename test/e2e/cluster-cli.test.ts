// `dkv-cli cluster` starts a local cluster of real dkvd processes; `dkv-cli ring` and
// `dkv-cli where` describe it; a write through one node reads back through another; SIGINT
// stops every node and the command exits 0. Every wait is bounded; teardown kills by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import t from 'tap';
import { clusterPorts, portInUse, v8PoolSize } from '../../src/cli/cluster.js';
import { childEnv, DKV_CLI } from '../helpers/dkvd.js';
import { run } from '../helpers/run.js';

const NODES = 3;
const HOST = '127.0.0.1';
// Bases below Linux's ephemeral range (32768 and up), so that other tests' port-0 sockets do not
// take ours between the check and the start.
const BASE_PORT_MIN = 10_000;
const BASE_PORT_SPAN = 20_000;
const BASE_TRIES_MAX = 50;
const UP_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 15_000;
// memberlist's LAN timings divided by five, as in membership.test.ts: quick convergence.
const SWIM_FLAGS = ['--probe-interval', '200', '--probe-timeout', '100', '--gossip-interval', '40'];

async function freeBase(nodes: number): Promise<number> {
  for (let i = 0; i < BASE_TRIES_MAX; i++) {
    const base = BASE_PORT_MIN + Math.floor(Math.random() * BASE_PORT_SPAN);
    if ((await portInUse(HOST, clusterPorts(base, nodes))) === null) return base;
  }
  throw new Error(`no base port with ${2 * nodes} free ports in ${BASE_TRIES_MAX} tries`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

// Resolves with stdout so far once it contains `expected`; rejects if the process exits first
// or the time runs out.
function waitForText(child: ChildProcess, output: () => string, expected: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!output().includes(expected)) return;
      cleanup();
      resolve(output());
    };
    const onExit = (): void => {
      cleanup();
      reject(new Error(`exited before ${JSON.stringify(expected)}; output:\n${output()}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ${JSON.stringify(expected)} within ${timeoutMs} ms; output:\n${output()}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout!.off('data', check);
      child.off('exit', onExit);
    };
    child.stdout!.on('data', check);
    child.once('exit', onExit);
    check();
  });
}

function exitOf(child: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    const timer = setTimeout(() => reject(new Error(`did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

t.test('v8PoolSize: each node of a local cluster gets its share of the cores, at least one', async (t) => {
  t.equal(v8PoolSize(2, 3), 1);
  t.equal(v8PoolSize(8, 3), 2);
  t.equal(v8PoolSize(16, 4), 4);
  t.equal(v8PoolSize(1, 1), 1);
});

t.test('dkv-cli cluster: three nodes up, ring, where, a write read elsewhere, SIGINT stops all', async (t) => {
  const base = await freeBase(NODES);
  const cluster = spawn(
    process.execPath,
    [DKV_CLI, 'cluster', '--nodes', String(NODES), '--storage', 'memory', '--base-port', String(base), ...SWIM_FLAGS],
    { env: { ...childEnv(), NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  cluster.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  cluster.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const pids = (): number[] => [...stdout.matchAll(/^dkv cluster: n\d+: pid (\d+),/gm)].map((m) => Number(m[1]));
  t.teardown(() => {
    if (cluster.exitCode === null && cluster.signalCode === null) cluster.kill('SIGKILL');
    for (const pid of pids()) killQuietly(pid);
  });

  await waitForText(cluster, () => stdout, 'cluster up:', UP_TIMEOUT_MS);
  t.equal(pids().length, NODES, `the command printed ${NODES} node pids`);
  const pool = `--v8-pool-size=${v8PoolSize(availableParallelism(), NODES)}`;
  for (const pid of pids()) {
    t.ok(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(pool), `node ${pid} runs with ${pool}: its share of the cores`);
  }
  t.match(stdout, /n1 +INFO +dkvd .* listening on tcp/, "node logs are printed, labelled, from dkvd's JSON lines");
  t.notMatch(stdout, /"level":/, 'no raw JSON log lines');

  const servers = clusterPorts(base, NODES).map((p) => `${HOST}:${p.tcp}`);
  const cli = (server: string, args: string[]) => run(process.execPath, [DKV_CLI, '--server', server, ...args], { timeoutMs: 10_000 });

  const ringJson = await cli(servers[0]!, ['ring', '--json']);
  t.equal(ringJson.code, 0, ringJson.stderr);
  const ring = JSON.parse(ringJson.stdout) as {
    checksum: number;
    vnodes: number;
    replicas: number;
    members: Array<{ id: string; tcpAddress: string; state: string; primaryShare: number; replicaShare: number }>;
  };
  t.type(ring.checksum, 'number');
  t.ok(ring.vnodes >= 1, 'V is reported');
  t.equal(ring.replicas, NODES, 'N = 3');
  t.same(ring.members.map((m) => [m.id, m.tcpAddress, m.state]), [
    ['n1', servers[0], 'alive'],
    ['n2', servers[1], 'alive'],
    ['n3', servers[2], 'alive'],
  ]);
  const primary = ring.members.reduce((sum, m) => sum + m.primaryShare, 0);
  const replica = ring.members.reduce((sum, m) => sum + m.replicaShare, 0);
  t.ok(Math.abs(primary - 100) < 0.01, `primary shares sum to 100% (${primary})`);
  t.ok(Math.abs(replica - 100 * NODES) < 0.01, `replica shares sum to N × 100% (${replica})`);

  const ringText = await cli(servers[1]!, ['ring']);
  t.equal(ringText.code, 0, ringText.stderr);
  t.match(ringText.stdout, new RegExp(`^ring 0x${ring.checksum.toString(16).padStart(8, '0')}  V=${ring.vnodes}  N=3  members=3 \\(3 alive\\)$`, 'm'));
  t.match(ringText.stdout, /^n2 +127\.0\.0\.1:\d+ +alive +\d+\.\d\d% +100\.00%$/m, 'a row per member with its shares');

  const whereJson = await cli(servers[2]!, ['where', 'greeting', '--json']);
  t.equal(whereJson.code, 0, whereJson.stderr);
  const where = JSON.parse(whereJson.stdout) as { key: string; token: number; replicas: Array<{ id: string; state: string; healthy: boolean }> };
  t.equal(where.key, 'greeting');
  t.ok(Number.isInteger(where.token) && where.token >= 0, 'a token');
  t.equal(where.replicas.length, NODES, 'N replicas');
  t.same(where.replicas.map((r) => r.id).sort(), ['n1', 'n2', 'n3'], 'three distinct replicas');
  t.ok(where.replicas.every((r) => r.state === 'alive' && r.healthy), 'all healthy');
  const whereText = await cli(servers[0]!, ['where', 'greeting']);
  t.equal(whereText.code, 0, whereText.stderr);
  t.match(whereText.stdout, new RegExp(`^key "greeting"  token ${where.token} `, 'm'));
  t.match(whereText.stdout, new RegExp(`^1  ${where.replicas[0]!.id} .* alive +yes$`, 'm'), 'the preference list, in order');

  const put = await cli(servers[0]!, ['put', 'greeting', 'hello from n1']);
  t.equal(put.code, 0, put.stderr);
  const got = await cli(servers[2]!, ['get', 'greeting']);
  t.equal(got.code, 0, got.stderr);
  t.equal(got.stdout.trim(), 'hello from n1', 'a write through n1 reads back through n3');

  const children = pids();
  cluster.kill('SIGINT');
  const exit = await exitOf(cluster, EXIT_TIMEOUT_MS);
  t.same(exit, { code: 0, signal: null }, `the cluster command exits 0 after SIGINT${stderr === '' ? '' : `; stderr: ${stderr}`}`);
  t.match(stdout, 'every node has stopped');
  t.same(children.filter(isRunning), [], 'no dkvd child is left running');
  t.equal((stdout.match(/INFO +stopped$/gm) ?? []).length, NODES, 'every node stopped cleanly (after SIGTERM)');
});

t.test('dkv-cli cluster: a port in use is a one-line error', async (t) => {
  const base = await freeBase(NODES);
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(base + 10, HOST, resolve));
  t.teardown(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  const result = await run(process.execPath, [DKV_CLI, 'cluster', '--storage', 'memory', '--base-port', String(base)], { timeoutMs: 10_000 });
  t.equal(result.code, 2, 'exit code 2');
  t.equal(result.stderr, `dkv-cli cluster: tcp port ${base + 10} (n2) on ${HOST} is in use; stop what holds it or pick another --base-port\n`);
  t.equal(result.stdout, '', 'nothing started');
});
