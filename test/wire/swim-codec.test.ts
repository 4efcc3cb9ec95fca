// The SWIM message codec: every message type as fixed bytes in both directions, round trips of
// random messages, and a reader that answers -1 (never throws) to truncated, over-long, trailing,
// unknown and random input.
import { deepStrictEqual } from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import t from 'tap';
import { AssertionError } from '../../src/lib/assert.js';
import { SwimMessageType } from '../../src/wire/codes.js';
import {
  encodeAlive,
  encodeDead,
  encodeLeft,
  encodeSuspect,
  SWIM_MESSAGE_HEADER_BYTES,
  SwimReader,
  SwimWriter,
} from '../../src/wire/swim-codec.js';
import { heapBytesPerOp } from '../helpers/heap.js';

const unhex = (text: string): Buffer => Buffer.from(text.replace(/ /g, ''), 'hex');
const NO_HEADER = Buffer.alloc(0);

// What a reader saw in one message, with only the fields its type has.
interface Decoded {
  type: number;
  number: number;
  id?: string;
  host?: string;
  from?: string;
  udpPort?: number;
  tcpPort?: number;
}

function fieldsOf(r: SwimReader, type: number): Decoded {
  switch (type) {
    case SwimMessageType.ACK:
    case SwimMessageType.NACK:
      return { type, number: r.number };
    case SwimMessageType.PING:
    case SwimMessageType.PING_REQ:
    case SwimMessageType.LEFT:
      return { type, number: r.number, id: r.id() };
    case SwimMessageType.SUSPECT:
    case SwimMessageType.DEAD:
      return { type, number: r.number, id: r.id(), from: r.from() };
    case SwimMessageType.ALIVE:
      return { type, number: r.number, id: r.id(), host: r.host(), udpPort: r.udpPort, tcpPort: r.tcpPort };
    default:
      throw new Error(`reader returned type ${type}`);
  }
}

// Every message of a payload, or the -1 the walk ended in (with the messages before it).
function walk(bytes: Uint8Array, start = 0, end = bytes.length): { messages: Decoded[]; end: number } {
  const reader = new SwimReader();
  reader.reset(bytes, start, end);
  const messages: Decoded[] = [];
  let type: number;
  // A message takes at least 7 bytes, so a walk has at most length/7 + 1 steps.
  for (let steps = 0; steps <= bytes.length; steps++) {
    type = reader.next();
    if (type <= 0) return { messages, end: type };
    messages.push(fieldsOf(reader, type));
  }
  throw new Error('reader did not finish');
}

function writerMessage(write: (w: SwimWriter) => void): Buffer {
  const writer = new SwimWriter(1400);
  writer.begin(NO_HEADER);
  write(writer);
  return writer.finish();
}

const b = (text: string): Buffer => Buffer.from(text, 'utf8');

