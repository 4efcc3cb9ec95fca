// Micro-benchmarks of the single-node hot paths: codecs, the token hash, RESP parsing, storage,
// the whole server GET path without sockets, read caches (dkvd's and two LRUs) against lmdb's
// mmap reads, and the SWIM datagram codec and core's PING → ACK path.
//
// For every case it prints ops/s, ns/op and the bytes allocated per operation. Allocation is
// measured by running N operations between a forced GC and a heap read, with a semi-space big
// enough that no GC runs in between; a GC counter (v8.GCProfiler) checks that, and a row whose
// every measurement saw a GC is marked instead of trusted. "heap" is the growth of the V8 heap,
// "buf" the growth of ArrayBuffer backing stores (Buffer contents live outside the heap).
//
// Each suite runs in its own child process, so one suite's JIT feedback (a call site that sees
// two storage engines, say) and heap (the 1M-key cache) cannot distort another's figures.
//
//   npm run bench                      every suite
//   node dist/bench/micro.js server    one or more suites by name

import { ClusterView } from '../src/coordinator/cluster-view.js';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { Bench, hrtimeNow } from 'tinybench';
import { limits } from '../src/lib/limits.js';
import { SeededRandom } from '../src/lib/random.js';
import { createRootLogger } from '../src/lib/log.js';
import { TOKEN_BYTES, tokenOf, writeToken } from '../src/ring/token.js';
import type { Connection } from '../src/server/connection.js';
import { NativeSession } from '../src/server/dispatch.js';
import { RespSession } from '../src/server/resp-session.js';
import type { Service } from '../src/server/service.js';
import { ServerStats } from '../src/server/stats.js';
import type { StorageEngine } from '../src/store/engine.js';
import { swimConfig } from '../src/swim/config.js';
import { SwimCore } from '../src/swim/core.js';
import { MemberDirectory } from '../src/swim/directory.js';
import { LmdbEngine } from '../src/store/lmdb-engine.js';
import { RecordCache } from '../src/store/record-cache.js';
import { MemoryEngine } from '../src/store/memory-engine.js';
import { encodeRecord, RECORD_HEADER_BYTES, VersionedStore } from '../src/store/versioned-store.js';
import { WriteAheadLog } from '../src/store/wal.js';
import { writeVersion } from '../src/version/dvv.js';
import { FrameFlag, Opcode, SwimMessageType } from '../src/wire/codes.js';
import { encodeDatagramHeader } from '../src/wire/datagram.js';
import { encodeFrame, FrameDecoder, type FrameSink } from '../src/wire/frame.js';
import {
  decodeBody,
  decodePutRequest,
  encodeBody,
  encodeBodyShared,
  getReplyOf,
  readGetKeyInPlace,
  readSingleValueInPlace,
  type Span,
} from '../src/wire/messages.js';
import { respBulk, RespParser, type RespArgs, type RespSink } from '../src/wire/resp.js';
import { encodeAlive, SwimReader, SwimWriter } from '../src/wire/swim-codec.js';

// A semi-space of 64 MiB holds every allocation measurement below (at most a few MiB of young
// objects each), so none of them is cut by a scavenge. Old space is raised for the 1M-key cache.
const CHILD_FLAGS = ['--expose-gc', '--min-semi-space-size=64', '--max-semi-space-size=64', '--max-old-space-size=4096'];
const SUITES = ['codec', 'resp', 'storage', 'server', 'cache', 'swim'] as const;
type SuiteName = (typeof SUITES)[number];

const NODE_ID = 'bench-node-1';
const VALUE_BYTES = 100;
// Keys as redis-benchmark -r makes them: "key:" and 12 digits, 16 bytes.
const KEY_BYTES = 16;
const BENCH_TIME_MS = 400;
const WARMUP_TIME_MS = 100;
const ALLOC_OPS = 100_000;
const ALLOC_REPEATS = 3;

interface Row {
  suite: string;
  name: string;
  nsPerOp: number;
  heapBytesPerOp: number | null;
  bufferBytesPerOp: number | null;
  // Every allocation measurement of this row saw a GC: its bytes/op are not trustworthy.
  gcSeen: boolean;
  note: string;
}

// A synchronous case: run(n) performs n operations in its own loop (so that a 10 ns operation
// is not drowned by the cost of calling it). tinybench times run(batch).
interface SyncCase {
  name: string;
  batch: number;
  allocOps?: number;
  run: (n: number) => void;
  note?: () => string;
}

// An asynchronous case: call() performs opsPerCall operations and resolves when all are done.
interface AsyncCase {
  name: string;
  opsPerCall: number;
  call: () => Promise<void>;
  note?: () => string;
}

type Case = SyncCase | AsyncCase;

// Results the optimiser cannot prove unused.
let sink = 0;
let sinkObject: unknown = null;

const gc = (globalThis as { gc?: () => void }).gc;

// ---------------------------------------------------------------------------------------------
// Measurement

interface Allocation {
  heapBytesPerOp: number;
  bufferBytesPerOp: number;
  gcSeen: boolean;
}

function heapNow(): number {
  return v8.getHeapStatistics().used_heap_size;
}

function buffersNow(): number {
  return process.memoryUsage().arrayBuffers;
}

// The smallest of a few measurements that saw no GC; if every one saw a GC, the last one, marked.
function bestOf(samples: Array<{ heap: number; buffers: number; gcs: number }>, ops: number): Allocation {
  const clean = samples.filter((s) => s.gcs === 0);
  const pool = clean.length > 0 ? clean : samples;
  let best = pool[0]!;
  for (const s of pool) if (s.heap + s.buffers < best.heap + best.buffers) best = s;
  return { heapBytesPerOp: best.heap / ops, bufferBytesPerOp: best.buffers / ops, gcSeen: clean.length === 0 };
}

// Young-generation bytes one measurement may allocate: a quarter of the 64 MiB semi-space, so
// that the run, the heap reads and the GC profiler fit without a scavenge.
const ALLOC_BUDGET_BYTES = 16 * 2 ** 20;

