// Message bodies: fixtures both ways, round trips, every size limit, the in-place fast paths
// against the decoder, the nesting check against a naive depth, and random bytes only ever
// raising DkvError.
import { deepStrictEqual, equal } from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { DkvError } from '../../src/lib/errors.js';
import { limits } from '../../src/lib/limits.js';
import type { Clock, Versioned } from '../../src/version/dvv.js';
import {
  decodeBody,
  decodeDeleteRequest,
  decodeGetReply,
  decodeKeyRequest,
  decodeMgetRequest,
  decodeMputRequest,
  decodePutRequest,
  encodeBody,
  encodeBodyShared,
  arrayHeaderBytes,
  binBytes,
  encodeContext,
  encodeReplicaPutsBody,
  errorBodyOf,
  errorOfBody,
  getReplyOf,
  isAllNil,
  nestingFits,
  NOT_FOUND_REPLY,
  PutScan,
  quorumOptions,
  readArrayHeaderInPlace,
  readPutEntry,
  readQuorumOptions,
  readContext,
  readGetKeyInPlace,
  readSingleValueInPlace,
  replicaPutsAllDurable,
  versionedFromReply,
  type Span,
} from '../../src/wire/messages.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const unhex = (text: string): Buffer => Buffer.from(text.replace(/ /g, ''), 'hex');
const bytes = (text: string): Buffer => Buffer.from(text);
const decodeAll = (body: Uint8Array): unknown => decodeBody(body, 0, body.length);

// Decoded bin fields are Uint8Arrays; compare them as Buffers.
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

t.test('fixtures: request bodies, encoded and decoded', async (t) => {
  const fixtures: Array<[string, unknown, string]> = [
    ['GET key "a"', { key: bytes('a') }, '81 a3 6b 65 79 c4 01 61'],
    ['PUT "a" = "1"', { key: bytes('a'), value: bytes('1') }, '82 a3 6b 65 79 c4 01 61 a5 76 61 6c 75 65 c4 01 31'],
    ['MGET "a", "b"', { keys: [bytes('a'), bytes('b')] }, '81 a4 6b 65 79 73 92 c4 01 61 c4 01 62'],
    ['context [["n1", 1]]', [['n1', 1]], '91 92 a2 6e 31 01'],
    ['not found', { values: [], context: null, versions: [] }, '83 a6 76 61 6c 75 65 73 90 a7 63 6f 6e 74 65 78 74 c0 a8 76 65 72 73 69 6f 6e 73 90'],
  ];
  for (const [name, value, expected] of fixtures) {
    t.equal(hex(encodeBody(value)), unhex(expected).toString('hex'), `${name} encodes`);
    t.same(plain(decodeAll(unhex(expected))), plain(value), `${name} decodes`);
  }
  t.equal(hex(NOT_FOUND_REPLY), unhex(fixtures[4]![2]).toString('hex'));
  t.equal(hex(encodeContext([['n1', 1]])), '91' + '92a26e3101');
  // undefined fields are left out: a PUT without a context is the two-field map.
  t.equal(hex(encodeBody({ key: bytes('a'), value: bytes('1'), context: undefined })), unhex(fixtures[1]![2]).toString('hex'));
});

t.test('decodeBody: empty is nil, the span is respected, malformed is BAD_REQUEST', async (t) => {
  t.equal(decodeBody(Buffer.alloc(0), 0, 0), null);
  const framed = Buffer.concat([bytes('xx'), unhex('81 a3 6b 65 79 c4 01 61'), bytes('yy')]);
  t.same(plain(decodeBody(framed, 2, framed.length - 2)), { key: bytes('a') });
  const bad: Array<[string, string]> = [
    ['trailing bytes', '81 a3 6b 65 79 c4 01 61 00'],
    ['truncated', '81 a3 6b 65 79 c4 05 61'],
    ['never-used tag 0xc1', 'c1'],
    ['an extension', 'd4 01 00'],
    ['a timestamp extension', 'd6 ff 00 00 00 00'],
    ['a claimed 4 GiB string', 'db ff ff ff ff 61'],
    ['a claimed 4 GiB bin', 'c6 ff ff ff ff 61'],
    ['an array past respArgsMax', 'dd 00 00 ff ff'],
    ['a map past 64 entries', 'de 00 41'],
    ['a map with a bin key', '81 c4 01 61 01'],
    ['a map with a map key', '81 80 01'],
  ];
  for (const [name, body] of bad) {
    t.throws(() => decodeAll(unhex(body)), { name: 'DkvError', code: 'BAD_REQUEST' }, name);
  }
  t.throws(() => decodeAll(unhex(`dc ${(limits.respArgsMax + 1).toString(16).padStart(4, '0')}`)), { code: 'BAD_REQUEST' });
});