// name, bytes, how to encode them, what decoding them gives.
const FIXTURES: Array<[string, string, () => Buffer, Decoded]> = [
  [
    'PING seq 1 to n1',
    '01 0007 00000001 02 6e31',
    () => writerMessage((w) => w.ping(1, b('n1'))),
    { type: SwimMessageType.PING, number: 1, id: 'n1' },
  ],
  [
    'PING_REQ seq 0x01020304 for b',
    '02 0006 01020304 01 62',
    () => writerMessage((w) => w.pingReq(0x01020304, b('b'))),
    { type: SwimMessageType.PING_REQ, number: 0x01020304, id: 'b' },
  ],
  ['ACK seq 7', '03 0004 00000007', () => writerMessage((w) => w.ack(7)), { type: SwimMessageType.ACK, number: 7 }],
  [
    'NACK seq 2^32-1',
    '04 0004 ffffffff',
    () => writerMessage((w) => w.nack(0xffffffff)),
    { type: SwimMessageType.NACK, number: 0xffffffff },
  ],
  [
    'ALIVE n1 at 10.0.0.1:7946/7947, incarnation 5',
    '05 0014 00000005 02 6e31 08 31302e302e302e31 1f0a 1f0b',
    () => encodeAlive(5, 'n1', '10.0.0.1', 7946, 7947),
    { type: SwimMessageType.ALIVE, number: 5, id: 'n1', host: '10.0.0.1', udpPort: 7946, tcpPort: 7947 },
  ],
  [
    'ALIVE with ports 0 and 65535, a two-byte character',
    '05 000d 00000000 02 c3a9 01 68 0000 ffff',
    () => encodeAlive(0, 'é', 'h', 0, 65535),
    { type: SwimMessageType.ALIVE, number: 0, id: 'é', host: 'h', udpPort: 0, tcpPort: 65535 },
  ],
  [
    'SUSPECT n2 from n1, incarnation 2',
    '06 000a 00000002 02 6e32 02 6e31',
    () => encodeSuspect(2, 'n2', 'n1'),
    { type: SwimMessageType.SUSPECT, number: 2, id: 'n2', from: 'n1' },
  ],
  [
    'DEAD n2 from n1, incarnation 3',
    '07 000a 00000003 02 6e32 02 6e31',
    () => encodeDead(3, 'n2', 'n1'),
    { type: SwimMessageType.DEAD, number: 3, id: 'n2', from: 'n1' },
  ],
  [
    'LEFT n3, incarnation 2^32-1',
    '08 0007 ffffffff 02 6e33',
    () => encodeLeft(0xffffffff, 'n3'),
    { type: SwimMessageType.LEFT, number: 0xffffffff, id: 'n3' },
  ],
];

t.test('fixtures: every message type encoded and decoded', async (t) => {
  const seen = new Set<number>();
  for (const [name, hex, encode, decoded] of FIXTURES) {
    const bytes = unhex(hex);
    t.equal(encode().toString('hex'), bytes.toString('hex'), `encodes ${name}`);
    t.same(walk(bytes), { messages: [decoded], end: 0 }, `decodes ${name}`);
    seen.add(decoded.type);
  }
  t.same([...seen].sort(), Object.values(SwimMessageType).sort(), 'every type has a fixture');
});

t.test('fixtures back to back in one payload, and at an offset inside a larger buffer', async (t) => {
  const all = Buffer.concat(FIXTURES.map(([, hex]) => unhex(hex)));
  const expected = FIXTURES.map(([, , , decoded]) => decoded);
  t.same(walk(all), { messages: expected, end: 0 });
  // A datagram header before the payload and junk after the window the reader is given.
  const pool = Buffer.concat([unhex('d7 01 00'), all, unhex('ff ff ff')]);
  t.same(walk(pool, 3, 3 + all.length), { messages: expected, end: 0 });
  // A view whose byteOffset is not 0 (Buffer pool slices are like this).
  const view = pool.subarray(3, 3 + all.length);
  t.same(walk(view), { messages: expected, end: 0 });
  // Reusing one reader over different buffers: the DataView follows the buffer.
  const reader = new SwimReader();
  for (const [, hex, , decoded] of FIXTURES) {
    const bytes = unhex(hex);
    reader.reset(bytes, 0, bytes.length);
    const type = reader.next();
    t.same(fieldsOf(reader, type), decoded);
    t.equal(reader.next(), 0);
  }
  // An empty payload is no messages, not an error (the core refuses an empty datagram itself).
  t.same(walk(Buffer.alloc(0)), { messages: [], end: 0 });
});

t.test('the writer fills a packet with a header and several messages', async (t) => {
  const header = unhex('d7 01 00');
  const writer = new SwimWriter(512);
  writer.begin(header);
  t.equal(writer.length, 3);
  t.equal(writer.remaining, 509);
  writer.ping(9, b('target'));
  const alive = encodeAlive(1, 'n1', 'h', 1, 2);
  writer.append(alive);
  const packet = writer.finish();
  t.equal(packet.length, 3 + 7 + 7 + alive.length);
  t.same(walk(packet, 3).messages, [
    { type: SwimMessageType.PING, number: 9, id: 'target' },
    { type: SwimMessageType.ALIVE, number: 1, id: 'n1', host: 'h', udpPort: 1, tcpPort: 2 },
  ]);
  // finish() copies: the next packet written does not change the one handed out.
  writer.begin(header);
  writer.ack(1);
  const second = writer.finish();
  t.equal(packet.subarray(3, 4).toString('hex'), '01');
  t.equal(second.toString('hex'), 'd70100' + '03000400000001');
  // The writer refuses (by assertion) to write past packetBytesMax.
  writer.begin(header);
  while (writer.remaining >= alive.length) writer.append(alive);
  t.throws(() => writer.append(alive), AssertionError);
  t.ok(writer.length <= 512);
});

