// Property tests of the version algebra on histories a cluster can actually produce: 2-4 replicas
// of one key, clients that read, write (with, without or with an empty context) and delete through
// any replica, and replication and repair that merge current or stale replica states in any
// order. The model tracks every dot a write minted and the effective context of every write, which
// is all it needs to say what a fully synced cluster must hold: a dot survives exactly when no
// write's context covered it (a write without a context has the coordinator's clock as context).
import { deepStrictEqual, equal, ok } from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { isDkvError } from '../../src/lib/errors.js';
import { limits } from '../../src/lib/limits.js';
import { decodeRecord, encodeRecord, recordIsTombstone } from '../../src/store/versioned-store.js';
import {
  isTombstone,
  mergeVersions,
  sameVersions,
  winnerOf,
  writeVersion,
  type Clock,
  type Versioned,
} from '../../src/version/dvv.js';

// Ids whose string order differs from their position and from their numeric order.
const NODE_IDS = ['node-b', 'node-a', 'node-10', 'node-9'] as const;
const CLIENTS = 3;
const BASE_MS = 1_700_000_000_000;

type Op =
  | { kind: 'read'; client: number; replica: number; viaGet: boolean }
  | { kind: 'write'; client: number; replica: number; context: 'none' | 'read' | 'empty'; del: boolean; dtMs: number }
  | { kind: 'sync'; source: number; target: number; stale: number; swap: boolean }
  | { kind: 'repair'; replicas: number[] };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      client: fc.nat(CLIENTS - 1),
      replica: fc.nat(3),
      // Through the native GET, a tombstone answers with a nil context; otherwise the raw clock.
      viaGet: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      client: fc.nat(CLIENTS - 1),
      replica: fc.nat(3),
      context: fc.constantFrom('none' as const, 'read' as const, 'read' as const, 'empty' as const),
      del: fc.nat(3).map((n) => n === 0),
      // 0 makes equal timestamps, which the winner must break deterministically.
      dtMs: fc.nat(2),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('sync' as const),
      source: fc.nat(3),
      target: fc.nat(3),
      // 0: the source's current state; otherwise one of its earlier states (a delayed message).
      stale: fc.nat(6),
      swap: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('repair' as const),
      replicas: fc.uniqueArray(fc.nat(3), { minLength: 1, maxLength: 4 }),
    }),
  },
);

// Every ordered pair of 4 replicas: shuffled, it is one round of full anti-entropy.
const ALL_PAIRS: ReadonlyArray<readonly [number, number]> = [0, 1, 2, 3].flatMap((a) =>
  [0, 1, 2, 3].filter((b) => b !== a).map((b) => [a, b] as const),
);

const historyArb = fc.record({
  nodes: fc.integer({ min: 2, max: 4 }),
  // At most 40 writes: far from limits.siblingsMax even if none supersedes another.
  ops: fc.array(opArb, { minLength: 1, maxLength: 40 }),
  antiEntropy: fc.shuffledSubarray(ALL_PAIRS as Array<readonly [number, number]>, {
    minLength: ALL_PAIRS.length,
    maxLength: ALL_PAIRS.length,
  }),
  replaySeed: fc.nat(),
});
type History = typeof historyArb extends fc.Arbitrary<infer H> ? H : never;

interface Minted {
  readonly node: string;
  readonly counter: number;
  readonly tsMs: number;
  readonly value: Uint8Array | null;
}

const dotOf = (node: string, counter: number): string => `${node}:${counter}`;

function counterIn(clock: Clock | undefined, node: string): number {
  for (const [id, counter] of clock ?? []) if (id === node) return counter;
  return 0;
}

// The pointwise maximum, written independently of joinClocks.
function naiveJoin(...clocks: Array<Clock | undefined>): Array<[string, number]> {
  const max: Record<string, number> = {};
  for (const clock of clocks) {
    for (const [node, counter] of clock ?? []) max[node] = Math.max(max[node] ?? 0, counter);
  }
  return Object.keys(max)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((node) => [node, max[node]!]);
}

