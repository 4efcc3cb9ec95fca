// The server's GET path allocates nothing per request beyond its reply, which goes into the
// connection's output slab: checked here for both dialects, as dkvd builds its store (lmdb
// behind the read cache), so that a change that allocates per GET fails a test, not only a
// benchmark. What the optimizing compiler removes varies with the call sites it has seen: a
// closure in NativeSession.onFrame cost 50 bytes per GET in bench/micro.ts and nothing here, so
// the micro-benchmark stays the finer check.
import t from 'tap';
import { ClusterView } from '../../src/coordinator/cluster-view.js';
import { limits } from '../../src/lib/limits.js';
import { createRootLogger } from '../../src/lib/log.js';
import type { Connection } from '../../src/server/connection.js';
import { NativeSession } from '../../src/server/dispatch.js';
import { RespSession } from '../../src/server/resp-session.js';
import type { Service } from '../../src/server/service.js';
import { ServerStats } from '../../src/server/stats.js';
import { LmdbEngine } from '../../src/store/lmdb-engine.js';
import { RecordCache } from '../../src/store/record-cache.js';
import { VersionedStore } from '../../src/store/versioned-store.js';
import { Opcode } from '../../src/wire/codes.js';
import { encodeFrame } from '../../src/wire/frame.js';
import { encodeBody } from '../../src/wire/messages.js';
import { removeDir, tempDir } from '../helpers/dkvd.js';
import { heapBytesPerOp } from '../helpers/heap.js';

// The parts of Connection a GET uses; replies land in slabs as Connection's do.
class SlabConnection {
  readonly id = 1;
  name: string | null = null;
  replies = 0;
  outputSlab = Buffer.allocUnsafe(limits.connectionOutputSlabBytes);
  outputView = new DataView(this.outputSlab.buffer, this.outputSlab.byteOffset, this.outputSlab.length);
  private end = 0;
  reserve(bytes: number): number {
    if (this.outputSlab.length - this.end < bytes) {
      this.outputSlab = Buffer.allocUnsafe(limits.connectionOutputSlabBytes);
      this.outputView = new DataView(this.outputSlab.buffer, this.outputSlab.byteOffset, this.outputSlab.length);
      this.end = 0;
    }
    const at = this.end;
    this.end += bytes;
    this.replies++;
    return at;
  }
  send(): void {
    throw new Error('a GET of a small value is written in place');
  }
  requestStarted(): void {}
  requestFinished(): void {}
}

t.test('a GET allocates nothing beyond its reply, in either dialect', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const engine = LmdbEngine.open(dir);
  const store = new VersionedStore(engine, 'n1', Date.now, null, new RecordCache(1 << 20, limits.cacheRecordBytesMax));
  t.teardown(() => engine.close());
  const keys = 64;
  const value = Buffer.alloc(100, 0x61);
  for (let i = 0; i < keys; i++) await store.write(Buffer.from(`key-${i}`), value, undefined);
  const service = {
    nodeId: 'n1',
    store,
    stats: new ServerStats(0),
    log: createRootLogger('silent'),
    shuttingDown: false,
    cluster: new ClusterView('n1', { host: '127.0.0.1', tcpPort: 0 }, 3, 16),
  } as unknown as Service;

  const native = new SlabConnection();
  const nativeSession = new NativeSession(native as unknown as Connection, service);
  // Back to back in one buffer, as a chunk from a socket holds them.
  const frames = Array.from({ length: keys }, (_, i) => encodeFrame(Opcode.GET, 0, i + 1, Buffer.from(encodeBody({ key: Buffer.from(`key-${i}`) }))));
  const chunk = Buffer.concat(frames);
  const framePipelines = Array.from({ length: keys / 16 }, (_, i) => Buffer.concat(frames.slice(i * 16, i * 16 + 16)));
  const starts: number[] = [];
  for (let i = 0, at = 0; i < keys; at += frames[i]!.length, i++) starts.push(at);
  const resp = new SlabConnection();
  const respSession = new RespSession(resp as unknown as Connection, service);
  const commands = Array.from({ length: keys }, (_, i) => Buffer.from(`*2\r\n$3\r\nGET\r\n$${`key-${i}`.length}\r\nkey-${i}\r\n`));
  // 16 GETs a chunk, as a pipelining client sends them: their reads are prefetched together.
  const pipelines = Array.from({ length: keys / 16 }, (_, i) => Buffer.concat(commands.slice(i * 16, i * 16 + 16)));

  const ops = 20_000;
  let sink = 0;
  const perOp = (run: () => void): number => heapBytesPerOp(ops, run);
  const baseline = perOp(() => {
    for (let i = 0; i < ops; i++) sink += Buffer.allocUnsafe(8).length;
  });
  const nativeGet = perOp(() => {
    for (let i = 0; i < ops; i++) {
      const k = i % keys;
      nativeSession.onFrame(Opcode.GET, 0, i, chunk, starts[k]! + 11, starts[k]! + frames[k]!.length);
    }
  });
  const nativePipelinedGet = perOp(() => {
    for (let i = 0; i < ops / 16; i++) nativeSession.push(framePipelines[i % framePipelines.length]!);
  });
  const respGet = perOp(() => {
    for (let i = 0; i < ops; i++) respSession.push(commands[i % keys]!);
  });
  const respPipelinedGet = perOp(() => {
    for (let i = 0; i < ops / 16; i++) respSession.push(pipelines[i % pipelines.length]!);
  });
  t.equal(native.replies, resp.replies, 'every GET was answered in place');
  t.ok(native.replies >= 6 * ops);
  // A Buffer of its own is ~100 bytes of heap: a GET must cost a small fraction of one.
  t.ok(nativeGet < 16, `native GET: ${nativeGet.toFixed(1)} bytes of heap per GET (a Buffer: ${baseline.toFixed(0)})`);
  t.ok(nativePipelinedGet < 16, `native GET 16 to a chunk: ${nativePipelinedGet.toFixed(1)} bytes of heap per GET`);
  t.ok(respGet < 16, `RESP GET: ${respGet.toFixed(1)} bytes of heap per GET`);
  t.ok(respPipelinedGet < 16, `RESP GET 16 to a chunk: ${respPipelinedGet.toFixed(1)} bytes of heap per GET`);
  t.ok(store.cacheStats!.hits > 0, 'the reads came from the cache');
  t.ok(sink > 0);
});
