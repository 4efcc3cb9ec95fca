import { copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { limits } from '../../src/lib/limits.js';
import { createRootLogger } from '../../src/lib/log.js';
import type { StorageEngine } from '../../src/store/engine.js';
import { LmdbEngine } from '../../src/store/lmdb-engine.js';
import { MemoryEngine } from '../../src/store/memory-engine.js';
import { RecordCache } from '../../src/store/record-cache.js';
import { recordIsTombstone, VersionedStore } from '../../src/store/versioned-store.js';
import { WriteAheadLog } from '../../src/store/wal.js';
import { readContext } from '../../src/wire/messages.js';
import { removeDir, tempDir } from '../helpers/dkvd.js';

const b = (s: string): Buffer => Buffer.from(s);
const text = (x: Uint8Array | null | undefined): string | null => (x == null ? null : Buffer.from(x).toString());

interface Setup {
  engine: StorageEngine;
  cleanup: () => void;
  reopen?: () => StorageEngine;
  cache?: RecordCache;
}

const engines: Array<[string, () => Setup]> = [
  ['memory', () => ({ engine: new MemoryEngine(), cleanup: () => {} })],
  [
    'lmdb',
    () => {
      const dir = tempDir();
      return { engine: LmdbEngine.open(dir), cleanup: () => removeDir(dir), reopen: () => LmdbEngine.open(dir) };
    },
  ],
  [
    'lmdb with a read cache',
    () => {
      const dir = tempDir();
      return { engine: LmdbEngine.open(dir), cleanup: () => removeDir(dir), cache: new RecordCache(1 << 20, limits.cacheRecordBytesMax) };
    },
  ],
];

for (const [name, make] of engines) {
  t.test(`${name}: write, read, overwrite, delete`, async (t) => {
    const { engine, cleanup, cache } = make();
    t.teardown(cleanup);
    const store = new VersionedStore(engine, 'n1', () => 1000, null, cache);
    t.equal(store.read(b('k')), undefined);
    const first = await store.write(b('k'), b('v1'), undefined);
    t.equal(first.existed, false);
    t.same(readContext(first.context), [['n1', 1]]);
    t.equal(text(store.read(b('k'))!.siblings[0]!.value), 'v1');
    t.ok(store.exists(b('k')));
    t.equal(store.liveKeys, 1);

    const second = await store.write(b('k'), b('v2'), undefined);
    t.equal(second.existed, true);
    t.same(store.read(b('k'))!.siblings.map((s) => text(s.value)), ['v2']);

    const removed = await store.write(b('k'), null, undefined);
    t.equal(removed.existed, true);
    t.notOk(store.exists(b('k')));
    t.equal(store.liveKeys, 0);
    t.ok(recordIsTombstone(store.readRecord(b('k'), 0, 1)!), 'a tombstone is kept');
    await engine.close();
  });

  t.test(`${name}: concurrent writes to one key build on each other`, async (t) => {
    const { engine, cleanup, cache } = make();
    t.teardown(cleanup);
    const store = new VersionedStore(engine, 'n1', () => 1000, null, cache);
    // Issued in one turn: each must see the one before it though none is durable yet.
    const results = await Promise.all([1, 2, 3, 4, 5].map((i) => store.write(b('k'), b(`v${i}`), undefined)));
    t.same(
      results.map((r) => readContext(r.context)),
      [1, 2, 3, 4, 5].map((i) => [['n1', i]]),
    );
    t.same(store.read(b('k'))!.siblings.map((s) => text(s.value)), ['v5']);
    t.equal(store.pendingWrites, 0);
    await engine.close();
  });

  t.test(`${name}: a stale context keeps siblings`, async (t) => {
    const { engine, cleanup, cache } = make();
    t.teardown(cleanup);
    const store = new VersionedStore(engine, 'n1', () => 1000, null, cache);
    const base = await store.write(b('k'), b('base'), undefined);
    const ctx = readContext(base.context);
    await store.write(b('k'), b('x'), ctx);
    await store.write(b('k'), b('y'), ctx);
    t.same(store.read(b('k'))!.siblings.map((s) => text(s.value)).sort(), ['x', 'y']);
    await engine.close();
  });

  t.test(`${name}: the written value is copied`, async (t) => {
    const { engine, cleanup, cache } = make();
    t.teardown(cleanup);
    const store = new VersionedStore(engine, 'n1', () => 1000, null, cache);
    const value = b('abc');
    const pending = store.write(b('k'), value, undefined);
    value.fill(0x7a);
    await pending;
    t.equal(text(store.read(b('k'))!.siblings[0]!.value), 'abc');
    await engine.close();
  });
}

t.test('writeDurable: the same record as write(), without a context, also over siblings', async (t) => {
  const store = new VersionedStore(new MemoryEngine(), 'n1', () => 1000, null);
  const twin = new VersionedStore(new MemoryEngine(), 'n1', () => 1000, null);
  await store.writeDurable(b('k'), b('one'));
  await twin.write(b('k'), b('one'), undefined);
  t.same(store.read(b('k')), twin.read(b('k')), 'a first write');
  t.equal(store.liveKeys, 1);
  // Two writes from the same context make siblings: then the record is not the simple kind,
  // and writeDurable takes the general path.
  const context = readContext((await store.write(b('k'), b('two'), undefined)).context)!;
  await store.write(b('k'), b('three'), context);
  await store.write(b('k'), b('four'), context);
  t.equal(store.read(b('k'))!.siblings.length, 2, 'siblings');
  await store.writeDurable(b('k'), b('five'));
  t.same(store.read(b('k'))!.siblings.map((v) => text(v.value)), ['five'], 'a write without a context replaces them');
  await store.writeDurable(b('k'), null);
  t.notOk(store.exists(b('k')), 'and null deletes');
  t.equal(store.liveKeys, 0);
});

t.test('lmdb: records and the live-key count survive reopening', async (t) => {
  const [, make] = engines[1]!;
  const { engine, cleanup, reopen } = make();
  t.teardown(cleanup);
  const store = new VersionedStore(engine, 'n1', () => 1000, null);
  for (let i = 0; i < 100; i++) await store.write(b(`key${i}`), b(`value${i}`), undefined);
  await store.write(b('key7'), null, undefined);
  await engine.close();
  const again = new VersionedStore(reopen!(), 'n1', () => 1000, null);
  t.equal(again.liveKeys, 99);
  t.equal(text(again.read(b('key42'))!.siblings[0]!.value), 'value42');
  t.notOk(again.exists(b('key7')));
  await again.engine.close();
});

t.test('with a log: a large batch goes to the engine a slice per event-loop turn, and no write is lost', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const engine = new MemoryEngine();
  const wal = await WriteAheadLog.open(join(dir, 'wal'), engine, createRootLogger('silent'));
  const store = new VersionedStore(engine, 'n1', () => 1000, wal);
  const writes = limits.storeCommitSlice * 4 + 3;
  const puts: number[] = [];
  const putRecord = engine.putRecord.bind(engine);
  let turn = 0;
  const ticker = setInterval(() => turn++, 0);
  engine.putRecord = (key, record) => {
    puts.push(turn);
    return putRecord(key, record);
  };
  await Promise.all(Array.from({ length: writes }, (_, i) => store.write(b(`key${i}`), b(`v${i}`), undefined)));
  const flushing = store.flush();
  // Written while the batch is going in: the newer value must win.
  const rewrite = store.write(b('key0'), b('newer'), undefined);
  await flushing;
  await rewrite;
  await store.flush();
  clearInterval(ticker);
  t.ok(new Set(puts).size > 1, `the batch went in over ${new Set(puts).size} turns`);
  t.equal([...engine.records()].length, writes, 'the engine holds every key');
  // A store over the engine alone (nothing pending) reads what the engine has.
  const fromEngine = new VersionedStore(engine, 'n1', () => 1000, null);
  t.equal(text(fromEngine.read(b('key0'))!.siblings[0]!.value), 'newer', 'the write made during the commit wins');
  t.equal(text(fromEngine.read(b(`key${writes - 1}`))!.siblings[0]!.value), `v${writes - 1}`);
  t.equal(store.liveKeys, writes);
  await wal.close();
});