// Value-level identity: the clock and the set of siblings with dot, value and timestamp.
function canon(v: Versioned | undefined): string {
  if (v === undefined) return 'undefined';
  const siblings = v.siblings
    .map((s) => `${dotOf(s.node, s.counter)}@${s.tsMs}=${s.value === null ? 'nil' : Buffer.from(s.value).toString('hex')}`)
    .sort();
  return JSON.stringify({ clock: v.clock, siblings });
}

// The deterministic winner's dot, timestamp and value, or 'none'.
function winnerKey(v: Versioned | undefined): string {
  const winner = v === undefined ? undefined : winnerOf(v);
  return winner === undefined ? 'none' : canon({ clock: [], siblings: [winner] });
}

function same(a: Versioned | undefined, b: Versioned | undefined, why: string): void {
  ok(sameVersions(a, b), `${why}: sameVersions\n${canon(a)}\n${canon(b)}`);
  equal(canon(a), canon(b), `${why}: value-level`);
}

// What every state a replica holds must look like.
function checkWellFormed(v: Versioned | undefined, minted: ReadonlyMap<string, Minted>): void {
  if (v === undefined) return;
  for (let i = 0; i < v.clock.length; i++) {
    const [node, counter] = v.clock[i]!;
    ok(Number.isSafeInteger(counter) && counter >= 1, `counter ${counter} of ${node}`);
    if (i > 0) ok(v.clock[i - 1]![0] < node, 'clock sorted by node, one entry each');
  }
  const dots = new Set<string>();
  for (const s of v.siblings) {
    const dot = dotOf(s.node, s.counter);
    ok(!dots.has(dot), `sibling ${dot} twice`);
    dots.add(dot);
    ok(counterIn(v.clock, s.node) >= s.counter, `clock covers its sibling ${dot}`);
    // Nothing mints a dot except a write, and a dot always carries its write's value.
    const write = minted.get(dot);
    ok(write !== undefined, `dot ${dot} was minted by a write`);
    equal(s.tsMs, write.tsMs, `${dot} keeps its timestamp`);
    equal(canon({ clock: [], siblings: [s] }), canon({ clock: [], siblings: [{ ...write }] }), `${dot} keeps its value`);
  }
  ok(v.siblings.length <= limits.siblingsMax, 'siblings within the limit');
}

interface Run {
  readonly nodes: readonly string[];
  readonly replicas: Array<Versioned | undefined>;
  // Every state any replica held (so every state a client could read), in order.
  readonly states: Array<Versioned | undefined>;
  readonly minted: Map<string, Minted>;
  // The effective context of every write that minted a dot.
  readonly contexts: Clock[];
  merges: number;
}

// One merge, checked: it only copies dots its inputs hold, and its clock is the pointwise max.
function merge(run: Run, a: Versioned | undefined, b: Versioned | undefined): Versioned | undefined {
  const merged = mergeVersions(a, b);
  run.merges++;
  if (a === undefined || b === undefined) {
    equal(merged, a ?? b, 'merging with nothing is the identity');
    return merged;
  }
  ok(merged !== undefined, 'a merge of two versions is a version');
  deepStrictEqual(merged.clock, naiveJoin(a.clock, b.clock), 'merged clock is the pointwise max');
  const inputs = new Set([...a.siblings, ...b.siblings].map((s) => dotOf(s.node, s.counter)));
  for (const s of merged.siblings) ok(inputs.has(dotOf(s.node, s.counter)), 'a merge mints no dot');
  checkWellFormed(merged, run.minted);
  return merged;
}

