import fc from 'fast-check';
import t from 'tap';
import { limits } from '../../src/lib/limits.js';
import { RecordCache } from '../../src/store/record-cache.js';

// Store keys begin with the key's token, a hash: the cache files them by those first bytes.
const key = (slotByte: number, rest: string): Buffer => Buffer.concat([Buffer.from([slotByte, 0, 0, 0, 0, 0]), Buffer.from(rest)]);
const copy = (b: Buffer | undefined): string | undefined => (b === undefined ? undefined : Buffer.from(b.subarray(0, b.length)).toString());

t.test('a filed record is found until a write of its key drops it', async (t) => {
  const cache = new RecordCache(1 << 16, 1024);
  const k = key(1, 'apple');
  t.equal(cache.get(k), undefined);
  cache.put(k, Buffer.from('record-1'));
  t.equal(copy(cache.get(k)), 'record-1');
  t.equal(cache.get(key(1, 'apricot')), undefined, 'another key in the same slot is not mistaken for it');
  t.equal(cache.get(key(1, 'appl')), undefined, 'nor is a prefix of it');
  cache.put(k, Buffer.from('record-2'));
  t.equal(copy(cache.get(k)), 'record-2', 'the newest filing wins');
  cache.delete(key(1, 'other'));
  t.equal(copy(cache.get(k)), 'record-2', 'dropping another key leaves it');
  cache.delete(k);
  t.equal(cache.get(k), undefined);
  t.same(cache.stats, { hits: 3, misses: 4, fills: 2 });
});

t.test('only the bytes a shared buffer says it holds are filed', async (t) => {
  // lmdb's read buffer is larger underneath than the record it holds.
  const shared = Buffer.from('recordGARBAGE');
  Object.defineProperty(shared, 'length', { value: 6, writable: true });
  const cache = new RecordCache(1 << 16, 1024);
  cache.put(key(2, 'k'), shared);
  t.equal(copy(cache.get(key(2, 'k'))), 'record');
});

t.test('records larger than the bound are not filed', async (t) => {
  const cache = new RecordCache(1 << 16, 100);
  cache.put(key(3, 'big'), Buffer.alloc(101));
  t.equal(cache.get(key(3, 'big')), undefined);
  cache.put(key(3, 'fits'), Buffer.alloc(100, 1));
  t.equal(cache.get(key(3, 'fits'))!.length, 100);
  cache.put(key(3, 'fits'), Buffer.alloc(101, 2));
  t.equal(cache.get(key(3, 'fits')), undefined, 'a newer record too large to keep drops the older');
});

t.test('the oldest entries are overwritten first', async (t) => {
  const arena = 4096;
  const cache = new RecordCache(arena, 1024, 16);
  const record = Buffer.alloc(200, 7);
  // 256 ways in 128 sets: keys 0..29 fit; 30 entries of ~210 bytes are about 1.5 arenas.
  for (let i = 0; i < 30; i++) cache.put(key(i, `key${i}`), record);
  const found = Array.from({ length: 30 }, (_, i) => cache.get(key(i, `key${i}`)) !== undefined);
  const firstKept = found.indexOf(true);
  t.ok(firstKept > 0, `the oldest are gone (first kept: ${firstKept})`);
  t.ok(found.slice(firstKept).every(Boolean), 'everything newer than the first kept entry is still there');
  t.ok(30 - firstKept <= Math.floor(arena / 200), 'no more than the arena holds');
});

t.test('two keys share a set; a third takes the older way', async (t) => {
  const cache = new RecordCache(1 << 16, 1024);
  const [a, b, c] = ['a', 'b', 'c'].map((name) => key(9, name));
  cache.put(a!, Buffer.from('A'));
  cache.put(b!, Buffer.from('B'));
  t.equal(copy(cache.get(a!)), 'A');
  t.equal(copy(cache.get(b!)), 'B');
  cache.put(c!, Buffer.from('C'));
  t.equal(cache.get(a!), undefined, 'the older is read from the engine again');
  t.equal(copy(cache.get(b!)), 'B');
  t.equal(copy(cache.get(c!)), 'C');
  cache.put(b!, Buffer.from('B2'));
  t.equal(copy(cache.get(b!)), 'B2', 'a key filed again keeps its way');
  t.equal(copy(cache.get(c!)), 'C');
  cache.delete(c!);
  cache.put(a!, Buffer.from('A2'));
  t.equal(copy(cache.get(a!)), 'A2', 'a dropped way is taken first');
  t.equal(copy(cache.get(b!)), 'B2');
});

t.test('prefetching changes nothing a lookup finds, whatever it is given', async (t) => {
  for (const arenaBytes of [100, 1 << 12]) {
    const cache = new RecordCache(arenaBytes, 64, 16);
    const keys = Array.from({ length: 12 }, (_, i) => key(i * 21, `k${i}`));
    keys.forEach((k, i) => cache.put(k, Buffer.from(`r${i}`.padEnd(20, '.'))));
    const before = keys.map((k) => copy(cache.get(k)));
    const tags = new Int32Array(limits.readPrefetchKeysMax + 8);
    keys.forEach((k, i) => (tags[i] = k.readInt32BE(0)));
    tags[12] = -1;
    cache.prefetch(tags, tags.length);
    cache.prefetch(tags, 0);
    t.same(keys.map((k) => copy(cache.get(k))), before, `arena of ${arenaBytes} bytes`);
  }
});

t.test('against a map: a lookup finds the newest record filed for its key, or nothing, prefetched or not', async (t) => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('put' as const), k: fc.nat(40), size: fc.nat(300) }),
    fc.record({ kind: fc.constant('delete' as const), k: fc.nat(40) }),
    fc.record({ kind: fc.constant('get' as const), k: fc.nat(40) }),
    // Prefetching keys that may or may not be filed, and tags that are nobody's.
    fc.record({ kind: fc.constant('prefetch' as const), ks: fc.array(fc.nat(40), { maxLength: 20 }), tags: fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 4 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), fc.integer({ min: 10, max: 14 }), (ops, arenaBits) => {
      // A small arena and few slots: eviction and shared slots on every run.
      const cache = new RecordCache(1 << arenaBits, 256, 64);
      const newest = new Map<number, string>();
      let version = 0;
      // Keys 0..40 share 64 slots by their first byte, and some share a first byte outright.
      const keyOf = (k: number): Buffer => key((k * 37) & 0xff, `k${k}`);
      for (const o of ops) {
        if (o.kind === 'put') {
          const record = `${version++}:`.padEnd(o.size, '.');
          cache.put(keyOf(o.k), Buffer.from(record));
          if (record.length <= 256) newest.set(o.k, record);
          else newest.delete(o.k);
        } else if (o.kind === 'delete') {
          cache.delete(keyOf(o.k));
          newest.delete(o.k);
        } else if (o.kind === 'prefetch') {
          const tags = Int32Array.from([...o.ks.map((k) => keyOf(k).readInt32BE(0)), ...o.tags]);
          cache.prefetch(tags, tags.length);
        } else {
          const found = copy(cache.get(keyOf(o.k)));
          if (found !== undefined && found !== newest.get(o.k)) return false;
        }
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 runs');
});