t.test('finish() copies every length exactly, short (byte loop) and long (copy)', async (t) => {
  const header = unhex('d7 01 00');
  const writer = new SwimWriter(1400);
  const ack = unhex('03 0004 01020304');
  for (let count = 0; count <= 199; count++) {
    writer.begin(header);
    for (let i = 0; i < count; i++) writer.ack(0x01020304);
    const packet = writer.finish();
    const expected = Buffer.concat([header, ...Array.from({ length: count }, () => ack)]);
    if (!packet.equals(expected)) t.fail(`${count} ACKs: ${packet.toString('hex')}`);
  }
  t.pass('3 to 1396 bytes');
  t.end();
});

t.test('finish() of a short datagram allocates only the datagram', async (t) => {
  // Regression: Buffer.copy of part of the scratch made a 96-byte view per packet in Node 20,
  // so answering a PING allocated more than its ACK. Compared with Buffer.allocUnsafe alone.
  const header = unhex('d7 01 00');
  const writer = new SwimWriter(1400);
  const ops = 2000;
  let sink = 0;
  const measure = (run: () => void): number => heapBytesPerOp(ops, run);
  const baseline = measure(() => {
    for (let i = 0; i < ops; i++) sink += Buffer.allocUnsafe(10).length;
  });
  const ack = measure(() => {
    for (let i = 0; i < ops; i++) {
      writer.begin(header);
      writer.ack(i);
      sink += writer.finish().length;
    }
  });
  t.ok(sink > 0);
  t.ok(ack < baseline + 24, `ACK: ${ack.toFixed(1)} B/op, allocUnsafe(10) alone ${baseline.toFixed(1)} B/op`);
  t.end();
});

t.test('strings are 1..255 bytes', async (t) => {
  const longest = 'x'.repeat(255);
  const alive = encodeAlive(1, longest, longest, 1, 2);
  t.same(walk(alive).messages, [
    { type: SwimMessageType.ALIVE, number: 1, id: longest, host: longest, udpPort: 1, tcpPort: 2 },
  ]);
  t.same(walk(writerMessage((w) => w.ping(3, b(longest)))).messages, [{ type: SwimMessageType.PING, number: 3, id: longest }]);
  // 255 bytes of a three-byte character: 85 characters.
  const wide = '€'.repeat(85);
  t.same(walk(encodeLeft(4, wide)).messages, [{ type: SwimMessageType.LEFT, number: 4, id: wide }]);
  // Encoders refuse 0 and 256 bytes: a programmer error, caught by assertion.
  t.throws(() => encodeAlive(1, '', 'h', 1, 2), AssertionError);
  t.throws(() => encodeAlive(1, 'n', 'x'.repeat(256), 1, 2), AssertionError);
  t.throws(() => encodeSuspect(1, 'x'.repeat(256), 'n'), AssertionError);
  t.throws(() => encodeDead(1, 'n', ''), AssertionError);
  t.throws(() => encodeLeft(1, '€'.repeat(86)), AssertionError, 'counted in UTF-8 bytes');
  t.throws(() => writerMessage((w) => w.ping(1, Buffer.alloc(0))), AssertionError);
  t.throws(() => writerMessage((w) => w.pingReq(1, Buffer.alloc(256, 0x61))), AssertionError);
  t.throws(() => encodeAlive(-1, 'n', 'h', 1, 2), AssertionError);
  t.throws(() => encodeAlive(2 ** 32, 'n', 'h', 1, 2), AssertionError);
  t.throws(() => encodeAlive(1, 'n', 'h', 65536, 2), AssertionError);
  // A decoded str of length 0 is malformed.
  t.equal(walk(unhex('08 0005 00000001 00')).end, -1, 'LEFT with an empty id');
  t.equal(walk(unhex('06 0008 00000001 01 61 00 62')).end, -1, 'SUSPECT with an empty from');
  t.equal(walk(unhex('05 000c 00000001 01 61 00 62 0001 0002')).end, -1, 'ALIVE with an empty host');
});