t.test('nesting deeper than bodyDepthMax is rejected before anything is built', async (t) => {
  const nested = (depth: number, tag: number): Buffer => Buffer.concat([Buffer.alloc(depth, tag), unhex('c0')]);
  // Eight one-element arrays around a nil decode; nine do not.
  t.same(decodeAll(nested(limits.bodyDepthMax, 0x91)), [[[[[[[[null]]]]]]]]);
  t.throws(() => decodeAll(nested(limits.bodyDepthMax + 1, 0x91)), {
    code: 'BAD_REQUEST',
    message: `body nests arrays and maps deeper than ${limits.bodyDepthMax}`,
  });
  // Maps nest through their values: {"": {"": ...}}.
  const maps = (depth: number): Buffer => Buffer.concat([Buffer.from('81a0'.repeat(depth), 'hex'), unhex('c0')]);
  t.doesNotThrow(() => decodeAll(maps(limits.bodyDepthMax)));
  t.throws(() => decodeAll(maps(limits.bodyDepthMax + 1)), { code: 'BAD_REQUEST' });
  // Regression: a 4 MiB body of nested arrays used to decode into gigabytes of objects.
  const bomb = Buffer.alloc(limits.frameBytesMax - 7, 0x91);
  const rssBefore = process.memoryUsage.rss();
  t.throws(() => decodeAll(bomb), { code: 'BAD_REQUEST', message: /deeper than/ });
  t.throws(() => decodeAll(Buffer.alloc(limits.frameBytesMax - 7, 0x81)), { code: 'BAD_REQUEST', message: /deeper than/ });
  t.ok(process.memoryUsage.rss() - rssBefore < 64 * 1024 * 1024, 'no large allocation');
  // Empty containers do not nest, however many there are.
  const wide = Buffer.concat([unhex('dc 07 d0'), Buffer.alloc(2000, 0x90)]);
  t.equal((decodeAll(wide) as unknown[]).length, 2000);
  // A context is bounded the same way.
  t.throws(() => readContext(nested(40, 0x91)), { code: 'BAD_REQUEST' });
});

// Nested values whose depth is known: arrays and maps of small scalars, up to twelve deep.
const { value: nestedValue } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    // (No doubles: msgpack writes -0 as 0.)
    fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.string({ maxLength: 5 }), fc.uint8Array({ maxLength: 5 })),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 3 }), tie('value'), { maxKeys: 3 }),
  ),
}));

function naiveDepth(value: unknown): number {
  const children: unknown[] = Array.isArray(value)
    ? value
    : value !== null && typeof value === 'object' && !(value instanceof Uint8Array)
      ? Object.values(value)
      : [];
  if (children.length === 0) return 0;
  return 1 + Math.max(...children.map(naiveDepth));
}

function deepen(value: unknown, levels: number): unknown {
  let out = value;
  for (let i = 0; i < levels; i++) out = i % 2 === 0 ? [out] : { k: out };
  return out;
}

t.test('nestingFits agrees with a naive depth on random values and never throws on cut ones', async (t) => {
  const outcomes: [number, number] = [0, 0];
  fc.assert(
    fc.property(nestedValue, fc.nat(9), fc.nat(), (inner, levels, cut) => {
      const value = deepen(inner, levels);
      const encoded = encodeBody(value);
      const fits = nestingFits(encoded, 0, encoded.length);
      outcomes[fits ? 1 : 0]++;
      equal(fits, naiveDepth(value) <= limits.bodyDepthMax);
      if (naiveDepth(value) <= limits.bodyDepthMax) deepStrictEqual(plain(decodeAll(encoded)), plain(value));
      nestingFits(encoded, 0, cut % (encoded.length + 1));
    }),
    { numRuns: 3000 },
  );
  t.ok(outcomes[0] > 100 && outcomes[1] > 100, `too deep ${outcomes[0]}, fits ${outcomes[1]}`);
});

