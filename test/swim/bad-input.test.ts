// Bad input on UDP: every malformed datagram is dropped, counted in stats.packetsDropped, never
// throws and changes nothing (members, push-pull state, incarnation, queues, deadlines). Checked
// case by case and with random bytes and random mutations of valid datagrams.
import { deepStrictEqual, ok } from 'node:assert/strict';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { limits } from '../../src/lib/limits.js';
import { DATAGRAM_MAGIC, DATAGRAM_VERSION, SwimMessageType } from '../../src/wire/codes.js';
import { encodeDatagramHeader } from '../../src/wire/datagram.js';
import { encodeAlive, encodeDead, encodeLeft, encodeSuspect } from '../../src/wire/swim-codec.js';
import { ack, datagram, hostOf, idOf, nack, ping, pingReq, snapshotOf, Solo, TCP_PORT, UDP_PORT } from '../helpers/swim-harness.js';

const unhex = (text: string): Buffer => Buffer.from(text.replace(/ /g, ''), 'hex');
const aliveOf = (i: number, incarnation: number): Buffer => encodeAlive(incarnation, idOf(i), hostOf(i), UDP_PORT, TCP_PORT);

// A core with some history: members in every state, a suspicion running, news queued, a probe
// out, a relay pending.
function busySolo(): Solo {
  const solo = new Solo();
  solo.feed(1, aliveOf(1, 3), aliveOf(2, 1), aliveOf(3, 0), aliveOf(4, 0), aliveOf(5, 2));
  solo.feed(2, encodeSuspect(0, idOf(3), idOf(2)), encodeDead(0, idOf(4), idOf(2)), encodeLeft(2, idOf(5)));
  solo.feed(2, pingReq(77, idOf(1)));
  solo.tick(60);
  solo.drain();
  return solo;
}

// A valid datagram, for the mutations below.
function validDatagram(): Buffer {
  return datagram(ping(5, idOf(0)), aliveOf(6, 1), encodeSuspect(1, idOf(1), idOf(2)), ack(9));
}

function expectDropped(t: Test, solo: Solo, bytes: Uint8Array, name: string): void {
  const before = snapshotOf(solo.core);
  const dropped = solo.core.stats.packetsDropped;
  const packetsIn = solo.core.stats.packetsIn;
  t.doesNotThrow(() => solo.feedBytes(1, bytes), `${name}: no throw`);
  t.equal(solo.core.stats.packetsDropped, dropped + 1, `${name}: counted as dropped`);
  t.equal(solo.core.stats.packetsIn, packetsIn + 1, `${name}: counted in`);
  t.same(snapshotOf(solo.core), before, `${name}: nothing changed`);
}

t.test('each kind of bad datagram is dropped, counted and changes nothing', async (t) => {
  const solo = busySolo();
  const valid = validDatagram();
  const payload = valid.subarray(3);
  const cases: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['one byte', unhex('d7')],
    ['header alone', unhex('d7 01 00')],
    ['garbage', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['zeros', Buffer.alloc(64)],
    ['wrong magic', Buffer.concat([unhex('d8 01 00'), payload])],
    ['a native frame', unhex('00 00 00 07 01 02 00 00 00 00 01')],
    ['version 0', Buffer.concat([unhex('d7 00 00'), payload])],
    ['version 2', Buffer.concat([unhex('d7 02 00'), payload])],
    ['unknown flag 0x04', Buffer.concat([unhex('d7 01 04'), payload])],
    ['unknown flag 0x80', Buffer.concat([unhex('d7 01 80'), payload])],
    ['a cluster label this node does not have', Buffer.concat([encodeDatagramHeader('other', false), payload])],
    ['an auth tag this node does not expect', Buffer.concat([encodeDatagramHeader(null, true), payload])],
    ['unknown message type 0x00', datagram(unhex('00 0004 00000001'))],
    ['unknown message type 0x09', datagram(unhex('09 0004 00000001'))],
    ['unknown message type 0xff', datagram(unhex('ff 0004 00000001'))],
    ['a good ACK then an unknown type', datagram(ack(1), unhex('09 0004 00000001'))],
    ['a good ALIVE then an unknown type', datagram(aliveOf(9, 1), unhex('ee 0000'))],
    ['truncated: last byte cut', valid.subarray(0, valid.length - 1)],
    ['truncated: inside a message header', Buffer.concat([valid, unhex('05 00')])],
    ['body length past the end', datagram(unhex('03 0008 00000001'))],
    ['trailing bytes in a body', datagram(unhex('03 0005 00000001 00'))],
    ['empty id', datagram(unhex('08 0005 00000001 00'))],
    ['id runs past its body', datagram(unhex('08 0006 00000001 05 6e'))],
  ];
  // Every strict prefix of a valid datagram that does not end on a message boundary.
  const boundaries = [3];
  for (let at = 3; at < valid.length; at += 3 + valid.readUInt16BE(at + 1)) boundaries.push(at + 3 + valid.readUInt16BE(at + 1));
  for (let length = 4; length < valid.length; length++) {
    if (!boundaries.includes(length)) cases.push([`prefix of ${length} bytes`, valid.subarray(0, length)]);
  }
  // Over the datagram limit, though well formed: many ACKs back to back.
  const oversize = datagram(...Array.from({ length: Math.ceil((limits.datagramBytesMax - 2) / 7) }, () => ack(123456)));
  t.ok(oversize.length > limits.datagramBytesMax, `oversize datagram of ${oversize.length} bytes`);
  cases.push(['oversize: > datagramBytesMax of ACKs', oversize]);
  const oversizeAlive = datagram(...Array.from({ length: 40 }, (_, i) => encodeAlive(9, `m${i}`, 'x'.repeat(30), 1, 2)));
  t.ok(oversizeAlive.length > limits.datagramBytesMax);
  cases.push(['oversize: > datagramBytesMax of new members', oversizeAlive]);
  cases.push(['oversize: 64 KiB of garbage', Buffer.alloc(65_536, 0xd7)]);

  for (const [name, bytes] of cases) expectDropped(t, solo, bytes, name);
  t.equal(solo.core.stats.packetsDropped, cases.length);

  // Exactly datagramBytesMax is accepted: 198 ACKs and an 11-byte PING after the 3-byte header.
  const largest = datagram(...Array.from({ length: 198 }, () => ack(1)), ping(1, 'zzz'));
  t.equal(largest.length, limits.datagramBytesMax);
  solo.feedBytes(1, largest);
  t.equal(solo.core.stats.packetsDropped, cases.length, 'a datagram of exactly the limit is not dropped');
  t.equal(solo.core.stats.packetsMisdirected, 1);
  t.end();
});

