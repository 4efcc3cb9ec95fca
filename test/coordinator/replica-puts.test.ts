// ReplicaPutBatches: replica writes made together go to each peer in one REPLICA_PUTS, and each write
// learns its own outcome from the reply. The transport here is a fake that records what is sent
// and answers when told; writes join a batch until the test runs the scheduled flush.
import t from 'tap';
import { ReplicaPutBatches } from '../../src/coordinator/replica-puts.js';
import { DkvError } from '../../src/lib/errors.js';
import { limits } from '../../src/lib/limits.js';
import { FRAME_HEADER_BYTES } from '../../src/wire/codes.js';
import {
  decodeBody,
  encodeBody,
  encodeReplicaPutBody,
  errorBodyOf,
  readArrayHeaderInPlace,
  replicaPutsAllDurable,
} from '../../src/wire/messages.js';

interface Sent {
  id: string;
  count: number;
  // The entries, when the decoder takes the body (one larger than a frame it refuses).
  entries: Buffer[] | undefined;
  bytes: number;
  timeoutMs: number;
  answer: (reply: Buffer) => void;
  refuse: (error: unknown) => void;
}

function harness(sendThrows?: Error) {
  const sent: Sent[] = [];
  const singles: Array<{ id: string; body: Buffer; answer: () => void; refuse: (error: unknown) => void }> = [];
  const flushes: Array<() => void> = [];
  const clock = { nowMs: 0 };
  const batches = new ReplicaPutBatches({
    sendBatch: (id, body, timeoutMs) => {
      if (sendThrows !== undefined) throw sendThrows;
      return new Promise<Buffer>((resolve, reject) => {
        const head = { count: 0, next: 0 };
        if (!readArrayHeaderInPlace(body, 0, body.length, head)) throw new Error('not an array');
        let entries: Buffer[] | undefined;
        try {
          entries = (decodeBody(body, 0, body.length) as Uint8Array[]).map((e) => Buffer.from(e));
        } catch {
          entries = undefined;
        }
        sent.push({ id, count: head.count, entries, bytes: body.length, timeoutMs, answer: resolve, refuse: reject });
      });
    },
    sendOne: (id, body) => new Promise((resolve, reject) => singles.push({ id, body, answer: () => resolve({}), refuse: reject })),
    schedule: (flush) => flushes.push(flush),
    nowMs: () => clock.nowMs,
  });
  const outcomes: Array<DkvError | null | 'waiting'> = [];
  // Each write is told its outcome under the slot it was added with: here, its index.
  const target = {
    replicaPutDone(slot: number, error: DkvError | null): void {
      if (outcomes[slot] !== 'waiting') throw new Error(`write ${slot} settled twice`);
      outcomes[slot] = error;
    },
  };
  const add = (id: string, body: Buffer, timeoutMs = 1000): number => {
    const index = outcomes.push('waiting') - 1;
    batches.add(id, body, timeoutMs, target, index);
    return index;
  };
  // Runs the flushes scheduled so far, as the transport's scheduler would.
  const runFlushes = (): void => {
    for (const flush of flushes.splice(0)) flush();
  };
  return { batches, sent, singles, clock, flushes, outcomes, add, runFlushes };
}

const body = (key: string, size = 8): Buffer => encodeReplicaPutBody(Buffer.from(key), Buffer.alloc(size, 1));
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test('writes made together go to each peer in one request, in order; all-durable settles each', async (t) => {
  const h = harness();
  h.add('p1', body('a'));
  h.add('p2', body('b'));
  h.add('p1', body('c'), 3000);
  t.equal(h.flushes.length, 1, 'one flush scheduled for the writes made together');
  t.equal(h.sent.length, 0, 'nothing goes before the flush');
  h.runFlushes();
  t.equal(h.sent.length, 2, 'one request per peer');
  const [toP1, toP2] = h.sent;
  t.equal(toP1!.id, 'p1');
  t.same(toP1!.entries, [body('a'), body('c')], 'p1 gets its two writes in the order they were made');
  t.equal(toP1!.timeoutMs, 3000, 'the request waits as long as its longest write may');
  t.same(toP2!.entries, [body('b')]);
  t.equal(h.batches.sent, 2);
  toP1!.answer(replicaPutsAllDurable(2));
  await settle();
  t.same(h.outcomes, [null, 'waiting', null], "p1's writes are durable; p2's still wait");
  toP2!.answer(replicaPutsAllDurable(1));
  await settle();
  t.same(h.outcomes, [null, null, null]);

  h.add('p1', body('d'));
  t.equal(h.flushes.length, 1, 'later writes schedule their own flush');
  h.runFlushes();
  t.equal(h.sent.length, 3, 'and its own request');
});