t.test('request decoders: round trips, str or bin keys', async (t) => {
  const context = encodeContext([['n1', 3], ['n2', 1]]);
  t.same(plain(decodeKeyRequest(decodeAll(encodeBody({ key: 'héllo' })), 'GET')), bytes('héllo'));
  t.same(plain(decodePutRequest(decodeAll(encodeBody({ key: bytes('k'), value: 'v', context })))), {
    key: bytes('k'),
    value: bytes('v'),
    context: [['n1', 3], ['n2', 1]],
  });
  t.same(plain(decodeDeleteRequest(decodeAll(encodeBody({ key: 'k' })))), { key: bytes('k'), context: undefined });
  t.same(plain(decodeMgetRequest(decodeAll(encodeBody({ keys: ['a', bytes('b')] })))), [bytes('a'), bytes('b')]);
  t.same(
    plain(decodeMputRequest(decodeAll(encodeBody({ entries: [{ key: 'a', value: 'b' }, { key: 'c', value: bytes('d'), context: null }] })))),
    [
      { key: bytes('a'), value: bytes('b'), context: undefined },
      { key: bytes('c'), value: bytes('d'), context: undefined },
    ],
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: limits.keyBytesMax }), fc.uint8Array({ maxLength: 2000 }), (key, value) => {
      const put = decodePutRequest(decodeAll(encodeBody({ key, value })));
      deepStrictEqual([plain(put.key), plain(put.value), put.context], [Buffer.from(key), Buffer.from(value), undefined]);
    }),
    { numRuns: 300 },
  );
  t.pass('300 random PUTs');
});

t.test('request decoders enforce shape and every size limit', async (t) => {
  const body = (value: unknown): unknown => decodeAll(encodeBody(value));
  const keyMax = new Uint8Array(limits.keyBytesMax);
  const valueMax = new Uint8Array(limits.valueBytesMax);
  t.equal(decodeKeyRequest(body({ key: keyMax }), 'GET').length, limits.keyBytesMax);
  t.throws(() => decodeKeyRequest(body({ key: new Uint8Array(limits.keyBytesMax + 1) }), 'GET'), { code: 'KEY_TOO_LARGE' });
  t.throws(() => decodeKeyRequest(body({ key: 'é'.repeat(513) }), 'GET'), { code: 'KEY_TOO_LARGE' }, 'counted in UTF-8 bytes');
  t.equal(decodePutRequest(body({ key: 'k', value: valueMax })).value.length, limits.valueBytesMax);
  t.throws(() => decodePutRequest(body({ key: 'k', value: new Uint8Array(limits.valueBytesMax + 1) })), { code: 'VALUE_TOO_LARGE' });
  const keys = (n: number): string[] => Array.from({ length: n }, (_, i) => `k${i}`);
  t.equal(decodeMgetRequest(body({ keys: keys(limits.multiKeysMax) })).length, limits.multiKeysMax);
  t.throws(() => decodeMgetRequest(body({ keys: keys(limits.multiKeysMax + 1) })), { code: 'TOO_MANY_KEYS' });
  const entries = (n: number): unknown[] => keys(n).map((key) => ({ key, value: 'v' }));
  t.equal(decodeMputRequest(body({ entries: entries(limits.multiKeysMax) })).length, limits.multiKeysMax);
  t.throws(() => decodeMputRequest(body({ entries: entries(limits.multiKeysMax + 1) })), { code: 'TOO_MANY_KEYS' });

  const badRequests: Array<[string, () => unknown]> = [
    ['GET without a body', () => decodeKeyRequest(null, 'GET')],
    ['GET with an array body', () => decodeKeyRequest(body(['k']), 'GET')],
    ['GET with a bin body', () => decodeKeyRequest(body(bytes('k')), 'GET')],
    ['GET with a number key', () => decodeKeyRequest(body({ key: 5 }), 'GET')],
    ['PUT without a value', () => decodePutRequest(body({ key: 'k' }))],
    ['PUT with a map value', () => decodePutRequest(body({ key: 'k', value: {} }))],
    ['PUT with a string context', () => decodePutRequest(body({ key: 'k', value: 'v', context: 'x' }))],
    ['DELETE with a nil key', () => decodeDeleteRequest(body({ key: null }))],
    ['MGET with keys not an array', () => decodeMgetRequest(body({ keys: 'a' }))],
    ['MGET with a nil key', () => decodeMgetRequest(body({ keys: ['a', null] }))],
    ['MPUT with entries not maps', () => decodeMputRequest(body({ entries: [['a', 'b']] }))],
    ['MPUT without entries', () => decodeMputRequest(body({}))],
  ];
  for (const [name, decode] of badRequests) t.throws(decode, { name: 'DkvError', code: 'BAD_REQUEST' }, name);
});

