// The native frame codec: fixtures both ways, round trips, the same frames however the bytes are
// split, every bad length and version rejected as soon as its bytes are here, and random bytes
// only ever raising DkvError.
import { deepStrictEqual } from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { DkvError } from '../../src/lib/errors.js';
import { limits } from '../../src/lib/limits.js';
import { FRAME_HEADER_BYTES, FRAME_LENGTH_MIN, FrameFlag, Opcode, PROTOCOL_VERSION } from '../../src/wire/codes.js';
import { encodeFrame, FrameDecoder, getFrameKeys, writeFrameHeader } from '../../src/wire/frame.js';
import { encodeBody, readGetKeyInPlace } from '../../src/wire/messages.js';
import { bytewise, chunksAt, cutsArbitrary, run, type Outcome } from '../helpers/chunks.js';

interface Frame {
  opcode: number;
  flags: number;
  requestId: number;
  body: string; // hex
}

function decoderInto(items: Frame[], frameBytesMax?: number): FrameDecoder {
  return new FrameDecoder(
    {
      onFrame(opcode, flags, requestId, bytes, start, end) {
        items.push({ opcode, flags, requestId, body: bytes.toString('hex', start, end) });
      },
    },
    frameBytesMax,
  );
}

function describe(error: unknown): string {
  if (!(error instanceof DkvError)) throw error; // fails the test with the real error
  return `${error.code}: ${error.message}`;
}

function decode(chunks: readonly Buffer[], frameBytesMax?: number): Outcome<Frame> {
  return run((items: Frame[]) => decoderInto(items, frameBytesMax), chunks, describe);
}

function header(length: number, version = PROTOCOL_VERSION, opcode: number = Opcode.PING): Buffer {
  const bytes = Buffer.alloc(FRAME_HEADER_BYTES);
  bytes.writeUInt32BE(length, 0);
  bytes[4] = version;
  bytes[5] = opcode;
  bytes.writeUInt32BE(42, 7);
  return bytes;
}

const frameArbitrary = fc.record({
  opcode: fc.integer({ min: 0, max: 255 }),
  flags: fc.integer({ min: 0, max: 255 }),
  requestId: fc.integer({ min: 0, max: 0xffffffff }),
  body: fc.uint8Array({ maxLength: 300 }),
});

function encodeAll(frames: ReadonlyArray<{ opcode: number; flags: number; requestId: number; body: Uint8Array }>): Buffer {
  return Buffer.concat(frames.map((f) => encodeFrame(f.opcode, f.flags, f.requestId, Buffer.from(f.body))));
}

t.test('fixture: a GET request, encoded and decoded', async (t) => {
  const body = Buffer.from('81a36b6579c40161', 'hex'); // {"key": bin "a"}
  const hex = '0000000f' + '01' + '03' + '00' + '00000003' + '81a36b6579c40161';
  t.equal(encodeFrame(Opcode.GET, 0, 3, body).toString('hex'), hex);
  t.same(decode([Buffer.from(hex, 'hex')]), {
    items: [{ opcode: Opcode.GET, flags: 0, requestId: 3, body: body.toString('hex') }],
    error: null,
    bufferedBytes: 0,
  });
});

t.test('fixture: an empty-bodied reply with the largest request id', async (t) => {
  const hex = '00000007' + '01' + '02' + '01' + 'ffffffff';
  t.equal(encodeFrame(Opcode.PING, FrameFlag.REPLY, 0xffffffff, Buffer.alloc(0)).toString('hex'), hex);
  t.same(decode([Buffer.from(hex, 'hex')]).items, [
    { opcode: Opcode.PING, flags: FrameFlag.REPLY, requestId: 0xffffffff, body: '' },
  ]);
});

t.test('encodeFrame copies only body[start, end); writeFrameHeader writes in place', async (t) => {
  const body = Buffer.from('xxhelloyy');
  const frame = encodeFrame(Opcode.PUT, 0, 7, body, 2, 7);
  t.equal(frame.length, FRAME_HEADER_BYTES + 5);
  t.equal(frame.readUInt32BE(0), FRAME_LENGTH_MIN + 5);
  t.equal(frame.toString('utf8', FRAME_HEADER_BYTES), 'hello');
  const target = Buffer.alloc(3 + FRAME_HEADER_BYTES, 0xee);
  writeFrameHeader(target, 3, 100, Opcode.MGET, FrameFlag.REPLY, 0x01020304);
  t.equal(target.toString('hex'), 'eeeeee' + '0000006b' + '01' + '06' + '01' + '01020304');
});

