// The load generator behind `dkv-cli bench`: a few native connections, each keeping a fixed
// number of GET and PUT requests in flight, with latency in an HDR histogram and the server's
// CPU time per op from STATS.
//
// It must not be the bottleneck when it shares a 2-core machine with the server, so the hot
// path is the opposite of DkvClient's: no promise, closure or Map entry per request. Each
// connection has `pipeline` slots; a slot holds one request in flight, its request id names the
// slot, and its fields live in typed arrays. A reply frees its slot and the slot's next request
// is copied from a pre-encoded template into an output slab; every request issued while one
// chunk of replies is read goes out in one write. Reply bodies are not decoded, except errors.
//
// Every wait is bounded: a connection whose oldest request is older than the timeout, or that
// closes, fails with everything it has in flight, and the phase ends when no connection has
// anything left to do.

import { connect as netConnect, type Socket } from 'node:net';
import { build as buildHistogram, type Histogram } from 'hdr-histogram-js';
import { DkvClient, parseAddress } from '../client/client.js';
import { Ring } from '../ring/ring.js';
import { assert } from '../lib/assert.js';
import { DkvError, isDkvError, type ErrorCodeName } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { SeededRandom } from '../lib/random.js';
import { ERROR_CODE_NAMES, FrameFlag, Opcode } from '../wire/codes.js';
import { FrameDecoder, type FrameSink } from '../wire/frame.js';
import { decodeBody, NOT_FOUND_REPLY } from '../wire/messages.js';
import {
  connectionSeed,
  getTemplate,
  keyDigitsOf,
  keyOf,
  putTemplate,
  UniformKeys,
  writeRequest,
  ZipfianKeys,
  type KeyChooser,
  type RequestTemplate,
} from './load-workload.js';

export type Distribution = 'uniform' | 'zipfian';

export interface LoadOptions {
  connections: number;
  // Requests in flight per connection.
  pipeline: number;
  // Stop after this many requests in all, or after durationMs: exactly one is set.
  requests: number | null;
  durationMs: number | null;
  valueBytes: number;
  // The share of GETs; the rest are PUTs.
  readRatio: number;
  keys: number;
  distribution: Distribution;
  // Write every key once before measuring, so that reads find a value.
  preload: boolean;
  // Run the workload this long before measuring, unmeasured (0: not at all): the servers'
  // code is then compiled and their files grown, as in the steady state being measured.
  warmupMs: number;
  seed: number;
  // Route by key across the cluster (ROUTING from the control node): `connections` to every
  // alive node, each sending only keys whose first alive replica is that node.
  cluster: boolean;
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface PhaseReport {
  // Requests finished: answered or failed.
  requests: number;
  // Requests answered with success.
  ops: number;
  reads: number;
  // GETs answered "not found".
  misses: number;
  writes: number;
  // Failed requests by error code: server error replies and TIMEOUT, CONNECTION_CLOSED,
  // PROTOCOL_VIOLATION when a connection failed with requests in flight.
  errors: Record<string, number>;
  elapsedMs: number;
  opsPerSec: number;
  // Of successful requests, in microseconds; null when there were none. Then the same for GETs
  // and PUTs alone.
  latencyUs: LatencySummary | null;
  readLatencyUs: LatencySummary | null;
  writeLatencyUs: LatencySummary | null;
}

export interface LoadReport {
  server: string;
  options: LoadOptions;
  // A connection with a request older than this failed with TIMEOUT.
  timeoutMs: number;
  preload: PhaseReport | null;
  warmup: PhaseReport | null;
  run: PhaseReport;
  // Server CPU time (user + system) during the measured phase, per successful op; null when
  // STATS could not be read afterwards.
  serverCpuMicrosPerOp: number | null;
  // The same for this process: what the load generator itself costs, on a shared machine.
  clientCpuMicrosPerOp: number | null;
  // Connections that failed during the measured phase, by cause.
  connectionsFailed: Record<string, number>;
}

export interface LoadProgress {
  phase: PhaseName;
  elapsedMs: number;
  ops: number;
  errors: number;
  // Successful ops per second since the previous progress report.
  opsPerSecNow: number;
}

// Request ids are (sequence << SLOT_BITS) | slot: the low bits find the slot without a lookup,
// and the sequence, which skips 0, tells a reply to the slot's current request from any other.
// Request id 0 is never sent, so a server's connection-level error (id 0) cannot match a slot.
const SLOT_BITS = 10;
const SLOT_MASK = (1 << SLOT_BITS) - 1;
const SEQUENCE_MAX = 2 ** (32 - SLOT_BITS) - 1;

export const BENCH_PIPELINE_MAX = 1 << SLOT_BITS;
// Each connection costs the server a session and the generator a slab and a set of slots; a
// thousand is far past where a single dkvd saturates.
export const BENCH_CONNECTIONS_MAX = 1000;
// zeta(n) for the zipfian distribution is summed over every key at start: 10 million keys take
// about 0.2 s, and a key space that size would take minutes to preload anyway.
export const BENCH_KEYS_MAX = 10_000_000;
// A warm-up longer than a few minutes is a run of its own.
export const BENCH_WARMUP_S_MAX = 600;

// Requests are copied into slabs of this size and written from them; a slab is handed to the
// socket and replaced when full, so at least a few hundred GETs share one allocation.
const OUT_SLAB_BYTES = 64 * 1024;
// How often in-flight requests are checked against the timeout, at most.
const DEADLINE_SWEEP_MAX_MS = 100;
const PROGRESS_PERIOD_MS = 1000;
// HDR histogram bounds in microseconds: 1 µs resolution, up to an hour, 3 significant digits.
const LATENCY_US_MAX = 3_600_000_000;

type PhaseName = 'preload' | 'warmup' | 'run';

// The state of one phase (preload, warm-up or the measured run), shared by every connection.
class Phase {
  ops = 0;
  reads = 0;
  misses = 0;
  writes = 0;
  failed = 0;
  // For the exact means: a histogram's is computed from bucket midpoints.
  private readLatencyUsSum = 0;
  private writeLatencyUsSum = 0;
  readonly errors = new Map<string, number>();
  private readonly readLatency = latencyHistogram();
  private readonly writeLatency = latencyHistogram();
  readonly startedMs = performance.now();
  endedMs = 0;
  stopping = false;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(
    readonly name: PhaseName,
    private readonly connections: readonly LoadConnection[],
  ) {
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
  }

