// Quorum and hinted-handoff logic in virtual time: real coordinators on simulated nodes, with
// crashes, refusals and silent drops. Nothing sleeps; every run replays from its seed.
import fc from 'fast-check';
import t from 'tap';
import { DkvError, isDkvError } from '../../src/lib/errors.js';
import { SeededRandom } from '../../src/lib/random.js';
import { SimDataCluster } from '../../src/sim/data-cluster.js';
import type { QuorumOptions } from '../../src/wire/messages.js';
import { limits } from '../../src/lib/limits.js';
import { RECORD_HEADER_BYTES } from '../../src/store/versioned-store.js';
import {
  decodeBody,
  decodeVersionsBody,
  encodeBody,
  encodeReplicaPutBody,
  readArrayHeaderInPlace,
  readContext,
  replicaPutsAllDurable,
} from '../../src/wire/messages.js';

const DEFAULTS: QuorumOptions = { r: undefined, w: undefined, timeoutMs: undefined, ring: undefined, forwarded: false };

function cluster(nodes: number, seed = 1): SimDataCluster {
  return new SimDataCluster({
    nodes,
    seed,
    replicas: 3,
    delayMs: 0.2,
    jitterMs: 0.3,
    coordinator: { readQuorum: 2, writeQuorum: 2, requestTimeoutMs: 1000, writeWaitMs: 3000, speculativeReadMs: 50 },
  });
}

const key = (k: string): Buffer => Buffer.from(k);

// Runs `work` while virtual time advances; resolves with its outcome.
async function run<T>(sim: SimDataCluster, work: Promise<T>, ms = 10_000): Promise<{ value?: T; error?: unknown }> {
  const outcome: { value?: T; error?: unknown; done?: boolean } = {};
  work.then(
    (value) => Object.assign(outcome, { value, done: true }),
    (error: unknown) => Object.assign(outcome, { error, done: true }),
  );
  for (let step = 0; step < ms / 10 && !outcome.done; step++) await sim.timers.runFor(10);
  if (!outcome.done) throw new Error(`not finished within ${ms} virtual ms`);
  return outcome;
}

function valuesAt(sim: SimDataCluster, id: string, k: string): string[] {
  const versions = decodeVersionsBody(sim.node(id).coordinator.localVersionsBody(key(k)));
  return (versions?.siblings ?? []).filter((s) => s.value !== null).map((s) => Buffer.from(s.value!).toString());
}

function replicasOf(sim: SimDataCluster, k: string): string[] {
  return sim.node('n1').view.plan(key(k)).replicas;
}

t.test('all up: a write reaches all three replicas and a read from any node sees it', async (t) => {
  const sim = cluster(5);
  const replicas = replicasOf(sim, 'a');
  const { error } = await run(sim, sim.node(replicas[0]!).coordinator.write(key('a'), Buffer.from('v1'), undefined, DEFAULTS));
  t.equal(error, undefined);
  await sim.timers.runFor(100);
  for (const id of replicas) t.same(valuesAt(sim, id, 'a'), ['v1'], `${id} holds it`);
  for (const id of sim.ids) {
    const { value } = await run(sim, sim.node(id).coordinator.get(key('a'), DEFAULTS));
    t.same(decodeVersionsBody(value!)?.siblings.map((s) => Buffer.from(s.value!).toString()), ['v1'], `read through ${id}`);
  }
});

t.test('a replica down: the write goes to a fallback with a hint, delivered when it is back', async (t) => {
  const sim = cluster(5);
  const [first, second] = replicasOf(sim, 'b');
  sim.crash(second!);
  const { error } = await run(sim, sim.node(first!).coordinator.write(key('b'), Buffer.from('v1'), undefined, DEFAULTS));
  t.equal(error, undefined, 'W=2 met with a stand-in');
  await sim.timers.runFor(100);
  const held = sim.ids.map((id) => sim.node(id).hints.stats.pending).reduce((a, b) => a + b, 0);
  t.equal(held, 1, 'one hint held');
  t.same(valuesAt(sim, second!, 'b'), [], 'the crashed replica has nothing');
  sim.restart(second!);
  await sim.timers.runFor(1000);
  t.same(valuesAt(sim, second!, 'b'), ['v1'], 'the hint was delivered');
  t.equal(sim.ids.map((id) => sim.node(id).hints.stats.pending).reduce((a, b) => a + b, 0), 0, 'and removed');
});

