// The pending writes against a plain Map of string keys, on random operations; walking a range of
// positions across chunks; what release() frees and what it keeps.
import fc from 'fast-check';
import t from 'tap';
import { PendingWrites } from '../../src/store/pending-writes.js';
import { LOG_ENTRY_KEY_START, logEntry } from '../../src/store/wal.js';

// Whether the write at `position` is its key's newest in the index.
function isNewest(pending: PendingWrites, position: number): boolean {
  const key = pending.key(position);
  return pending.find(key, 0, key.length) === position;
}

// Every position appended, in order, by walking from the first.
function walk(pending: PendingWrites, start: number, end: number): number[] {
  const seen: number[] = [];
  for (let at = pending.following(start); at < end && seen.length < 100_000; at = pending.next(at)) seen.push(at);
  return seen;
}

t.test('behaves like a Map keyed by the whole key', async (t) => {
  // Keys of two tags (store keys are at least four bytes long: they start with a token), so
  // that they probe past each other; records of varied sizes.
  const key = fc
    .tuple(fc.constantFrom(4, 5), fc.uint8Array({ minLength: 0, maxLength: 7 }))
    .map(([tag, tail]) => Buffer.concat([Buffer.from([1, 2, 3, tag]), tail]));
  const op = fc.tuple(fc.constantFrom('append', 'append', 'delete'), key, fc.nat(300));
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const pending = new PendingWrites(4);
      const model = new Map<string, number>();
      const appended: number[] = [];
      const replaced = new Set<number>();
      for (const [kind, k, size] of ops) {
        const name = k.toString('hex');
        if (kind === 'append') {
          const record = Buffer.alloc(size + 1, size & 0xff);
          const position = pending.append(k, record);
          if (pending.replaced !== (model.get(name) ?? -1)) return false;
          if (model.has(name)) replaced.add(model.get(name)!);
          if (appended.length > 0 && position <= appended.at(-1)!) return false;
          appended.push(position);
          model.set(name, position);
          // The bytes the log gets are the entry it would make itself.
          if (!pending.lastChunk.subarray(pending.lastStart, pending.lastEnd).equals(logEntry(k, record))) return false;
        } else {
          const position = model.get(name);
          if (position !== undefined) {
            pending.deleteIfNewest(position);
            model.delete(name);
          }
        }
        if (pending.size !== model.size) return false;
      }
      for (const [name, position] of model) {
        const k = Buffer.from(name, 'hex');
        if (pending.find(k, 0, k.length) !== position || !isNewest(pending, position)) return false;
        if (!pending.key(position).equals(k)) return false;
      }
      // Positions no longer in the index are not the newest, and deleting them changes nothing.
      for (const position of appended) {
        if (pending.wasReplaced(position) !== replaced.has(position)) return false;
        if (isNewest(pending, position) !== [...model.values()].includes(position)) return false;
        pending.deleteIfNewest(position);
      }
      return pending.size === 0 && walk(pending, 0, pending.end).join() === appended.join();
    }),
    { numRuns: 500 },
  );
  t.pass();
});

t.test('a table that grows, probes past other tags and closes the gaps deletes leave', async (t) => {
  // Tags that share their low bits (the table's home slots) but not their high ones, in a table
  // of four slots at first.
  const key = fc
    .tuple(fc.nat(7), fc.nat(3), fc.uint8Array({ minLength: 0, maxLength: 2 }))
    .map(([high, low, tail]) => Buffer.concat([Buffer.from([high, 0, 0, low]), tail]));
  const op = fc.tuple(fc.constantFrom('append', 'append', 'delete'), key);
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const pending = new PendingWrites(4);
      const model = new Map<string, number>();
      for (const [kind, k] of ops) {
        const name = k.toString('hex');
        if (kind === 'append') model.set(name, pending.append(k, Buffer.from(name)));
        else if (model.has(name)) {
          pending.deleteIfNewest(model.get(name)!);
          model.delete(name);
        }
        if (pending.size !== model.size) return false;
        for (const [other, position] of model) {
          const otherKey = Buffer.from(other, 'hex');
          if (pending.find(otherKey, 0, otherKey.length) !== position) return false;
          if (pending.record(position).toString() !== other) return false;
        }
        if (kind === 'delete' && pending.find(k, 0, k.length) !== -1) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

t.test('an older write of a key is not deleted in place of the newer', async (t) => {
  const pending = new PendingWrites();
  const key = Buffer.from('abcdk');
  const old = pending.append(key, Buffer.from('1'));
  const newer = pending.append(key, Buffer.from('2'));
  t.equal(pending.replaced, old);
  pending.deleteIfNewest(old);
  t.equal(pending.find(key, 0, key.length), newer);
  t.equal(pending.size, 1);
  t.notOk(isNewest(pending, old), 'the older write knows it was replaced');
  t.ok(isNewest(pending, newer));
});

t.test('a range of positions walks every write in order, across chunks and past entries bigger than a chunk', async (t) => {
  const pending = new PendingWrites();
  const sizes = [100, 5000, 700_000, 600_000, 3 << 20, 50, 900_000, 200, 2 << 20, 10];
  const positions = sizes.map((size, i) => pending.append(Buffer.from(`abcd${i}`), Buffer.alloc(size, i)));
  t.same(walk(pending, 0, pending.end), positions);
  // A batch's range starts where the one before ended: at the end of a chunk, too.
  const middle = pending.next(positions[3]!);
  t.same(walk(pending, middle, pending.end), positions.slice(4));
  t.same(walk(pending, positions[1]!, positions[5]!), positions.slice(1, 5));
  for (let i = 0; i < sizes.length; i++) {
    const record = pending.record(positions[i]!);
    t.ok(record.length === sizes[i] && record.every((byte) => byte === i), `write ${i} reads back`);
  }
});

t.test('release() drops whole chunks before a position, keeps the rest, and held views stay valid', async (t) => {
  const pending = new PendingWrites();
  const record = Buffer.alloc(1000, 7);
  const positions = Array.from({ length: 3000 }, (_, i) => pending.append(Buffer.from(`abcd${i}`), record));
  const bytes = pending.bytes;
  t.ok(bytes >= 3000 * (LOG_ENTRY_KEY_START + 5 + 1000), `${bytes} bytes held`);
  const heldView = pending.record(positions[0]!);
  for (const position of positions.slice(0, 2000)) pending.deleteIfNewest(position);
  pending.release(positions[2000]!);
  t.ok(pending.bytes < bytes && pending.bytes >= 1000 * 1000, `${pending.bytes} bytes held after releasing 2000 of 3000 writes`);
  t.same(walk(pending, positions[2000]!, pending.end), positions.slice(2000), 'the writes after the position are all there');
  t.ok(heldView.every((byte) => byte === 7), 'a view taken before still reads its record');
  for (const position of positions.slice(2000)) pending.deleteIfNewest(position);
  pending.release(pending.end);
  t.ok(pending.bytes <= 1 << 20, 'releasing everything keeps at most the chunk writes go to');
  const next = pending.append(Buffer.from('abcdnext'), record);
  t.ok(next >= positions.at(-1)!, 'positions keep growing');
  t.equal(pending.record(next).length, 1000);
});
