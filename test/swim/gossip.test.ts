// The gossip queue (least-sent first, newest first among equals, replacement by subject, the
// transmit limit, the queue bound) and the packets the core builds from it: never over
// packetBytesMax, however much news waits.
import t from 'tap';
import { GossipQueue } from '../../src/swim/gossip-queue.js';
import { SwimMessageType } from '../../src/wire/codes.js';
import { encodeAlive, encodeLeft, SwimWriter } from '../../src/wire/swim-codec.js';
import { HEADER, hostOf, idOf, messagesOf, Solo, TCP_PORT, UDP_PORT } from '../helpers/swim-harness.js';

// A message of exactly `bytes` bytes about `subject` (a LEFT with a padded id).
function news(subject: number, bytes = 12, incarnation = 0): Buffer {
  const id = `s${subject}`.padEnd(bytes - 8, '.');
  const message = encodeLeft(incarnation, id);
  if (message.length !== bytes) throw new Error(`${message.length} bytes`);
  return message;
}

// Fills one packet of `room` bytes after the header; returns the subjects it carried, in order.
function fillOnce(queue: GossipQueue, limit: number, room = 1000): string[] {
  const writer = new SwimWriter(HEADER.length + room);
  writer.begin(HEADER);
  queue.fill(writer, limit);
  const messages = messagesOf(writer.finish());
  if (messages === null) throw new Error('malformed');
  return messages.map((m) => m.id!.replace(/\.+$/, ''));
}

t.test('queue: newest first among equals, least sent first', async (t) => {
  const queue = new GossipQueue(100);
  queue.enqueue(1, news(1));
  queue.enqueue(2, news(2));
  queue.enqueue(3, news(3));
  t.same(fillOnce(queue, 10), ['s3', 's2', 's1'], 'newest first');
  queue.enqueue(4, news(4));
  t.same(fillOnce(queue, 10), ['s4', 's3', 's2', 's1'], 'the unsent one first');
  // Room for one message only: each packet takes the least sent.
  t.same(fillOnce(queue, 10, 12), ['s4'], 's4: 1 send, the others 2');
  t.same(fillOnce(queue, 10, 12), ['s4'], 'all at 2: the newest');
  t.same(fillOnce(queue, 10, 12), ['s3'], 's3: 2 sends, s4 3');
  t.same(fillOnce(queue, 10, 12), ['s2']);
  t.same(fillOnce(queue, 10, 12), ['s1']);
  t.same(fillOnce(queue, 10, 12), ['s4'], 'all at 3: the newest again');
  t.end();
});

t.test('queue: a newer message about the same subject replaces the older one', async (t) => {
  const queue = new GossipQueue(100);
  queue.enqueue(1, news(1, 12, 0));
  queue.enqueue(2, news(2));
  fillOnce(queue, 10);
  fillOnce(queue, 10);
  queue.enqueue(1, news(1, 12, 7));
  t.equal(queue.length, 2);
  t.ok(queue.has(1) && queue.has(2) && !queue.has(3));
  const writer = new SwimWriter(HEADER.length + 1000);
  writer.begin(HEADER);
  queue.fill(writer, 10);
  const messages = messagesOf(writer.finish())!;
  t.same(
    messages.map((m) => [m.id!.replace(/\.+$/, ''), m.number]),
    [
      ['s1', 7],
      ['s2', 0],
    ],
    'the new one, with its sends counted from 0, and no trace of the old',
  );
  t.end();
});

t.test('queue: each message is sent transmitLimit times, then dropped', async (t) => {
  const queue = new GossipQueue(100);
  queue.enqueue(1, news(1));
  queue.enqueue(2, news(2));
  let sends = 0;
  for (let i = 0; i < 20 && queue.length > 0; i++) sends += fillOnce(queue, 3).length;
  t.equal(sends, 6);
  t.equal(queue.length, 0);
  // A message that never fits stays queued, and does not block smaller ones behind it.
  queue.enqueue(1, news(1, 40));
  queue.enqueue(2, news(2, 12));
  t.same(fillOnce(queue, 1, 20), ['s2']);
  t.equal(queue.length, 1, 'the large one waits for a packet with room');
  t.same(fillOnce(queue, 1, 40), ['s1']);
  t.equal(queue.length, 0);
  t.same(fillOnce(queue, 1), [], 'an empty queue adds nothing');
  t.end();
});