t.test('a crash nobody has noticed yet: the refused copy goes to a fallback', async (t) => {
  const sim = cluster(5);
  const [first, second] = replicasOf(sim, 'c');
  sim.crash(second!, false);
  const { error } = await run(sim, sim.node(first!).coordinator.write(key('c'), Buffer.from('v1'), undefined, DEFAULTS));
  t.equal(error, undefined);
  t.equal(sim.node(first!).coordinator.stats.hintedWritesSent, 1, 'one hinted write after the refusal');
});

t.test('too few replicas reachable: the write waits --write-wait, then QUORUM_FAILED with counts', async (t) => {
  const sim = cluster(3);
  const [first, second, third] = replicasOf(sim, 'd');
  sim.crash(second!);
  sim.crash(third!);
  const started = sim.timers.nowMs();
  const { error } = await run(sim, sim.node(first!).coordinator.write(key('d'), Buffer.from('v1'), undefined, DEFAULTS));
  t.ok(isDkvError(error, 'QUORUM_FAILED'), String(error));
  t.same((error as { details?: unknown }).details, { answered: 1, needed: 2 });
  t.ok(sim.timers.nowMs() - started >= 3000, 'after waiting out --write-wait');
  t.same(valuesAt(sim, first!, 'd'), [], 'nothing was written');
});

t.test('a replica coming back during --write-wait lets the write through', async (t) => {
  const sim = cluster(3);
  const [first, second, third] = replicasOf(sim, 'e');
  sim.crash(second!);
  sim.crash(third!);
  const write = run(sim, sim.node(first!).coordinator.write(key('e'), Buffer.from('v1'), undefined, DEFAULTS));
  await sim.timers.runFor(1000);
  sim.restart(third!);
  const { error } = await write;
  t.equal(error, undefined);
  t.same(valuesAt(sim, third!, 'e'), ['v1']);
});

t.test('replicas that drop requests silently: REPLICA_TIMEOUT with counts', async (t) => {
  const sim = cluster(3);
  const [first, second, third] = replicasOf(sim, 'f');
  sim.faults.set(second!, 'drop');
  sim.faults.set(third!, 'drop');
  const { error } = await run(sim, sim.node(first!).coordinator.write(key('f'), Buffer.from('v1'), undefined, DEFAULTS));
  t.ok(isDkvError(error, 'REPLICA_TIMEOUT'), String(error));
  t.same((error as { details?: unknown }).details, { answered: 1, needed: 2 });
});

t.test('a read skips a refusing replica and asks the next', async (t) => {
  const sim = cluster(5);
  const [first, second] = replicasOf(sim, 'g');
  await run(sim, sim.node(first!).coordinator.write(key('g'), Buffer.from('v1'), undefined, { ...DEFAULTS, w: 3 }));
  sim.faults.set(second!, 'refuse');
  const { value, error } = await run(sim, sim.node(first!).coordinator.get(key('g'), DEFAULTS));
  t.equal(error, undefined);
  t.same(decodeVersionsBody(value!)?.siblings.map((s) => Buffer.from(s.value!).toString()), ['v1']);
  t.equal(sim.node(first!).coordinator.stats.replicaReadsSent, 2, 'the refused read and its replacement');
});