  answered(opcode: number, sentMs: number, nowMs: number, bodyBytes: number): void {
    this.ops++;
    const latencyUs = Math.round((nowMs - sentMs) * 1000);
    if (opcode === Opcode.GET) {
      this.reads++;
      // A miss is the one fixed-size GET reply: any value found makes the body longer.
      if (bodyBytes === NOT_FOUND_REPLY.length) this.misses++;
      this.readLatencyUsSum += latencyUs;
      this.readLatency.recordValue(latencyUs);
    } else {
      this.writes++;
      this.writeLatencyUsSum += latencyUs;
      this.writeLatency.recordValue(latencyUs);
    }
  }

  error(code: string): void {
    this.failed++;
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  // No connection will issue more requests: stop when those in flight are answered.
  stop(): void {
    this.stopping = true;
    this.checkDone();
  }

  // Called whenever a connection becomes idle or fails.
  checkDone(): void {
    if (this.endedMs !== 0) return;
    for (const connection of this.connections) if (connection.isBusy) return;
    this.endedMs = performance.now();
    this.resolveDone();
  }

  finished(): Promise<void> {
    return this.done;
  }

  report(): PhaseReport {
    const elapsedMs = (this.endedMs || performance.now()) - this.startedMs;
    const all = latencyHistogram();
    all.add(this.readLatency);
    all.add(this.writeLatency);
    return {
      requests: this.ops + this.failed,
      ops: this.ops,
      reads: this.reads,
      misses: this.misses,
      writes: this.writes,
      errors: Object.fromEntries(this.errors),
      elapsedMs,
      opsPerSec: elapsedMs > 0 ? (this.ops * 1000) / elapsedMs : 0,
      latencyUs: this.ops === 0 ? null : latencySummary(all, (this.readLatencyUsSum + this.writeLatencyUsSum) / this.ops),
      readLatencyUs: this.reads === 0 ? null : latencySummary(this.readLatency, this.readLatencyUsSum / this.reads),
      writeLatencyUs: this.writes === 0 ? null : latencySummary(this.writeLatency, this.writeLatencyUsSum / this.writes),
    };
  }
}

function latencyHistogram(): Histogram {
  return buildHistogram({
    useWebAssembly: false,
    bitBucketSize: 32,
    lowestDiscernibleValue: 1,
    highestTrackableValue: LATENCY_US_MAX,
    numberOfSignificantValueDigits: 3,
  });
}

// A percentile is the highest value of its bucket, which can exceed the largest value recorded;
// no percentile is reported above the maximum.
function latencySummary(h: Histogram, mean: number): LatencySummary {
  const max = h.maxValue;
  const at = (percentile: number): number => Math.min(max, h.getValueAtPercentile(percentile));
  return { p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max, mean };
}

// What a connection sends: its share of the preload's keys in order, or draws from the workload.
interface Workload {
  readRatio: number;
  keys: KeyChooser;
  get: RequestTemplate;
  put: RequestTemplate;
  // In a cluster: each key's node (index into the load's nodes), and this connection's node. A
  // connection redraws keys of other nodes (at most OWNER_DRAWS_MAX times), so each node gets
  // its keys in their workload's proportions.
  owners: Uint8Array | null;
  node: number;
  // In a cluster, the preload writes the keys listed here (this node's) instead of a range.
  preloadKeys: Int32Array | null;
}

const OWNER_DRAWS_MAX = 64;

class LoadConnection implements FrameSink {
  private readonly decoder = new FrameDecoder(this);
  // Per slot: the request id in flight (or last sent), its opcode (0: free) and when it was sent.
  private readonly slotIds: Uint32Array;
  private readonly slotOpcodes: Uint8Array;
  private readonly slotSentMs: Float64Array;
  private inFlight = 0;
  private out = Buffer.allocUnsafe(OUT_SLAB_BYTES);
  private outStart = 0;
  private outEnd = 0;
  // When the chunk being read arrived: the receive time of its replies and the send time of the
  // requests they release, which go out in one write at the end of the same turn.
  private nowMs = 0;
  private phase: Phase | null = null;
  // Requests this connection may still issue in the phase.
  private remaining = 0;
  // While preloading: the next key to write.
  private preloadNext = -1;
  // Why the connection failed, once it has.
  failure: ErrorCodeName | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly pipeline: number,
    private readonly timeoutMs: number,
    private readonly random: SeededRandom,
    private readonly workload: Workload,
  ) {
    this.slotIds = new Uint32Array(pipeline);
    this.slotOpcodes = new Uint8Array(pipeline);
    this.slotSentMs = new Float64Array(pipeline);
    socket.on('data', this.onData);
    socket.on('error', () => {
      // 'close' follows and fails the connection
    });
    socket.on('close', this.onClose);
  }