const clockArbitrary: fc.Arbitrary<Clock> = fc
  .uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 16 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })), {
    selector: ([node]) => node,
    maxLength: 8,
  })
  .map((entries) => entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));

t.test('contexts: encodeContext and readContext are inverses; anything else is BAD_REQUEST', async (t) => {
  fc.assert(
    fc.property(clockArbitrary, (clock) => {
      deepStrictEqual(readContext(encodeContext(clock)), clock);
    }),
    { numRuns: 500 },
  );
  t.equal(readContext(undefined), undefined);
  t.equal(readContext(null), undefined);
  const bad: Array<[string, unknown]> = [
    ['a string', 'abc'],
    ['an array', [['n', 1]]],
    ['empty bytes', new Uint8Array(0)],
    ['garbage', unhex('c1 c1')],
    ['a map', encodeBody({ n: 1 })],
    ['an entry of three', encodeBody([['n', 1, 2]])],
    ['a number node', encodeBody([[1, 1]])],
    ['counter 0', encodeBody([['n', 0]])],
    ['a negative counter', encodeBody([['n', -1]])],
    ['a fractional counter', encodeBody([['n', 1.5]])],
    ['an unsafe counter', encodeBody([['n', 2 ** 60]])],
    ['too many entries', encodeBody(Array.from({ length: limits.siblingsMax * 4 + 1 }, (_, i) => [`n${i}`, 1]))],
  ];
  for (const [name, value] of bad) t.throws(() => readContext(value), { name: 'DkvError', code: 'BAD_REQUEST' }, name);
});

const versionedArbitrary: fc.Arbitrary<Versioned> = fc.record({
  clock: clockArbitrary,
  siblings: fc.array(
    fc.record({
      node: fc.string({ minLength: 1, maxLength: 8 }),
      counter: fc.integer({ min: 1, max: 1e9 }),
      tsMs: fc.integer({ min: 0, max: 2 ** 50 }),
      value: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null, freq: 4 }),
    }),
    { maxLength: 5 },
  ),
});

t.test('GET replies: getReplyOf, decodeGetReply and versionedFromReply round trip', async (t) => {
  fc.assert(
    fc.property(versionedArbitrary, (value) => {
      const body = encodeBody(getReplyOf(value));
      const back = versionedFromReply(decodeGetReply(decodeAll(body)));
      deepStrictEqual(plain(back), plain(value));
    }),
    { numRuns: 500 },
  );
  const malformed: unknown[] = [
    {},
    { values: [], versions: [[]], context: null },
    { values: 'x', versions: [] },
    { values: [], versions: [], context: 5 },
    { values: [bytes('v')], versions: [5], context: null },
    { values: [bytes('v')], versions: [['n', 1]], context: null },
    { values: [5], versions: [['n', 1, 2]], context: null },
  ];
  for (const body of malformed) t.throws(() => decodeGetReply(body), { code: 'PROTOCOL_VIOLATION' });
  t.same(decodeGetReply(decodeAll(NOT_FOUND_REPLY)), { values: [], context: null, versions: [] });
});

