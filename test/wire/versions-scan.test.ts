// VersionsScan reads a key's versions where they lie: on whatever this codebase encodes it agrees
// with decoding (clock, dots, liveness, and supersedes); whatever bytes it accepts, decoding
// accepts too and reads the same; and a replica merge through it leaves what merge() leaves.
import { deepStrictEqual } from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { MemoryEngine } from '../../src/store/memory-engine.js';
import { encodeRecord, RECORD_HEADER_BYTES, VersionedStore } from '../../src/store/versioned-store.js';
import { isTombstone, mergeVersions, supersedes, writeVersion, type Versioned } from '../../src/version/dvv.js';
import { decodeBody, decodeGetReply, encodeBody, encodeReplicaPutBody, readReplicaPutInPlace, versionedFromReply } from '../../src/wire/messages.js';
import { VersionsScan } from '../../src/wire/versions-scan.js';

const NODES = ['node-b', 'node-a', 'node-10'] as const;
// A second history writes through other nodes: two nodes never mint the same dot.
const OTHER_NODES = ['node-c', 'node-9'] as const;

// A value made by a few writes through random nodes: without a context (overwrites), or with an
// empty one (concurrent with everything: siblings), deletions among them.
const historyArb = fc.array(
  fc.record({
    node: fc.nat(1),
    concurrent: fc.boolean(),
    del: fc.nat(4).map((n) => n === 0),
    tsMs: fc.oneof(fc.nat(1000), fc.constant(1_700_000_000_000), fc.constant(2 ** 52)),
    value: fc.uint8Array({ maxLength: 300 }),
  }),
  { minLength: 1, maxLength: 6 },
);
type History = typeof historyArb extends fc.Arbitrary<infer H> ? H : never;
function build(history: History, nodes: readonly string[]): Versioned {
  let v: Versioned | undefined;
  for (const w of history) v = writeVersion(v, w.concurrent ? [] : undefined, nodes[w.node]!, w.tsMs, w.del ? null : w.value);
  return v!;
}
// Two histories merged, as replicas that took writes apart hold them.
const versionedArb = fc
  .tuple(historyArb, fc.option(historyArb))
  .map(([a, b]) => (b === null ? build(a, NODES) : mergeVersions(build(a, NODES), build(b, OTHER_NODES))!));

const bodyOf = (v: Versioned): Buffer => encodeRecord(v).subarray(RECORD_HEADER_BYTES);

function readOf(scan: VersionsScan): { clock: Array<[string, number]>; dots: Array<[string, number]>; live: boolean } {
  const text = (start: number, end: number): string => Buffer.from(scan.bytes.subarray(start, end)).toString('latin1');
  return {
    clock: Array.from({ length: scan.clockCount }, (_, i) => [text(scan.clockNodeStart[i]!, scan.clockNodeEnd[i]!), scan.clockCounter[i]!]),
    dots: Array.from({ length: scan.dotCount }, (_, i) => [text(scan.dotNodeStart[i]!, scan.dotNodeEnd[i]!), scan.dotCounter[i]!]),
    live: scan.live,
  };
}

function decodedOf(v: Versioned): { clock: Array<[string, number]>; dots: Array<[string, number]>; live: boolean } {
  return {
    clock: v.clock.map(([node, counter]) => [node, counter]),
    dots: v.siblings.map((s) => [s.node, s.counter]),
    live: !isTombstone(v),
  };
}

t.test('what this codebase encodes, the scan reads as decoding does', async (t) => {
  fc.assert(
    fc.property(versionedArb, versionedArb, (a, b) => {
      const scanA = new VersionsScan();
      const scanB = new VersionsScan();
      const bodyA = bodyOf(a);
      const bodyB = bodyOf(b);
      deepStrictEqual(scanA.scan(bodyA, 0, bodyA.length), true);
      deepStrictEqual(scanB.scan(bodyB, 0, bodyB.length), true);
      deepStrictEqual(readOf(scanA), decodedOf(a));
      deepStrictEqual(scanA.supersedes(scanB), supersedes(a, b));
      deepStrictEqual(scanB.supersedes(scanA), supersedes(b, a));
      deepStrictEqual(scanA.supersedes(scanA), true);
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 pairs');
});

t.test('bytes the scan accepts, decoding accepts and reads the same', async (t) => {
  fc.assert(
    fc.property(versionedArb, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 3 }), fc.nat(), (v, changes, cut) => {
      const body = Buffer.from(bodyOf(v));
      for (const [at, value] of changes) body[at % body.length] = value;
      const end = cut % 4 === 0 ? cut % (body.length + 1) : body.length;
      const scan = new VersionsScan();
      if (!scan.scan(body, 0, end)) return;
      // As REPLICA_PUT's general path decodes the versions.
      deepStrictEqual(readOf(scan), decodedOf(versionedFromReply(decodeGetReply(decodeBody(body, 0, end)))));
    }),
    { numRuns: 5000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const scan = new VersionsScan();
      if (scan.scan(bytes, 0, bytes.length)) deepStrictEqual(readOf(scan), decodedOf(versionedFromReply(decodeGetReply(decodeBody(bytes, 0, bytes.length)))));
    }),
    { numRuns: 5000 },
  );
  t.pass('5000 changed bodies and 5000 random ones');
});

