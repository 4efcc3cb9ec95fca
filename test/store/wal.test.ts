// The write-ahead log: replay, a torn tail, corruption, segment rotation.
import { appendFileSync, copyFileSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createRootLogger } from '../../src/lib/log.js';
import { MemoryEngine } from '../../src/store/memory-engine.js';
import { logEntry, WriteAheadLog } from '../../src/store/wal.js';
import { crc32 } from '../../src/lib/crc32.js';
import { limits } from '../../src/lib/limits.js';
import { removeDir, tempDir } from '../helpers/dkvd.js';

const log = createRootLogger('silent');
const b = (s: string): Buffer => Buffer.from(s);

t.test('records appended are replayed into the engine at the next open', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const wal = await WriteAheadLog.open(dir, new MemoryEngine(), log);
  await Promise.all([wal.append(b('k1'), b('r1')), wal.append(b('k2'), b('r2')), wal.append(b('k1'), b('r1b'))]);
  // What a crash leaves: the segment, not closed. (A clean close checkpoints and removes it.)
  copyFileSync(join(dir, '0000000001.log'), join(dir, 'crash.bak'));
  await wal.close();
  t.same(readdirSync(dir), ['crash.bak'], 'a clean close leaves no segment');
  renameSync(join(dir, 'crash.bak'), join(dir, '0000000001.log'));
  const engine = new MemoryEngine();
  const again = await WriteAheadLog.open(dir, engine, log);
  t.equal(engine.getRecord(b('k1'))?.toString(), 'r1b', 'the last record of a key wins');
  t.equal(engine.getRecord(b('k2'))?.toString(), 'r2');
  t.notOk(readdirSync(dir).includes('0000000001.log'), 'replayed segments are deleted');
  await again.close();
});

t.test('entries appended as ranges of shared buffers, adjacent or not, are written as they lie', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const wal = await WriteAheadLog.open(dir, new MemoryEngine(), log);
  // Two buffers of entries back to back, as the pending writes keep them; appended in an order
  // that extends a run, breaks it, and comes back to a buffer after another.
  const entries = Array.from({ length: 6 }, (_, i) => logEntry(b(`key${i}`), b(`record${i}`)));
  const first = Buffer.concat(entries.slice(0, 3));
  const second = Buffer.concat(entries.slice(3));
  const at = (i: number): [Buffer, number, number] => {
    const buffer = i < 3 ? first : second;
    const start = entries.slice(i < 3 ? 0 : 3, i).reduce((sum, entry) => sum + entry.length, 0);
    return [buffer, start, start + entries[i]!.length];
  };
  const order = [0, 1, 3, 4, 2, 5, 3];
  await Promise.all(order.map((i) => wal.appendBytes(...at(i))));
  t.equal(wal.stats.records, order.length);
  // The segment holds those entries in that order, and nothing else.
  const segment = readFileSync(join(dir, '0000000001.log'));
  t.same(segment.subarray(0, wal.stats.bytes), Buffer.concat(order.map((i) => entries[i]!)));
  t.ok(segment.subarray(wal.stats.bytes).every((byte) => byte === 0), 'and nothing after them');
  copyFileSync(join(dir, '0000000001.log'), join(dir, 'crash.bak'));
  await wal.close();
  renameSync(join(dir, 'crash.bak'), join(dir, '0000000001.log'));
  const engine = new MemoryEngine();
  const again = await WriteAheadLog.open(dir, engine, log);
  for (let i = 0; i < 6; i++) t.equal(engine.getRecord(b(`key${i}`))?.toString(), `record${i}`);
  await again.close();
});

t.test('a torn record at the end of the last segment is ignored', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const wal = await WriteAheadLog.open(dir, new MemoryEngine(), log);
  await wal.append(b('whole'), b('yes'));
  copyFileSync(join(dir, '0000000001.log'), join(dir, 'crash.bak'));
  await wal.close();
  renameSync(join(dir, 'crash.bak'), join(dir, '0000000001.log'));
  // A record header that promises more bytes than follow: a write cut short by a crash.
  appendFileSync(join(dir, '0000000001.log'), Buffer.from([0, 0, 0, 50, 1, 2, 3, 4, 0, 3, 0x6b]));
  const engine = new MemoryEngine();
  const again = await WriteAheadLog.open(dir, engine, log);
  t.equal(engine.getRecord(b('whole'))?.toString(), 'yes');
  await again.close();
});

t.test('a checksum mismatch before the last segment refuses to start', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const wal = await WriteAheadLog.open(dir, new MemoryEngine(), log);
  await wal.append(b('k'), b('v'));
  await wal.close();
  const bytes = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0, 1, 0x6b, 0x76]); // crc 0 is wrong
  writeFileSync(join(dir, '0000000001.log'), bytes);
  // A later segment with a good record: the bad one is not the end of the log.
  const payload = Buffer.from([0, 1, 0x6b, 0x77]);
  const good = Buffer.alloc(8 + payload.length);
  good.writeUInt32BE(payload.length, 0);
  good.writeUInt32BE(crc32(payload), 4);
  payload.copy(good, 8);
  writeFileSync(join(dir, '0000000002.log'), good);
  await t.rejects(WriteAheadLog.open(dir, new MemoryEngine(), log), { code: 'STORAGE_FAILED', message: /checksum/ });
});

