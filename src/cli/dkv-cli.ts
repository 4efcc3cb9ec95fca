// dkv-cli: one-shot commands, an interactive prompt and a load generator for dkv.
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import sade from 'sade';
import { ClusterClient } from '../client/cluster-client.js';
import { DkvClient, parseAddress, type GetResult } from '../client/client.js';
import { DkvError, isDkvError, type ErrorCodeName } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { DKV_VERSION } from '../server/node.js';
import {
  BENCH_CONNECTIONS_MAX,
  BENCH_KEYS_MAX,
  BENCH_PIPELINE_MAX,
  BENCH_WARMUP_S_MAX,
  formatProgress,
  formatReport,
  runLoad,
  type LoadOptions,
  type LoadProgress,
  type LoadReport,
} from './load.js';
import { formatMembers } from './format.js';
import * as cluster from './cluster.js';
import { runRepl } from './repl.js';

// `dkv-cli stats | head` closes our stdout early: that is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

// Exit codes: scripts branch on these.
const ExitCode = {
  OK: 0,
  NOT_FOUND: 1,
  USAGE: 2,
  CANNOT_CONNECT: 3,
  SERVER_ERROR: 4,
  TIMEOUT: 5,
} as const;

interface CommonFlags {
  server: string;
  timeout: number;
  json?: boolean;
}

function usage(message: string): never {
  process.stderr.write(`dkv-cli: ${message}\n`);
  process.exit(ExitCode.USAGE);
}

function exitCodeOf(error: unknown): number {
  if (!isDkvError(error)) return ExitCode.SERVER_ERROR;
  switch (error.code) {
    case 'CANNOT_CONNECT':
    case 'CONNECTION_CLOSED':
      return ExitCode.CANNOT_CONNECT;
    case 'TIMEOUT':
    case 'REPLICA_TIMEOUT':
      return ExitCode.TIMEOUT;
    case 'BAD_REQUEST':
      return isClientSide(error) ? ExitCode.USAGE : ExitCode.SERVER_ERROR;
    default:
      return ExitCode.SERVER_ERROR;
  }
}

function isClientSide(error: DkvError): boolean {
  return error.message.includes('is not host:port');
}

function withClient(flags: CommonFlags, work: (client: DkvClient) => Promise<number>): Promise<void> {
  return withOpened(flags, (timeoutMs) => DkvClient.connect({ ...parseAddress(String(flags.server)), timeoutMs }), work);
}

// get, put and del go straight to a healthy replica of the key: --server is where the ring
// comes from.
function withCluster(flags: CommonFlags, work: (client: ClusterClient) => Promise<number>): Promise<void> {
  return withOpened(
    flags,
    (timeoutMs) => {
      parseAddress(String(flags.server));
      return ClusterClient.connect(String(flags.server), { timeoutMs });
    },
    work,
  );
}

async function withOpened<C extends { close(): Promise<void> }>(
  flags: CommonFlags,
  open: (timeoutMs: number) => Promise<C>,
  work: (client: C) => Promise<number>,
): Promise<void> {
  let client: C | undefined;
  let code: number;
  try {
    const timeoutMs = Number(flags.timeout);
    if (!(timeoutMs > 0)) usage(`--timeout must be a positive number of milliseconds`);
    client = await open(timeoutMs);
    code = await work(client);
  } catch (error) {
    const message = isDkvError(error) ? `${error.code}: ${error.message}` : String(error);
    process.stderr.write(`dkv-cli: ${message}\n`);
    code = exitCodeOf(error);
  }
  await client?.close();
  process.exit(code);
}