t.test('a read that a replica leaves unanswered asks the next one after the speculative delay', async (t) => {
  const sim = cluster(5);
  const [first, second, third] = replicasOf(sim, 's');
  await run(sim, sim.node(first!).coordinator.write(key('s'), Buffer.from('v1'), undefined, { ...DEFAULTS, w: 3 }));
  sim.faults.set(second!, 'drop');
  const startedMs = sim.timers.nowMs();
  const { value, error } = await run(sim, sim.node(first!).coordinator.get(key('s'), DEFAULTS));
  t.equal(error, undefined);
  t.same(decodeVersionsBody(value!)?.siblings.map((s) => Buffer.from(s.value!).toString()), ['v1']);
  const tookMs = sim.timers.nowMs() - startedMs;
  t.ok(tookMs >= 50 && tookMs < 100, `answered after ${tookMs} ms, not the 1000 ms timeout`);
  t.equal(sim.node(first!).coordinator.stats.speculativeReads, 1);
  t.equal(sim.node(first!).coordinator.stats.replicaReadsSent, 2, `the silent read and the one to ${third}`);

  // With every replica answering, nothing is speculated.
  sim.faults.set(second!, 'none');
  await run(sim, sim.node(first!).coordinator.get(key('s'), DEFAULTS));
  t.equal(sim.node(first!).coordinator.stats.speculativeReads, 1, 'no speculation when replicas answer');

  // Both others silent: one speculative read, then REPLICA_TIMEOUT at the timeout.
  sim.faults.set(second!, 'drop');
  sim.faults.set(third!, 'drop');
  const silentStartMs = sim.timers.nowMs();
  const failed = await run(sim, sim.node(first!).coordinator.get(key('s'), DEFAULTS));
  t.ok(isDkvError(failed.error, 'REPLICA_TIMEOUT'), String(failed.error));
  t.ok(sim.timers.nowMs() - silentStartMs >= 1000, 'the timeout is still the whole timeout');
});

t.test('a non-replica forwards a write to a replica, which coordinates it', async (t) => {
  const sim = cluster(5);
  const replicas = replicasOf(sim, 'h');
  const outsider = sim.ids.find((id) => !replicas.includes(id))!;
  const { error } = await run(sim, sim.node(outsider).coordinator.write(key('h'), Buffer.from('v1'), undefined, DEFAULTS));
  t.equal(error, undefined);
  t.equal(sim.node(outsider).coordinator.stats.forwards, 1);
  await sim.timers.runFor(100);
  t.same(valuesAt(sim, replicas[0]!, 'h'), ['v1']);
});

t.test('a forwarded write that reaches a non-replica is coordinated there, which keeps a copy too', async (t) => {
  const sim = cluster(5);
  const replicas = replicasOf(sim, 'f');
  const outsider = sim.ids.find((id) => !replicas.includes(id))!;
  const forwarded = { ...DEFAULTS, forwarded: true };
  const { value, error } = await run(sim, sim.node(outsider).coordinator.write(key('f'), Buffer.from('v1'), undefined, forwarded));
  t.equal(error, undefined);
  t.ok(value!.context.length > 0, 'it answers with a context');
  t.equal(sim.node(outsider).coordinator.stats.forwards, 0, 'a forwarded write is not forwarded again');
  t.same(valuesAt(sim, outsider, 'f'), ['v1'], 'its own copy is durable before it answers');
  await sim.timers.runFor(100);
  for (const id of replicas) t.same(valuesAt(sim, id, 'f'), ['v1'], `${id} holds it`);
});

t.test('a write the store refuses fails as a rejection, and nothing is sent', async (t) => {
  const sim = cluster(3);
  const first = await run(sim, sim.node('n1').coordinator.write(key('big'), Buffer.from('small'), undefined, DEFAULTS));
  const context = readContext(first.value!.context)!;
  const sentBefore = sim.requestsSent;
  let thrown: unknown;
  let refused: Promise<unknown> | undefined;
  try {
    refused = sim.node('n1').coordinator.write(key('big'), Buffer.alloc(limits.frameBytesMax), context, DEFAULTS);
  } catch (error) {
    thrown = error;
  }
  t.equal(thrown, undefined, 'write() does not throw');
  const { error } = await run(sim, refused!);
  t.match(error, { code: 'VALUE_TOO_LARGE' });
  t.equal(sim.requestsSent, sentBefore, 'no replica was asked');
});