t.test('a reply with failed entries fails just those, with their codes and counts', async (t) => {
  const h = harness();
  for (const key of ['a', 'b', 'c']) h.add('p', body(key));
  h.runFlushes();
  const quorum = new DkvError('QUORUM_FAILED', 'not enough', { details: { answered: 1, needed: 2 } });
  h.sent[0]!.answer(Buffer.from(encodeBody([null, errorBodyOf(new DkvError('STORAGE_FAILED', 'disk full')), errorBodyOf(quorum)])));
  await settle();
  t.equal(h.outcomes[0], null);
  t.match(h.outcomes[1], { code: 'STORAGE_FAILED', message: 'disk full' });
  t.match(h.outcomes[2], { code: 'QUORUM_FAILED', details: { answered: 1, needed: 2 } });
});

t.test('a reply that does not match the request fails every write in it', async (t) => {
  for (const [what, reply] of [
    ['too few results', replicaPutsAllDurable(1)],
    ['too many results', replicaPutsAllDurable(3)],
    ['not an array', Buffer.from(encodeBody({}))],
    ['not msgpack', Buffer.from([0xc1])],
    ['empty', Buffer.alloc(0)],
  ] as const) {
    const h = harness();
    h.add('p', body('a'));
    h.add('p', body('b'));
    h.runFlushes();
    h.sent[0]!.answer(reply);
    await settle();
    t.match(h.outcomes, [{ code: 'PROTOCOL_VIOLATION' }, { code: 'PROTOCOL_VIOLATION' }], what);
  }
});

t.test('a request that fails, or cannot be sent, fails every write in it', async (t) => {
  const h = harness();
  h.add('p', body('a'));
  h.add('p', body('b'));
  h.add('q', body('c'));
  h.runFlushes();
  h.sent[0]!.refuse(new DkvError('CANNOT_CONNECT', 'refused'));
  h.sent[1]!.refuse(new Error('not a DkvError'));
  await settle();
  t.match(h.outcomes, [{ code: 'CANNOT_CONNECT' }, { code: 'CANNOT_CONNECT' }, { code: 'INTERNAL' }]);

  const thrown = harness(new DkvError('QUORUM_FAILED', 'node p is not a member'));
  thrown.add('p', body('a'));
  thrown.runFlushes();
  await settle();
  t.match(thrown.outcomes, [{ code: 'QUORUM_FAILED' }], 'a send that throws fails its writes, not the flush');
});

t.test('a batch holds at most multiKeysMax writes and one frame of bytes', async (t) => {
  const h = harness();
  for (let i = 0; i <= limits.multiKeysMax; i++) h.add('p', body(`k${i}`));
  t.equal(h.sent.length, 1, 'a full batch goes at once');
  t.equal(h.sent[0]!.count, limits.multiKeysMax);
  h.runFlushes();
  t.equal(h.sent.length, 2);
  t.equal(h.sent[1]!.count, 1, 'the rest goes at the flush');

  const big = harness();
  const third = Math.floor(limits.frameBytesMax / 3);
  big.add('p', body('x', third));
  big.add('p', body('y', third));
  big.add('p', body('z', third));
  big.runFlushes();
  t.same(
    big.sent.map((s) => s.count),
    [2, 1],
    'writes that would overflow a frame start a new request',
  );
  for (const s of big.sent) t.ok(s.bytes <= limits.frameBytesMax - FRAME_HEADER_BYTES, `a body of ${s.bytes} bytes fits a frame`);

  const huge = harness();
  huge.add('p', body('small'));
  huge.add('p', body('huge', limits.frameBytesMax));
  huge.add('p', body('after'));
  huge.runFlushes();
  t.same(
    huge.sent.map((s) => s.count),
    [1, 1, 1],
    'a write too large for any frame goes alone (and fails alone, at the client)',
  );
});

t.test('a peer that does not know REPLICA_PUTS gets single REPLICA_PUTs, for a while', async (t) => {
  const h = harness();
  h.add('old', body('a'));
  h.add('old', body('b'));
  h.add('new', body('c'));
  h.runFlushes();
  h.sent[0]!.refuse(new DkvError('UNKNOWN_OPCODE', 'opcode 0x12 is unknown'));
  await settle();
  t.same(
    h.singles.map((s) => [s.id, s.body]),
    [
      ['old', body('a')],
      ['old', body('b')],
    ],
    "the batch's writes go again one by one",
  );
  t.same(h.outcomes, ['waiting', 'waiting', 'waiting'], 'nothing has failed');
  h.singles[0]!.answer();
  h.singles[1]!.refuse(new DkvError('STORAGE_FAILED', 'disk full'));
  await settle();
  t.equal(h.outcomes[0], null);
  t.match(h.outcomes[1], { code: 'STORAGE_FAILED' });

  const batchesBefore = h.batches.sent;
  h.add('old', body('d'));
  t.equal(h.singles.length, 3, 'a later write to that peer goes alone at once');
  t.equal(h.flushes.length, 0);
  h.add('new', body('e'));
  h.runFlushes();
  t.equal(h.batches.sent, batchesBefore + 1, 'other peers still get batches');

  h.clock.nowMs += 60_000;
  h.add('old', body('f'));
  h.runFlushes();
  t.equal(h.singles.length, 3, 'a minute later, batches are tried again');
  t.equal(h.sent.at(-1)!.id, 'old');
});