  get isBusy(): boolean {
    return this.failure === null && (this.inFlight > 0 || this.wantsMore());
  }

  private wantsMore(): boolean {
    return this.remaining > 0 && !this.phase!.stopping;
  }

  // Writes keys [first, end) once each.
  startPreload(phase: Phase, first: number, end: number): void {
    this.preloadNext = first;
    this.start(phase, end - first);
  }

  startRun(phase: Phase, requests: number): void {
    this.preloadNext = -1;
    this.start(phase, requests);
  }

  private start(phase: Phase, requests: number): void {
    assert(this.inFlight === 0, 'a phase starts on an idle connection');
    this.phase = phase;
    this.remaining = requests;
    if (this.failure !== null) return;
    this.nowMs = performance.now();
    for (let slot = 0; slot < this.pipeline && this.wantsMore(); slot++) this.issue(slot);
    this.flush();
  }

  private issue(slot: number): void {
    const workload = this.workload;
    let template: RequestTemplate;
    let key: number;
    if (this.preloadNext >= 0) {
      template = workload.put;
      key = workload.preloadKeys === null ? this.preloadNext++ : workload.preloadKeys[this.preloadNext++]!;
    } else {
      template = this.random.next53() < workload.readRatio ? workload.get : workload.put;
      key = workload.keys.next(this.random);
      const owners = workload.owners;
      if (owners !== null) {
        for (let draw = 1; owners[key] !== workload.node && draw < OWNER_DRAWS_MAX; draw++) key = workload.keys.next(this.random);
      }
    }
    this.remaining--;
    const frameBytes = template.frame.length;
    if (this.out.length - this.outEnd < frameBytes) {
      // The full slab now belongs to the socket; requests continue in a new one.
      this.flush();
      this.out = Buffer.allocUnsafe(Math.max(OUT_SLAB_BYTES, frameBytes));
      this.outStart = 0;
      this.outEnd = 0;
    }
    const sequence = this.slotIds[slot]! >>> SLOT_BITS;
    const requestId = (((sequence === SEQUENCE_MAX ? 1 : sequence + 1) << SLOT_BITS) | slot) >>> 0;
    this.outEnd = writeRequest(this.out, this.outEnd, template, requestId, key);
    this.slotIds[slot] = requestId;
    this.slotOpcodes[slot] = template.opcode;
    this.slotSentMs[slot] = this.nowMs;
    this.inFlight++;
  }