t.test('round trip: any frames decode to themselves, whole, byte by byte and in random splits', async (t) => {
  fc.assert(
    fc.property(fc.array(frameArbitrary, { maxLength: 8 }), cutsArbitrary, (frames, cuts) => {
      const input = encodeAll(frames);
      const expected = frames.map((f) => ({
        opcode: f.opcode,
        flags: f.flags,
        requestId: f.requestId,
        body: Buffer.from(f.body).toString('hex'),
      }));
      const whole = decode([input]);
      deepStrictEqual(whole, { items: expected, error: null, bufferedBytes: 0 });
      deepStrictEqual(decode(chunksAt(input, cuts)), whole);
    }),
    { numRuns: 300 },
  );
  t.pass('300 random frame sequences');
  // Byte by byte is slow in fc's shrinking loop, so it runs on a fixed sample.
  fc.assert(
    fc.property(fc.array(frameArbitrary, { maxLength: 4 }), (frames) => {
      const input = encodeAll(frames);
      deepStrictEqual(decode(bytewise(input)), decode([input]));
    }),
    { numRuns: 100 },
  );
  t.pass('100 byte-by-byte sequences');
});

// getFrameKeys: the keys of a chunk's GET frames, for prefetching. Whatever the bytes, the keys it
// finds are those of the GET and REPLICA_GET frames the decoder hands over first, in order.
function frameKeys(bytes: Buffer, max: number): string[] {
  const starts = new Int32Array(max);
  const ends = new Int32Array(max);
  const writes = new Uint8Array(max).fill(7);
  const count = getFrameKeys(bytes, starts, ends, writes);
  deepStrictEqual([...writes.subarray(0, count)], new Array(count).fill(0), 'every key found is a read');
  return Array.from({ length: count }, (_, i) => bytes.toString('latin1', starts[i], ends[i]));
}

// What the decoder hands over: the keys of the in-place GETs among the first frames.
function decodedKeys(bytes: Buffer): string[] {
  const keys: string[] = [];
  const span = { start: 0, end: 0 };
  const decoder = new FrameDecoder({
    onFrame(opcode, _flags, _requestId, frame, start, end) {
      if ((opcode === Opcode.GET || opcode === Opcode.REPLICA_GET) && readGetKeyInPlace(frame, start, end, span)) {
        keys.push(frame.toString('latin1', span.start, span.end));
      }
    },
  });
  try {
    decoder.push(bytes);
  } catch {
    // Frames before the error were handed over.
  }
  return keys;
}

const getFrame = (opcode: number, key: string): Buffer => encodeFrame(opcode, 0, 1, Buffer.from(encodeBody({ key: Buffer.from(key) })));

t.test('getFrameKeys finds the keys of the GET frames among the whole ones at the start', async (t) => {
  const chunk = Buffer.concat([
    getFrame(Opcode.GET, 'a'),
    encodeFrame(Opcode.PUT, 0, 2, Buffer.from(encodeBody({ key: Buffer.from('p'), value: Buffer.from('v') }))),
    getFrame(Opcode.REPLICA_GET, 'key:1'),
    encodeFrame(Opcode.GET, 0, 3, Buffer.from(encodeBody({ key: Buffer.from('q'), r: 1 }))),
    getFrame(Opcode.GET, 'b'),
  ]);
  t.same(frameKeys(chunk, 8), ['a', 'key:1', 'b'], 'other frames, and GETs with options, are stepped over');
  t.same(frameKeys(chunk, 2), ['a', 'key:1'], 'no more than it has room for');
  t.same(frameKeys(chunk.subarray(0, chunk.length - 1), 8), ['a', 'key:1'], 'a frame cut short ends the scan');
  t.same(frameKeys(Buffer.concat([header(3), chunk]), 8), [], 'so does a length out of bounds');

  const keyedFrame = fc.oneof(
    fc.tuple(fc.constantFrom(Opcode.GET, Opcode.REPLICA_GET), fc.string({ unit: 'binary-ascii', maxLength: 30 })).map(([opcode, key]) => getFrame(opcode, key)),
    frameArbitrary.map((f) => encodeFrame(f.opcode, f.flags, f.requestId, Buffer.from(f.body))),
  );
  fc.assert(
    fc.property(fc.array(keyedFrame, { maxLength: 12 }), fc.nat(), fc.nat(255), fc.boolean(), (frames, at, value, damage) => {
      const bytes = Buffer.concat(frames);
      if (damage && bytes.length > 0) bytes[at % bytes.length] = value;
      const keys = frameKeys(bytes, 64);
      deepStrictEqual(decodedKeys(bytes).slice(0, keys.length), keys);
      if (!damage) deepStrictEqual(keys, decodedKeys(bytes), 'every one of them');
    }),
    { numRuns: 3000 },
  );
  t.pass('3000 frame sequences, half of them with a byte changed');
});

