// The client's table of requests in flight against a Map, on random runs: ids handed out in
// order, replies in any order, some requests slow (in flight while many later ones come and
// go, so their slots come round again), timeouts that take some, and a close that takes all.
import fc from 'fast-check';
import t from 'tap';
import { InFlight, type Pending } from '../../src/client/client.js';

function request(requestId: number): Pending {
  return { requestId, opcode: 1, deadlineMs: requestId, raw: false, resolve: () => {}, reject: () => {} };
}

t.test('finds every request in flight, and only those', async (t) => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('send' as const), count: fc.integer({ min: 1, max: 150 }) }),
    fc.record({ kind: fc.constant('reply' as const), pick: fc.nat(), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }),
    fc.record({ kind: fc.constant('expire' as const), before: fc.nat(30000) }),
    fc.record({ kind: fc.constant('stale' as const), id: fc.nat(30000) }),
    // Many requests answered at once, but for one in `keepEvery`: the ids run far ahead of the
    // ones kept.
    fc.record({ kind: fc.constant('churn' as const), count: fc.integer({ min: 1, max: 2000 }), keepEvery: fc.integer({ min: 50, max: 5000 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), fc.integer({ min: 1, max: 0xffffffff - 200000 }), (ops, firstId) => {
      const table = new InFlight();
      const model = new Map<number, Pending>();
      let nextId = firstId;
      for (const o of ops) {
        if (o.kind === 'send') {
          for (let i = 0; i < o.count; i++) {
            const pending = request(nextId++);
            table.add(pending);
            model.set(pending.requestId, pending);
          }
        } else if (o.kind === 'churn') {
          for (let i = 0; i < o.count; i++) {
            const pending = request(nextId++);
            table.add(pending);
            if (pending.requestId % o.keepEvery === 0) model.set(pending.requestId, pending);
            else if (table.take(pending.requestId) !== pending) return false;
          }
        } else if (o.kind === 'reply') {
          // Replies to a share of the requests in flight, leaving the others (the slow ones).
          const ids = [...model.keys()];
          const replies = Math.floor(ids.length * o.fraction);
          for (let i = 0; i < replies; i++) {
            const id = ids[(o.pick + i * 7) % ids.length]!;
            if (!model.has(id)) continue;
            if (table.take(id) !== model.get(id)) return false;
            model.delete(id);
          }
        } else if (o.kind === 'expire') {
          const limit = firstId + o.before;
          const taken = table.takeAll((p) => p.deadlineMs < limit).map((p) => p.requestId).sort((a, b) => a - b);
          const expected = [...model.keys()].filter((id) => id < limit).sort((a, b) => a - b);
          if (taken.join() !== expected.join()) return false;
          for (const id of expected) model.delete(id);
        } else if (table.take(firstId + o.id) !== model.get(firstId + o.id)) {
          return false;
        } else {
          model.delete(firstId + o.id);
        }
        if (table.size !== model.size) return false;
      }
      const rest = table.takeAll(() => true);
      return rest.length === model.size && rest.every((p) => model.get(p.requestId) === p) && table.size === 0;
    }),
    { numRuns: 500 },
  );
  t.pass();
});