// The encodings of {"key": k} that a client might send: the in-place reader must take exactly
// the ones it knows and read the same key the decoder does.
const keyBodyArbitrary = fc
  .tuple(
    fc.oneof(fc.uint8Array({ maxLength: 1100 }), fc.string({ unit: 'binary-ascii', maxLength: 300 }).map((s) => bytes(s))),
    fc.constantFrom('fixstr', 'str8', 'str16', 'str32', 'bin8', 'bin16', 'bin32', 'extra-field', 'fixmap2'),
  )
  .map(([key, form]) => {
    const tag = (code: number, width: number): Buffer => {
      const head = Buffer.alloc(1 + width);
      head[0] = code;
      head.writeUIntBE(key.length, 1, width);
      return head;
    };
    const prefix = unhex('81 a3 6b 65 79');
    let encodedKey: Buffer | null;
    switch (form) {
      case 'fixstr':
        encodedKey = key.length < 32 ? Buffer.from([0xa0 | key.length]) : null;
        break;
      case 'str8':
        encodedKey = key.length < 256 ? tag(0xd9, 1) : null;
        break;
      case 'bin8':
        encodedKey = key.length < 256 ? tag(0xc4, 1) : null;
        break;
      case 'str16':
        encodedKey = tag(0xda, 2);
        break;
      case 'bin16':
        encodedKey = tag(0xc5, 2);
        break;
      case 'str32':
        encodedKey = tag(0xdb, 4);
        break;
      case 'bin32':
        encodedKey = tag(0xc6, 4);
        break;
      default:
        encodedKey = null;
    }
    if (form === 'extra-field') return { key, body: Buffer.from(encodeBody({ key, extra: 1 })) };
    if (form === 'fixmap2') return { key, body: Buffer.from(encodeBody({ extra: 1, key })) };
    if (encodedKey === null) return { key, body: Buffer.from(encodeBody({ key })) };
    return { key, body: Buffer.concat([prefix, encodedKey, key]) };
  });

t.test('readGetKeyInPlace reads the key the decoder reads, or declines', async (t) => {
  let inPlace = 0;
  fc.assert(
    fc.property(keyBodyArbitrary, fc.nat(8), ({ key, body }, pad) => {
      const framed = Buffer.concat([Buffer.alloc(pad, 0xee), body]);
      const span: Span = { start: -1, end: -1 };
      let expected: Buffer | null;
      try {
        expected = Buffer.from(decodeKeyRequest(decodeBody(framed, pad, framed.length), 'GET'));
      } catch (error) {
        if (!(error instanceof DkvError)) throw error;
        expected = null;
      }
      if (readGetKeyInPlace(framed, pad, framed.length, span)) {
        inPlace++;
        deepStrictEqual(framed.subarray(span.start, span.end), expected);
        deepStrictEqual(framed.subarray(span.start, span.end), Buffer.from(key));
      }
      // Declining is always safe: the decoder path runs.
    }),
    { numRuns: 3000 },
  );
  t.ok(inPlace > 500, `${inPlace} read in place`);
  // Regression: a str key that is not UTF-8 was read as its raw bytes here but as the UTF-8 of
  // its decoded text by PUT, so a GET missed what a PUT of the same body wrote.
  const latin1Key = unhex('81 a3 6b 65 79 a1 80');
  t.notOk(readGetKeyInPlace(latin1Key, 0, latin1Key.length, { start: 0, end: 0 }));
  t.same(
    plain(decodeKeyRequest(decodeAll(latin1Key), 'GET')),
    plain(decodePutRequest(decodeAll(unhex('82 a3 6b 65 79 a1 80 a5 76 61 6c 75 65 a0'))).key),
  );
  // Truncated fast-path bodies are declined, never misread.
  const good = unhex('81 a3 6b 65 79 c4 01 61');
  for (let cut = 0; cut < good.length; cut++) t.notOk(readGetKeyInPlace(good, 0, cut, { start: 0, end: 0 }), `cut at ${cut}`);
});

// A PUT body field by field, each encoded one of the ways msgpack allows (or a wrong type),
// in any order, sometimes with a context, an unknown or a repeated field.
const fixstr = (text: string): Buffer => Buffer.concat([Buffer.of(0xa0 + text.length), Buffer.from(text)]);
const bytesArbitrary = (max: number): fc.Arbitrary<Buffer> =>
  fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ minLength: 250, maxLength: max })).map((b) => Buffer.from(b));