  // In flight stays within `pipeline` requests, so what the socket buffers is bounded without
  // waiting for 'drain'.
  private flush(): void {
    if (this.outEnd === this.outStart) return;
    this.socket.write(this.out.subarray(this.outStart, this.outEnd));
    this.outStart = this.outEnd;
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.failure !== null) return;
    this.nowMs = performance.now();
    try {
      this.decoder.push(chunk);
    } catch (error) {
      this.fail(isDkvError(error) ? error.code : 'PROTOCOL_VIOLATION');
      return;
    }
    this.flush();
  };

  onFrame(opcode: number, flags: number, requestId: number, bytes: Buffer, start: number, end: number): void {
    if (requestId === 0 && opcode === Opcode.ERROR) {
      // The server gave up on the whole connection (a framing error): it closes next.
      throw new DkvError(errorCodeOf(bytes, start, end), 'the server failed the connection');
    }
    const slot = requestId & SLOT_MASK;
    const expected = slot < this.pipeline ? this.slotOpcodes[slot]! : 0;
    if (expected === 0 || this.slotIds[slot] !== requestId || (flags & FrameFlag.REPLY) === 0) {
      throw new DkvError('PROTOCOL_VIOLATION', `reply ${requestId} answers no request in flight`);
    }
    this.slotOpcodes[slot] = 0;
    this.inFlight--;
    const phase = this.phase!;
    if (opcode === expected) {
      phase.answered(opcode, this.slotSentMs[slot]!, this.nowMs, end - start);
    } else if (opcode === Opcode.ERROR) {
      phase.error(errorCodeOf(bytes, start, end));
    } else {
      phase.error('PROTOCOL_VIOLATION');
    }
    if (this.wantsMore()) this.issue(slot);
    else if (this.inFlight === 0) phase.checkDone();
  }

  // Fails the connection if its oldest request has waited longer than the timeout.
  sweep(nowMs: number): void {
    if (this.failure !== null || this.inFlight === 0) return;
    for (let slot = 0; slot < this.pipeline; slot++) {
      if (this.slotOpcodes[slot] !== 0 && nowMs - this.slotSentMs[slot]! >= this.timeoutMs) {
        this.fail('TIMEOUT');
        return;
      }
    }
  }

  // Counts what is in flight as failed with `code` and closes. Replies still on the way might
  // arrive, but the connection's results are no longer trustworthy.
  fail(code: ErrorCodeName): void {
    if (this.failure !== null) return;
    this.failure = code;
    const phase = this.phase;
    for (let slot = 0; slot < this.pipeline; slot++) {
      if (this.slotOpcodes[slot] === 0) continue;
      this.slotOpcodes[slot] = 0;
      phase?.error(code);
    }
    this.inFlight = 0;
    this.socket.destroy();
    phase?.checkDone();
  }

  // Closes a connection whose work is done: this is not a failure.
  close(): void {
    this.socket.off('close', this.onClose);
    this.socket.destroy();
  }

  private readonly onClose = (): void => {
    this.fail('CONNECTION_CLOSED');
  };
}

// The code name of an ERROR reply body {code, name, message}.
function errorCodeOf(bytes: Buffer, start: number, end: number): ErrorCodeName {
  try {
    const body = decodeBody(bytes, start, end) as { code?: unknown } | null;
    return ERROR_CODE_NAMES.get(Number(body?.code)) ?? 'INTERNAL';
  } catch {
    return 'PROTOCOL_VIOLATION';
  }
}