t.test('read repair: a wiped replica is refilled by a read of all three', async (t) => {
  const sim = cluster(5);
  const [first, second] = replicasOf(sim, 'i');
  await run(sim, sim.node(first!).coordinator.write(key('i'), Buffer.from('v1'), undefined, { ...DEFAULTS, w: 3 }));
  sim.crash(second!);
  sim.restart(second!, true);
  t.same(valuesAt(sim, second!, 'i'), []);
  await run(sim, sim.node(first!).coordinator.get(key('i'), { ...DEFAULTS, r: 3 }));
  await sim.timers.runFor(100);
  t.same(valuesAt(sim, second!, 'i'), ['v1']);
  t.equal(sim.node(first!).coordinator.stats.readRepairs, 1);
});

// Random crashes, restarts, refusals and drops while clients write; then heal everything, let
// hints flow and read every key with R=3. The last acknowledged write of each key must be
// there, unless a write that started after it is there instead (an overwrite coordinated by a
// node that had already seen it may supersede it, even before it was acknowledged).
t.test('random faults: no acknowledged write is lost', async (t) => {
  for (const seed of [11, 12, 13]) {
    const sim = cluster(5, seed);
    const random = new SeededRandom(seed * 7919);
    const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
    interface Write {
      value: string;
      startMs: number;
      ackMs: number | null;
    }
    const writes = new Map<string, Write[]>(keys.map((k) => [k, []]));
    const pending: Promise<unknown>[] = [];
    for (let step = 0; step < 200; step++) {
      const roll = random.next();
      const id = sim.ids[random.int(sim.ids.length)]!;
      if (roll < 0.04) sim.crash(id, random.next() < 0.7);
      else if (roll < 0.1) sim.restart(id);
      else if (roll < 0.13) sim.faults.set(id, (['none', 'refuse', 'drop'] as const)[random.int(3)]!);
      else {
        const coordinatorId = sim.ids.filter((n) => !sim.node(n).down)[0];
        if (coordinatorId !== undefined) {
          const k = keys[random.int(keys.length)]!;
          const write: Write = { value: `${k}-${step}`, startMs: sim.timers.nowMs(), ackMs: null };
          writes.get(k)!.push(write);
          pending.push(
            sim.node(coordinatorId).coordinator.write(key(k), Buffer.from(write.value), undefined, DEFAULTS).then(
              () => (write.ackMs = sim.timers.nowMs()),
              () => undefined,
            ),
          );
        }
      }
      await sim.timers.runFor(random.int(200));
    }
    await sim.timers.runFor(5000);
    await Promise.all(pending);
    for (const id of sim.ids) {
      sim.faults.set(id, 'none');
      sim.restart(id);
    }
    await sim.timers.runFor(5000);
    let acked = 0;
    for (const k of keys) {
      const { value } = await run(sim, sim.node('n1').coordinator.get(key(k), { ...DEFAULTS, r: 3 }));
      const present = new Set((decodeVersionsBody(value!)?.siblings ?? []).map((s) => (s.value === null ? null : Buffer.from(s.value).toString())));
      const history = writes.get(k)!;
      const lastAcked = history.filter((w) => w.ackMs !== null).sort((a, b) => a.ackMs! - b.ackMs!).at(-1);
      if (lastAcked === undefined) continue;
      acked++;
      const replaced = history.some((w) => w.startMs > lastAcked.startMs && present.has(w.value));
      if (!present.has(lastAcked.value) && !replaced) t.fail(`seed ${seed}, ${k}: ${lastAcked.value} lost; present ${[...present].join(',')}`);
    }
    t.ok(acked > 0, `seed ${seed}: ${acked} keys with acknowledged writes checked`);
  }
});

