// `dkv-cli cluster`: a local cluster of dkvd processes for trying dkv out, with their logs
// interleaved on one terminal; and the tables `dkv-cli ring` and `dkv-cli where` print.
//
// This is a shell: it owns child processes, sockets and timers. Node i (counting from 0) listens
// on tcp base+10·i and udp base−1+10·i, so the defaults put n1 where a lone dkvd would be
// (7001/7000) and n2 where dkvd's own example puts a second node (7011/7010).
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ClusterClient, type KeyPlacement, type Routing } from '../client/cluster-client.js';
import { DKVD_NODE_FLAGS } from './node-flags.js';

export type { ClusterClient };

// A laptop runs a few dozen Node processes at most before the logs and the CPU become useless;
// it also keeps base+10·(N−1) well inside the port range for the usual bases.
export const CLUSTER_NODES_MAX = 32;
// Ports between nodes: room for a human to read them (7001, 7011, 7021, …).
export const CLUSTER_PORT_STRIDE = 10;
// How long node 1 may take to listen (a cold lmdb open on a slow disk is the slow part).
const START_TIMEOUT_MS = 15_000;
// How long node 1 may take to see every node alive before we say so and carry on; joins retry
// with backoff, so a slow machine needs a few seconds.
const UP_TIMEOUT_MS = 30_000;
const UP_POLL_MS = 100;
// SIGTERM lets a node flush its WAL and close lmdb; past this it gets SIGKILL.
const STOP_TIMEOUT_MS = 10_000;
// After SIGKILL the kernel reaps at once; this only bounds a wait that should never be long.
const KILL_TIMEOUT_MS = 2_000;
// Fields printed after a log message, and characters per field value: enough to be useful, few
// enough that a line stays a line.
const LOG_FIELDS_MAX = 6;
const LOG_VALUE_CHARS_MAX = 80;

// V8 collects garbage with a pool of helper threads, four by default, as if its process had the
// machine to itself. The nodes of a local cluster share one machine: with three nodes and a load
// generator on two cores, the helpers of four processes contended for the cores, and a node's
// collection waited for helpers that were not running. YCSB-B at half load on that machine, 7
// alternating runs each: p99 5.8 ms with the default pool and 5.0 ms with a pool of 1, p99.9 11.9
// and 9.0 ms, throughput the same. So each node gets a pool of its share of the cores.
export function v8PoolSize(cores: number, nodes: number): number {
  return Math.max(1, Math.floor(cores / nodes));
}

export interface ClusterOptions {
  nodes: number;
  basePort: number;
  host: string;
  dataDir: string;
  storage: 'lmdb' | 'memory';
  logLevel: string;
  // Flags passed to every dkvd unchanged (SWIM timings, --replicas, quorums).
  dkvdArgs: string[];
  color: boolean;
}

export interface NodePorts {
  label: string;
  tcp: number;
  udp: number;
}

export function clusterPorts(basePort: number, nodes: number): NodePorts[] {
  return Array.from({ length: nodes }, (_, i) => ({
    label: `n${i + 1}`,
    tcp: basePort + CLUSTER_PORT_STRIDE * i,
    udp: basePort - 1 + CLUSTER_PORT_STRIDE * i,
  }));
}

// Why these flags cannot make a cluster, or null.
export function checkClusterFlags(nodes: number, basePort: number): string | null {
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > CLUSTER_NODES_MAX) return `--nodes must be an integer from 1 to ${CLUSTER_NODES_MAX}`;
  const last = basePort + CLUSTER_PORT_STRIDE * (nodes - 1);
  if (!Number.isInteger(basePort) || basePort < 2 || last > 65535) {
    return `--base-port must be an integer from 2 to ${65535 - CLUSTER_PORT_STRIDE * (nodes - 1)} for ${nodes} nodes`;
  }
  return null;
}

// The first port of the cluster that something else holds, described for a one-line error, or
// null when all are free. dkvd would fail on it too, but only after the nodes before it started.
export async function portInUse(host: string, ports: NodePorts[]): Promise<string | null> {
  for (const node of ports) {
    if (!(await tcpFree(host, node.tcp))) return `tcp port ${node.tcp} (${node.label}) on ${host} is in use`;
    if (!(await udpFree(host, node.udp))) return `udp port ${node.udp} (${node.label}) on ${host} is in use`;
  }
  return null;
}

export function tcpFree(host: string, port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => done(true)));
  });
}

export function udpFree(host: string, port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      done(false);
    });
    socket.bind({ address: host, port, exclusive: true }, () => socket.close(() => done(true)));
  });
}

