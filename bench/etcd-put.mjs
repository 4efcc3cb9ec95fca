// Put load against an etcd cluster with the etcd3 npm client, for bench/vs-etcd.sh.
//
// CLIENTS closed-loop workers, each with one put in flight at a time, spread round-robin over
// CONNS gRPC connections, which are spread round-robin over the endpoints. Every put writes a
// VALUE_SIZE-byte value under a key drawn uniformly from KEYS keys ("bench:" and the index in
// fixed-width decimal, as `dkv-cli bench` names its keys). A warm-up at full concurrency (not
// counted) comes first; then the workers run for DURATION seconds and stop issuing, the puts
// still in flight are awaited and counted, and ops/s is puts / time until the last one returned.
// Latency is per put, from the call to its resolution.
//
// etcd3 is not a dependency of dkv: vs-etcd.sh installs it into its temporary work directory and
// passes that directory as --etcd3-prefix (or ETCD3_PREFIX); without either, a plain import.
//
//   node bench/etcd-put.mjs --endpoints 127.0.0.1:2379,127.0.0.1:22379 --clients 50 --json
//
// Output: a summary line, or with --json one JSON object:
//   { endpoints, options, ops, errors, elapsedMs, opsPerSec,
//     latencyUs: { p50, p90, p99, p999, max, mean }, clientCpuMicrosPerOp }
// Failed puts are counted in errors (and errorKinds); the exit code is 1 only if none succeeded.

import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values: argv } = parseArgs({
  options: {
    endpoints: { type: 'string', default: '127.0.0.1:2379' },
    clients: { type: 'string', default: '50' },
    conns: { type: 'string', default: '6' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '1' },
    'value-size': { type: 'string', default: '100' },
    keys: { type: 'string', default: '100000' },
    timeout: { type: 'string', default: '10000' },
    'etcd3-prefix': { type: 'string', default: process.env.ETCD3_PREFIX ?? '' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (argv.help) {
  process.stdout.write(
    'node bench/etcd-put.mjs [--endpoints h:p,...] [--clients 50] [--conns 6] [--duration 10] [--warmup 1]\n' +
      '  [--value-size 100] [--keys 100000] [--timeout 10000 (ms per put)] [--etcd3-prefix DIR] [--json]\n',
  );
  process.exit(0);
}

function positive(name, min = 1) {
  const v = Number(argv[name]);
  if (!Number.isFinite(v) || v < min) {
    process.stderr.write(`etcd-put: --${name} must be a number >= ${min}, got ${argv[name]}\n`);
    process.exit(2);
  }
  return v;
}

const endpoints = argv.endpoints.split(',').map((s) => s.trim()).filter(Boolean);
const clients = Math.floor(positive('clients'));
const conns = Math.min(clients, Math.floor(positive('conns')));
const durationMs = positive('duration', 0.1) * 1000;
const warmupMs = positive('warmup', 0) * 1000;
const valueSize = Math.floor(positive('value-size', 0));
const keys = Math.floor(positive('keys'));
const timeoutMs = positive('timeout');

let etcd3;
if (argv['etcd3-prefix']) {
  // createRequire resolves from the directory of the file it is given: <prefix>/node_modules/etcd3.
  etcd3 = createRequire(join(resolve(argv['etcd3-prefix']), 'noop.js'))('etcd3');
} else {
  etcd3 = await import('etcd3');
}
const { Etcd3 } = etcd3;

// One Etcd3 per connection, each with one endpoint. grpc-js shares a TCP connection between
// channels to the same address unless each channel has its own subchannel pool.
const connections = [];
for (let i = 0; i < conns; i++) {
  connections.push(
    new Etcd3({
      hosts: `http://${endpoints[i % endpoints.length]}`,
      grpcOptions: { 'grpc.use_local_subchannel_pool': 1 },
      defaultCallOptions: () => ({ deadline: Date.now() + timeoutMs }),
    }),
  );
}

const digits = String(Math.max(0, keys - 1)).length;
const value = randomBytes(valueSize);
const keyOf = (i) => 'bench:' + String(i).padStart(digits, '0');
const randomKey = () => keyOf(Math.floor(Math.random() * keys));

// Latencies in µs, grown as needed.
let latencies = new Float64Array(1 << 16);
let count = 0;
let errors = 0;
const errorKinds = new Map();
let recording = false;
let stopAt = 0;

function record(us) {
  if (count === latencies.length) {
    const next = new Float64Array(latencies.length * 2);
    next.set(latencies);
    latencies = next;
  }
  latencies[count++] = us;
}

async function worker(client) {
  while (performance.now() < stopAt) {
    const counted = recording;
    const t0 = process.hrtime.bigint();
    try {
      await client.put(randomKey()).value(value);
      if (counted) record(Number(process.hrtime.bigint() - t0) / 1000);
    } catch (error) {
      if (counted) {
        errors++;
        const kind = (error && (error.name || error.code)) || 'Error';
        errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + 1);
      }
    }
  }
}

function runPhase(ms, record) {
  recording = record;
  stopAt = performance.now() + ms;
  const workers = [];
  for (let i = 0; i < clients; i++) workers.push(worker(connections[i % conns]));
  return Promise.all(workers);
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

try {
  // Every connection up before the clock starts.
  await Promise.all(connections.map((c) => c.put(keyOf(0)).value(value)));
  if (warmupMs > 0) await runPhase(warmupMs, false);

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await runPhase(durationMs, true);
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);

  const sorted = latencies.subarray(0, count).sort();
  let sum = 0;
  for (let i = 0; i < count; i++) sum += sorted[i];
  const result = {
    endpoints,
    options: { clients, conns, durationMs, warmupMs, valueBytes: valueSize, keys, timeoutMs },
    ops: count,
    errors,
    errorKinds: Object.fromEntries(errorKinds),
    elapsedMs,
    opsPerSec: (count / elapsedMs) * 1000,
    latencyUs: {
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      p999: percentile(sorted, 99.9),
      max: count ? sorted[count - 1] : NaN,
      mean: count ? sum / count : NaN,
    },
    clientCpuMicrosPerOp: count ? (cpu.user + cpu.system) / count : NaN,
  };
  if (argv.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
  } else {
    const ms = (us) => (us / 1000).toFixed(2);
    process.stdout.write(
      `${clients} clients over ${conns} connections: ${result.opsPerSec.toFixed(0)} puts/s, ` +
        `p50 ${ms(result.latencyUs.p50)} ms, p99 ${ms(result.latencyUs.p99)} ms, ${errors} errors\n`,
    );
  }
  process.exitCode = count > 0 ? 0 : 1;
} catch (error) {
  process.stderr.write(`etcd-put: ${(error && error.stack) || error}\n`);
  process.exitCode = 1;
} finally {
  for (const c of connections) c.close();
}