function measureSync(run: (n: number) => void, maxOps: number): Allocation {
  if (gc === undefined) throw new Error('run with --expose-gc');
  run(maxOps); // warm: the measured loop must be the optimised one
  // Estimate bytes/op on a short run, and size the measured runs to the budget.
  gc();
  const probeOps = 1000;
  const probeHeap0 = heapNow();
  run(probeOps);
  const estimate = Math.max(1, (heapNow() - probeHeap0) / probeOps);
  const ops = Math.max(probeOps, Math.min(maxOps, Math.floor(ALLOC_BUDGET_BYTES / estimate)));
  const samples = [];
  for (let r = 0; r < ALLOC_REPEATS; r++) {
    gc();
    gc();
    const profiler = new v8.GCProfiler();
    profiler.start();
    const heap0 = heapNow();
    const buffers0 = buffersNow();
    run(ops);
    const heap1 = heapNow();
    const buffers1 = buffersNow();
    const gcs = profiler.stop().statistics.length;
    samples.push({ heap: heap1 - heap0, buffers: buffers1 - buffers0, gcs });
  }
  return bestOf(samples, ops);
}

async function measureAsync(call: () => Promise<void>, ops: number): Promise<Allocation> {
  if (gc === undefined) throw new Error('run with --expose-gc');
  await call();
  const samples = [];
  for (let r = 0; r < ALLOC_REPEATS; r++) {
    gc();
    gc();
    const profiler = new v8.GCProfiler();
    profiler.start();
    const heap0 = heapNow();
    const buffers0 = buffersNow();
    await call();
    const heap1 = heapNow();
    const buffers1 = buffersNow();
    const gcs = profiler.stop().statistics.length;
    samples.push({ heap: heap1 - heap0, buffers: buffers1 - buffers0, gcs });
  }
  return bestOf(samples, ops);
}

function isAsync(c: Case): c is AsyncCase {
  return 'call' in c;
}

// DKV_BENCH_FILTER=regex runs only the cases whose names match (to bisect or profile one path).
const caseFilter = process.env.DKV_BENCH_FILTER === undefined ? null : new RegExp(process.env.DKV_BENCH_FILTER);

async function runCases(suite: string, allCases: Case[]): Promise<Row[]> {
  const cases = caseFilter === null ? allCases : allCases.filter((c) => caseFilter.test(c.name));
  const bench = new Bench({ name: suite, time: BENCH_TIME_MS, warmupTime: WARMUP_TIME_MS, now: hrtimeNow, throws: true });
  for (const c of cases) {
    if (isAsync(c)) bench.add(c.name, c.call);
    else bench.add(c.name, () => c.run(c.batch));
  }
  await bench.run();
  const rows: Row[] = [];
  for (const c of cases) {
    const result = bench.getTask(c.name)?.result;
    if (result === undefined || result.error !== undefined) throw result?.error ?? new Error(`${c.name}: no result`);
    // Latency is in ms per task call; the median resists the noise of a shared machine.
    const perCallMs = result.latency.p50 ?? result.latency.mean;
    const ops = isAsync(c) ? c.opsPerCall : c.batch;
    const allocation = isAsync(c)
      ? await measureAsync(c.call, c.opsPerCall)
      : measureSync(c.run, c.allocOps ?? ALLOC_OPS);
    const row: Row = {
      suite,
      name: c.name,
      nsPerOp: (perCallMs * 1e6) / ops,
      ...allocation,
      note: c.note?.() ?? '',
    };
    rows.push(row);
    console.log(`  ${formatRow(row)}`);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Fixtures

function keyOf(i: number): Buffer {
  return Buffer.from(`key:${String(i).padStart(12, '0')}`, 'latin1');
}

// All keys of a data set back to back, KEY_BYTES each: key i is keys[i*16, i*16+16).
function keysBuffer(count: number): Buffer {
  const keys = Buffer.allocUnsafe(count * KEY_BYTES);
  for (let i = 0; i < count; i++) keyOf(i).copy(keys, i * KEY_BYTES);
  return keys;
}

const VALUE = Buffer.alloc(VALUE_BYTES, 0x78);

// A seeded sequence of key indices in [0, count): the access pattern of a read benchmark.
function accessSequence(count: number, length: number, seed: number): Uint32Array {
  const sequence = new Uint32Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    sequence[i] = x % count;
  }
  return sequence;
}

function storeKeyOf(key: Uint8Array): Buffer {
  const storeKey = Buffer.allocUnsafe(TOKEN_BYTES + key.length);
  storeKey.writeUIntBE(tokenOf(key), 0, TOKEN_BYTES);
  storeKey.set(key, TOKEN_BYTES);
  return storeKey;
}

// The record a plain write of VALUE makes: the store's on-disk format.
function recordOf(value: Uint8Array): Buffer {
  return encodeRecord(writeVersion(undefined, undefined, NODE_ID, Date.now(), value));
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'dkv-bench-'));
}

// Through the store's own write path, in concurrent batches: one flush per batch.
async function loadThroughStore(store: VersionedStore, count: number): Promise<void> {
  const batch = 1000;
  for (let i = 0; i < count; i += batch) {
    const writes = [];
    for (let j = i; j < Math.min(count, i + batch); j++) writes.push(store.write(keyOf(j), VALUE, undefined));
    await Promise.all(writes);
  }
  // Reads then come from the engine, as they do once writes stop.
  await store.flush();
}

// Straight into the engine, for the large data sets: the same records, without the per-write
// version bookkeeping.
async function loadThroughEngine(engine: StorageEngine, count: number): Promise<Buffer[]> {
  const records: Buffer[] = new Array(count);
  const chunk = 100_000;
  for (let i = 0; i < count; i += chunk) {
    const puts = [];
    for (let j = i; j < Math.min(count, i + chunk); j++) {
      const record = recordOf(VALUE);
      records[j] = record;
      puts.push(engine.putRecord(storeKeyOf(keyOf(j)), record));
    }
    await Promise.all(puts);
  }
  return records;
}

// A GET request frame, as the client writes it: {"key": bin}.
function getFrameOf(key: Uint8Array, requestId: number): Buffer {
  const body = Buffer.allocUnsafe(7 + key.length);
  body.set([0x81, 0xa3, 0x6b, 0x65, 0x79, 0xc4, key.length], 0);
  body.set(key, 7);
  return encodeFrame(Opcode.GET, 0, requestId, body);
}