t.test('truncated messages are malformed', async (t) => {
  for (const [name, hex] of FIXTURES) {
    const bytes = unhex(hex);
    for (let length = 1; length < bytes.length; length++) {
      t.equal(walk(bytes.subarray(0, length)).end, -1, `${name}: first ${length} bytes`);
      // The same cut with the body length field shrunk to match: the fields themselves are short.
      if (length >= SWIM_MESSAGE_HEADER_BYTES) {
        const cut = Buffer.from(bytes.subarray(0, length));
        cut.writeUInt16BE(length - SWIM_MESSAGE_HEADER_BYTES, 1);
        t.equal(walk(cut).end, -1, `${name}: body cut to ${length - SWIM_MESSAGE_HEADER_BYTES} bytes`);
      }
    }
    // A good message followed by a truncated one: the whole payload is malformed.
    const twice = Buffer.concat([bytes, bytes.subarray(0, bytes.length - 1)]);
    t.equal(walk(twice).end, -1, `${name}: then a truncated copy`);
  }
  t.end();
});

t.test('over-long bodies, trailing bytes and strings past their body are malformed', async (t) => {
  for (const [name, hex] of FIXTURES) {
    const bytes = unhex(hex);
    const bodyBytes = bytes.readUInt16BE(1);
    // A body length past the end of the payload.
    const overLong = Buffer.from(bytes);
    overLong.writeUInt16BE(bodyBytes + 1, 1);
    t.equal(walk(overLong).end, -1, `${name}: body length 1 past the payload`);
    const huge = Buffer.from(bytes);
    huge.writeUInt16BE(0xffff, 1);
    t.equal(walk(huge).end, -1, `${name}: body length 65535`);
    // Trailing bytes inside the body: the fields do not fill it.
    for (const extra of [1, 3, 200]) {
      const padded = Buffer.concat([bytes, Buffer.alloc(extra, 0x61)]);
      padded.writeUInt16BE(bodyBytes + extra, 1);
      t.equal(walk(padded).end, -1, `${name}: ${extra} trailing bytes in the body`);
    }
  }
  // A str whose length runs past the body, though not past the payload.
  t.equal(walk(unhex('08 0007 00000001 05 6e31 0000 0000')).end, -1, 'LEFT id runs past its body');
  t.equal(walk(unhex('01 0007 00000001 03 6e31' + '03 0004 00000001')).end, -1, 'PING target runs into the next message');
  // An ALIVE without its ports, or with only one.
  t.equal(walk(unhex('05 0010 00000001 02 6e31 08 31302e302e302e31')).end, -1, 'ALIVE without ports');
  t.equal(walk(unhex('05 0012 00000001 02 6e31 08 31302e302e302e31 1f0a')).end, -1, 'ALIVE with one port');
  // Fewer than 3 header bytes, and bodies shorter than the u32 every type starts with.
  t.equal(walk(unhex('03')).end, -1);
  t.equal(walk(unhex('03 00')).end, -1);
  t.equal(walk(unhex('03 0000')).end, -1);
  t.equal(walk(unhex('03 0003 000000')).end, -1);
  t.end();
});

t.test('unknown message types are malformed', async (t) => {
  const known = new Set<number>(Object.values(SwimMessageType));
  let unknown = 0;
  for (let type = 0; type <= 0xff; type++) {
    if (known.has(type)) continue;
    unknown++;
    // With the body of each known type, so only the type is wrong.
    for (const [, hex] of FIXTURES) {
      const bytes = unhex(hex);
      bytes[0] = type;
      if (walk(bytes).end !== -1) t.fail(`type ${type} accepted`);
    }
    // After a good message too.
    const after = Buffer.concat([unhex('03 0004 00000007'), Buffer.from([type, 0, 4, 0, 0, 0, 1])]);
    if (walk(after).end !== -1) t.fail(`type ${type} accepted after an ACK`);
  }
  t.equal(unknown, 256 - 8);
  t.pass('every unknown type refused');
  t.end();
});