t.test('any bytes give the same frames and the same error whole, byte by byte and split', async (t) => {
  // Valid frames with random bytes around and inside them: every error path is reached.
  const noisy = fc
    .tuple(fc.array(frameArbitrary, { maxLength: 3 }), fc.uint8Array({ maxLength: 30 }), fc.nat(), fc.nat(255))
    .map(([frames, noise, at, value]) => {
      const bytes = Buffer.concat([encodeAll(frames), noise]);
      if (bytes.length > 0 && value % 3 === 0) bytes[at % bytes.length] = value; // one byte mutated
      return bytes;
    });
  fc.assert(
    fc.property(noisy, cutsArbitrary, (input, cuts) => {
      const whole = decode([input], 1000);
      deepStrictEqual(decode(chunksAt(input, cuts), 1000), whole);
      deepStrictEqual(decode(bytewise(input), 1000), whole);
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 noisy inputs');
});

t.test('frame lengths outside 7..frameBytesMax are rejected at once', async (t) => {
  const bad = [0, 1, 2, 3, 4, 5, 6, limits.frameBytesMax + 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
  for (const length of bad) {
    const lengthField = header(length).subarray(0, 4);
    for (const chunks of [[lengthField], bytewise(lengthField), [header(length)]]) {
      const outcome = decode(chunks);
      t.equal(outcome.items.length, 0);
      t.match(outcome.error, /^BAD_FRAME: frame length \d+ is outside 7\.\.4194304$/, `length ${length}`);
    }
  }
  // A smaller maximum given to the decoder is the one enforced.
  t.match(decode([header(101)], 100).error, /^BAD_FRAME/);
  t.same(decode([header(100), Buffer.alloc(93)], 100).items.length, 1);
});

t.test('the boundary lengths 7 and frameBytesMax are accepted', async (t) => {
  t.same(decode([header(FRAME_LENGTH_MIN)]).items, [{ opcode: Opcode.PING, flags: 0, requestId: 42, body: '' }]);
  const bodyBytes = limits.frameBytesMax - FRAME_LENGTH_MIN;
  const frame = Buffer.concat([header(limits.frameBytesMax), Buffer.alloc(bodyBytes, 0xab)]);
  // In 64 KiB chunks, as a socket delivers it: nothing comes out until the last one.
  const items: Frame[] = [];
  const decoder = decoderInto(items);
  for (let offset = 0; offset < frame.length; offset += 65536) {
    t.equal(items.length, 0);
    decoder.push(frame.subarray(offset, offset + 65536));
  }
  t.equal(items.length, 1);
  t.equal(items[0]!.body.length, bodyBytes * 2);
  t.equal(decoder.bufferedBytes, 0);
});

t.test('a claim of 4 GiB buffers nothing: the error comes with the fourth byte', async (t) => {
  const items: Frame[] = [];
  const decoder = decoderInto(items);
  for (const byte of [0xff, 0xff, 0xff]) decoder.push(Buffer.from([byte]));
  t.equal(decoder.bufferedBytes, 3);
  t.throws(() => decoder.push(Buffer.from([0xff])), { name: 'DkvError', code: 'BAD_FRAME' });
});

t.test('unknown protocol versions are rejected as soon as the version byte is here', async (t) => {
  for (const version of [0, 2, 3, 0x7f, 0x80, 0xff]) {
    const frame = header(1000, version);
    for (const chunks of [[frame], [frame.subarray(0, 5)], bytewise(frame.subarray(0, 5)), [frame.subarray(0, 4), frame.subarray(4, 5)]]) {
      t.match(decode(chunks).error, /^UNSUPPORTED_VERSION: protocol version \d+ is not supported/, `version ${version}`);
    }
  }
  // Regression: byte by byte, a bad version used to wait for the whole claimed frame.
  const decoder = decoderInto([]);
  const frame = header(limits.frameBytesMax, 9);
  for (let i = 0; i < 4; i++) decoder.push(frame.subarray(i, i + 1));
  t.throws(() => decoder.push(frame.subarray(4, 5)), { code: 'UNSUPPORTED_VERSION' });
});

t.test('a frame after a good one is checked too; frames before an error are handed out', async (t) => {
  const good = encodeFrame(Opcode.PING, 0, 1, Buffer.alloc(0));
  const outcome = decode([Buffer.concat([good, header(3)])]);
  t.equal(outcome.items.length, 1);
  t.match(outcome.error, /^BAD_FRAME/);
});

t.test('an incomplete frame is a normal result', async (t) => {
  const frame = encodeFrame(Opcode.PUT, 0, 5, Buffer.from('0123456789'));
  for (let cut = 0; cut < frame.length; cut++) {
    const outcome = decode([frame.subarray(0, cut)]);
    t.same(outcome, { items: [], error: null, bufferedBytes: cut });
  }
});

t.test('hold and release: held frames stay as bytes and come out in order', async (t) => {
  const frames = [1, 2, 3, 4, 5].map((id) => encodeFrame(Opcode.PING, 0, id, Buffer.from([id])));
  const input = Buffer.concat(frames);
  const ids: number[] = [];
  let holdAt = 2;
  const decoder: FrameDecoder = new FrameDecoder({
    onFrame(_opcode, _flags, requestId) {
      ids.push(requestId);
      if (requestId === holdAt) decoder.hold();
    },
  });
  decoder.push(input.subarray(0, 30)); // two whole frames and part of the third
  t.same(ids, [1, 2]);
  t.equal(decoder.bufferedBytes, 30 - 2 * frames[0]!.length);
  decoder.push(input.subarray(30)); // kept while held
  t.same(ids, [1, 2]);
  t.equal(decoder.bufferedBytes, input.length - 2 * frames[0]!.length);
  holdAt = 4;
  decoder.release(); // hands out 3 and 4, then holds again
  t.same(ids, [1, 2, 3, 4]);
  decoder.release();
  t.same(ids, [1, 2, 3, 4, 5]);
  t.equal(decoder.bufferedBytes, 0);
  decoder.release(); // not held: nothing happens
  t.same(ids, [1, 2, 3, 4, 5]);
});

t.test('hold and release in any pattern yield the same frames and error as plain decoding', async (t) => {
  fc.assert(
    fc.property(
      fc.array(frameArbitrary, { maxLength: 6 }),
      fc.uint8Array({ maxLength: 12 }),
      cutsArbitrary,
      fc.array(fc.boolean(), { minLength: 1, maxLength: 10 }),
      (frames, noise, cuts, holds) => {
        const input = Buffer.concat([encodeAll(frames), noise]);
        const expected = decode([input], 1000);
        const items: Frame[] = [];
        let n = 0;
        const decoder: FrameDecoder = new FrameDecoder(
          {
            onFrame(opcode, flags, requestId, bytes, start, end) {
              items.push({ opcode, flags, requestId, body: bytes.toString('hex', start, end) });
              if (holds[n++ % holds.length]) decoder.hold();
            },
          },
          1000,
        );
        let error: string | null = null;
        try {
          for (const chunk of chunksAt(input, cuts)) decoder.push(chunk);
          // Release until nothing more comes out: each release hands out at least one frame.
          for (let i = 0; i < 20; i++) decoder.release();
        } catch (e) {
          error = describe(e);
        }
        deepStrictEqual({ items, error }, { items: expected.items, error: expected.error });
      },
    ),
    { numRuns: 500 },
  );
  t.pass('500 hold patterns');
});

t.test('fuzz: random bytes only ever raise DkvError, whole or split', async (t) => {
  const started = performance.now();
  let frames = 0;
  let errors = 0;
  const sink = {
    onFrame(_o: number, _f: number, _r: number, bytes: Buffer, start: number, end: number) {
      if (start < 0 || end > bytes.length || start > end) throw new Error('frame outside its buffer');
      frames++;
    },
  };
  const check = (chunks: Buffer[], frameBytesMax: number): boolean => {
    const decoder = new FrameDecoder(sink, frameBytesMax);
    try {
      for (const chunk of chunks) decoder.push(chunk);
    } catch (error) {
      if (!(error instanceof DkvError)) return false;
      if (error.code !== 'BAD_FRAME' && error.code !== 'UNSUPPORTED_VERSION') return false;
      errors++;
    }
    return true;
  };
  // Mostly a plausible header start (0x00, length under 64 KiB, version 1) so the decoder gets
  // past the first checks; otherwise raw bytes.
  const plausible = fc
    .tuple(fc.uint8Array({ maxLength: 200 }), fc.nat(300))
    .map(([tail, length]): Uint8Array => Buffer.concat([Buffer.from([0, 0, length >> 8, length & 0xff, 1]), tail]));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), plausible), cutsArbitrary, (input, cuts) =>
      check([Buffer.from(input)], limits.frameBytesMax) && check(chunksAt(input, cuts), 256),
    ),
    { numRuns: 40_000 },
  );
  t.ok(errors > 0 && frames > 0, `${frames} frames, ${errors} errors`);
  t.ok(performance.now() - started < 120_000, 'bounded time');
});