t.test('a run replays exactly from its seed', async (t) => {
  const trace = async (seed: number): Promise<string> => {
    const sim = cluster(5, seed);
    const [first, second] = replicasOf(sim, 'z');
    sim.crash(second!, false);
    const outcome = await run(sim, sim.node(first!).coordinator.write(key('z'), Buffer.from('v'), undefined, DEFAULTS));
    return `${sim.timers.nowMs()} ${sim.requestsSent} ${outcome.error ?? 'ok'} ${sim.ids.map((id) => sim.node(id).hints.stats.pending).join(',')}`;
  };
  t.equal(await trace(5), await trace(5));
});

t.test('writes made together reach each other replica in one REPLICA_PUTS', async (t) => {
  const sim = cluster(3);
  const before = sim.requestsSent;
  const writes = Array.from({ length: 10 }, (_, i) => sim.node('n1').coordinator.write(key(`batch-${i}`), Buffer.from(`v${i}`), undefined, DEFAULTS));
  const { error } = await run(sim, Promise.all(writes));
  t.equal(error, undefined, 'every write succeeds');
  t.equal(sim.requestsSent - before, 2, 'ten writes made at one instant: one request to each of the two other replicas');
  await sim.timers.runFor(100);
  for (const id of sim.ids) t.same(valuesAt(sim, id, 'batch-7'), ['v7'], `${id} holds the writes`);
});

t.test('REPLICA_PUTS: entries settle on their own; a body that cannot be split is refused whole', async (t) => {
  const sim = cluster(3);
  // Versions that only n1 holds, as a coordinator's write makes them.
  const versionsOf = (k: string, value: string): Buffer => {
    const local = sim.node('n1').store.writeLocal(key(k), Buffer.from(value), undefined);
    return local.record.subarray(RECORD_HEADER_BYTES);
  };
  const put = (k: string, value: string): Buffer => encodeReplicaPutBody(key(k), versionsOf(k, value));
  const replicaPuts = (entries: unknown[]): Promise<Buffer> => {
    const body = Buffer.from(encodeBody(entries));
    return sim.node('n3').coordinator.replicaPuts(body, 0, body.length);
  };

  const mixed = await run(sim, replicaPuts([put('p1', 'one'), Buffer.from(encodeBody({ foo: 1 })), put('p2', 'two')]));
  const results = decodeBody(mixed.value!, 0, mixed.value!.length) as unknown[];
  t.equal(results.length, 3, 'one result per entry');
  t.equal(results[0], null);
  t.match(results[1], { name: 'BAD_REQUEST' }, 'an entry that is not a REPLICA_PUT body fails alone');
  t.equal(results[2], null);
  t.same(valuesAt(sim, 'n3', 'p1'), ['one'], 'the entries around it are merged');
  t.same(valuesAt(sim, 'n3', 'p2'), ['two']);

  const all = await run(sim, replicaPuts([put('p3', 'three'), put('p4', 'four')]));
  t.same(all.value, replicaPutsAllDurable(2), 'all durable: an array of nils');

  const hinted = Buffer.from(encodeBody({ key: key('p5'), versions: versionsOf('p5', 'five'), hint: 'n9' }));
  const pendingBefore = sim.node('n3').hints.stats.pending;
  t.same((await run(sim, replicaPuts([hinted]))).value, replicaPutsAllDurable(1));
  t.equal(sim.node('n3').hints.stats.pending, pendingBefore + 1, 'an entry with a hint is held as a hint');
  t.same(valuesAt(sim, 'n3', 'p5'), [], 'and not merged into the copy');

  const refused = (entries: Buffer): unknown => {
    try {
      void sim.node('n3').coordinator.replicaPuts(entries, 0, entries.length);
      return undefined;
    } catch (error) {
      return error;
    }
  };
  const good = put('p6', 'six');
  t.match(refused(Buffer.from(encodeBody({ entries: [good] }))), { code: 'BAD_REQUEST' }, 'a body that is not an array');
  t.match(refused(Buffer.from(encodeBody([good, 7]))), { code: 'BAD_REQUEST' }, 'an entry that is not a bin');
  const trailing = Buffer.concat([Buffer.from(encodeBody([good])), Buffer.from([0xc0])]);
  t.match(refused(trailing), { code: 'BAD_REQUEST' }, 'bytes after the array');
  const cut = Buffer.from(encodeBody([good, Buffer.alloc(9)])).subarray(0, -8);
  t.match(refused(cut), { code: 'BAD_REQUEST' }, 'a bin cut short');
  t.same(valuesAt(sim, 'n3', 'p6'), [], 'a refused body applies none of its entries');
  const tooMany = Array.from({ length: limits.multiKeysMax + 1 }, () => good);
  t.match(refused(Buffer.from(encodeBody(tooMany))), { code: 'TOO_MANY_KEYS' });

  // Storage that fails: the entry in flight fails with it, and so does every later one, at once.
  const engine = sim.node('n3').engine;
  engine.putRecord = () => Promise.reject(new Error('disk full'));
  const failed = await run(sim, replicaPuts([put('p7', 'seven')]));
  t.match(decodeBody(failed.value!, 0, failed.value!.length), [{ name: 'STORAGE_FAILED' }]);
  const after = await run(sim, replicaPuts([put('p8', 'eight'), put('p9', 'nine')]));
  t.match(decodeBody(after.value!, 0, after.value!.length), [{ name: 'STORAGE_FAILED' }, { name: 'STORAGE_FAILED' }]);
});