t.test('a labelled node takes only datagrams of its own label, and labels what it sends', async (t) => {
  const solo = new Solo({ clusterLabel: 'blue' });
  const payload = datagram(ping(7, idOf(0))).subarray(3);
  for (const [name, header] of [
    ['no label', encodeDatagramHeader(null, false)],
    ['another label', encodeDatagramHeader('green', false)],
    ['a label that starts the same', encodeDatagramHeader('blue2', false)],
  ] as const) {
    solo.feedBytes(1, Buffer.concat([header, payload]));
    t.equal(solo.drain().out.length, 0, `${name}: not answered`);
  }
  t.equal(solo.core.stats.packetsDropped, 3, 'each dropped and counted');
  solo.feedBytes(1, Buffer.concat([encodeDatagramHeader('blue', false), payload]));
  const out = solo.drain().out;
  t.equal(out.length, 1, 'its own label: answered');
  t.equal(out[0]!.label, 'blue', 'with its label');
});

t.test('a bad message anywhere drops the whole datagram: the good ones before it are not applied', async (t) => {
  const solo = busySolo();
  expectDropped(t, solo, datagram(aliveOf(7, 0), encodeLeft(3, idOf(1)), ping(1, idOf(0)), unhex('08 0005 00000001 00')), 'good then bad');
  t.equal(solo.statusOf(7), undefined, 'the ALIVE before the bad message was not applied');
  t.equal(solo.statusOf(1), 'alive', 'nor the LEFT');
  t.equal(solo.core.outboxCount, 0, 'nor was the PING answered');
  t.end();
});

t.test('strings that are not UTF-8 are dropped and do not crash', async (t) => {
  // Regression: an id of 86+ bytes that are not UTF-8 decodes to U+FFFD (three bytes each), over
  // the 255 bytes the directory and the encoders assert, and receive() threw.
  const solo = busySolo();
  const invalid = Buffer.alloc(100, 0xff);
  const aliveWithId = (text: Buffer): Buffer => {
    const m = Buffer.concat([unhex('05 0000 00000007'), Buffer.from([text.length]), text, unhex('01 68 0001 0002')]);
    m.writeUInt16BE(m.length - 3, 1);
    return m;
  };
  expectDropped(t, solo, datagram(aliveWithId(invalid)), 'ALIVE with 100 bytes of 0xff as id');
  const suspect = Buffer.concat([unhex('06 0000 00000009 02 6e31'), Buffer.from([200]), Buffer.alloc(200, 0x80)]);
  suspect.writeUInt16BE(suspect.length - 3, 1);
  expectDropped(t, solo, datagram(suspect), 'SUSPECT from 200 continuation bytes');
  const alive = Buffer.concat([unhex('05 0000 00000007 02 6e39'), Buffer.from([255]), Buffer.alloc(255, 0xc3), unhex('0001 0002')]);
  alive.writeUInt16BE(alive.length - 3, 1);
  expectDropped(t, solo, datagram(alive), 'ALIVE with a host of 255 truncated sequences');
  t.end();
});