async function valueFrom(value: string | undefined, file: string | undefined): Promise<Buffer> {
  if (value !== undefined && file !== undefined) usage('give the value as an argument or with --file, not both');
  if (value !== undefined) return Buffer.from(value);
  if (file !== undefined) {
    try {
      return readFileSync(file);
    } catch (error) {
      usage(`cannot read ${file}: ${(error as Error).message}`);
    }
  }
  if (process.stdin.isTTY) usage('no value: give it as an argument, with --file, or on stdin');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function printable(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : `base64:${bytes.toString('base64')}`;
}

function getResultJson(key: string, result: GetResult | null): Record<string, unknown> {
  return {
    key,
    found: result !== null,
    values: result?.values.map(printable) ?? [],
    siblings: result?.siblings.length ?? 0,
    context: result?.context?.toString('base64') ?? null,
    versions: result?.versions.map(([node, counter, tsMs]) => ({ node, counter, tsMs })) ?? [],
  };
}

function quorumFlag(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > limits.replicasMax) usage(`--${name} must be an integer from 1 to ${limits.replicasMax}`);
  return n;
}

function contextFlag(context: unknown): Buffer | undefined {
  if (context === undefined) return undefined;
  const bytes = Buffer.from(String(context), 'base64');
  if (bytes.length === 0) usage('--context must be the base64 context a get printed');
  return bytes;
}

const cli = sade('dkv-cli')
  .version(DKV_VERSION)
  .describe('The dkv client. Exit codes: 0 ok, 1 not found, 2 usage, 3 cannot connect, 4 server error, 5 timeout.')
  .option('--server, -s', 'Node to talk to (host:port)', '127.0.0.1:7001')
  .option('--timeout', 'Request timeout in milliseconds', 5000)
  .option('--json', 'Print JSON');

cli
  .command('get <key>')
  .describe('Print the value of a key (every sibling, one per line, if there are several)')
  .option('--r', "Replicas to read (R); default: the node's")
  .action((key: string, flags: CommonFlags & { r?: unknown }) =>
    withCluster(flags, async (client) => {
      const result = await client.get(key, { r: quorumFlag(flags.r, 'r') });
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(getResultJson(key, result))}\n`);
        return result === null ? ExitCode.NOT_FOUND : ExitCode.OK;
      }
      if (result === null) {
        process.stderr.write(`dkv-cli: ${key}: not found\n`);
        return ExitCode.NOT_FOUND;
      }
      if (result.values.length > 1) process.stderr.write(`dkv-cli: ${key} has ${result.values.length} siblings\n`);
      for (const value of result.values) {
        process.stdout.write(value);
        if (process.stdout.isTTY || result.values.length > 1) process.stdout.write('\n');
      }
      return ExitCode.OK;
    }),
  );

cli
  .command('put <key> [value]')
  .describe('Store a value: from the argument, --file, or stdin')
  .option('--file, -f', 'Read the value from this file')
  .option('--context', 'The base64 context of an earlier get: supersede exactly what it saw')
  .option('--w', "Replicas that must acknowledge (W); default: the node's")
  .action((key: string, value: string | undefined, flags: CommonFlags & { file?: string; context?: string; w?: unknown }) =>
    withCluster(flags, async (client) => {
      const bytes = await valueFrom(value, flags.file === undefined ? undefined : String(flags.file));
      const result = await client.put(key, bytes, { context: contextFlag(flags.context) ?? null, w: quorumFlag(flags.w, 'w') });
      if (flags.json) process.stdout.write(`${JSON.stringify({ key, context: result.context.toString('base64') })}\n`);
      else if (process.stdout.isTTY) process.stdout.write('OK\n');
      return ExitCode.OK;
    }),
  );

cli
  .command('del <key>')
  .describe('Delete a key (exit code 1 if it did not exist)')
  .option('--context', 'The base64 context of an earlier get')
  .option('--w', "Replicas that must acknowledge (W); default: the node's")
  .action((key: string, flags: CommonFlags & { context?: string; w?: unknown }) =>
    withCluster(flags, async (client) => {
      const result = await client.del(key, { context: contextFlag(flags.context) ?? null, w: quorumFlag(flags.w, 'w') });
      if (flags.json) process.stdout.write(`${JSON.stringify({ key, existed: result.existed })}\n`);
      else if (process.stdout.isTTY) process.stdout.write(result.existed ? 'deleted\n' : 'not found\n');
      return result.existed ? ExitCode.OK : ExitCode.NOT_FOUND;
    }),
  );

cli
  .command('ping')
  .describe('Measure the round trip to the node')
  .option('--count, -c', 'Pings to send', 1)
  .action((flags: CommonFlags & { count: number }) =>
    withClient(flags, async (client) => {
      const count = Number(flags.count);
      if (!Number.isInteger(count) || count < 1) usage('--count must be a positive integer');
      const rtts: number[] = [];
      for (let i = 0; i < count; i++) rtts.push(await client.ping());
      if (flags.json) process.stdout.write(`${JSON.stringify({ server: flags.server, rttMs: rtts })}\n`);
      else for (const rtt of rtts) process.stdout.write(`PONG from ${flags.server} in ${rtt.toFixed(3)} ms\n`);
      return ExitCode.OK;
    }),
  );

cli
  .command('stats')
  .describe("Print the node's counters")
  .action((flags: CommonFlags) =>
    withClient(flags, async (client) => {
      const stats = await client.stats();
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(stats)}\n`);
      } else {
        const width = Math.max(...Object.keys(stats).map((k) => k.length));
        for (const [name, value] of Object.entries(stats)) process.stdout.write(`${name.padEnd(width)}  ${value}\n`);
      }
      return ExitCode.OK;
    }),
  );