const binOrStr = (bytes: Buffer): fc.Arbitrary<Buffer> =>
  fc.oneof(
    { arbitrary: fc.constant(Buffer.from(encodeBody(bytes))), weight: 6 },
    fc.constant(Buffer.concat([Buffer.of(0xd9, Math.min(bytes.length, 255)), bytes.subarray(0, 255)])),
    fc.constant(Buffer.concat([Buffer.of(0xc6, 0, 0, bytes.length >> 8, bytes.length & 0xff), bytes])),
  );
const numberArbitrary: fc.Arbitrary<Buffer> = fc.oneof(
  fc.nat(127).map((n) => Buffer.of(n)),
  fc.nat(255).map((n) => Buffer.of(0xcc, n)),
  fc.nat(0xffff).map((n) => Buffer.of(0xcd, n >> 8, n & 0xff)),
  fc.nat(0xffffffff).map((n) => { const b = Buffer.alloc(5); b[0] = 0xce; b.writeUInt32BE(n, 1); return b; }),
  fc.constant(Buffer.of(0xc0)),
  fc.constantFrom(Buffer.of(0xff), Buffer.of(0xc3), Buffer.of(0xcf, 0, 0, 0, 0, 0, 0, 0, 1)),
  fc.double().map((n) => Buffer.from(encodeBody(n))),
);
const putBodyArbitrary = fc
  .record({
    key: bytesArbitrary(1100).chain(binOrStr),
    value: bytesArbitrary(300).chain(binOrStr),
    w: fc.option(numberArbitrary, { freq: 2, nil: undefined }),
    timeoutMs: fc.option(numberArbitrary, { freq: 2, nil: undefined }),
    ring: fc.option(numberArbitrary, { freq: 2, nil: undefined }),
    extra: fc.oneof({ arbitrary: fc.constant(undefined), weight: 5 }, fc.constantFrom('context', 'r', 'forwarded', 'keys', 'W', 'ring')),
    dropKey: fc.nat(9).map((n) => n === 0),
    order: fc.array(fc.nat(), { minLength: 6, maxLength: 6 }),
  })
  .map(({ key, value, w, timeoutMs, ring, extra, dropKey, order }) => {
    const fields: Buffer[] = [];
    if (!dropKey) fields.push(Buffer.concat([fixstr('key'), key]));
    fields.push(Buffer.concat([fixstr('value'), value]));
    if (w !== undefined) fields.push(Buffer.concat([fixstr('w'), w]));
    if (timeoutMs !== undefined) fields.push(Buffer.concat([fixstr('timeoutMs'), timeoutMs]));
    if (ring !== undefined) fields.push(Buffer.concat([fixstr('ring'), ring]));
    if (extra !== undefined) fields.push(Buffer.concat([fixstr(extra), extra === 'context' ? Buffer.from(encodeBody(encodeContext([['n1', 1]]))) : Buffer.of(0x01)]));
    const sorted = fields.map((field, i) => [order[i]!, field] as const).sort((a, b) => a[0] - b[0]).map(([, field]) => field);
    return Buffer.concat([Buffer.of(0x80 + sorted.length), ...sorted]);
  });