// Log segments of `wal` still on disk (a retirement unlinks its segment a little after its
// checkpoint): waits up to a second for there to be at most `atMost`.
async function segmentsOnDisk(dir: string, atMost: number): Promise<number> {
  for (let i = 0; i < 100 && readdirSync(dir).length > atMost; i++) await new Promise((r) => setTimeout(r, 10));
  return readdirSync(dir).length;
}

t.test('with a log: a full segment waits for the next commit instead of forcing one, and goes once it is done', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const engine = new MemoryEngine();
  const wal = await WriteAheadLog.open(dir, engine, createRootLogger('silent'), 1000);
  const store = new VersionedStore(engine, 'n1', () => 1000, wal);
  for (let i = 0; i < 30; i++) await store.write(b(`key${i}`), Buffer.alloc(100, i), undefined);
  // Segments that fill retire at their checkpoint: give them the time to.
  await new Promise((r) => setTimeout(r, 100));
  t.equal(store.commits, 0, 'filling segments committed nothing');
  t.ok(readdirSync(dir).length > 2, `the full segments wait (${readdirSync(dir).length} on disk)`);
  await store.flush();
  t.equal(store.commits, 1, 'one commit');
  t.ok((await segmentsOnDisk(dir, 2)) <= 2, 'then the full segments go');
  await wal.close();
});