// dkvd flags `dkv-cli cluster` passes through to every node when given.
export const PASS_THROUGH_FLAGS = [
  'replicas',
  'read-quorum',
  'write-quorum',
  'write-wait',
  'request-timeout',
  'probe-interval',
  'probe-timeout',
  'suspicion-mult',
  'indirect-checks',
  'gossip-interval',
  'push-pull-interval',
] as const;

// dkvd's own defaults for N, R and W (src/cli/dkvd.ts).
const DKVD_REPLICAS = 3;
const DKVD_QUORUM = 2;

// The dkvd flags for every node: the pass-through flags that were given, and on a cluster
// smaller than dkvd's default N, an N (and R, W) it can meet, so that one or two nodes still
// take writes.
export function dkvdArgsOf(nodes: number, flags: Partial<Record<(typeof PASS_THROUGH_FLAGS)[number], unknown>>): string[] {
  const args: string[] = [];
  for (const name of PASS_THROUGH_FLAGS) {
    if (flags[name] !== undefined) args.push(`--${name}`, String(flags[name]));
  }
  if (flags.replicas === undefined && nodes < DKVD_REPLICAS) {
    args.push('--replicas', String(nodes));
    if (flags['read-quorum'] === undefined && DKVD_QUORUM > nodes) args.push('--read-quorum', String(nodes));
    if (flags['write-quorum'] === undefined && DKVD_QUORUM > nodes) args.push('--write-quorum', String(nodes));
  }
  return args;
}

// bin/dkvd of this repository: the nearest directory above this file that has one (this file
// runs compiled, from dist/src/cli).
export function dkvdPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'bin', 'dkvd');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`no bin/dkvd above ${dirname(fileURLToPath(import.meta.url))}`);
}

// ---------------------------------------------------------------------------------------------
// Log lines

const ANSI = {
  reset: '\x1b[0m',
  dim: '\x1b[2m',
  bold: '\x1b[1m',
  red: '\x1b[31m',
  green: '\x1b[32m',
  yellow: '\x1b[33m',
  magenta: '\x1b[35m',
  cyan: '\x1b[36m',
} as const;

// Node labels cycle through these, so neighbours in the log differ.
const LABEL_COLORS = ['\x1b[36m', '\x1b[35m', '\x1b[33m', '\x1b[32m', '\x1b[34m', '\x1b[96m', '\x1b[95m', '\x1b[93m'] as const;

const LEVELS: Record<number, { name: string; color: string }> = {
  10: { name: 'TRACE', color: ANSI.dim },
  20: { name: 'DEBUG', color: ANSI.dim },
  30: { name: 'INFO', color: ANSI.green },
  40: { name: 'WARN', color: ANSI.yellow },
  50: { name: 'ERROR', color: ANSI.red },
  60: { name: 'FATAL', color: ANSI.red + ANSI.bold },
};

// Fields every line has, or that the line already shows elsewhere.
const HIDDEN_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'component', 'v']);

export function paint(color: boolean, code: string, text: string): string {
  return color ? `${code}${text}${ANSI.reset}` : text;
}

export function labelColor(index: number): string {
  return LABEL_COLORS[index % LABEL_COLORS.length]!;
}

// One line of a dkvd's stderr, readable: `12:00:01.234 n2 INFO  swim: joined seed=… members=3`.
// A line that is not pino JSON (dkvd's own one-line errors) is printed as it is, labelled.
export function formatLogLine(label: string, labelIndex: number, line: string, color: boolean): string {
  const tag = paint(color, labelColor(labelIndex), label.padEnd(3));
  let entry: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a log entry');
    entry = parsed as Record<string, unknown>;
  } catch {
    return `${' '.repeat(12)} ${tag} ${line}`;
  }
  const time = typeof entry.time === 'number' ? clockTime(entry.time) : ' '.repeat(12);
  const level = LEVELS[Number(entry.level)] ?? { name: String(entry.level ?? '?'), color: '' };
  const component = typeof entry.component === 'string' ? `${entry.component}: ` : '';
  const msg = typeof entry.msg === 'string' ? entry.msg : '';
  const fields: string[] = [];
  let more = 0;
  for (const [name, value] of Object.entries(entry)) {
    if (HIDDEN_FIELDS.has(name) || (name === 'node' && value === label) || value === undefined) continue;
    // dkvd's start line says its addresses in the message already.
    if (typeof value === 'string' && value.length >= 4 && msg.includes(value)) continue;
    if (fields.length === LOG_FIELDS_MAX) {
      more++;
      continue;
    }
    fields.push(`${name}=${fieldText(value)}`);
  }
  if (more > 0) fields.push(`+${more}`);
  const fieldsText = fields.length === 0 ? '' : `  ${paint(color, ANSI.dim, fields.join(' '))}`;
  return `${paint(color, ANSI.dim, time)} ${tag} ${paint(color, level.color, level.name.padEnd(5))} ${component}${msg}${fieldsText}`;
}

