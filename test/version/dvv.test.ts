import fc from 'fast-check';
import t from 'tap';
import { isTombstone, joinClocks, winnerOf, writeVersion, type Versioned } from '../../src/version/dvv.js';
import { limits } from '../../src/lib/limits.js';

const v = (s: string): Uint8Array => Buffer.from(s);
const live = (x: Versioned): string[] =>
  x.siblings.filter((s) => s.value !== null).map((s) => Buffer.from(s.value!).toString());

t.test('a write without a context overwrites', async (t) => {
  const a = writeVersion(undefined, undefined, 'n1', 1, v('a'));
  const b = writeVersion(a, undefined, 'n1', 2, v('b'));
  t.same(live(b), ['b']);
  t.same(b.clock, [['n1', 2]]);
});

t.test('writes with the same stale context become siblings; a merged context resolves them', async (t) => {
  const base = writeVersion(undefined, undefined, 'n1', 1, v('base'));
  const x = writeVersion(base, base.clock, 'n1', 2, v('x'));
  const y = writeVersion(x, base.clock, 'n1', 3, v('y'));
  t.same(live(y).sort(), ['x', 'y'], 'both concurrent writes kept');
  const resolved = writeVersion(y, y.clock, 'n1', 4, v('xy'));
  t.same(live(resolved), ['xy']);
});

t.test('a context from another node covers only what it saw', async (t) => {
  const a = writeVersion(undefined, undefined, 'n1', 1, v('a'));
  const b = writeVersion(a, [['n2', 5]], 'n1', 2, v('b'));
  t.same(live(b).sort(), ['a', 'b']);
  t.same(b.clock, [['n1', 2], ['n2', 5]]);
});

t.test('delete leaves a tombstone; a concurrent delete stays a sibling', async (t) => {
  const a = writeVersion(undefined, undefined, 'n1', 1, v('a'));
  const gone = writeVersion(a, undefined, 'n1', 2, null);
  t.ok(isTombstone(gone));
  t.equal(winnerOf(gone), undefined);
  const concurrent = writeVersion(a, [], 'n1', 3, null);
  t.notOk(isTombstone(concurrent));
  t.same(live(concurrent), ['a']);
  t.equal(concurrent.siblings.length, 2);
});

t.test('the winner is the latest timestamp, then node, then counter', async (t) => {
  const value: Versioned = {
    clock: [],
    siblings: [
      { node: 'b', counter: 1, tsMs: 10, value: v('b1') },
      { node: 'a', counter: 9, tsMs: 20, value: v('a9') },
      { node: 'c', counter: 1, tsMs: 20, value: v('c1') },
      { node: 'z', counter: 1, tsMs: 99, value: null },
    ],
  };
  t.equal(Buffer.from(winnerOf(value)!.value!).toString(), 'c1');
});

t.test('siblings are capped with a typed error', async (t) => {
  let value = writeVersion(undefined, undefined, 'n1', 0, v('0'));
  for (let i = 1; i < limits.siblingsMax; i++) value = writeVersion(value, [], 'n1', i, v(String(i)));
  t.equal(value.siblings.length, limits.siblingsMax);
  t.throws(
    () => writeVersion(value, [], 'n1', 99, v('one too many')),
    { name: 'DkvError', code: 'SIBLINGS_EXCEEDED' },
  );
});

t.test('joinClocks is commutative, associative and idempotent', async (t) => {
  const clock = fc
    .uniqueArray(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd'), fc.integer({ min: 1, max: 50 })), {
      selector: ([node]) => node,
    })
    .map((entries) => entries.sort((x, y) => (x[0] < y[0] ? -1 : 1)));
  fc.assert(
    fc.property(clock, clock, clock, (a, b, c) => {
      t.same(joinClocks(a, b), joinClocks(b, a));
      t.same(joinClocks(joinClocks(a, b), c), joinClocks(a, joinClocks(b, c)));
      t.same(joinClocks(a, a), a);
    }),
    { numRuns: 300 },
  );
});

t.test('no write is lost unless a context that saw it superseded it', async (t) => {
  // A random history of writes through one node, each with the context of some earlier read.
  fc.assert(
    fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 30 }), (picks) => {
      let value: Versioned | undefined;
      const reads: Versioned[] = [];
      const superseded = new Set<string>();
      picks.forEach((pick, i) => {
        const read = reads.length === 0 ? undefined : reads[pick % reads.length]!;
        for (const s of read?.siblings ?? []) superseded.add(`${s.node}:${s.counter}`);
        value = writeVersion(value, read?.clock ?? [], 'n1', i, v(String(i)));
        reads.push(value);
      });
      const kept = new Set(value!.siblings.map((s) => `${s.node}:${s.counter}`));
      for (let counter = 1; counter <= picks.length; counter++) {
        const dot = `n1:${counter}`;
        if (!superseded.has(dot) && !kept.has(dot)) return false;
      }
      return true;
    }),
    { numRuns: 500 },
  );
  t.pass();
});