t.test('with a log: when the engine fails to commit, the log keeps every segment, and they replay', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const engine = new MemoryEngine();
  engine.putRecord = () => Promise.reject(new Error('disk on fire'));
  const log = createRootLogger('silent');
  const wal = await WriteAheadLog.open(dir, engine, log, 1000);
  const store = new VersionedStore(engine, 'n1', () => 1000, wal);
  // Writes that fill several of the pending writes' chunks.
  for (let i = 0; i < 30; i++) await store.write(b(`key${i}`), Buffer.alloc(100_000, i), undefined);
  const onDisk = readdirSync(dir).length;
  await store.flush();
  await t.rejects(store.write(b('later'), b('v'), undefined), { code: 'STORAGE_FAILED' }, 'the store refuses writes');
  let readable = 0;
  for (let i = 0; i < 30; i++) if (store.read(b(`key${i}`))?.siblings[0]?.value?.[0] === i) readable++;
  t.equal(readable, 30, 'reads still find the writes the engine did not take');
  t.equal(await segmentsOnDisk(dir, 2), onDisk, 'no segment went');
  const replayed = new MemoryEngine();
  const again = await WriteAheadLog.open(dir, replayed, log, 1000);
  const fromLog = new VersionedStore(replayed, 'n1', () => 1000, null);
  let replayedKeys = 0;
  for (let i = 0; i < 30; i++) if (fromLog.read(b(`key${i}`))?.siblings[0]?.value?.[0] === i) replayedKeys++;
  t.equal(replayedKeys, 30, 'every write replays');
  await again.close();
});

// A store over a memory engine, with a log in a directory of its own; the number of keys in its
// open batch; and a promise that settles once every commit started so far has.
async function storeWithLog(test: { teardown(fn: () => void): void }, engine: StorageEngine = new MemoryEngine()) {
  const dir = tempDir();
  test.teardown(() => removeDir(dir));
  const wal = await WriteAheadLog.open(dir, engine, createRootLogger('silent'));
  const store = new VersionedStore(engine, 'n1', () => 1000, wal);
  const internals = store as unknown as { uncommittedKeys: number; committed: Promise<void> };
  return { dir, engine, wal, store, open: () => internals.uncommittedKeys, committed: () => internals.committed };
}

// A memory engine whose commits wait until release() lets them go.
function gatedEngine(): { engine: MemoryEngine; release: () => void } {
  const memory = new MemoryEngine();
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const engine = Object.assign(Object.create(memory) as MemoryEngine, {
    putRecord: (key: Uint8Array, record: Uint8Array) => gate.then(() => memory.putRecord(key, record)),
  });
  return { engine, release };
}

t.test('with a log: a batch goes to the engine once storeCommitBatchMax keys wait, however often they are rewritten', async (t) => {
  const { engine, wal, store, open } = await storeWithLog(t);
  const keys = limits.storeCommitBatchMax;
  await Promise.all(Array.from({ length: keys - 1 }, (_, i) => store.write(b(`key${i}`), b('v'), undefined)));
  await Promise.all(Array.from({ length: 5000 }, (_, i) => store.write(b(`key${i % 10}`), b(`v${i}`), undefined)));
  t.equal(open(), keys - 1, 'rewrites of waiting keys start no batch');
  t.equal(store.commits, 0);
  await store.write(b('one more'), b('v'), undefined);
  t.equal(open(), 0, 'the key that fills the batch starts it');
  await store.flush();
  t.equal(store.commits, 1, 'one batch');
  t.equal(store.committedWrites, keys, 'which held each key once');
  t.equal(store.pendingWrites, 0);
  const fromEngine = new VersionedStore(engine, 'n1', () => 1000, null);
  t.equal(text(fromEngine.read(b('key9'))!.siblings[0]!.value), 'v4999', 'with its newest write');
  await wal.close();
});