t.test('PutScan reads what the decoder reads, or declines', async (t) => {
  let inPlace = 0;
  const scan = new PutScan();
  // What the request comes to, or the error it raises: the same either way it is read.
  const outcome = (read: () => unknown): unknown => {
    try {
      return plain(read());
    } catch (error) {
      if (!(error instanceof DkvError)) throw error;
      return `${error.code}: ${error.message}`;
    }
  };
  fc.assert(
    fc.property(putBodyArbitrary, fc.nat(8), (body, pad) => {
      const framed = Buffer.concat([Buffer.alloc(pad, 0xee), body]);
      if (!scan.scan(framed, pad, framed.length)) return;
      inPlace++;
      const decoded = outcome(() => {
        const map = decodeBody(framed, pad, framed.length);
        return { put: decodePutRequest(map), options: readQuorumOptions(map) };
      });
      const read = outcome(() => ({
        put: readPutEntry({ key: framed.subarray(scan.key.start, scan.key.end), value: framed.subarray(scan.value.start, scan.value.end) }, 'PUT'),
        options: quorumOptions(undefined, scan.w, scan.timeoutMs, scan.ring, false),
      }));
      deepStrictEqual(read, decoded);
    }),
    { numRuns: 3000 },
  );
  t.ok(inPlace > 600, `${inPlace} read in place`);
  const ok = unhex('83 a3 6b 65 79 c4 01 61 a5 76 61 6c 75 65 c4 01 62 a4 72 69 6e 67 ce 01 02 03 04');
  t.ok(scan.scan(ok, 0, ok.length));
  t.same([scan.key, scan.value, scan.ring, scan.w, scan.timeoutMs], [{ start: 7, end: 8 }, { start: 16, end: 17 }, 0x01020304, undefined, undefined]);
  // Truncated bodies are declined, never misread; so are a context and str keys.
  for (let cut = 0; cut < ok.length; cut++) t.notOk(scan.scan(ok, 0, cut), `cut at ${cut}`);
  t.notOk(scan.scan(Buffer.from(encodeBody({ key: 'a', value: Buffer.from('b') })), 0, 10));
  const withContext = Buffer.from(encodeBody({ key: Buffer.from('a'), value: Buffer.from('b'), context: encodeContext([['n1', 1]]) }));
  t.notOk(scan.scan(withContext, 0, withContext.length));
});

t.test('readSingleValueInPlace reads the only value of a GET reply, or declines', async (t) => {
  let inPlace = 0;
  fc.assert(
    fc.property(versionedArbitrary, (value) => {
      const body = Buffer.from(encodeBodyShared(getReplyOf(value)));
      const span: Span = { start: -1, end: -1 };
      const reply = decodeGetReply(decodeAll(body));
      if (readSingleValueInPlace(body, 0, body.length, span)) {
        inPlace++;
        equal(reply.values.length, 1);
        deepStrictEqual(body.subarray(span.start, span.end), Buffer.from(reply.values[0]!));
      } else {
        equal(reply.values.length === 1 && reply.values[0] !== null, false);
      }
      // A truncated body is declined rather than read past its end.
      const cut = body.subarray(0, Math.max(0, body.length - 1));
      if (readSingleValueInPlace(cut, 0, cut.length, span)) equal(span.end <= cut.length, true);
    }),
    { numRuns: 1000 },
  );
  t.ok(inPlace > 50, `${inPlace} read in place`);
});

t.test('fuzz: random and mutated bodies only ever raise DkvError', async (t) => {
  const started = performance.now();
  const decoders: Array<(body: unknown) => unknown> = [
    (b) => decodeKeyRequest(b, 'GET'),
    decodePutRequest,
    decodeDeleteRequest,
    decodeMgetRequest,
    decodeMputRequest,
    (b) => versionedFromReply(decodeGetReply(b)),
  ];
  const codes = new Map<string, number>();
  const putScan = new PutScan();
  const check = (input: Uint8Array, pad: number): boolean => {
    const framed = Buffer.concat([Buffer.alloc(pad), input]);
    putScan.scan(framed, pad, framed.length);
    let body: unknown;
    try {
      body = decodeBody(framed, pad, framed.length);
    } catch (error) {
      if (!(error instanceof DkvError) || error.code !== 'BAD_REQUEST') return false;
      codes.set('decodeBody', (codes.get('decodeBody') ?? 0) + 1);
      return true;
    }
    readGetKeyInPlace(framed, pad, framed.length, { start: 0, end: 0 });
    readSingleValueInPlace(framed, pad, framed.length, { start: 0, end: 0 });
    for (const decode of decoders.slice(0, 5)) {
      try {
        decode(body);
      } catch (error) {
        if (!(error instanceof DkvError)) return false;
        codes.set(error.code, (codes.get(error.code) ?? 0) + 1);
      }
    }
    return true;
  };
  // Valid bodies with a few bytes changed get past the msgpack decoder far more often.
  const valid = fc.constantFrom(
    encodeBody({ key: bytes('k'), value: bytes('v'), context: encodeContext([['n1', 1]]) }),
    encodeBody({ keys: [bytes('a'), 'b', bytes('c')] }),
    encodeBody({ entries: [{ key: 'a', value: bytes('b') }, { key: bytes('c'), value: 'd', context: encodeContext([['x', 2]]) }] }),
    encodeBody(getReplyOf({ clock: [['n1', 2]], siblings: [{ node: 'n1', counter: 2, tsMs: 5, value: bytes('v') }] })),
    encodeBody({ key: 'k' }),
  );
  const mutated = fc
    .tuple(valid, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }), fc.nat())
    .map(([body, edits, cut]) => {
      const copy = Buffer.from(body);
      for (const [at, value] of edits) copy[at % copy.length] = value;
      return cut % 5 === 0 ? copy.subarray(0, cut % (copy.length + 1)) : copy;
    });
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 100 }), mutated), fc.nat(3), (input, pad) => check(input, pad)),
    { numRuns: 40_000 },
  );
  // The reply decoders (the client's, and the store's for its records), on anything that
  // decodes. Regression: a sibling that was not [node, counter, tsMs] raised a TypeError.
  fc.assert(
    fc.property(mutated, (input) => {
      try {
        decoders[5]!(decodeAll(input));
      } catch (error) {
        if (!(error instanceof DkvError)) return false;
      }
      return true;
    }),
    { numRuns: 5000 },
  );
  t.ok((codes.get('decodeBody') ?? 0) > 0 && (codes.get('BAD_REQUEST') ?? 0) > 0, JSON.stringify([...codes]));
  t.ok(performance.now() - started < 120_000, 'bounded time');
});