function respCommand(...args: Array<string | Uint8Array>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg) : Buffer.from(arg);
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

// A Connection without a socket: send() counts bytes and checks each reply's first byte, so a
// benchmark that silently answered errors would fail instead of looking fast.
class CountingConnection {
  readonly id = 1;
  name: string | null = null;
  replies = 0;
  bytesOut = 0;
  lastReplyBytes = 0;
  unexpected = 0;
  inFlight = 0;
  private waiter: { count: number; resolve: () => void } | null = null;

  constructor(private readonly check: (reply: Buffer) => boolean) {}

  // As Connection: replies written in place go into slabs of connectionOutputSlabBytes.
  outputSlab = Buffer.allocUnsafe(limits.connectionOutputSlabBytes);
  outputView = new DataView(this.outputSlab.buffer, this.outputSlab.byteOffset, this.outputSlab.length);
  private outputEnd = 0;
  private reserved = -1;
  private reservedBytes = 0;

  reserve(bytes: number): number {
    this.checkReserved();
    if (bytes > limits.replyCopyBytesMax) return -1;
    if (this.outputSlab.length - this.outputEnd < bytes) {
      this.outputSlab = Buffer.allocUnsafe(limits.connectionOutputSlabBytes);
      this.outputView = new DataView(this.outputSlab.buffer, this.outputSlab.byteOffset, this.outputSlab.length);
      this.outputEnd = 0;
    }
    this.reserved = this.outputEnd;
    this.reservedBytes = bytes;
    this.outputEnd += bytes;
    this.counted(bytes);
    return this.reserved;
  }

  // The reply written into the last reservation, checked once the next reply comes: one in
  // 1024, since the view to check it through is itself an allocation the measurement would see.
  private checkReserved(): void {
    if (this.reserved < 0) return;
    const reserved = this.reserved;
    this.reserved = -1;
    if ((this.replies & 1023) !== 1) return;
    if (!this.check(this.outputSlab.subarray(reserved, reserved + this.reservedBytes))) this.unexpected++;
  }

  send(bytes: Buffer): void {
    this.checkReserved();
    if (!this.check(bytes)) this.unexpected++;
    this.counted(bytes.length);
  }

  private counted(bytes: number): void {
    this.replies++;
    this.bytesOut += bytes;
    this.lastReplyBytes = bytes;
    const waiter = this.waiter;
    if (waiter !== null && this.replies >= waiter.count) {
      this.waiter = null;
      waiter.resolve();
    }
  }

  requestStarted(): void {
    this.inFlight++;
  }

  requestFinished(): void {
    this.inFlight--;
  }

  end(): void {}

  // Resolves once `count` replies in all have been sent.
  repliesReach(count: number): Promise<void> {
    if (this.replies >= count) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiter = { count, resolve };
    });
  }

  assertClean(what: string): void {
    this.checkReserved();
    if (this.unexpected > 0) throw new Error(`${what}: ${this.unexpected} unexpected replies`);
  }
}

function serviceOf(store: VersionedStore): Service {
  return {
    nodeId: NODE_ID,
    version: 'bench',
    store,
    stats: new ServerStats(0),
    log: createRootLogger('silent'),
    nowMs: () => 0,
    shuttingDown: false,
    statsSnapshot: () => ({}),
    // The bench serves one node's GET and PUT: membership and the coordinator are never reached.
    get membership(): never {
      throw new Error('no membership in the micro-benchmark');
    },
    cluster: new ClusterView(NODE_ID, { host: '127.0.0.1', tcpPort: 0 }, 3, 256),
    get coordinator(): never {
      throw new Error('no coordinator in the micro-benchmark');
    },
    write: (key, value, context) => store.write(key, value, context),
    acknowledgedWrite: (key, value) => store.writeDurable(key, value),
    leave: () => Promise.reject(new Error('no membership in the micro-benchmark')),
  };
}

// ---------------------------------------------------------------------------------------------
// Suites

function codecSuite(): Promise<Row[]> {
  const record = recordOf(VALUE);
  const replyBody = record.subarray(RECORD_HEADER_BYTES);
  const key16 = keyOf(12345);
  const key64 = Buffer.alloc(64, 0x6b);
  key16.copy(key64);

  // Frame decoding: a sink that only counts.
  let frames = 0;
  const frameSink: FrameSink = {
    onFrame(_opcode, _flags, requestId) {
      frames += requestId & 1;
    },
  };
  const decoder = new FrameDecoder(frameSink);
  const oneFrame = getFrameOf(key16, 7);
  const sixteenFrames = Buffer.concat(Array.from({ length: 16 }, (_, i) => getFrameOf(keyOf(i), i + 1)));
  const splitAt = 9;
  const firstHalf = oneFrame.subarray(0, splitAt);
  const secondHalf = oneFrame.subarray(splitAt);

  const tokenTarget = Buffer.alloc(TOKEN_BYTES);
  checkWriteToken();

  const putBody = Buffer.from(encodeBody({ key: key16, value: VALUE }));
  const getBody = oneFrame.subarray(11);
  const span: Span = { start: 0, end: 0 };
  const versioned = writeVersion(undefined, undefined, NODE_ID, Date.now(), VALUE);

  return runCases('codec', [
    {
      name: 'encodeFrame GET reply',
      batch: 1000,
      run(n) {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += encodeFrame(Opcode.GET, FrameFlag.REPLY, i, replyBody).length;
        sink += acc;
      },
      note: () => `frame ${11 + replyBody.length} B`,
    },
    {
      name: 'FrameDecoder.push 1 GET frame',
      batch: 1000,
      run(n) {
        for (let i = 0; i < n; i++) decoder.push(oneFrame);
      },
    },
    {
      name: 'FrameDecoder.push 16 GET frames',
      batch: 1024,
      run(n) {
        for (let i = 0; i < n; i += 16) decoder.push(sixteenFrames);
      },
      note: () => 'per frame',
    },
    {
      name: 'FrameDecoder.push frame in 2 chunks',
      batch: 1000,
      run(n) {
        for (let i = 0; i < n; i++) {
          decoder.push(firstHalf);
          decoder.push(secondHalf);
        }
      },
      note: () => 'joins the chunks',
    },
    {
      name: 'decodeBody PUT (16 B key, 100 B value)',
      batch: 1000,
      run(n) {
        for (let i = 0; i < n; i++) sinkObject = decodeBody(putBody, 0, putBody.length);
      },
    },
    {
      name: 'decodePutRequest(decodeBody(PUT))',
      batch: 1000,
      run(n) {
        for (let i = 0; i < n; i++) sinkObject = decodePutRequest(decodeBody(putBody, 0, putBody.length));
      },
    },
    {
      name: 'readGetKeyInPlace',
      batch: 10_000,
      run(n) {
        let acc = 0;
        for (let i = 0; i < n; i++) if (readGetKeyInPlace(getBody, 0, getBody.length, span)) acc += span.end;
        sink += acc;
      },
    },
    {
      name: 'GET reply: getReplyOf + encodeBodyShared',
      batch: 1000,
      run(n) {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += encodeBodyShared(getReplyOf(versioned)).length;
        sink += acc;
      },
      note: () => `body ${replyBody.length} B; the write path's encoding`,
    },
    {
      name: 'tokenOf 16 B key',
      batch: 10_000,
      run(n) {
        let acc = 0;
        for (let i = 0; i < n; i++) {
          key16[15] = i;
          acc ^= tokenOf(key16) & 0xffff;
        }
        sink += acc;
      },
    },
    {
      name: 'writeToken 16 B key (storeKey)',
      batch: 10_000,
      run(n) {
        for (let i = 0; i < n; i++) {
          key16[15] = i;
          writeToken(key16, 0, KEY_BYTES, tokenTarget, 0);
        }
        sink += tokenTarget[0]!;
      },
      note: () => 'the GET path: no 48-bit number',
    },
    {
      name: 'tokenOf 64 B key',
      batch: 10_000,
      run(n) {
        let acc = 0;
        for (let i = 0; i < n; i++) {
          key64[63] = i;
          acc ^= tokenOf(key64) & 0xffff;
        }
        sink += acc;
      },
    },
  ]).then((rows) => {
    if (frames === 0) throw new Error('the frame decoder handed over no frames');
    return rows;
  });
}