t.test('with a log: writes of a few keys go to the engine once they take storeCommitBatchBytesMax, and their memory goes', async (t) => {
  const { engine, wal, store, open, committed } = await storeWithLog(t);
  const value = Buffer.alloc(limits.valueBytesMax, 0x61);
  const writes = Math.ceil(limits.storeCommitBatchBytesMax / limits.valueBytesMax);
  for (let i = 0; i < writes - 1; i++) await store.write(b(`key${i % 2}`), value, undefined);
  t.equal(store.commits, 0, 'no batch yet');
  t.ok(store.pendingBytes >= (writes - 1) * limits.valueBytesMax, `${store.pendingBytes} bytes wait`);
  await store.write(b('key0'), Buffer.alloc(limits.valueBytesMax, 0x62), undefined);
  t.equal(open(), 0, 'the write that fills the batch starts it');
  await committed();
  t.equal(store.commits, 1, 'one batch');
  t.equal(store.committedWrites, 2, 'of the two keys');
  t.ok(store.pendingBytes <= 2 * limits.valueBytesMax, `${store.pendingBytes} bytes still held`);
  const fromEngine = new VersionedStore(engine, 'n1', () => 1000, null);
  t.equal(fromEngine.read(b('key0'))!.siblings[0]!.value![0], 0x62, 'with its newest write');
  await wal.close();
});

t.test('with a log: past storePendingBytesMax, writers wait for the commits under way instead of starting one each', async (t) => {
  const { engine, release } = gatedEngine();
  const { wal, store } = await storeWithLog(t, engine);
  const value = Buffer.alloc(limits.valueBytesMax, 0x62);
  const writes = Math.ceil(limits.storePendingBytesMax / limits.valueBytesMax) + 20;
  let durable = 0;
  const all = Array.from({ length: writes }, (_, i) => store.write(b(`key${i}`), value, undefined).then(() => durable++));
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.ok(durable < writes, `${durable} of ${writes} writes durable while the engine holds its commits`);
  t.ok(store.commits <= 4, `${store.commits} commits started, not one a write`);
  release();
  await Promise.all(all);
  t.equal(durable, writes, 'every write is durable once the engine commits');
  await store.flush();
  t.equal(store.pendingWrites, 0);
  t.equal(store.read(b(`key${writes - 1}`))!.siblings[0]!.value![0], 0x62);
  await wal.close();
});

t.test('with a log: a write made while others wait for the engine goes to the log after them', async (t) => {
  const { engine, release } = gatedEngine();
  const { dir, wal, store } = await storeWithLog(t, engine);
  const bound = limits.storePendingWritesMax;
  await Promise.all(Array.from({ length: bound - 1 }, (_, i) => store.write(b(`key${i}`), b('v'), undefined)));
  const first = store.write(b('twice'), b('first'), undefined);
  release();
  // The commits drop keys from the pending index before they settle: a write made then is under
  // the bound, but the one above still waits.
  for (let i = 0; i < 100_000 && store.pendingWrites >= bound; i++) await new Promise(setImmediate);
  t.ok(store.pendingWrites < bound, 'the pending writes went under the bound');
  await Promise.all([first, store.write(b('twice'), b('second'), undefined)]);
  // What a crash would leave: a copy of the log's segments, replayed.
  const copy = tempDir();
  t.teardown(() => removeDir(copy));
  for (const name of readdirSync(dir)) copyFileSync(join(dir, name), join(copy, name));
  const replayed = new MemoryEngine();
  await (await WriteAheadLog.open(copy, replayed, createRootLogger('silent'))).close();
  t.equal(text(new VersionedStore(replayed, 'n1', () => 1000, null).read(b('twice'))!.siblings[0]!.value), 'second', 'the log replays to the newer write');
  await wal.close();
});