t.test('REPLICA_PUTS bodies: what encodeBody writes for an array of bins, at every header width', async (t) => {
  for (const count of [0, 1, 15, 16, 0xffff, 0x10000]) {
    const bodies = Array.from({ length: count }, (_, i) => Buffer.alloc(i % 3 === 0 ? 300 : 5, i & 0xff));
    const bytes = bodies.reduce((sum, b) => sum + binBytes(b.length), 0);
    const body = encodeReplicaPutsBody(bodies, bytes);
    equal(body.toString('hex'), Buffer.from(encodeBody(bodies)).toString('hex'), `${count} entries`);
    const head = { count: -1, next: -1 };
    t.ok(readArrayHeaderInPlace(body, 0, body.length, head), `the header of ${count} reads back`);
    t.same(head, { count, next: arrayHeaderBytes(count) });

    const durable = replicaPutsAllDurable(count);
    equal(durable.toString('hex'), Buffer.from(encodeBody(new Array(count).fill(null))).toString('hex'), `${count} nils`);
    t.ok(isAllNil(durable, 0, durable.length, count), `an array of ${count} nils is all nil`);
    t.notOk(isAllNil(durable, 0, durable.length, count + 1), 'not for another count');
    if (count > 0) {
      const one = Buffer.from(durable);
      one[one.length - 1] = 0x90;
      t.notOk(isAllNil(one, 0, one.length, count), 'not with an element that is not nil');
    }
  }
  const head = { count: -1, next: -1 };
  for (const [what, bytes] of [
    ['a map', [0x80]],
    ['nothing', []],
    ['a cut array 16 header', [0xdc, 0x01]],
    ['a cut array 32 header', [0xdd, 0x00, 0x00, 0x01]],
  ] as const) {
    t.notOk(readArrayHeaderInPlace(Uint8Array.from(bytes), 0, bytes.length, head), what);
  }
});

t.test('error bodies: errorBodyOf and errorOfBody round trip, with counts; anything else is an error too', async (t) => {
  const quorum = new DkvError('QUORUM_FAILED', '1 of 2', { details: { answered: 1, needed: 2 } });
  const back = errorOfBody(decodeAll(encodeBody(errorBodyOf(quorum))));
  t.match(back, { code: 'QUORUM_FAILED', message: '1 of 2', details: { answered: 1, needed: 2 } });
  const storage = errorOfBody(decodeAll(encodeBody(errorBodyOf(new DkvError('STORAGE_FAILED', 'disk full')))));
  t.match(storage, { code: 'STORAGE_FAILED', message: 'disk full' });
  t.equal(storage.details, undefined);
  t.match(errorOfBody({ code: 250, message: 'from a newer server' }), { code: 'INTERNAL', message: 'error 250: from a newer server' });
  t.match(errorOfBody('not a map'), { code: 'INTERNAL' });
  t.match(errorOfBody(null), { code: 'INTERNAL' });
});
