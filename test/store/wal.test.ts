// The write-ahead log: replay, a torn tail, corruption, segment rotation.
import { appendFileSync, copyFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createRootLogger } from '../../src/lib/log.js';
import { MemoryEngine } from '../../src/store/memory-engine.js';
import { WriteAheadLog } from '../../src/store/wal.js';
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
  t.same(readdirSync(dir), ['0000000002.log'], 'replayed segments are deleted');
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
  writeFileSync(join(dir, '0000000002.log'), Buffer.alloc(0));
  await t.rejects(WriteAheadLog.open(dir, new MemoryEngine(), log), { code: 'STORAGE_FAILED', message: /checksum/ });
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
  // Retirements run after their segment's syncs: let them finish.
  for (let i = 0; i < 50 && readdirSync(dir).length > 1; i++) await new Promise((r) => setTimeout(r, 10));
  t.ok(checkpoints >= 2, `${checkpoints} segments retired`);
  t.same(readdirSync(dir).length, 1, 'only the segment being written is left');
  // What the last segment holds replays; the retired ones were in the engine already.
  const crashCopy = readdirSync(dir)[0]!;
  copyFileSync(join(dir, crashCopy), join(dir, 'crash.bak'));
  await wal.close();
  renameSync(join(dir, 'crash.bak'), join(dir, crashCopy));
  const replayed = new MemoryEngine();
  const again = await WriteAheadLog.open(dir, replayed, log, 1000);
  t.equal(replayed.getRecord(b('key29'))?.length, 100, 'the newest record replays');
  await again.close();
});