cli
  .command('members')
  .describe('List the cluster members this node knows: id, address, state, incarnation, time since the last change')
  .action((flags: CommonFlags) =>
    withClient(flags, async (client) => {
      const members = await client.members();
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(members)}\n`);
        return ExitCode.OK;
      }
      process.stdout.write(`${formatMembers(members)}\n`);
      return ExitCode.OK;
    }),
  );

cli
  .command('leave')
  .describe('Make the node leave the cluster gracefully (others see it as left, not dead); it then stops')
  .action((flags: CommonFlags) =>
    withClient(flags, async (client) => {
      await client.leave();
      process.stdout.write(`${client.host}:${client.port} left the cluster\n`);
      return ExitCode.OK;
    }),
  );

interface BenchFlags extends CommonFlags {
  connections: unknown;
  pipeline: unknown;
  duration: unknown;
  requests?: unknown;
  'value-size': unknown;
  'read-ratio': unknown;
  keys: unknown;
  distribution: unknown;
  preload?: unknown;
  warmup: unknown;
  seed?: unknown;
  cluster?: unknown;
}

function integerFlag(flags: BenchFlags, name: keyof BenchFlags, min: number, max: number): number {
  const value = Number(flags[name]);
  if (!Number.isInteger(value) || value < min || value > max) usage(`--${name} must be an integer from ${min} to ${max}`);
  return value;
}

function benchOptions(flags: BenchFlags): LoadOptions {
  const readRatio = Number(flags['read-ratio']);
  if (!(readRatio >= 0 && readRatio <= 1)) usage('--read-ratio must be a number from 0 to 1');
  const requests = flags.requests === undefined ? null : integerFlag(flags, 'requests', 1, Number.MAX_SAFE_INTEGER);
  const durationS = Number(flags.duration);
  if (requests === null && !(durationS > 0)) usage('--duration must be a positive number of seconds');
  const distribution = String(flags.distribution);
  if (distribution !== 'uniform' && distribution !== 'zipfian') usage('--distribution must be uniform or zipfian');
  if (flags.preload !== undefined && typeof flags.preload !== 'boolean') usage('--preload takes no value; use --no-preload to skip it');
  const warmupS = Number(flags.warmup);
  if (!(warmupS >= 0 && warmupS <= BENCH_WARMUP_S_MAX)) usage(`--warmup must be a number of seconds from 0 to ${BENCH_WARMUP_S_MAX}`);
  return {
    connections: integerFlag(flags, 'connections', 1, BENCH_CONNECTIONS_MAX),
    pipeline: integerFlag(flags, 'pipeline', 1, BENCH_PIPELINE_MAX),
    requests,
    durationMs: requests === null ? durationS * 1000 : null,
    valueBytes: integerFlag(flags, 'value-size', 0, limits.valueBytesMax),
    readRatio,
    keys: integerFlag(flags, 'keys', 1, BENCH_KEYS_MAX),
    distribution,
    preload: flags.preload ?? readRatio > 0,
    warmupMs: warmupS * 1000,
    seed: flags.seed === undefined ? randomInt(2 ** 32) : integerFlag(flags, 'seed', 0, 2 ** 32 - 1),
    cluster: flags.cluster === true,
  };
}

// Progress goes to stderr once a second: redrawn in place on a terminal, one line each otherwise.
function progressPrinter(): { print: (progress: LoadProgress) => void; end: () => void } {
  const tty = process.stderr.isTTY === true;
  let drawn = false;
  return {
    print: (progress) => {
      const line = formatProgress(progress);
      process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
      drawn = true;
    },
    end: () => {
      if (tty && drawn) process.stderr.write('\n');
      drawn = false;
    },
  };
}

// Non-zero when a connection failed (the server went away or stopped answering) or when no
// request succeeded.
function benchExitCode(report: LoadReport): number {
  const cause = Object.keys(report.connectionsFailed)[0] as ErrorCodeName | undefined;
  if (cause !== undefined) return exitCodeOf(new DkvError(cause, 'a load connection failed'));
  return report.run.ops === 0 ? ExitCode.SERVER_ERROR : ExitCode.OK;
}

cli
  .command('bench')
  .describe('Load the node with GETs and PUTs over the native protocol; report throughput, latency and server CPU per op')
  .option('--connections', 'Connections to open (to each node, with --cluster)', 4)
  .option('--cluster', 'Route each key to its first alive replica, across every node of --server\'s ring')
  .option('--pipeline', 'Requests in flight per connection', 64)
  .option('--duration', 'Seconds to measure, unless --requests is given', 10)
  .option('--requests', 'Requests to send in all; wins over --duration')
  .option('--value-size', 'Bytes of each PUT value', 100)
  .option('--read-ratio', 'Share of requests that are GETs, 0..1; the rest are PUTs', 0.5)
  .option('--keys', 'Size of the key space', 100000)
  .option('--distribution', 'Key popularity: uniform or zipfian (YCSB, constant 0.99)', 'uniform')
  .option('--preload', 'Write every key once before measuring; on when --read-ratio > 0, --no-preload skips it')
  .option('--warmup', 'Seconds to run the workload before measuring, unmeasured', 0)
  .option('--seed', 'Seed of the workload (default: random, printed)')
  .example('bench --server 127.0.0.1:7001 --connections 4 --pipeline 64 --duration 10 --read-ratio 1')
  .example('bench --requests 100000 --read-ratio 0.95 --distribution zipfian --seed 7 --json')
  .action((flags: BenchFlags) => {
    const options = benchOptions(flags);
    // The seed goes out first, so that even an interrupted run can be replayed.
    process.stderr.write(`dkv-cli bench: ${flags.server}, seed ${options.seed}\n`);
    return withClient(flags, async (client) => {
      const progress = progressPrinter();
      let report: LoadReport;
      try {
        report = await runLoad(client, options, progress.print);
      } finally {
        progress.end();
      }
      process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : formatReport(report));
      return benchExitCode(report);
    });
  });

cli
  .command('repl')
  .describe('An interactive prompt: get, put, del, ping, stats, help, quit')
  .action((flags: CommonFlags) => withClient(flags, (client) => runRepl(client, String(flags.server))));

// `ring`, `where` and `cluster`: the cluster as a whole.

// Like withClient, with a ring-aware client that has loaded --server's ring.
async function withRouting(flags: CommonFlags, work: (client: cluster.ClusterClient) => Promise<number>): Promise<void> {
  let client: cluster.ClusterClient | undefined;
  let code: number;
  try {
    const timeoutMs = Number(flags.timeout);
    if (!(timeoutMs > 0)) usage(`--timeout must be a positive number of milliseconds`);
    parseAddress(String(flags.server));
    client = await cluster.connectCluster(String(flags.server), timeoutMs);
    code = await work(client);
  } catch (error) {
    const message = isDkvError(error) ? `${error.code}: ${error.message}` : String(error);
    process.stderr.write(`dkv-cli: ${message}\n`);
    code = exitCodeOf(error);
  }
  await client?.close();
  process.exit(code);
}

cli
  .command('ring')
  .describe("Print the ring --server routes by: members, state, TCP address and share of the token space (as first replica and as one of N), checksum, V, N")
  .action((flags: CommonFlags) =>
    withRouting(flags, async (client) => {
      const report = cluster.ringReport(client.ring);
      process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : `${cluster.formatRing(report)}\n`);
      return ExitCode.OK;
    }),
  );

cli
  .command('where <key>')
  .describe("Print a key's token and its N replicas in preference order, with their state and whether each is healthy")
  .action((key: string, flags: CommonFlags) =>
    withRouting(flags, async (client) => {
      const report = cluster.whereReport(String(key), client.where(String(key)), client.ring.checksum);
      process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : `${cluster.formatWhere(report, client.ring.replicas)}\n`);
      return ExitCode.OK;
    }),
  );

interface ClusterFlags extends Partial<Record<(typeof cluster.PASS_THROUGH_FLAGS)[number], unknown>> {
  nodes: unknown;
  'base-port': unknown;
  data: unknown;
  storage: unknown;
  'log-level': unknown;
}

cli
  .command('cluster')
  .describe(
    'Run a local cluster: N dkvd processes n1..nN on 127.0.0.1 (node i from 0: tcp base+10i, udp base-1+10i), ' +
      'their logs interleaved; Ctrl-C stops them all',
  )
  .option('--nodes, -n', `Nodes to start, 1 to ${cluster.CLUSTER_NODES_MAX}`, 3)
  .option('--base-port', 'TCP port of n1; n2 is 10 above it, and each UDP port is one below its TCP port', 7001)
  .option('--data', 'Directory holding one data directory per node (lmdb storage)', './dkv-cluster')
  .option('--storage', 'Storage engine: lmdb or memory', 'lmdb')
  .option('--log-level', 'dkvd log level: fatal, error, warn, info, debug, trace', 'info')
  .option('--replicas', 'Replicas of each key (N); default 3, or --nodes if fewer')
  .option('--read-quorum', 'R (dkvd default 2, or N if smaller)')
  .option('--write-quorum', 'W (dkvd default 2, or N if smaller)')
  .option('--write-wait', 'ms a write waits for W replicas to become reachable')
  .option('--request-timeout', 'ms a request may take across replicas')
  .option('--probe-interval', 'SWIM: ms between probes')
  .option('--probe-timeout', 'SWIM: ms to wait for an ACK before probing indirectly')
  .option('--suspicion-mult', 'SWIM: suspicion timeout multiplier')
  .option('--indirect-checks', 'SWIM: members asked to probe indirectly (K)')
  .option('--gossip-interval', 'SWIM: ms between gossip rounds')
  .option('--push-pull-interval', 'SWIM: ms between full member-list exchanges')
  .example('cluster --nodes 5')
  .example('cluster --storage memory --base-port 9001 --probe-interval 200 --probe-timeout 100')
  .action(async (flags: ClusterFlags) => {
    const nodes = Number(flags.nodes);
    const basePort = Number(flags['base-port']);
    const problem = cluster.checkClusterFlags(nodes, basePort);
    if (problem !== null) usage(problem);
    const storage = String(flags.storage);
    if (storage !== 'lmdb' && storage !== 'memory') usage('--storage must be lmdb or memory');
    const forced = process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '0';
    const color = process.env.NO_COLOR === undefined && (forced || process.stdout.isTTY === true);
    const code = await cluster.runCluster({
      nodes,
      basePort,
      host: '127.0.0.1',
      dataDir: String(flags.data),
      storage,
      logLevel: String(flags['log-level']),
      dkvdArgs: cluster.dkvdArgsOf(nodes, flags),
      color,
    });
    process.exit(code);
  });

cli.parse(process.argv, {
  unknown: (flag: string) => usage(`unknown option ${flag}`),
});