t.test('a small batch syncs at least the sync gap after the last sync; a large one at once', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  // A gap far longer than the turns below take, so that the counts do not depend on timing.
  const gapMs = 500;
  const wal = await WriteAheadLog.open(dir, new MemoryEngine(), log, undefined, gapMs);
  let started = performance.now();
  await wal.append(b('k0'), b('r0'));
  t.equal(wal.stats.syncs, 1, 'a write on an idle log syncs at once');
  // Fewer than walSyncBatchMin writes, each in its own event-loop turn, right after that sync
  // started: without the gap each turn would start a sync of its own (two may run at once).
  const small = limits.walSyncBatchMin - 1;
  const appendInTurns = async (from: number, count: number): Promise<void> => {
    const writes: Promise<void>[] = [];
    for (let i = from; i < from + count; i++) {
      writes.push(wal.append(b(`k${i}`), b(`r${i}`)));
      await new Promise(setImmediate);
    }
    await Promise.all(writes);
  };
  await appendInTurns(1, small);
  t.equal(wal.stats.syncs, 2, `one sync more for ${small} writes in ${small} turns`);
  t.ok(performance.now() - started >= gapMs - 1, 'the gap after the first sync began');
  // walSyncBatchMin writes do not wait for the gap.
  started = performance.now();
  await appendInTurns(100, limits.walSyncBatchMin);
  t.ok(performance.now() - started < gapMs / 2, `${limits.walSyncBatchMin} writes synced without waiting out the gap`);
  t.equal(wal.stats.records, 1 + small + limits.walSyncBatchMin, 'every record synced');
  // A write left waiting for the gap is synced by close, not dropped.
  const last = wal.append(b('last'), b('r'));
  await wal.close();
  await last;
  t.equal(wal.stats.records, 2 + small + limits.walSyncBatchMin);
});

t.test('appends after close fail cleanly', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const wal = await WriteAheadLog.open(dir, new MemoryEngine(), log);
  await wal.close();
  await t.rejects(wal.append(b('k'), b('v')), { code: 'SHUTTING_DOWN' });
});

t.test('full segments are retired once the engine has flushed them', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const engine = new MemoryEngine();
  let checkpoints = 0;
  const wal = await WriteAheadLog.open(dir, engine, log, 1000);
  wal.useCheckpoint(async () => {
    checkpoints++;
  });
  for (let i = 0; i < 30; i++) await wal.append(b(`key${i}`), Buffer.alloc(100, i));
  // Retirements run after their segment's syncs: let them finish. What is left is the segment
  // being written and perhaps the one prepared after it.
  for (let i = 0; i < 50 && readdirSync(dir).length > 2; i++) await new Promise((r) => setTimeout(r, 10));
  t.ok(checkpoints >= 2, `${checkpoints} segments retired`);
  t.ok(readdirSync(dir).length <= 2, 'retired segments are gone');
  // What is left replays; the retired segments were in the engine already.
  const left = readdirSync(dir);
  for (const name of left) copyFileSync(join(dir, name), join(dir, `${name}.bak`));
  await wal.close();
  for (const name of left) renameSync(join(dir, `${name}.bak`), join(dir, name));
  const replayed = new MemoryEngine();
  const again = await WriteAheadLog.open(dir, replayed, log, 1000);
  t.equal(replayed.getRecord(b('key29'))?.length, 100, 'the newest record replays');
  await again.close();
});

t.test('a prepared segment: zeros end its records, and an empty one after a torn tail is no corruption', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const wal = await WriteAheadLog.open(dir, new MemoryEngine(), log, 4096);
  // Enough to move into prepared segments and fill part of one.
  for (let i = 0; i < 60; i++) await wal.append(b(`k${i}`), Buffer.alloc(100, i));
  const crashCopies = readdirSync(dir).filter((name) => name.endsWith('.log'));
  for (const name of crashCopies) copyFileSync(join(dir, name), join(dir, `${name}.bak`));
  await wal.close();
  for (const name of crashCopies) renameSync(join(dir, `${name}.bak`), join(dir, name));
  // A torn record where the zeros of the newest segment holding records begin.
  const withRecords = crashCopies.filter((name) => readFileSync(join(dir, name)).readUInt32BE(0) !== 0).sort();
  const newest = join(dir, withRecords.at(-1)!);
  const bytes = readFileSync(newest);
  let end = 0;
  while (end < bytes.length && bytes.readUInt32BE(end) !== 0) end += 8 + bytes.readUInt32BE(end);
  bytes.writeUInt32BE(50, end);
  bytes[end + 8] = 1;
  writeFileSync(newest, bytes);
  const engine = new MemoryEngine();
  const again = await WriteAheadLog.open(dir, engine, log, 4096);
  t.equal(engine.getRecord(b('k59'))?.[0], 59, 'every whole record replays');
  await again.close();
});