function simulate(h: History): Run {
  const nodes = NODE_IDS.slice(0, h.nodes);
  const run: Run = {
    nodes,
    replicas: nodes.map(() => undefined),
    states: [undefined],
    minted: new Map(),
    contexts: [],
    merges: 0,
  };
  const history: Array<Array<Versioned | undefined>> = nodes.map(() => [undefined]);
  const reads: Array<Clock | undefined> = Array.from({ length: CLIENTS }, () => undefined);
  const set = (replica: number, v: Versioned | undefined): void => {
    run.replicas[replica] = v;
    history[replica]!.push(v);
    run.states.push(v);
  };
  let nowMs = BASE_MS;
  let writes = 0;
  for (const op of h.ops) {
    switch (op.kind) {
      case 'read': {
        const v = run.replicas[op.replica % nodes.length];
        reads[op.client] = op.viaGet && (v === undefined || isTombstone(v)) ? undefined : v?.clock;
        break;
      }
      case 'write': {
        const r = op.replica % nodes.length;
        const node = nodes[r]!;
        const before = run.replicas[r];
        const context = op.context === 'none' ? undefined : op.context === 'empty' ? [] : reads[op.client];
        const seen = context ?? before?.clock ?? [];
        const counter = counterIn(before?.clock, node) + 1;
        nowMs += op.dtMs;
        writes++;
        // Distinct values, and now and then an empty one, which must not read back as a deletion.
        const value = op.del ? null : writes % 7 === 3 ? new Uint8Array(0) : Buffer.from(`w${writes}`);
        let after: Versioned;
        try {
          after = writeVersion(before, context, node, nowMs, value);
        } catch (err) {
          ok(isDkvError(err, 'SIBLINGS_EXCEEDED'), String(err));
          const kept = (before?.siblings ?? []).filter((s) => counterIn(seen, s.node) < s.counter);
          ok(kept.length + 1 > limits.siblingsMax, 'SIBLINGS_EXCEEDED only past the limit');
          break;
        }
        run.minted.set(dotOf(node, counter), { node, counter, tsMs: nowMs, value });
        run.contexts.push(seen);
        // protocol.md: the write removes exactly the siblings its context covers and adds itself
        // (a deletion too: it is a tombstone with its own dot).
        const kept = (before?.siblings ?? []).filter((s) => counterIn(seen, s.node) < s.counter);
        deepStrictEqual(
          after.siblings.map((s) => dotOf(s.node, s.counter)).sort(),
          [...kept.map((s) => dotOf(s.node, s.counter)), dotOf(node, counter)].sort(),
          'a write keeps what its context did not see, and itself',
        );
        deepStrictEqual(after.clock, naiveJoin(before?.clock, seen, [[node, counter]]), 'write clock');
        checkWellFormed(after, run.minted);
        set(r, after);
        break;
      }
      case 'sync': {
        const source = op.source % nodes.length;
        const target = op.target % nodes.length;
        const past = history[source]!;
        const state = op.stale === 0 ? run.replicas[source] : past[(op.stale - 1) % past.length];
        const current = run.replicas[target];
        set(target, op.swap ? merge(run, state, current) : merge(run, current, state));
        break;
      }
      case 'repair': {
        // A read-repair coordinator merges what the replicas answered and sends it to each.
        const targets = [...new Set(op.replicas.map((r) => r % nodes.length))];
        let merged: Versioned | undefined;
        for (const r of targets) merged = merge(run, merged, run.replicas[r]);
        for (const r of targets) set(r, merge(run, run.replicas[r], merged));
        break;
      }
    }
  }
  // Full anti-entropy: every replica pushes to every other one once, in the generated order.
  for (const [source, target] of h.antiEntropy) {
    if (source >= nodes.length || target >= nodes.length) continue;
    set(target, merge(run, run.replicas[target], run.replicas[source]));
  }
  return run;
}

