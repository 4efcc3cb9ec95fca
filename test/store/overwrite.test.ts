// The overwrite fast path must write exactly the record the general path writes.
import fc from 'fast-check';
import t from 'tap';
import { overwrite } from '../../src/store/overwrite.js';
import { encodeRecord } from '../../src/store/versioned-store.js';
import { writeVersion, type Clock, type Versioned } from '../../src/version/dvv.js';

const nodes = ['n1', 'node-with-a-rather-long-identifier-0123456789', 'other'];

// A history of writes: [node, value or null, whether to pass the current clock as context].
const history = fc.array(
  fc.tuple(fc.constantFrom(...nodes), fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null }), fc.boolean()),
  { maxLength: 8 },
);

t.test('overwrite matches encodeRecord(writeVersion(...)) or declines', async (t) => {
  let taken = 0;
  let declined = 0;
  fc.assert(
    fc.property(
      history,
      fc.constantFrom(...nodes),
      fc.option(fc.uint8Array({ maxLength: 70_000 }), { nil: null }),
      fc.oneof(fc.nat(200), fc.integer({ min: 0, max: 2 ** 45 })),
      (writes, node, value, tsMs) => {
        let current: Versioned | undefined;
        for (const [by, v, withContext] of writes) {
          const context: Clock | undefined = withContext ? current?.clock : [];
          current = writeVersion(current, context, by, 1, v);
        }
        const before = current === undefined ? undefined : encodeRecord(current);
        const fast = overwrite(before, Buffer.from(node), tsMs, value);
        if (fast === undefined) {
          declined++;
          return current !== undefined && current.clock.some(([id]) => id !== node);
        }
        taken++;
        const expected = encodeRecord(writeVersion(current, undefined, node, tsMs, value));
        const context = fast.record.subarray(fast.contextStart, fast.contextEnd);
        const expectedExisted = current !== undefined && current.siblings.some((s) => s.value !== null);
        return (
          fast.record.equals(expected) &&
          fast.existed === expectedExisted &&
          Buffer.from(context).equals(Buffer.from(encodeContextOf(expected)))
        );
      },
    ),
    { numRuns: 3000 },
  );
  t.ok(taken > 100, `fast path taken ${taken} times`);
  t.ok(declined > 100, `declined ${declined} times`);
});

// The context bytes inside a record: the bin after "context".
function encodeContextOf(record: Buffer): Uint8Array {
  const at = record.indexOf(Buffer.from('context')) + 'context'.length;
  return record.subarray(at + 2, at + 2 + record[at + 1]!);
}
