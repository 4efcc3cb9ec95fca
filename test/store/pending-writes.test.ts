// The pending-write index against a plain Map of string keys, on random operations; an entry a
// newer write of its key replaced is marked superseded. Entries hold their keys at varied offsets
// of their buffers, as log entries do at LOG_ENTRY_KEY_START.
import fc from 'fast-check';
import t from 'tap';
import { PendingWrites, pendingKey, pendingRecord, pendingWrite, type PendingWrite } from '../../src/store/pending-writes.js';

// An entry of `key` and `record`, `offset` bytes into its buffer.
function entryOf(key: Buffer, record: Buffer, offset = 0): PendingWrite {
  return pendingWrite(Buffer.concat([Buffer.alloc(offset, 0xff), key, record]), offset, offset + key.length);
}

t.test('behaves like a Map keyed by the whole key', async (t) => {
  // Two slots (store keys are at least four bytes long: they start with a token), so that keys
  // share them.
  const key = fc
    .tuple(fc.constantFrom(4, 5), fc.uint8Array({ minLength: 0, maxLength: 7 }))
    .map(([slot, tail]) => Buffer.concat([Buffer.from([1, 2, 3, slot]), tail]));
  const op = fc.tuple(fc.constantFrom('set', 'delete'), key, fc.nat(12));
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const index = new PendingWrites();
      const model = new Map<string, PendingWrite>();
      for (const [kind, k, offset] of ops) {
        const name = k.toString('hex');
        if (kind === 'set') {
          const entry = entryOf(k, Buffer.from(name), offset);
          if (!pendingKey(entry).equals(k) || pendingRecord(entry).toString() !== name) return false;
          const older = model.get(name);
          index.set(entry);
          model.set(name, entry);
          if (older !== undefined && (!older.superseded || index.isNewest(older))) return false;
        } else {
          const entry = model.get(name);
          if (entry !== undefined) {
            index.deleteIfNewest(entry);
            model.delete(name);
          }
        }
        if (index.size !== model.size) return false;
      }
      for (const [name, entry] of model) {
        if (index.get(Buffer.from(name, 'hex')) !== entry || !index.isNewest(entry) || entry.superseded) return false;
      }
      return true;
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
  const op = fc.tuple(fc.constantFrom('set', 'set', 'delete'), key);
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const index = new PendingWrites(4);
      const model = new Map<string, PendingWrite>();
      for (const [kind, k] of ops) {
        const name = k.toString('hex');
        if (kind === 'set') {
          const entry = entryOf(k, Buffer.from(name), 10);
          index.set(entry);
          model.set(name, entry);
        } else if (model.has(name)) {
          index.deleteIfNewest(model.get(name)!);
          model.delete(name);
        }
        if (index.size !== model.size) return false;
        for (const [other, entry] of model) if (index.get(Buffer.from(other, 'hex')) !== entry) return false;
        if (kind === 'delete' && index.get(k) !== undefined) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

t.test('an older entry of a key is not deleted in place of the newer', async (t) => {
  const index = new PendingWrites();
  const old = entryOf(Buffer.from('abcdk'), Buffer.from('1'));
  const newer = entryOf(Buffer.from('abcdk'), Buffer.from('2'), 10);
  index.set(old);
  index.set(newer);
  index.deleteIfNewest(old);
  t.equal(index.get(Buffer.from('abcdk')), newer);
  t.equal(index.size, 1);
  t.ok(old.superseded, 'the older entry knows it was replaced');
  t.notOk(newer.superseded);
});