// A seeded shuffle (xorshift32), so that one generated number picks a whole order.
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let x = (seed | 0) || 0x9e3779b9;
  for (let i = out.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

t.test('merge is commutative, associative and idempotent on reachable versions', async (t) => {
  fc.assert(
    fc.property(historyArb, fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat()), { minLength: 8, maxLength: 8 }), (h, picks) => {
      const run = simulate(h);
      const pool = run.states;
      for (const [i, j, k] of picks) {
        const a = pool[i % pool.length];
        const b = pool[j % pool.length];
        const c = pool[k % pool.length];
        same(mergeVersions(a, b), mergeVersions(b, a), 'commutative');
        same(mergeVersions(mergeVersions(a, b), c), mergeVersions(a, mergeVersions(b, c)), 'associative');
        same(mergeVersions(a, a), a, 'idempotent');
        same(mergeVersions(mergeVersions(a, b), b), mergeVersions(a, b), 'absorbs what it merged');
        // The deterministic winner does not depend on which side a merge started from.
        equal(winnerKey(mergeVersions(a, b)), winnerKey(mergeVersions(b, a)), 'winner');
      }
    }),
    { seed: 1101, numRuns: 500 },
  );
  t.pass('merge algebra holds');
});

t.test('after full anti-entropy, replicas agree and hold exactly the writes no context superseded', async (t) => {
  // How often the histories reach the cases that matter, so that a weaker generator shows.
  const seen = { siblings: 0, deletionBesideValue: 0, tombstones: 0, superseded: 0 };
  fc.assert(
    fc.property(historyArb, (h) => {
      const run = simulate(h);
      const last = run.replicas[0];
      if (last !== undefined) {
        const nils = last.siblings.filter((s) => s.value === null).length;
        if (last.siblings.length > 1) seen.siblings++;
        if (nils > 0 && nils < last.siblings.length) seen.deletionBesideValue++;
        if (nils > 1 && nils === last.siblings.length) seen.tombstones++;
        if (last.siblings.length < run.minted.size) seen.superseded++;
      }
      const converged = run.replicas[0];
      for (let r = 1; r < run.replicas.length; r++) same(run.replicas[r], converged, `replica ${r} agrees with replica 0`);
      if (run.minted.size === 0) {
        equal(converged, undefined, 'no write, no version');
        return;
      }
      ok(converged !== undefined, 'writes leave a version');
      const expected = [...run.minted.values()]
        .filter((w) => !run.contexts.some((seen) => counterIn(seen, w.node) >= w.counter))
        .map((w) => dotOf(w.node, w.counter))
        .sort();
      const held = converged.siblings.map((s) => dotOf(s.node, s.counter)).sort();
      // Both directions: no write lost, and nothing superseded comes back.
      deepStrictEqual(held, expected, 'surviving dots');
      // The clock has seen every write and nothing more.
      const top = naiveJoin(...[...run.minted.values()].map((w): Clock => [[w.node, w.counter]]));
      deepStrictEqual(converged.clock, top, 'converged clock is the highest dot of each node');
      // Replaying every state ever held or read, stale ones included, in any order, gives the
      // same result, and none of them changes the converged state.
      let replayed: Versioned | undefined;
      for (const v of shuffled(run.states, h.replaySeed)) {
        same(mergeVersions(converged, v), converged, 'a stale state changes nothing once converged');
        replayed = mergeVersions(replayed, v);
      }
      same(replayed, converged, 'replaying all states in any order converges to the same version');
      // Converged replicas store the same bytes, which Merkle anti-entropy compares.
      const record = encodeRecord(converged);
      for (const v of run.replicas) ok(encodeRecord(v!).equals(record), 'converged records are byte-identical');
    }),
    { seed: 2202, numRuns: 800 },
  );
  t.ok(seen.siblings > 50, `${seen.siblings} histories end with siblings`);
  t.ok(seen.deletionBesideValue > 10, `${seen.deletionBesideValue} end with a deletion beside a value`);
  t.ok(seen.tombstones > 5, `${seen.tombstones} end with concurrent tombstones only`);
  t.ok(seen.superseded > 50, `${seen.superseded} supersede some write`);
});

