// RespSession's reply order with writes that finish out of order: SETs whose acknowledgements
// share one promise (a log batch's) are answered together, each SET still gets its own reply in
// command order, and a failed batch fails each of its SETs.
import { deepStrictEqual } from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { ClusterView } from '../../src/coordinator/cluster-view.js';
import { DkvError } from '../../src/lib/errors.js';
import { createRootLogger } from '../../src/lib/log.js';
import type { Connection } from '../../src/server/connection.js';
import { RespSession } from '../../src/server/resp-session.js';
import type { Service } from '../../src/server/service.js';
import { ServerStats } from '../../src/server/stats.js';
import { MemoryEngine } from '../../src/store/memory-engine.js';
import { VersionedStore } from '../../src/store/versioned-store.js';

interface Deferred {
  promise: Promise<unknown>;
  resolve: () => void;
  reject: (error: Error) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A test may fail an acknowledgement no SET waits for.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

// A session whose SETs are acknowledged by the promises the test hands out, in order.
function session(acks: Deferred[]): { push: (text: string) => void; replies: string[]; stats: ServerStats; inFlight: () => number } {
  const replies: string[] = [];
  let inFlight = 0;
  const connection = {
    id: 1,
    name: null,
    reserve: () => -1,
    send: (bytes: Buffer) => replies.push(bytes.toString()),
    requestStarted: () => inFlight++,
    requestFinished: () => inFlight--,
  };
  const stats = new ServerStats(0);
  let next = 0;
  const service = {
    nodeId: 'n1',
    store: new VersionedStore(new MemoryEngine(), 'n1', () => 1000, null),
    stats,
    log: createRootLogger('silent'),
    shuttingDown: false,
    cluster: new ClusterView('n1', { host: '127.0.0.1', tcpPort: 0 }, 3, 16),
    acknowledgedWrite: () => acks[next++]!.promise,
  } as unknown as Service;
  const resp = new RespSession(connection as unknown as Connection, service);
  return { push: (text) => resp.push(Buffer.from(text)), replies, stats, inFlight: () => inFlight };
}

const set = (key: string): string => `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$1\r\nv\r\n`;
const get = (key: string): string => `*2\r\n$3\r\nGET\r\n$${key.length}\r\n${key}\r\n`;
const settle = (): Promise<void> => new Promise(setImmediate);

t.test('SETs sharing an acknowledgement are answered together, in order, before what follows', async (t) => {
  const batch = deferred();
  const later = deferred();
  const { push, replies, inFlight } = session([batch, batch, batch, later]);
  push(set('a') + set('b') + get('a') + set('c') + `*1\r\n$4\r\nPING\r\n` + set('d'));
  await settle();
  t.same(replies, [], 'nothing before the first SET is acknowledged');
  later.resolve();
  await settle();
  t.same(replies, [], 'a later batch done first waits for the earlier one');
  batch.resolve();
  await settle();
  t.same(replies, ['+OK\r\n', '+OK\r\n', '$-1\r\n', '+OK\r\n', '+PONG\r\n', '+OK\r\n'], 'every command answered once, in order');
  t.equal(inFlight(), 0);
});

t.test('a failed acknowledgement fails each SET that shares it, and only those', async (t) => {
  const failed = deferred();
  const fine = deferred();
  const { push, replies, stats } = session([failed, failed, fine]);
  push(set('a') + set('b') + set('c'));
  failed.reject(new DkvError('STORAGE_FAILED', 'disk gone'));
  fine.resolve();
  await settle();
  t.same(replies, ['-STORAGE_FAILED disk gone\r\n', '-STORAGE_FAILED disk gone\r\n', '+OK\r\n']);
  t.equal(stats.errors.get('STORAGE_FAILED'), 2, 'each failed SET is counted');
});

t.test('SETs of separate chunks that share a batch are answered once each', async (t) => {
  const batch = deferred();
  const { push, replies } = session([batch, batch, batch]);
  push(set('a'));
  push(set('b') + set('c'));
  batch.resolve();
  await settle();
  t.same(replies, ['+OK\r\n', '+OK\r\n', '+OK\r\n']);
});

t.test('any mix of SETs, GETs and PINGs, acknowledged in any order, is answered once each, in order', async (t) => {
  const command = fc.record({ kind: fc.constantFrom('set', 'get', 'ping'), ack: fc.nat(3) });
  await fc.assert(
    fc.asyncProperty(
      fc.array(command, { minLength: 1, maxLength: 20 }),
      fc.array(fc.nat(3), { minLength: 4, maxLength: 4 }),
      fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
      fc.nat(20),
      async (commands, order, fails, split) => {
        const acks = [deferred(), deferred(), deferred(), deferred()];
        const sets = commands.filter((c) => c.kind === 'set');
        const { push, replies, inFlight } = session(sets.map((c) => acks[c.ack]!));
        const text = commands.map((c, i) => (c.kind === 'set' ? set(`k${i}`) : c.kind === 'get' ? get(`k${i}`) : '*1\r\n$4\r\nPING\r\n'));
        push(text.slice(0, split).join(''));
        push(text.slice(split).join(''));
        const expected = commands.map((c) =>
          c.kind === 'set' ? (fails[c.ack] ? '-STORAGE_FAILED lost\r\n' : '+OK\r\n') : c.kind === 'get' ? '$-1\r\n' : '+PONG\r\n',
        );
        // Settle the acknowledgements in the given order (then any left); after each, what has
        // been answered is the start of the expected replies.
        const settledOrder = [...new Set([...order, 0, 1, 2, 3])];
        for (const a of settledOrder) {
          if (fails[a]) acks[a]!.reject(new DkvError('STORAGE_FAILED', 'lost'));
          else acks[a]!.resolve();
          await settle();
          deepStrictEqual(replies, expected.slice(0, replies.length));
        }
        deepStrictEqual(replies, expected);
        deepStrictEqual(inFlight(), 0);
      },
    ),
    { numRuns: 500 },
  );
  t.pass('500 mixes');
});