// writeToken must write exactly the bytes of writeUIntBE(tokenOf(key)): checked on seeded keys
// of every length up to 80 bytes before it is timed.
function checkWriteToken(): void {
  const keys = accessSequence(256, 4096, 3);
  const expected = Buffer.alloc(TOKEN_BYTES);
  const actual = Buffer.alloc(TOKEN_BYTES);
  for (let length = 0; length <= 80; length++) {
    const key = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i++) key[i] = keys[(length * 31 + i) & 4095]!;
    expected.writeUIntBE(tokenOf(key), 0, TOKEN_BYTES);
    writeToken(key, 0, length, actual, 0);
    if (!actual.equals(expected)) throw new Error(`writeToken differs from tokenOf for a ${length}-byte key`);
  }
}

function respSuite(): Promise<Row[]> {
  let commands = 0;
  const respSink: RespSink = {
    onCommand(args: RespArgs) {
      commands += args.count;
    },
  };
  const parser = new RespParser(respSink);
  const get = respCommand('GET', keyOf(12345));
  const set = respCommand('SET', keyOf(12345), VALUE);
  const get16 = Buffer.concat(Array.from({ length: 16 }, (_, i) => respCommand('GET', keyOf(i))));
  // A RESP GET reply copies the value out of the stored record, at an offset.
  const record = recordOf(VALUE);
  const valueSpan: Span = { start: 0, end: 0 };
  if (!readSingleValueInPlace(record, RECORD_HEADER_BYTES, record.length, valueSpan)) throw new Error('record shape');
  return runCases('resp', [
    {
      name: 'RespParser GET',
      batch: 1000,
      run(n) {
        for (let i = 0; i < n; i++) parser.push(get);
      },
      note: () => `${get.length} B command`,
    },
    {
      name: 'RespParser SET (100 B value)',
      batch: 1000,
      run(n) {
        for (let i = 0; i < n; i++) parser.push(set);
      },
      note: () => `${set.length} B command`,
    },
    {
      name: 'respBulk of a 100 B value in a record',
      batch: 1000,
      run(n) {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += respBulk(record, valueSpan.start, valueSpan.end).length;
        sink += acc;
      },
      note: () => `reply ${VALUE_BYTES + 8} B`,
    },
    {
      name: 'RespParser 16 pipelined GETs',
      batch: 1024,
      run(n) {
        for (let i = 0; i < n; i += 16) parser.push(get16);
      },
      note: () => 'per command',
    },
  ]).then((rows) => {
    if (commands === 0) throw new Error('the RESP parser handed over no commands');
    return rows;
  });
}

// A VersionedStore as dkvd builds it: lmdb behind the read cache, with writes made durable by
// the write-ahead log.
const logs = new Map<VersionedStore, WriteAheadLog>();

async function durableStore(dir: string): Promise<VersionedStore> {
  const engine = LmdbEngine.open(dir);
  const wal = await WriteAheadLog.open(join(dir, 'wal'), engine, createRootLogger('silent'));
  const cache = new RecordCache(limits.cacheBytesDefault, limits.cacheRecordBytesMax);
  const store = new VersionedStore(engine, NODE_ID, Date.now, wal, cache);
  logs.set(store, wal);
  return store;
}

// In dkvd's order: the store's waiting writes, the log, the engine.
async function closeStore(store: VersionedStore): Promise<void> {
  await store.flush();
  await logs.get(store)?.close();
  await store.engine.close();
}