t.test('with a log and a small read cache: every read sees the newest acknowledged write', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const engine = LmdbEngine.open(join(dir, 'lmdb'));
  const wal = await WriteAheadLog.open(join(dir, 'wal'), engine, createRootLogger('silent'));
  // Small enough that entries are overwritten and keys share index slots.
  const cache = new RecordCache(64 << 10, limits.cacheRecordBytesMax, 512);
  const store = new VersionedStore(engine, 'n1', () => 1000, wal, cache);
  const keys = 300;
  const newest = new Map<number, string>();
  let seed = 7;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  let checked = 0;
  const check = (k: number): void => {
    const read = store.read(b(`key${k}`));
    const live = read !== undefined && read.siblings.some((s) => s.value !== null);
    const expected = newest.get(k);
    if (expected === undefined) {
      if (live) t.fail(`key${k} should not be live`);
    } else if (!live || text(read!.siblings.find((s) => s.value !== null)!.value) !== expected) {
      t.fail(`key${k}: expected ${expected.slice(0, 12)}`);
    }
    checked++;
  };
  const prefetch = (ks: number[]): void => {
    const bytes = Buffer.from(ks.map((k) => `key${k}`).join(''));
    const starts = new Int32Array(ks.length);
    const ends = new Int32Array(ks.length);
    for (let i = 0, at = 0; i < ks.length; at = ends[i]!, i++) {
      starts[i] = at;
      ends[i] = at + `key${ks[i]}`.length;
    }
    store.prefetchReads(bytes, (_, into, intoEnds, writes) => {
      into.set(starts);
      intoEnds.set(ends);
      // Some marked as writes, so that the pending index is prefetched too.
      for (let i = 0; i < ks.length; i++) writes[i] = ks[i]! % 2;
      return ks.length;
    });
  };
  for (let round = 0; round < 40; round++) {
    const writes: Array<Promise<unknown>> = [];
    for (let i = 0; i < 25; i++) {
      const k = next(keys);
      if (next(10) === 0) {
        newest.delete(k);
        writes.push(store.write(b(`key${k}`), null, undefined));
      } else {
        // Now and then a record too large for the cache, which must then forget the key.
        const size = next(20) === 0 ? limits.cacheRecordBytesMax : next(200);
        const value = `v${round}.${i}.${'x'.repeat(size)}`;
        newest.set(k, value);
        writes.push(store.write(b(`key${k}`), b(value), undefined));
      }
    }
    // A read sees a write as soon as it is made, in flight or acknowledged.
    for (let i = 0; i < 50; i++) check(next(keys));
    await Promise.all(writes);
    // Some rounds hand the batch to lmdb, so that reads go from pending writes to lmdb and back.
    if (round % 3 === 0) await store.flush();
    for (let i = 0; i < 150; i++) {
      if (i % 16 === 0) prefetch(Array.from({ length: 16 }, () => next(keys)));
      check(next(keys));
    }
  }
  t.equal(checked, 8000);
  t.ok(cache.stats.hits > 0 && cache.stats.fills > cache.stats.hits / 100, `the cache served reads (${JSON.stringify(cache.stats)})`);
  await wal.close();
  await engine.close();
});

t.test('with a read cache: a key with no record is remembered as such until it is written', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const engine = LmdbEngine.open(dir);
  t.teardown(() => engine.close());
  const cache = new RecordCache(1 << 20, limits.cacheRecordBytesMax);
  const store = new VersionedStore(engine, 'n1', () => 1000, null, cache);
  let lookups = 0;
  const getRecord = engine.getRecord.bind(engine);
  engine.getRecord = (key) => {
    lookups++;
    return getRecord(key);
  };
  t.equal(store.read(b('absent')), undefined);
  t.equal(lookups, 1, 'the first read asks lmdb');
  t.equal(store.read(b('absent')), undefined);
  t.equal(store.exists(b('absent')), false);
  t.equal(lookups, 1, 'later reads stop at the cache');
  t.equal(cache.stats.hits, 2);
  await store.write(b('absent'), b('now here'), undefined);
  t.equal(lookups, 1, 'the write found that there was nothing to build on in the cache');
  t.equal(text(store.read(b('absent'))!.siblings[0]!.value), 'now here');
  // A record too large for the cache takes the place of the remembered absence too.
  await store.write(b('other'), null, undefined);
  t.equal(store.read(b('big')), undefined);
  await store.write(b('big'), Buffer.alloc(limits.cacheRecordBytesMax, 0x62), undefined);
  t.equal(store.read(b('big'))!.siblings[0]!.value!.length, limits.cacheRecordBytesMax);
});