t.test('fuzz: any REPLICA_PUTS body is refused with a DkvError or answered with one result per entry', async (t) => {
  const sim = cluster(3);
  const coordinator = sim.node('n2').coordinator;
  const versions = sim.node('n1').store.writeLocal(key('fz'), Buffer.from('v'), undefined).record.subarray(RECORD_HEADER_BYTES);
  const valid = [
    encodeBody([encodeReplicaPutBody(key('a'), versions), encodeReplicaPutBody(key('b'), versions)]),
    encodeBody([encodeBody({ key: 'c', versions, hint: 'n9' }), encodeReplicaPutBody(key('d'), versions)]),
    encodeBody([encodeReplicaPutBody(key('e'), versions)]),
  ].map((b) => Buffer.from(b));
  const bodies = fc.oneof(
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
    fc
      .tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }))
      .map(([body, flips]) => {
        const mutated = Buffer.from(body);
        for (const [at, byte] of flips) mutated[at % mutated.length] = byte;
        return mutated;
      }),
  );
  const outcomes = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(bodies, async (body) => {
      let reply: Promise<Buffer>;
      try {
        reply = coordinator.replicaPuts(body, 0, body.length);
      } catch (error) {
        if (!(error instanceof DkvError)) return false;
        outcomes.set(error.code, (outcomes.get(error.code) ?? 0) + 1);
        return true;
      }
      const head = { count: 0, next: 0 };
      readArrayHeaderInPlace(body, 0, body.length, head);
      const { value, error } = await run(sim, reply, 1000);
      if (error !== undefined) return false;
      const results = decodeBody(value!, 0, value!.length);
      if (!Array.isArray(results) || results.length !== head.count) return false;
      for (const result of results) {
        const code = result === null ? 'durable' : String((result as { name?: unknown }).name);
        outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
      }
      return true;
    }),
    { numRuns: 400, seed: 11 },
  );
  t.ok((outcomes.get('durable') ?? 0) > 0, `outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  t.ok((outcomes.get('BAD_REQUEST') ?? 0) > 0, 'and refusals');
});