async function storageSuite(): Promise<Row[]> {
  const count = 10_000;
  const dir = tempDir();
  const lmdb = await durableStore(dir);
  const memory = new VersionedStore(new MemoryEngine(), NODE_ID, Date.now, null);
  try {
    await loadThroughStore(lmdb, count);
    await loadThroughStore(memory, count);
    const keys = keysBuffer(count);
    const sequence = accessSequence(count, 1 << 16, 1);
    const mask = sequence.length - 1;
    const readCase = (name: string, store: VersionedStore): SyncCase => ({
      name,
      batch: 1000,
      run(n) {
        let acc = 0;
        for (let i = 0; i < n; i++) {
          const at = sequence[i & mask]! * KEY_BYTES;
          const record = store.readRecord(keys, at, at + KEY_BYTES);
          if (record !== undefined) acc += record.length;
        }
        if (acc === 0) throw new Error(`${name}: no records`);
        sink += acc;
      },
      note: () => '10k keys, random order',
    });
    const writes = 1000;
    const writeKeys = Array.from({ length: count }, (_, i) => keyOf(i));
    let next = 0;
    const writeCase = (name: string, store: VersionedStore, note: string): AsyncCase => ({
      name,
      opsPerCall: writes,
      async call() {
        const pending = [];
        for (let i = 0; i < writes; i++) pending.push(store.write(writeKeys[next++ % count]!, VALUE, undefined));
        await Promise.all(pending);
      },
      note: () => note,
    });
    return await runCases('storage', [
      readCase('lmdb readRecord', lmdb),
      readCase('memory readRecord', memory),
      writeCase('lmdb write, 1000 concurrent', lmdb, 'per write; one log fdatasync per batch'),
      writeCase('memory write, 1000 concurrent', memory, 'per write'),
    ]);
  } finally {
    await closeStore(lmdb);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function serverSuite(): Promise<Row[]> {
  const count = 10_000;
  const dir = tempDir();
  const store = await durableStore(dir);
  try {
    await loadThroughStore(store, count);
    const service = serviceOf(store);
    const spread = 1024;
    const step = Math.floor(count / spread);

    // Native: GET frames for 1024 keys spread over the data set, back to back in one buffer.
    const native = new CountingConnection((reply) => reply[5] === Opcode.GET);
    const nativeSession = new NativeSession(native as unknown as Connection, service);
    const frames = Buffer.concat(Array.from({ length: spread }, (_, i) => getFrameOf(keyOf(i * step), i + 1)));
    const frameBytes = frames.length / spread;
    const chunks16 = Array.from({ length: 64 }, (_, c) =>
      Buffer.concat(Array.from({ length: 16 }, (_, i) => getFrameOf(keyOf((c * 16 + i) * step), i + 1))),
    );
    nativeSession.onFrame(Opcode.GET, 0, 1, frames, 11, frameBytes);
    const nativeReplyBytes = native.lastReplyBytes;

    // RESP: the same keys as GET commands, one per buffer, as redis-benchmark -P 1 sends them.
    const resp = new CountingConnection((reply) => reply[0] === 0x24 /* '$' */ || reply[0] === 0x2b /* '+' */);
    const respSession = new RespSession(resp as unknown as Connection, service);
    const respGets = Array.from({ length: spread }, (_, i) => respCommand('GET', keyOf(i * step)));
    const respGets16 = Array.from({ length: 64 }, (_, c) =>
      Buffer.concat(Array.from({ length: 16 }, (_, i) => respCommand('GET', keyOf((c * 16 + i) * step)))),
    );
    respSession.push(respGets[0]!);
    const respReplyBytes = resp.lastReplyBytes;
    // RESP SET: 1000 pipelined commands in one chunk, answered once their flush is durable.
    const setCount = 1000;
    const respSets = Buffer.concat(Array.from({ length: setCount }, (_, i) => respCommand('SET', keyOf(i * 7), VALUE)));

    const rows = await runCases('server', [
      {
        name: 'native GET: NativeSession.onFrame',
        batch: 1024,
        run(n) {
          for (let i = 0; i < n; i++) {
            const at = (i & (spread - 1)) * frameBytes;
            nativeSession.onFrame(Opcode.GET, 0, i, frames, at + 11, at + frameBytes);
          }
        },
        note: () => `reply frame ${nativeReplyBytes} B`,
      },
      {
        name: 'native GET: push 16 frames',
        batch: 1024,
        run(n) {
          for (let i = 0; i < n; i += 16) nativeSession.push(chunks16[(i >> 4) & 63]!);
        },
        note: () => `per GET; reply frame ${nativeReplyBytes} B`,
      },
      {
        name: `reply alone: allocUnsafe(${nativeReplyBytes})`,
        batch: 1024,
        run(n) {
          let acc = 0;
          for (let i = 0; i < n; i++) acc += Buffer.allocUnsafe(nativeReplyBytes).length;
          sink += acc;
        },
        note: () => 'baseline for native GET',
      },
      {
        name: 'RESP GET: RespSession.push',
        batch: 1024,
        run(n) {
          for (let i = 0; i < n; i++) respSession.push(respGets[i & (spread - 1)]!);
        },
        note: () => `reply ${respReplyBytes} B`,
      },
      {
        name: 'RESP GET: push 16 pipelined',
        batch: 1024,
        run(n) {
          for (let i = 0; i < n; i += 16) respSession.push(respGets16[(i >> 4) & 63]!);
        },
        note: () => `per GET; reply ${respReplyBytes} B`,
      },
      {
        name: `reply alone: allocUnsafe(${respReplyBytes})`,
        batch: 1024,
        run(n) {
          let acc = 0;
          for (let i = 0; i < n; i++) acc += Buffer.allocUnsafe(respReplyBytes).length;
          sink += acc;
        },
        note: () => 'baseline for RESP GET',
      },
      {
        name: 'RESP SET: 1000 pipelined, lmdb',
        opsPerCall: setCount,
        async call() {
          const target = resp.replies + setCount;
          respSession.push(respSets);
          await resp.repliesReach(target);
        },
        note: () => 'per SET; reply is the shared +OK',
      },
    ]);
    native.assertClean('native GET');
    resp.assertClean('RESP GET/SET');
    if (service.stats.errors.size > 0) throw new Error(`server errors: ${[...service.stats.errors.keys()].join(', ')}`);
    printBeyondReply(rows, 'native GET: NativeSession.onFrame', `reply alone: allocUnsafe(${nativeReplyBytes})`, nativeReplyBytes);
    printBeyondReply(rows, 'native GET: push 16 frames', `reply alone: allocUnsafe(${nativeReplyBytes})`, nativeReplyBytes);
    printBeyondReply(rows, 'RESP GET: RespSession.push', `reply alone: allocUnsafe(${respReplyBytes})`, respReplyBytes);
    printBeyondReply(rows, 'RESP GET: push 16 pipelined', `reply alone: allocUnsafe(${respReplyBytes})`, respReplyBytes);
    return rows;
  } finally {
    await closeStore(store);
    rmSync(dir, { recursive: true, force: true });
  }
}

// The issue's requirement: a GET allocates nothing beyond its reply. The reply is a Buffer of
// `replyBytes`: its object on the heap and its bytes in the Buffer pool, measured alone as the
// baseline row.
function printBeyondReply(rows: Row[], pathName: string, baselineName: string, replyBytes: number): void {
  const path = rows.find((r) => r.name === pathName);
  const base = rows.find((r) => r.name === baselineName);
  if (path === undefined || base === undefined) return;
  const total = (path.heapBytesPerOp ?? 0) + (path.bufferBytesPerOp ?? 0);
  const reply = (base.heapBytesPerOp ?? 0) + (base.bufferBytesPerOp ?? 0);
  const beyond = total - reply;
  console.log(
    `  => ${pathName}: ${total.toFixed(1)} B allocated per request ` +
      `(heap ${path.heapBytesPerOp!.toFixed(1)} + buffers ${path.bufferBytesPerOp!.toFixed(1)}); ` +
      `reply ${replyBytes} B, which costs ${reply.toFixed(1)} B to allocate alone; ` +
      `beyond the reply: ${beyond.toFixed(1)} B/request${path.gcSeen || base.gcSeen ? ' (GC seen: unreliable)' : ''}`,
  );
}

// A least-recently-used cache as a real one must be: a map to nodes of a doubly linked list,
// moved to the front on every hit and evicted from the back. A hit allocates nothing.
interface LruNode {
  key: string;
  value: Buffer;
  prev: LruNode;
  next: LruNode;
}

class LinkedLru {
  private readonly map = new Map<string, LruNode>();
  private readonly head: LruNode;

  constructor(private readonly capacity: number) {
    const head = { key: '', value: VALUE, prev: null, next: null } as unknown as LruNode;
    head.prev = head;
    head.next = head;
    this.head = head;
  }

  get(key: string): Buffer | undefined {
    const node = this.map.get(key);
    if (node === undefined) return undefined;
    const head = this.head;
    if (head.next !== node) {
      node.prev.next = node.next;
      node.next.prev = node.prev;
      node.next = head.next;
      node.prev = head;
      head.next.prev = node;
      head.next = node;
    }
    return node.value;
  }

  set(key: string, value: Buffer): void {
    const head = this.head;
    const existing = this.map.get(key);
    if (existing !== undefined) {
      existing.value = value;
      this.get(key);
      return;
    }
    if (this.map.size >= this.capacity) {
      const oldest = head.prev;
      oldest.prev.next = head;
      head.prev = oldest.prev;
      this.map.delete(oldest.key);
    }
    const node: LruNode = { key, value, prev: head, next: head.next };
    head.next.prev = node;
    head.next = node;
    this.map.set(key, node);
  }
}

// The common JavaScript idiom: a Map's insertion order is the recency order; a hit deletes and
// re-inserts its key.
class MapLru {
  private readonly map = new Map<string, Buffer>();

  constructor(private readonly capacity: number) {}

  get(key: string): Buffer | undefined {
    const value = this.map.get(key);
    if (value === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, value);
    return value;
  }

  set(key: string, value: Buffer): void {
    this.map.delete(key);
    if (this.map.size >= this.capacity) this.map.delete(this.map.keys().next().value!);
    this.map.set(key, value);
  }
}

async function cacheSuite(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const count of [10_000, 1_000_000]) {
    const label = count >= 1_000_000 ? '1M' : `${count / 1000}k`;
    const dir = tempDir();
    const engine = LmdbEngine.open(dir);
    // Built before loading so that its start-up scan is empty; only readRecord is used here.
    const store = new VersionedStore(engine, NODE_ID, Date.now, null);
    // The same engine behind dkvd's read cache, with room for every key.
    const cache = new RecordCache(count * 256, limits.cacheRecordBytesMax);
    const cached = new VersionedStore(engine, NODE_ID, Date.now, null, cache);
    try {
      const started = Date.now();
      const records = await loadThroughEngine(engine, count);
      const keys = keysBuffer(count);
      const keyStrings = Array.from({ length: count }, (_, i) => keys.toString('latin1', i * KEY_BYTES, (i + 1) * KEY_BYTES));
      const linked = new LinkedLru(count);
      const mapLru = new MapLru(count);
      for (let i = 0; i < count; i++) {
        linked.set(keyStrings[i]!, records[i]!);
        mapLru.set(keyStrings[i]!, records[i]!);
      }
      records.length = 0;
      console.log(`  (${label}: loaded ${count} keys of ${VALUE_BYTES} B values into lmdb and both caches in ${Date.now() - started} ms)`);
      // What holding the hot set in the JS heap costs: heap size and a full collection's pause.
      // Both caches hold the same record buffers, so each one's share is about half.
      gc!();
      const gcStarted = process.hrtime.bigint();
      gc!();
      const fullGcMs = Number(process.hrtime.bigint() - gcStarted) / 1e6;
      const heapMiB = v8.getHeapStatistics().used_heap_size / 2 ** 20;
      const buffersMiB = process.memoryUsage().arrayBuffers / 2 ** 20;
      console.log(
        `  (${label}: with both caches the heap is ${heapMiB.toFixed(0)} MiB plus ${buffersMiB.toFixed(0)} MiB of buffers; ` +
          `a full GC takes ${fullGcMs.toFixed(0)} ms)`,
      );
      for (let i = 0; i < count; i++) cached.readRecord(keys, i * KEY_BYTES, (i + 1) * KEY_BYTES);
      const sequence = accessSequence(count, 1 << 20, 7);
      const mask = sequence.length - 1;
      const note = `${label} keys, all hits, random order`;
      rows.push(
        ...(await runCases('cache', [
          {
            name: `${label}: lmdb VersionedStore.readRecord`,
            batch: 1000,
            run(n) {
              let acc = 0;
              for (let i = 0; i < n; i++) {
                const at = sequence[i & mask]! * KEY_BYTES;
                acc += store.readRecord(keys, at, at + KEY_BYTES)!.length;
              }
              sink += acc;
            },
            note: () => note,
          },
          {
            name: `${label}: read cache, VersionedStore.readRecord`,
            batch: 1000,
            run(n) {
              let acc = 0;
              for (let i = 0; i < n; i++) {
                const at = sequence[i & mask]! * KEY_BYTES;
                acc += cached.readRecord(keys, at, at + KEY_BYTES)!.length;
              }
              sink += acc;
            },
            note: () => `dkvd's (record-cache.ts): ${cache.stats.misses} misses`,
          },
          {
            name: `${label}: linked LRU get, key string given`,
            batch: 1000,
            run(n) {
              let acc = 0;
              for (let i = 0; i < n; i++) acc += linked.get(keyStrings[sequence[i & mask]!]!)!.length;
              sink += acc;
            },
            note: () => 'best case: no key conversion',
          },
          {
            name: `${label}: linked LRU get, key from bytes`,
            batch: 1000,
            run(n) {
              let acc = 0;
              for (let i = 0; i < n; i++) {
                const at = sequence[i & mask]! * KEY_BYTES;
                acc += linked.get(keys.toString('latin1', at, at + KEY_BYTES))!.length;
              }
              sink += acc;
            },
            note: () => 'as a server must: key bytes -> string',
          },
          {
            name: `${label}: Map delete+set LRU get, key from bytes`,
            batch: 1000,
            run(n) {
              let acc = 0;
              for (let i = 0; i < n; i++) {
                const at = sequence[i & mask]! * KEY_BYTES;
                acc += mapLru.get(keys.toString('latin1', at, at + KEY_BYTES))!.length;
              }
              sink += acc;
            },
            note: () => 'the common idiom',
          },
        ])),
      );
      const nsOf = (name: string): number | undefined => rows.find((r) => r.name === `${label}: ${name}`)?.nsPerOp;
      const lmdbNs = nsOf('lmdb VersionedStore.readRecord');
      const cacheNs = nsOf('read cache, VersionedStore.readRecord');
      const lruNs = nsOf('linked LRU get, key from bytes');
      const mapNs = nsOf('Map delete+set LRU get, key from bytes');
      if (lmdbNs !== undefined && cacheNs !== undefined && lruNs !== undefined && mapNs !== undefined) {
        console.log(
          `  => ${label}: per hit in a warm loop, lmdb readRecord ${lmdbNs.toFixed(0)} ns; through dkvd's read cache ` +
            `${cacheNs.toFixed(0)} ns (${(lmdbNs / cacheNs).toFixed(1)}x faster); a linked LRU ${lruNs.toFixed(0)} ns ` +
            `(${(lmdbNs / lruNs).toFixed(1)}x faster, 32 B of key string per get); a Map delete+set LRU ${mapNs.toFixed(0)} ns ` +
            `(${(lmdbNs / mapNs).toFixed(1)}x). Not counted: keeping the cache coherent with writes, and the GC cost of ` +
            `its entries (above).`,
        );
      }
    } finally {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return rows;
}

// SWIM: datagrams as the UDP shell sees them. Ids and hosts the size of real ones (a hostname-like
// id, an IPv4 address); the deltas are ALIVEs, the largest membership record.
async function swimSuite(): Promise<Row[]> {
  const header = encodeDatagramHeader(null, false);
  const selfId = 'dkv-node-01.example';
  const target = Buffer.from('dkv-node-02.example');
  const deltas = [3, 4, 5].map((i) => encodeAlive(i, `dkv-node-0${i}.example`, `10.0.0.${i}`, 7946, 7947));
  const writer = new SwimWriter(limits.datagramBytesMax);
  const write = (seq: number, withDeltas: boolean, ack: boolean): Buffer => {
    writer.begin(header);
    if (ack) writer.ack(seq);
    else writer.ping(seq, target);
    if (withDeltas) for (const delta of deltas) writer.append(delta);
    return writer.finish();
  };
  const ping0 = write(1, false, false);
  const ping3 = write(1, true, false);
  const ack3 = write(1, true, true);

  const reader = new SwimReader();
  // Walks a datagram as the core does: every message checked, fixed fields read, no strings.
  const walk = (bytes: Buffer): number => {
    reader.reset(bytes, header.length, bytes.length);
    let acc = 0;
    let type: number;
    while ((type = reader.next()) > 0) {
      acc += reader.number;
      if (type === SwimMessageType.ALIVE) acc += reader.udpPort + reader.idBytes;
      else if (type === SwimMessageType.PING && reader.idEquals(target)) acc++;
    }
    if (type < 0) throw new Error('malformed datagram in the bench');
    return acc;
  };

  // A core that knows five members and has no news left to gossip: its answer to a PING is the
  // bare ACK, a datagram of header + 7 bytes.
  const directory = new MemberDirectory();
  const core = new SwimCore(swimConfig(), directory, { id: selfId, host: '10.0.0.1', udpPort: 7946, tcpPort: 7947 }, new SeededRandom(1), 0);
  for (let i = 2; i <= 6; i++) core.seedMember(directory.intern(`dkv-node-0${i}.example`, `10.0.0.${i}`, 7946, 7947), 0, 0);
  writer.begin(header);
  writer.ping(9, Buffer.from(selfId));
  const pingSelf = writer.finish();
  // The same PING carrying three ALIVEs the core already holds (stale news, as most gossip is).
  const knownDeltas = [2, 3, 4].map((i) => encodeAlive(0, `dkv-node-0${i}.example`, `10.0.0.${i}`, 7946, 7947));
  const pingSelf3 = Buffer.concat([pingSelf, ...knownDeltas]);
  for (let i = 0; i < 100 && core.gossipPending > 0; i++) {
    core.receive('10.0.0.2', 7946, pingSelf, 0);
    core.clearOutbox();
  }
  if (core.gossipPending !== 0) throw new Error('the core still has news to gossip');
  core.receive('10.0.0.2', 7946, pingSelf, 0);
  const ackBytes = core.outbox[0]!.bytes.length;
  if (core.outboxCount !== 1 || ackBytes !== header.length + 7) throw new Error(`expected one bare ACK, got ${core.outboxCount}`);
  core.clearOutbox();
  const packetsIn = core.stats.packetsIn;

  const rows = await runCases('swim', [
    {
      name: 'SWIM encode PING',
      batch: 1000,
      run(n) {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += write(i, false, false).length;
        sink += acc;
      },
      note: () => `datagram ${ping0.length} B`,
    },
    {
      name: 'SWIM encode PING + 3 ALIVE deltas',
      batch: 1000,
      run(n) {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += write(i, true, false).length;
        sink += acc;
      },
      note: () => `datagram ${ping3.length} B; deltas pre-encoded, as queued`,
    },
    {
      name: 'SWIM decode PING + 3 ALIVE (reader walk)',
      batch: 1000,
      run(n) {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += walk(ping3);
        sink += acc;
      },
    },
    {
      name: 'SWIM decode ACK + 3 ALIVE (reader walk)',
      batch: 1000,
      run(n) {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += walk(ack3);
        sink += acc;
      },
    },
    {
      name: 'SwimCore.receive PING -> ACK',
      batch: 1000,
      run(n) {
        for (let i = 0; i < n; i++) {
          core.receive('10.0.0.2', 7946, pingSelf, 0);
          core.clearOutbox();
        }
      },
      note: () => `ACK datagram ${ackBytes} B`,
    },
    {
      name: 'SwimCore.receive PING + 3 known ALIVEs -> ACK',
      batch: 1000,
      run(n) {
        for (let i = 0; i < n; i++) {
          core.receive('10.0.0.2', 7946, pingSelf3, 0);
          core.clearOutbox();
        }
      },
      note: () => 'stale news: ids and hosts decoded to strings',
    },
    {
      name: `ACK alone: allocUnsafe(${ackBytes})`,
      batch: 1000,
      run(n) {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += Buffer.allocUnsafe(ackBytes).length;
        sink += acc;
      },
      note: () => 'baseline for SwimCore.receive',
    },
  ]);
  if (core.stats.packetsIn === packetsIn || core.stats.packetsDropped !== 0 || core.gossipPending !== 0 || core.events.length !== 0) {
    throw new Error('the core did not answer every PING without news');
  }
  printBeyondReply(rows, 'SwimCore.receive PING -> ACK', `ACK alone: allocUnsafe(${ackBytes})`, ackBytes);
  printBeyondReply(rows, 'SwimCore.receive PING + 3 known ALIVEs -> ACK', `ACK alone: allocUnsafe(${ackBytes})`, ackBytes);
  return rows;
}

const suites: Record<SuiteName, () => Promise<Row[]>> = {
  codec: codecSuite,
  resp: respSuite,
  storage: storageSuite,
  server: serverSuite,
  cache: cacheSuite,
  swim: swimSuite,
};

// ---------------------------------------------------------------------------------------------
// Output

function formatCount(value: number): string {
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  return value.toFixed(0);
}

function formatBytes(value: number | null): string {
  if (value === null) return '-';
  // Below 0.5 B/op is measurement overhead amortised over the run, not an allocation.
  return Math.abs(value) < 0.5 ? '0' : value.toFixed(1);
}

function formatRow(row: Row): string {
  const total = row.heapBytesPerOp === null ? null : row.heapBytesPerOp + (row.bufferBytesPerOp ?? 0);
  return (
    `${row.name.padEnd(48)} ${formatCount(1e9 / row.nsPerOp).padStart(8)} ops/s ${row.nsPerOp.toFixed(1).padStart(9)} ns/op ` +
    `${formatBytes(total).padStart(8)} B/op (heap ${formatBytes(row.heapBytesPerOp)}, buf ${formatBytes(row.bufferBytesPerOp)})` +
    `${row.gcSeen ? ' GC SEEN' : ''}${row.note === '' ? '' : `  ${row.note}`}`
  );
}

function printTable(rows: Row[]): void {
  const header = ['suite', 'case', 'ops/s', 'ns/op', 'B/op', 'heap', 'buf', 'note'];
  const body = rows.map((r) => [
    r.suite,
    r.name,
    formatCount(1e9 / r.nsPerOp),
    r.nsPerOp.toFixed(1),
    formatBytes(r.heapBytesPerOp === null ? null : r.heapBytesPerOp + (r.bufferBytesPerOp ?? 0)),
    formatBytes(r.heapBytesPerOp),
    formatBytes(r.bufferBytesPerOp),
    `${r.gcSeen ? 'GC SEEN; ' : ''}${r.note}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const numeric = new Set([2, 3, 4, 5, 6]);
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
}

// ---------------------------------------------------------------------------------------------
// Main: the parent runs each suite in a child and prints the table; a child runs one suite.

async function child(name: SuiteName): Promise<void> {
  const rows = await suites[name]();
  process.send!(rows);
}

async function parent(names: SuiteName[]): Promise<void> {
  const started = Date.now();
  const script = fileURLToPath(import.meta.url);
  console.log(`dkv micro-benchmarks: node ${process.version}, child flags ${CHILD_FLAGS.join(' ')}`);
  console.log('ns/op is the median over tinybench samples; B/op = heap + buf (Buffer contents), per operation.');
  const rows: Row[] = [];
  for (const name of names) {
    console.log(`\n[${name}]`);
    const result = await new Promise<Row[]>((resolve, reject) => {
      let got: Row[] | null = null;
      const worker = fork(script, ['--suite', name], { execArgv: CHILD_FLAGS, stdio: 'inherit' });
      worker.on('message', (message) => {
        got = message as Row[];
      });
      worker.on('error', reject);
      worker.on('exit', (code) => {
        if (code === 0 && got !== null) resolve(got);
        else reject(new Error(`suite ${name} exited with code ${code}`));
      });
    });
    rows.push(...result);
  }
  console.log(`\nSummary (${((Date.now() - started) / 1000).toFixed(0)} s; a shared machine: expect noise)\n`);
  printTable(rows);
}

const argv = process.argv.slice(2);
const suiteFlag = argv.indexOf('--suite');
if (suiteFlag >= 0) {
  const name = argv[suiteFlag + 1] as SuiteName;
  if (!SUITES.includes(name)) throw new Error(`unknown suite ${name}`);
  await child(name);
} else {
  const names = argv.length === 0 ? [...SUITES] : (argv as SuiteName[]);
  for (const name of names) if (!SUITES.includes(name)) throw new Error(`unknown suite ${name}; suites: ${SUITES.join(', ')}`);
  await parent(names);
}