t.test('a PING for another id is counted as misdirected and not answered', async (t) => {
  const solo = busySolo();
  solo.feed(1, ping(5, idOf(9)));
  t.equal(solo.core.stats.packetsMisdirected, 1);
  t.equal(solo.core.stats.packetsDropped, 0);
  t.equal(solo.core.outboxCount, 0, 'no ACK');
  solo.feed(1, ping(6, 'n'), ping(7, 'n00'));
  t.equal(solo.core.stats.packetsMisdirected, 3, 'prefixes and extensions of our id are other ids');
  solo.feed(1, ping(8, idOf(0)));
  t.same(solo.drain().out.map((p) => [p.host, p.messages[0]]), [[hostOf(1), { type: SwimMessageType.ACK, number: 8 }]]);
  // The rest of a misdirected PING's datagram still counts: its gossip is news like any other.
  solo.feed(1, ping(9, idOf(9)), aliveOf(8, 0));
  t.equal(solo.statusOf(8), 'alive');
  t.end();
});

t.test('stray ACKs, NACKs and PING_REQs change no membership', async (t) => {
  const solo = busySolo();
  const before = solo.core.members();
  // ACK and NACK for sequence numbers never sent, PING_REQ for unknown members and for ourselves.
  solo.feed(3, ack(987654), nack(987654), pingReq(1, idOf(42)), pingReq(2, idOf(0)));
  t.same(solo.core.members(), before);
  t.equal(solo.core.stats.pingRequestsDropped, 2);
  t.equal(solo.core.stats.nacksIn, 0);
  t.equal(solo.core.outboxCount, 0);
  t.end();
});

t.test('fuzz: random bytes and mutated datagrams never throw; dropped ones change nothing', async (t) => {
  const started = performance.now();
  const solo = busySolo();
  let dropped = 0;
  let applied = 0;
  // One core takes every run and each run is compared with a snapshot taken just before it, so
  // what an accepted datagram changed carries over: later junk meets more states.
  const header = Buffer.from([DATAGRAM_MAGIC, DATAGRAM_VERSION, 0]);
  const valid = validDatagram();
  const arbitraryBytes = fc.oneof(
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1390, maxLength: 1420 }) },
    // The right header and random messages: the payload checks see it.
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 120 }).map((p) => Buffer.concat([header, p])) },
    // A known type and a plausible body length.
    {
      weight: 3,
      arbitrary: fc.tuple(fc.integer({ min: 0, max: 9 }), fc.uint8Array({ maxLength: 60 })).map(([type, body]) => {
        const m = Buffer.alloc(3 + body.length);
        m[0] = type;
        m.writeUInt16BE(body.length, 1);
        Buffer.from(body).copy(m, 3);
        return Buffer.concat([header, m]);
      }),
    },
    // A valid datagram with bytes overwritten, and maybe cut or extended.
    {
      weight: 4,
      arbitrary: fc
        .tuple(fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 3 }), fc.integer({ min: -6, max: 3 }))
        .map(([edits, resize]) => {
          let bytes = Buffer.from(valid);
          for (const [at, value] of edits) bytes[at % bytes.length] = value;
          if (resize < 0) bytes = bytes.subarray(0, bytes.length + resize);
          else if (resize > 0) bytes = Buffer.concat([bytes, Buffer.alloc(resize, 0x41)]);
          return bytes;
        }),
    },
  );
  fc.assert(
    fc.property(arbitraryBytes, (bytes) => {
      const before = snapshotOf(solo.core);
      const droppedBefore = solo.core.stats.packetsDropped;
      try {
        solo.feedBytes(1, bytes);
      } catch (error) {
        ok(false, `threw ${String(error)} on ${Buffer.from(bytes).toString('hex')}`);
      }
      if (solo.core.stats.packetsDropped === droppedBefore + 1) {
        dropped++;
        deepStrictEqual(snapshotOf(solo.core), before, `dropped datagram changed state: ${Buffer.from(bytes).toString('hex')}`);
      } else {
        ok(solo.core.stats.packetsDropped === droppedBefore);
        applied++;
        solo.drain();
      }
    }),
    { numRuns: 12_000, seed: 42 },
  );
  t.ok(dropped > 8000, `${dropped} dropped`);
  t.ok(applied > 100, `${applied} applied`);
  t.ok(performance.now() - started < 60_000, 'bounded time');
  t.end();
});