t.test('other layouts are declined: str values, a nil context, trailing bytes', async (t) => {
  const v = writeVersion(undefined, undefined, 'n1', 5, Buffer.from('x'));
  const body = bodyOf(v);
  const scan = new VersionsScan();
  t.ok(scan.scan(body, 0, body.length));
  t.notOk(scan.scan(Buffer.concat([body, Buffer.from([0])]), 0, body.length + 1), 'a byte after the body');
  const withStr = Buffer.from(encodeBody({ values: ['x'], context: Buffer.from([0x90]), versions: [['n1', 1, 5]] }));
  t.notOk(scan.scan(withStr, 0, withStr.length), 'a str value');
  const nilContext = Buffer.from(encodeBody({ values: [Buffer.from('x')], context: null, versions: [['n1', 1, 5]] }));
  t.notOk(scan.scan(nilContext, 0, nilContext.length), 'a nil context');
  const zeroCounter = Buffer.from(
    encodeBody({ values: [Buffer.from('x')], context: Buffer.from(encodeBody([['n1', 0]])), versions: [['n1', 1, 5]] }),
  );
  t.notOk(scan.scan(zeroCounter, 0, zeroCounter.length), 'a clock counter of 0 (decoding rejects it too)');
  t.throws(() => versionedFromReply(decodeGetReply(decodeBody(zeroCounter, 0, zeroCounter.length))));
  const nonAscii = bodyOf(writeVersion(undefined, undefined, 'nœud', 5, Buffer.from('x')));
  t.notOk(scan.scan(nonAscii, 0, nonAscii.length), 'a node id that is not ASCII');
});

t.test('REPLICA_PUT read in place: {key: bin, versions: bin} only', async (t) => {
  const key = { start: 0, end: 0 };
  const versions = { start: 0, end: 0 };
  const body = Buffer.from(encodeBody({ key: Buffer.from('k1'), versions: Buffer.from([1, 2, 3]) }));
  t.ok(readReplicaPutInPlace(body, 0, body.length, key, versions));
  t.same([body.subarray(key.start, key.end).toString(), [...body.subarray(versions.start, versions.end)]], ['k1', [1, 2, 3]]);
  const hinted = Buffer.from(encodeBody({ key: Buffer.from('k1'), versions: Buffer.from([1]), hint: 'n2' }));
  t.notOk(readReplicaPutInPlace(hinted, 0, hinted.length, key, versions), 'a hint is decoded');
  const strKey = Buffer.from(encodeBody({ key: 'k1', versions: Buffer.from([1]) }));
  t.notOk(readReplicaPutInPlace(strKey, 0, strKey.length, key, versions), 'so is a str key');
  t.notOk(readReplicaPutInPlace(body, 0, body.length - 1, key, versions), 'and a body cut short');
  const longKey = Buffer.from(encodeBody({ key: Buffer.alloc(2000), versions: Buffer.from([1]) }));
  t.notOk(readReplicaPutInPlace(longKey, 0, longKey.length, key, versions), 'and a key longer than a key may be');
});

t.test('a REPLICA_PUT body written directly is what encodeBody writes, and reads back in place', async (t) => {
  const key = { start: 0, end: 0 };
  const versions = { start: 0, end: 0 };
  // Lengths at each edge of msgpack's bin 8, 16 and 32.
  for (const [keyBytes, versionsBytes] of [[1, 0], [255, 255], [256, 256], [1024, 65_535], [3, 65_536], [7, 1 << 20]] as const) {
    const k = Buffer.alloc(keyBytes, 0x6b);
    const v = Buffer.alloc(versionsBytes, 0x76);
    const body = encodeReplicaPutBody(k, v);
    t.same(body, Buffer.from(encodeBody({ key: k, versions: v })), `key ${keyBytes} bytes, versions ${versionsBytes}`);
    t.ok(readReplicaPutInPlace(body, 0, body.length, key, versions) && key.end - key.start === keyBytes && versions.end - versions.start === versionsBytes);
  }
});

t.test('replica merges through mergeInPlace leave what merge() leaves', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(versionedArb, fc.nat(2)), { minLength: 1, maxLength: 8 }), async (incoming) => {
      const fast = new VersionedStore(new MemoryEngine(), 'node-a', () => 0, null);
      const slow = new VersionedStore(new MemoryEngine(), 'node-a', () => 0, null);
      let inPlace = 0;
      for (const [v, k] of incoming) {
        const key = Buffer.from(`key${k}`);
        const body = bodyOf(v);
        const wire = Buffer.concat([Buffer.from('xx'), key, body]);
        const merged = fast.mergeInPlace(wire, 2, 2 + key.length, 2 + key.length, wire.length);
        if (merged === undefined) await fast.merge(key, v, body);
        else {
          inPlace++;
          await merged;
        }
        await slow.merge(key, v, body);
      }
      for (let k = 0; k < 3; k++) {
        const key = Buffer.from(`key${k}`);
        deepStrictEqual(fast.readRecord(key, 0, key.length)?.toString('hex'), slow.readRecord(key, 0, key.length)?.toString('hex'));
      }
      deepStrictEqual(fast.liveKeys, slow.liveKeys);
      return inPlace >= 1;
    }),
    { numRuns: 500 },
  );
  t.pass('500 sequences of merges, the first of each in place at least');
});