function openSocket(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new DkvError('CANNOT_CONNECT', `cannot connect to ${host}:${port}: no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(new DkvError('CANNOT_CONNECT', `cannot connect to ${host}:${port}: ${error.message}`, { cause: error }));
    });
  });
}

function checkOptions(options: LoadOptions): void {
  const integerIn = (value: number, min: number, max: number): boolean =>
    Number.isInteger(value) && value >= min && value <= max;
  assert(integerIn(options.connections, 1, BENCH_CONNECTIONS_MAX), 'connections in range');
  assert(integerIn(options.pipeline, 1, BENCH_PIPELINE_MAX), 'pipeline in range');
  assert(integerIn(options.keys, 1, BENCH_KEYS_MAX), 'keys in range');
  assert(integerIn(options.valueBytes, 0, limits.valueBytesMax), 'value size in range');
  assert(options.readRatio >= 0 && options.readRatio <= 1, 'read ratio in [0, 1]');
  assert((options.requests === null) !== (options.durationMs === null), 'a run is bounded by count or by time');
  assert(options.requests === null || integerIn(options.requests, 1, Number.MAX_SAFE_INTEGER), 'requests ≥ 1');
  assert(options.durationMs === null || options.durationMs > 0, 'duration > 0');
}

// Starts the phase on every connection, reports progress, and resolves when it is done: after
// `durationMs` if given, else when every connection has issued its share and been answered.
async function runPhase(
  phase: Phase,
  connections: readonly LoadConnection[],
  start: (connection: LoadConnection, index: number) => void,
  durationMs: number | null,
  timeoutMs: number,
  onProgress: (progress: LoadProgress) => void,
): Promise<void> {
  let lastOps = 0;
  let lastMs = phase.startedMs;
  const progress = setInterval(() => {
    const nowMs = performance.now();
    onProgress({
      phase: phase.name,
      elapsedMs: nowMs - phase.startedMs,
      ops: phase.ops,
      errors: phase.failed,
      opsPerSecNow: ((phase.ops - lastOps) * 1000) / (nowMs - lastMs),
    });
    lastOps = phase.ops;
    lastMs = nowMs;
  }, PROGRESS_PERIOD_MS);
  const sweep = setInterval(() => {
    const nowMs = performance.now();
    for (const connection of connections) connection.sweep(nowMs);
  }, Math.min(DEADLINE_SWEEP_MAX_MS, timeoutMs / 4));
  const stop = durationMs === null ? null : setTimeout(() => phase.stop(), durationMs);
  connections.forEach(start);
  phase.checkDone();
  await phase.finished();
  clearInterval(progress);
  clearInterval(sweep);
  if (stop !== null) clearTimeout(stop);
}

// An unmeasured phase (preload, warm-up) must finish on every connection: the first failure ends
// the run with its code.
function throwIfAnyFailed(connections: readonly LoadConnection[], phase: string, server: string): void {
  for (const { failure } of connections) {
    if (failure !== null) throw new DkvError(failure, `${phase} failed: a connection to ${server} failed with ${failure}`);
  }
}

// Runs the benchmark against the node `control` is connected to; `control` reads STATS, on a
// connection of its own so that it stays out of the measured ones, and its timeout applies to
// the load connections too. Throws DkvError CANNOT_CONNECT if they cannot be opened, and a
// DkvError with a connection's failure as its code if the preload cannot finish; failures during
// the measured phase are counted in the report instead.
export async function runLoad(
  control: DkvClient,
  options: LoadOptions,
  onProgress: (progress: LoadProgress) => void,
): Promise<LoadReport> {
  checkOptions(options);
  const { host, port, timeoutMs } = control;
  const server = `${host}:${port}`;
  const connections: LoadConnection[] = [];
  const controls: DkvClient[] = [control];
  try {
    const digits = keyDigitsOf(options.keys);
    const keys = options.distribution === 'zipfian' ? new ZipfianKeys(options.keys) : new UniformKeys(options.keys);
    const placement = options.cluster ? await placeKeys(control, options.keys, digits) : null;
    const nodes = placement?.nodes ?? [{ host, port }];
    for (const node of nodes.slice(1)) controls.push(new DkvClient({ host: node.host, port: node.port, timeoutMs }));
    const targets = nodes.flatMap((node, nodeIndex) => Array.from({ length: options.connections }, () => ({ ...node, nodeIndex })));
    const sockets = await Promise.allSettled(targets.map((t) => openSocket(t.host, t.port, timeoutMs)));
    for (const [index, result] of sockets.entries()) {
      if (result.status === 'rejected') {
        for (const other of sockets) if (other.status === 'fulfilled') other.value.destroy();
        throw result.reason;
      }
      const random = new SeededRandom(connectionSeed(options.seed, index));
      // Values are random bytes, so no layer can shortcut them by compressing.
      const value = Buffer.alloc(options.valueBytes);
      for (let i = 0; i < value.length; i++) value[i] = random.next32() & 0xff;
      const node = targets[index]!.nodeIndex;
      const workload: Workload = {
        readRatio: options.readRatio,
        keys,
        get: getTemplate(digits),
        put: putTemplate(digits, value),
        owners: placement?.owners ?? null,
        node,
        preloadKeys: placement?.keysOf[node] ?? null,
      };
      connections.push(new LoadConnection(result.value, options.pipeline, timeoutMs, random, workload));
    }

    let preload: PhaseReport | null = null;
    if (options.preload) {
      const phase = new Phase('preload', connections);
      // Each node's connections split its keys (all keys, with one node).
      const perNode = options.connections;
      const keysOf = (index: number): number => placement?.keysOf[Math.floor(index / perNode)]!.length ?? options.keys;
      const share = (index: number): number => Math.floor((keysOf(index) * (index % perNode)) / perNode);
      const shareEnd = (index: number): number => Math.floor((keysOf(index) * ((index % perNode) + 1)) / perNode);
      await runPhase(
        phase,
        connections,
        (connection, index) => connection.startPreload(phase, share(index), shareEnd(index)),
        null,
        timeoutMs,
        onProgress,
      );
      preload = phase.report();
      throwIfAnyFailed(connections, 'preload', server);
    }

    let warmup: PhaseReport | null = null;
    if (options.warmupMs > 0) {
      const phase = new Phase('warmup', connections);
      await runPhase(phase, connections, (connection) => connection.startRun(phase, Infinity), options.warmupMs, timeoutMs, onProgress);
      warmup = phase.report();
      throwIfAnyFailed(connections, 'warm-up', server);
    }

    const before = await Promise.all(controls.map((c) => c.stats()));
    const clientCpu = process.cpuUsage();
    const phase = new Phase('run', connections);
    const requests = options.requests;
    const quota = (index: number): number =>
      requests === null
        ? Infinity
        : Math.floor(requests / connections.length) + (index < requests % connections.length ? 1 : 0);
    await runPhase(
      phase,
      connections,
      (connection, index) => connection.startRun(phase, quota(index)),
      options.durationMs,
      timeoutMs,
      onProgress,
    );
    const run = phase.report();
    const clientCpuUsed = process.cpuUsage(clientCpu);
    const clientCpuMicrosPerOp = run.ops > 0 ? (clientCpuUsed.user + clientCpuUsed.system) / run.ops : null;
    const connectionsFailed: Record<string, number> = {};
    for (const connection of connections) {
      if (connection.failure !== null) {
        connectionsFailed[connection.failure] = (connectionsFailed[connection.failure] ?? 0) + 1;
      }
    }
    let serverCpuMicrosPerOp: number | null = null;
    try {
      const after = await Promise.all(controls.map((c) => c.stats()));
      const used = after.reduce((sum, stats, i) => sum + cpuMicrosOf(stats) - cpuMicrosOf(before[i]!), 0);
      if (run.ops > 0) serverCpuMicrosPerOp = used / run.ops;
    } catch {
      // the server is gone: the report says so with null
    }
    return { server, options, timeoutMs, preload, warmup, run, serverCpuMicrosPerOp, clientCpuMicrosPerOp, connectionsFailed };
  } finally {
    for (const connection of connections) connection.close();
    for (const extra of controls.slice(1)) await extra.close();
  }
}

// Where each bench key goes in a cluster: the first alive replica of its preference list.
async function placeKeys(
  control: DkvClient,
  keyCount: number,
  digits: number,
): Promise<{ nodes: Array<{ host: string; port: number }>; owners: Uint8Array; keysOf: Int32Array[] }> {
  const routing = (await control.request(Opcode.ROUTING, null)) as {
    vnodes: number;
    replicas: number;
    members: Array<{ id: string; tcpAddress: string; state: string }>;
  };
  const alive = routing.members.filter((m) => m.state === 'alive');
  if (alive.length === 0 || alive.length > 255) throw new DkvError('BAD_REQUEST', `the cluster has ${alive.length} alive nodes`);
  const ring = new Ring(routing.members.map((m) => m.id), routing.vnodes);
  const nodeOf = new Map(alive.map((m, i) => [m.id, i]));
  const owners = new Uint8Array(keyCount);
  const counts = new Int32Array(alive.length);
  for (let key = 0; key < keyCount; key++) {
    const preference = ring.preferenceList(Buffer.from(keyOf(key, digits)), routing.replicas);
    const owner = preference.find((id) => nodeOf.has(id)) ?? alive[key % alive.length]!.id;
    owners[key] = nodeOf.get(owner)!;
    counts[owners[key]!]!++;
  }
  const keysOf = Array.from(counts, (n) => new Int32Array(n));
  const filled = new Int32Array(alive.length);
  for (let key = 0; key < keyCount; key++) keysOf[owners[key]!]![filled[owners[key]!]!++] = key;
  return { nodes: alive.map((m) => parseAddress(m.tcpAddress)), owners, keysOf };
}

function cpuMicrosOf(stats: Record<string, string | number>): number {
  return Number(stats.cpuUserMicros) + Number(stats.cpuSystemMicros);
}

const count = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

export function formatProgress(progress: LoadProgress): string {
  const seconds = Math.round(progress.elapsedMs / 1000);
  return (
    `${progress.phase} ${seconds}s: ${count.format(progress.opsPerSecNow)} ops/s, ` +
    `${count.format(progress.ops)} ops, ${count.format(progress.errors)} errors`
  );
}

function formatErrors(errors: Record<string, number>): string {
  const entries = Object.entries(errors);
  if (entries.length === 0) return 'none';
  return entries.map(([code, n]) => `${code} ${count.format(n)}`).join(', ');
}

export function formatReport(report: LoadReport): string {
  const o = report.options;
  const run = report.run;
  const lines: string[] = [];
  const length = o.requests === null ? `${decimal.format(o.durationMs! / 1000)} s` : `${count.format(o.requests)} requests`;
  lines.push(
    `server      ${report.server}${o.cluster ? ' and its cluster, routed by key' : ''}: ${o.connections} connection${o.connections === 1 ? '' : 's'}${o.cluster ? ' per node' : ''} × ${o.pipeline} in flight, ${length}, ` +
      `${decimal.format(o.readRatio * 100)}% GET, ${o.valueBytes} B values, ${count.format(o.keys)} keys ${o.distribution}, seed ${o.seed}`,
  );
  if (report.preload !== null) {
    const p = report.preload;
    lines.push(
      `preload     ${count.format(p.ops)} keys in ${decimal.format(p.elapsedMs / 1000)} s (${count.format(p.opsPerSec)} ops/s)`,
    );
  }
  if (report.warmup !== null) {
    const w = report.warmup;
    lines.push(`warm-up     ${count.format(w.ops)} ops in ${decimal.format(w.elapsedMs / 1000)} s (${count.format(w.opsPerSec)} ops/s), not measured`);
  }
  lines.push(
    `ops         ${count.format(run.ops)} in ${(run.elapsedMs / 1000).toFixed(2)} s: ${count.format(run.opsPerSec)} ops/s ` +
      `(GET ${count.format(run.reads)}, of which not found ${count.format(run.misses)}; PUT ${count.format(run.writes)})`,
  );
  lines.push(`errors      ${formatErrors(run.errors)}`);
  const failed = Object.entries(report.connectionsFailed);
  if (failed.length > 0) lines.push(`connections failed: ${failed.map(([code, n]) => `${n} with ${code}`).join(', ')}`);
  const l = run.latencyUs;
  lines.push(
    l === null
      ? 'latency     none: no request succeeded'
      : `latency µs  p50 ${count.format(l.p50)}  p90 ${count.format(l.p90)}  p99 ${count.format(l.p99)}  ` +
          `p99.9 ${count.format(l.p999)}  max ${count.format(l.max)}  mean ${count.format(l.mean)}`,
  );
  if (l !== null && run.readLatencyUs !== null && run.writeLatencyUs !== null) {
    for (const [name, k] of [['GET', run.readLatencyUs], ['PUT', run.writeLatencyUs]] as const) {
      lines.push(`  ${name}       p50 ${count.format(k.p50)}  p90 ${count.format(k.p90)}  p99 ${count.format(k.p99)}  p99.9 ${count.format(k.p999)}  max ${count.format(k.max)}`);
    }
  }
  const perOp = (micros: number | null): string => (micros === null ? 'unknown' : `${decimal.format(micros)} µs/op`);
  lines.push(`CPU         server ${perOp(report.serverCpuMicrosPerOp)}, bench ${perOp(report.clientCpuMicrosPerOp)}`);
  return `${lines.join('\n')}\n`;
}