t.test('strings must be valid UTF-8', async (t) => {
  // Regression: an ALIVE id of 86+ bytes that are not UTF-8 decodes to U+FFFD three bytes each,
  // over 255 bytes re-encoded: the directory's and the encoders' assertions threw on a packet.
  const bad = [
    ['ff', 'a byte never in UTF-8'],
    ['80', 'a lone continuation byte'],
    ['c3', 'a truncated two-byte sequence'],
    ['c0 80', 'an overlong NUL'],
    ['e0 80 80', 'an overlong three-byte sequence'],
    ['ed a0 80', 'a UTF-16 surrogate'],
    ['f4 90 80 80', 'past U+10FFFF'],
    ['f0 9f 98', 'a truncated four-byte sequence'],
    ['61 e2 82', 'ASCII then a truncated sequence'],
  ] as const;
  for (const [hex, why] of bad) {
    const text = unhex(hex);
    const left = Buffer.concat([unhex('08 0000 00000001'), Buffer.from([text.length]), text]);
    left.writeUInt16BE(left.length - 3, 1);
    t.equal(walk(left).end, -1, `LEFT id: ${why}`);
    const alive = Buffer.concat([unhex('05 0000 00000001 01 61'), Buffer.from([text.length]), text, unhex('0001 0002')]);
    alive.writeUInt16BE(alive.length - 3, 1);
    t.equal(walk(alive).end, -1, `ALIVE host: ${why}`);
    const suspect = Buffer.concat([unhex('06 0000 00000001 01 61'), Buffer.from([text.length]), text]);
    suspect.writeUInt16BE(suspect.length - 3, 1);
    t.equal(walk(suspect).end, -1, `SUSPECT from: ${why}`);
  }
  const good = ['7f', 'c2 80', 'df bf', 'e0 a0 80', 'ef bf bf', 'ed 9f bf', 'ee 80 80', 'f0 90 80 80', 'f4 8f bf bf'];
  for (const hex of good) {
    const text = unhex(hex);
    const left = Buffer.concat([unhex('08 0000 00000001'), Buffer.from([text.length]), text]);
    left.writeUInt16BE(left.length - 3, 1);
    t.same(walk(left), { messages: [{ type: SwimMessageType.LEFT, number: 1, id: text.toString('utf8') }], end: 0 }, hex);
  }
  t.end();
});

t.test('the UTF-8 check agrees with node:buffer isUtf8 on random strings', async (t) => {
  // Mostly bytes from the ranges where the rules are (lead bytes, continuation bytes, ASCII).
  const interesting = fc.oneof(
    fc.nat(255),
    fc.integer({ min: 0x80, max: 0xbf }),
    fc.integer({ min: 0xc0, max: 0xf5 }),
    fc.constantFrom(0x61, 0xe0, 0xed, 0xf0, 0xf4, 0x9f, 0xa0, 0x8f, 0x90),
  );
  let valid = 0;
  fc.assert(
    fc.property(fc.array(interesting, { minLength: 1, maxLength: 12 }), (text) => {
      const bytes = Buffer.from(text);
      const left = Buffer.concat([unhex('08 0000 00000001'), Buffer.from([bytes.length]), bytes]);
      left.writeUInt16BE(left.length - 3, 1);
      const accepted = walk(left).end === 0;
      if (accepted) valid++;
      return accepted === isUtf8(bytes);
    }),
    { numRuns: 20_000, seed: 7 },
  );
  t.ok(valid > 300, `${valid} valid`);
  t.end();
});

// Strings of 1..255 UTF-8 bytes, from any code points (lone surrogates excluded: they have no
// UTF-8 form, and Buffer.from would write U+FFFD in their place).
const str = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 90 })
  .filter((s) => Buffer.byteLength(s) >= 1 && Buffer.byteLength(s) <= 255);
const u32 = fc.nat({ max: 0xffffffff });
const u16 = fc.nat({ max: 0xffff });