function clockTime(ms: number): string {
  const date = new Date(ms);
  const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

function fieldText(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = /[\s"=]/.test(value) || value === '' ? JSON.stringify(value) : value;
  else if (isErrorLike(value)) text = JSON.stringify(value.code === undefined ? value.message : `${value.code}: ${value.message}`);
  else text = JSON.stringify(value) ?? String(value);
  return text.length > LOG_VALUE_CHARS_MAX ? `${text.slice(0, LOG_VALUE_CHARS_MAX - 1)}…` : text;
}

function isErrorLike(value: unknown): value is { message: string; code?: unknown } {
  return typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string';
}

// ---------------------------------------------------------------------------------------------
// ring and where

export interface RingMemberShare {
  id: string;
  tcpAddress: string;
  state: string;
  // Percent of the token space: as first replica, and as any of the N replicas.
  primaryShare: number;
  replicaShare: number;
}

export interface RingReport {
  checksum: number;
  vnodes: number;
  replicas: number;
  members: RingMemberShare[];
}

export function ringReport(routing: Routing): RingReport {
  const ring = routing.ring;
  const primary = ring.primaryShares();
  const replica = ring.replicaShares(routing.replicas);
  const byId = new Map(routing.members.map((m) => [m.id, m]));
  const members = ring.members.map((id, i) => ({
    id,
    tcpAddress: byId.get(id)?.tcpAddress ?? '',
    state: byId.get(id)?.state ?? 'unknown',
    primaryShare: percent(primary[i]!),
    replicaShare: percent(replica[i]!),
  }));
  members.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
  return { checksum: routing.checksum, vnodes: ring.vnodes, replicas: routing.replicas, members };
}

// Four decimals: the shares of a ring of many vnodes differ in the second.
function percent(share: number): number {
  return Math.round(share * 100 * 10_000) / 10_000;
}

export function formatRing(report: RingReport): string {
  const alive = report.members.filter((m) => m.state === 'alive').length;
  const head =
    `ring ${hex32(report.checksum)}  V=${report.vnodes}  N=${report.replicas}  ` +
    `members=${report.members.length} (${alive} alive)`;
  const rows = [
    ['ID', 'TCP', 'STATE', 'PRIMARY', `REPLICA(N=${report.replicas})`],
    ...report.members.map((m) => [m.id, m.tcpAddress, m.state, `${m.primaryShare.toFixed(2)}%`, `${m.replicaShare.toFixed(2)}%`]),
  ];
  return `${head}\n${table(rows, [3, 4])}`;
}

export interface WhereReport {
  key: string;
  token: number;
  checksum: number;
  replicas: Array<{ id: string; tcpAddress: string; state: string; healthy: boolean }>;
}

export function whereReport(key: string, placement: KeyPlacement, checksum: number): WhereReport {
  return {
    key,
    token: placement.token,
    checksum,
    replicas: placement.replicas.map((m) => ({ id: m.id, tcpAddress: m.tcpAddress, state: m.state, healthy: m.state === 'alive' })),
  };
}

export function formatWhere(report: WhereReport, wanted: number): string {
  const short = report.replicas.length < wanted ? `  (only ${report.replicas.length} of N=${wanted}: the ring is smaller than N)` : '';
  const head = `key ${JSON.stringify(report.key)}  token ${report.token} (0x${report.token.toString(16).padStart(12, '0')})  ring ${hex32(report.checksum)}${short}`;
  const rows = [
    ['#', 'ID', 'TCP', 'STATE', 'HEALTHY'],
    ...report.replicas.map((m, i) => [String(i + 1), m.id, m.tcpAddress, m.state, m.healthy ? 'yes' : 'no']),
  ];
  return `${head}\n${table(rows, [0])}`;
}

function hex32(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

// Columns padded to their widest cell; the columns in `right` are right-aligned.
function table(rows: string[][], right: number[]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) => row.map((cell, i) => (right.includes(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// The cluster

interface Child {
  label: string;
  process: ChildProcess;
  // Resolves when the process has exited and its output has been read to the end.
  closed: Promise<void>;
  exited: boolean;
  // Resolves when dkvd logs that it listens.
  listening: Promise<void>;
}

// Starts the nodes, prints their logs until SIGINT or SIGTERM, stops them; resolves with the
// exit code: 0 after a stop we were asked for, 1 when the cluster could not start or every node
// died by itself, 2 when a port is taken.
export async function runCluster(options: ClusterOptions): Promise<number> {
  const out = (line: string): void => {
    // stdout to a terminal, a file or a pipe is synchronous on Linux: a slow reader slows us,
    // and through the unread pipes the nodes' logging, rather than growing a buffer here.
    process.stdout.write(`${line}\n`);
  };
  const note = (line: string, code: string = ANSI.bold): void => out(paint(options.color, code, `dkv cluster: ${line}`));
  const ports = clusterPorts(options.basePort, options.nodes);
  const taken = await portInUse(options.host, ports);
  if (taken !== null) {
    process.stderr.write(`dkv-cli cluster: ${taken}; stop what holds it or pick another --base-port\n`);
    return 2;
  }
  const dkvd = dkvdPath();
  const dataDir = resolve(options.dataDir);
  const addresses = ports.map((p) => `${options.host}:${p.tcp}`);
  const children: Child[] = [];
  let stopping = false;
  let up = false;
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((done) => (finish = done));

  const alive = (): Child[] => children.filter((c) => !c.exited);
  const stop = async (why: string, code: number): Promise<void> => {
    if (stopping) {
      // Asked twice: do not wait for clean shutdowns any more.
      for (const child of alive()) child.process.kill('SIGKILL');
      return;
    }
    stopping = true;
    const running = alive();
    note(running.length === 0 ? why : `${why}: stopping ${running.length} node${running.length === 1 ? '' : 's'}`);
    for (const child of running) child.process.kill('SIGTERM');
    if (!(await settlesWithin(Promise.all(running.map((c) => c.closed)), STOP_TIMEOUT_MS))) {
      const stuck = alive();
      note(`${stuck.map((c) => c.label).join(', ')} did not stop within ${STOP_TIMEOUT_MS / 1000} s: SIGKILL`, ANSI.yellow);
      for (const child of stuck) child.process.kill('SIGKILL');
      await settlesWithin(Promise.all(stuck.map((c) => c.closed)), KILL_TIMEOUT_MS);
    }
    const left = alive();
    if (left.length > 0) note(`${left.map((c) => `${c.label} (pid ${c.process.pid})`).join(', ')} still running`, ANSI.red);
    else note('every node has stopped');
    finish(code);
  };
  const onSignal = (signal: NodeJS.Signals): void => void stop(`${signal}`, 0);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, onSignal);
  // If this process dies some other way, its nodes must not outlive it (they run detached).
  const onExit = (): void => {
    for (const child of alive()) child.process.kill('SIGKILL');
  };
  process.on('exit', onExit);

  const startNode = (i: number): Child => {
    const node = ports[i]!;
    const nodeDir = join(dataDir, node.label);
    if (options.storage === 'lmdb') mkdirSync(nodeDir, { recursive: true });
    // Node 1 is up before the others start, and they try it first, so they all join one
    // cluster; the rest of the list lets a node join through any member.
    const joinArgs = i === 0 ? [] : ['--join', addresses.join(',')];
    const args = [
      ...DKVD_NODE_FLAGS,
      `--v8-pool-size=${v8PoolSize(availableParallelism(), options.nodes)}`,
      dkvd,
      '--host', options.host,
      '--tcp', String(node.tcp),
      '--udp', String(node.udp),
      '--data', nodeDir,
      '--storage', options.storage,
      '--node-id', node.label,
      '--log-level', options.logLevel,
      ...joinArgs,
      ...options.dkvdArgs,
    ];
    // Detached: a Ctrl-C at the terminal reaches only us, so each node gets exactly one SIGTERM
    // (a dkvd asked twice exits at once, without closing its store).
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let gone = (): void => undefined;
    const closed = new Promise<void>((done) => (gone = done));
    let listened = (): void => undefined;
    const listening = new Promise<void>((done) => (listened = done));
    const entry: Child = { label: node.label, process: child, closed, exited: false, listening };
    children.push(entry);
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        // dkvd's start line: {"tcp": …, "msg": "dkvd … listening on …"}, as test/helpers finds it.
        if (line.includes('listening on tcp') && line.includes('"tcp"')) listened();
        out(formatLogLine(node.label, i, line, options.color));
      });
    }
    const onGone = (how: string): void => {
      if (entry.exited) return;
      entry.exited = true;
      gone();
      if (stopping) return;
      note(`${node.label} (pid ${child.pid ?? 'none'}) ${how} unexpectedly`, ANSI.red);
      if (!up) void stop('a node failed to start', 1);
      else if (alive().length === 0) void stop('every node has exited', 1);
    };
    // A process that could not be spawned has no pid and may never emit 'close'.
    child.once('error', (error) => {
      if (child.pid === undefined) onGone(`could not start: ${error.message}`);
    });
    child.once('close', (code, signal) => onGone(signal !== null ? `was killed by ${signal}` : `exited with code ${code}`));
    const where = options.storage === 'lmdb' ? nodeDir : 'memory';
    note(`${node.label}: pid ${child.pid}, tcp ${options.host}:${node.tcp}, udp ${options.host}:${node.udp}, data ${where}`);
    return entry;
  };

  note(`starting ${options.nodes} node${options.nodes === 1 ? '' : 's'} with ${dkvd}`);
  const first = startNode(0);
  if (await waitForListening(first)) {
    for (let i = 1; i < options.nodes && !stopping; i++) startNode(i);
    if (!stopping) void waitUntilUp();
  } else if (!first.exited) {
    void stop(`n1 did not listen within ${START_TIMEOUT_MS / 1000} s`, 1);
  }
  // (n1 exiting has already stopped the cluster.)
  const code = await finished;
  for (const signal of signals) process.off(signal, onSignal);
  process.off('exit', onExit);
  return code;

  // True once dkvd says it listens; false if it exits first or takes too long.
  function waitForListening(child: Child): Promise<boolean> {
    return firstOf([child.listening.then(() => true), child.closed.then(() => false)], START_TIMEOUT_MS, false);
  }

  async function waitUntilUp(): Promise<void> {
    const deadline = performance.now() + UP_TIMEOUT_MS;
    let seen = 'no answer';
    while (!stopping && performance.now() < deadline) {
      const routing = await routingOf(addresses[0]!).catch(() => null);
      if (routing !== null) {
        const aliveIds = routing.members.filter((m) => m.state === 'alive').map((m) => m.id);
        seen = `${aliveIds.length} of ${options.nodes} alive (${aliveIds.join(', ')})`;
        if (aliveIds.length === options.nodes) {
          up = true;
          printUp(routing);
          return;
        }
      }
      await sleep(UP_POLL_MS);
    }
    if (stopping) return;
    // Not fatal: the nodes may still join; the user sees why in their logs.
    up = true;
    note(`not up within ${UP_TIMEOUT_MS / 1000} s: n1 sees ${seen}; still running`, ANSI.yellow);
  }

  function printUp(routing: Routing): void {
    const first = addresses[0]!;
    const other = addresses[addresses.length - 1]!;
    // As the user can type it from here: ./bin/dkv-cli in the repository.
    const path = relative(process.cwd(), join(dirname(dkvd), 'dkv-cli'));
    const cli = path.startsWith('.') || isAbsolute(path) ? path : `./${path}`;
    note(
      `cluster up: ${options.nodes} node${options.nodes === 1 ? '' : 's'} alive, ` +
        `N=${routing.replicas}, V=${routing.ring.vnodes}, ring ${hex32(routing.checksum)}; Ctrl-C stops every node`,
      ANSI.bold + ANSI.green,
    );
    for (const example of [
      `${cli} --server ${first} put hello world`,
      `${cli} --server ${other} get hello`,
      `${cli} --server ${first} ring`,
      `${cli} --server ${first} where hello`,
      `${cli} --server ${first} members`,
    ]) {
      out(paint(options.color, ANSI.dim, `  try: ${example}`));
    }
  }
}

// A ring-aware client for `ring` and `where`, connected through one node.
export function connectCluster(server: string, timeoutMs: number): Promise<ClusterClient> {
  return ClusterClient.connect(server, { timeoutMs, connectTimeoutMs: Math.min(timeoutMs, 3000) });
}

async function routingOf(address: string): Promise<Routing> {
  const client = await ClusterClient.connect(address, { timeoutMs: 1000, connectTimeoutMs: 1000 });
  try {
    return client.ring;
  } finally {
    await client.close();
  }
}

// Whether the promise settles within ms.
function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return firstOf([promise.then(() => true, () => true)], ms, false);
}

// The value of the first promise to resolve, or `otherwise` after ms.
async function firstOf<T>(promises: Array<Promise<T>>, ms: number, otherwise: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((done) => (timer = setTimeout(() => done(otherwise), ms)));
  try {
    return await Promise.race([...promises, late]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