// Regression: writeVersion dropped a deletion when the siblings its context left were all
// tombstones ("one null sibling"). Its dot entered the clock with no sibling, so a later write whose
// context had seen the older tombstone but not this deletion lost the deletion instead of keeping it
// as a conflict (protocol.md: a delete concurrent with a write is kept as a conflict).
t.test('a deletion beside a tombstone keeps its own dot (regression)', async (t) => {
  const x = writeVersion(undefined, undefined, 'n1', 1, Buffer.from('x'));
  const contextP = x.clock; // client P reads x
  const withNil = writeVersion(x, [], 'n1', 2, null); // a blind delete, concurrent with x
  const contextR = withNil.clock; // client R reads [x, nil]: a live value, so GET gives the context
  const deleted = writeVersion(withNil, contextP, 'n1', 3, null); // P deletes x
  t.same(deleted.siblings.map((s) => [s.counter, s.value]), [[2, null], [3, null]], 'both deletions kept');
  t.ok(isTombstone(deleted));
  const y = writeVersion(deleted, contextR, 'n1', 4, Buffer.from('y')); // R never saw P's deletion
  t.same(y.siblings.map((s) => s.counter), [3, 4], "P's deletion stays a conflict with R's write");
  t.equal(Buffer.from(winnerOf(y)!.value!).toString(), 'y');
});

t.test('a deletion beside a tombstone survives replication (regression)', async (t) => {
  // The two-replica form of the counterexample fast-check first shrank to.
  const a1 = writeVersion(undefined, undefined, 'a', 1, Buffer.from('x'));
  const contextP = a1.clock;
  const b1 = writeVersion(undefined, undefined, 'b', 2, null); // a delete at b, concurrent with x
  const a = mergeVersions(a1, b1)!;
  const contextQ = a.clock; // Q reads [x, nil] at a
  const a2 = writeVersion(a, contextP, 'a', 3, null); // P deletes x at a
  const b2 = writeVersion(mergeVersions(b1, a)!, contextQ, 'b', 4, Buffer.from('y')); // Q writes at b
  const merged = mergeVersions(a2, b2)!;
  same(merged, mergeVersions(b2, a2), 'replicas agree');
  t.same(merged.siblings.map((s) => `${s.node}:${s.counter}`), ['a:2', 'b:2'], "P's deletion beside Q's write");
});

t.test('replication and repair never mint dots; merged clocks are pointwise maxima', async (t) => {
  // simulate() checks every merge it makes; this property adds merges of arbitrary pairs of
  // reachable states, including states from different points in time.
  let merges = 0;
  fc.assert(
    fc.property(historyArb, fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 8, maxLength: 8 }), (h, picks) => {
      const run = simulate(h);
      for (const [i, j] of picks) merge(run, run.states[i % run.states.length], run.states[j % run.states.length]);
      const highest = new Map<string, number>();
      for (const w of run.minted.values()) highest.set(w.node, Math.max(highest.get(w.node) ?? 0, w.counter));
      for (const v of run.states) {
        checkWellFormed(v, run.minted);
        for (const [node, counter] of v?.clock ?? []) ok(counter <= (highest.get(node) ?? 0), `no counter beyond ${node}'s writes`);
      }
      merges += run.merges;
    }),
    { seed: 3303, numRuns: 500 },
  );
  t.ok(merges > 0, `${merges} merges checked`);
});

t.test('records round-trip every reachable version', async (t) => {
  fc.assert(
    fc.property(historyArb, (h) => {
      const run = simulate(h);
      for (const v of run.states) {
        if (v === undefined) continue;
        const record = encodeRecord(v);
        const back = decodeRecord(record);
        same(back, v, 'decodeRecord(encodeRecord(v))');
        equal(recordIsTombstone(record), isTombstone(v), 'tombstone flag');
        equal(winnerKey(back), winnerKey(v), 'winner');
      }
    }),
    { seed: 4404, numRuns: 300 },
  );
  t.pass('records round-trip');
});
