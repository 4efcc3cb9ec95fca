// The pending-write index against a plain Map of string keys, on random operations; an entry a
// newer write of its key replaced is marked superseded.
import fc from 'fast-check';
import t from 'tap';
import { PendingWrites, type PendingWrite } from '../../src/store/pending-writes.js';

t.test('behaves like a Map keyed by the whole key', async (t) => {
  // Few distinct first bytes, so that keys share slots.
  const key = fc.uint8Array({ minLength: 0, maxLength: 7 }).map((tail) => Buffer.concat([Buffer.from([1, 2, 3]), tail]));
  const op = fc.tuple(fc.constantFrom('set', 'delete'), key);
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const index = new PendingWrites();
      const model = new Map<string, PendingWrite>();
      for (const [kind, k] of ops) {
        const name = k.toString('hex');
        if (kind === 'set') {
          const entry = { storeKey: k, record: Buffer.from(name), superseded: false };
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

t.test('an older entry of a key is not deleted in place of the newer', async (t) => {
  const index = new PendingWrites();
  const old = { storeKey: Buffer.from('abcdk'), record: Buffer.from('1'), superseded: false };
  const newer = { storeKey: Buffer.from('abcdk'), record: Buffer.from('2'), superseded: false };
  index.set(old);
  index.set(newer);
  index.deleteIfNewest(old);
  t.equal(index.get(Buffer.from('abcdk')), newer);
  t.equal(index.size, 1);
  t.ok(old.superseded, 'the older entry knows it was replaced');
  t.notOk(newer.superseded);
});