t.test('queue: past its bound the most sent message goes', async (t) => {
  const queue = new GossipQueue(3);
  queue.enqueue(1, news(1));
  fillOnce(queue, 10);
  fillOnce(queue, 10);
  queue.enqueue(2, news(2));
  fillOnce(queue, 10);
  queue.enqueue(3, news(3));
  queue.enqueue(4, news(4));
  t.equal(queue.length, 3);
  t.notOk(queue.has(1), 's1, sent three times, dropped');
  t.same(fillOnce(queue, 10), ['s4', 's3', 's2']);
  t.end();
});

const aliveOf = (i: number, incarnation: number): Buffer => encodeAlive(incarnation, idOf(i), hostOf(i), UDP_PORT, TCP_PORT);

// n0 fed `count` members with long ids, ten ALIVEs to a datagram (at hostOf(i), so that the
// probes are answered and nobody is suspected).
function crowded(count: number, config = {}): Solo {
  const solo = new Solo(config);
  for (let first = 1; first <= count; first += 10) {
    const batch = [];
    for (let i = first; i < first + 10 && i <= count; i++) {
      batch.push(encodeAlive(0, `member-${i}-`.padEnd(80, 'x'), hostOf(i), UDP_PORT, TCP_PORT));
    }
    solo.feed(1, ...batch);
  }
  solo.drain();
  return solo;
}

t.test('core: packets never exceed packetBytesMax, however much news waits', async (t) => {
  for (const packetBytesMax of [576, 1400]) {
    const solo = crowded(300, { packetBytesMax });
    t.equal(solo.core.gossipPending, 301, 'every ALIVE queued (and our own)');
    const sent = solo.runTo(3000, true);
    t.ok(sent.length > 100, `${sent.length} packets`);
    let longest = 0;
    for (const packet of sent) longest = Math.max(longest, packet.length);
    t.ok(longest <= packetBytesMax, `longest ${longest} ≤ ${packetBytesMax}`);
    t.ok(longest > packetBytesMax - 120, 'packets are filled, not sent near empty');
    // Every member's ALIVE went out at least once.
    const carried = new Set(sent.flatMap((p) => p.messages.filter((m) => m.type === SwimMessageType.ALIVE).map((m) => m.id)));
    t.equal(carried.size, 301, 'every ALIVE carried');
    // The PINGs too: a PING and the rest of the packet filled with news.
    const pings = sent.filter((p) => p.messages[0]!.type === SwimMessageType.PING);
    t.ok(pings.length > 0 && pings.every((p) => p.length <= packetBytesMax), 'PINGs with piggybacked news fit');
    t.ok(pings.some((p) => p.messages.length > 1), 'news rode on PINGs');
  }
  t.end();
});

t.test('core: a piece of news goes out transmitLimit times, to gossipNodes members a round', async (t) => {
  // Four members besides n0: transmit limit 4 · ⌈log10(5 + 1)⌉ = 4.
  const solo = new Solo({ probeIntervalMs: 100_000, probeTimeoutMs: 50_000 });
  solo.feed(1, aliveOf(1, 0), aliveOf(2, 0), aliveOf(3, 0), aliveOf(4, 0));
  for (let i = 0; i < 100 && solo.core.gossipPending > 0; i++) solo.runTo(solo.nowMs + 20, true);
  t.equal(solo.core.gossipPending, 0);
  solo.feed(2, encodeLeft(0, idOf(4)));
  const sent = solo.runTo(solo.nowMs + 500, true);
  const carrying = sent.filter((p) => p.messages.some((m) => m.type === SwimMessageType.LEFT));
  t.equal(carrying.length, 4, 'four sends');
  t.equal(solo.core.gossipPending, 0);
  // Gossip goes to gossipNodes (3) distinct live members per round, and not to the one that left.
  const rounds = new Map<number, string[]>();
  for (const p of carrying) rounds.set(p.atMs, [...(rounds.get(p.atMs) ?? []), p.host]);
  const first = [...rounds.values()][0]!;
  t.equal(first.length, 3);
  t.equal(new Set(first).size, 3);
  t.notOk(carrying.some((p) => p.host === hostOf(4)), 'a left member gets no gossip');
  t.ok(solo.core.stats.gossipPackets >= 2);
  t.end();
});