const message: fc.Arbitrary<[Decoded, Buffer]> = fc.oneof(
  fc.tuple(fc.constantFrom(SwimMessageType.PING, SwimMessageType.PING_REQ), u32, str).map(([type, seq, id]): [Decoded, Buffer] => [
    { type, number: seq, id },
    writerMessage((w) => (type === SwimMessageType.PING ? w.ping(seq, b(id)) : w.pingReq(seq, b(id)))),
  ]),
  fc.tuple(fc.constantFrom(SwimMessageType.ACK, SwimMessageType.NACK), u32).map(([type, seq]): [Decoded, Buffer] => [
    { type, number: seq },
    writerMessage((w) => (type === SwimMessageType.ACK ? w.ack(seq) : w.nack(seq))),
  ]),
  fc.tuple(u32, str, str, u16, u16).map(([incarnation, id, host, udpPort, tcpPort]): [Decoded, Buffer] => [
    { type: SwimMessageType.ALIVE, number: incarnation, id, host, udpPort, tcpPort },
    encodeAlive(incarnation, id, host, udpPort, tcpPort),
  ]),
  fc.tuple(fc.boolean(), u32, str, str).map(([suspect, incarnation, id, from]): [Decoded, Buffer] => [
    { type: suspect ? SwimMessageType.SUSPECT : SwimMessageType.DEAD, number: incarnation, id, from },
    suspect ? encodeSuspect(incarnation, id, from) : encodeDead(incarnation, id, from),
  ]),
  fc.tuple(u32, str).map(([incarnation, id]): [Decoded, Buffer] => [
    { type: SwimMessageType.LEFT, number: incarnation, id },
    encodeLeft(incarnation, id),
  ]),
);

t.test('round trip: random messages back to back decode to what was encoded', async (t) => {
  fc.assert(
    fc.property(fc.array(message, { minLength: 1, maxLength: 6 }), (messages) => {
      const payload = Buffer.concat(messages.map(([, bytes]) => bytes));
      deepStrictEqual(walk(payload), { messages: messages.map(([decoded]) => decoded), end: 0 });
    }),
    { numRuns: 1000 },
  );
  t.end();
});

t.test('fuzz: random bytes and mutated messages never throw', async (t) => {
  const started = performance.now();
  const reader = new SwimReader();
  let accepted = 0;
  let rejected = 0;
  const check = (bytes: Uint8Array): boolean => {
    reader.reset(bytes, 0, bytes.length);
    let type = 0;
    for (let steps = 0; steps <= bytes.length + 1; steps++) {
      type = reader.next();
      if (type <= 0) break;
      // Reading every field of an accepted message must stay inside the buffer and not throw.
      fieldsOf(reader, type);
    }
    if (type === 0) accepted++;
    else if (type === -1) rejected++;
    else return false;
    return true;
  };
  // Plausible starts: a known type and a body length near the rest, so the field checks see it.
  const plausible = fc
    .tuple(fc.integer({ min: 0, max: 9 }), fc.uint8Array({ maxLength: 80 }), fc.integer({ min: -2, max: 2 }))
    .map(([type, body, skew]): Uint8Array => {
      const head = Buffer.alloc(3);
      head[0] = type;
      head.writeUInt16BE(Math.max(0, body.length + skew), 1);
      return Buffer.concat([head, body]);
    });
  // Valid messages with a few bytes overwritten, cut or extended.
  const mutated = fc
    .tuple(fc.array(message, { minLength: 1, maxLength: 3 }), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }), fc.nat(8))
    .map(([messages, edits, cut]): Uint8Array => {
      const bytes = Buffer.concat(messages.map(([, m]) => m));
      for (const [at, value] of edits) bytes[at % bytes.length] = value;
      return cut === 0 ? bytes : bytes.subarray(0, Math.max(0, bytes.length - cut));
    });
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 1400 }), plausible, mutated), (bytes) => {
      try {
        return check(bytes);
      } catch {
        return false;
      }
    }),
    { numRuns: 25_000 },
  );
  t.ok(accepted > 500, `${accepted} accepted`);
  t.ok(rejected > 5000, `${rejected} rejected`);
  t.ok(performance.now() - started < 60_000, 'bounded time');
  t.end();
});
