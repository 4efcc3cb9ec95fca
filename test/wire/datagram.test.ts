// The UDP datagram header: fixtures both ways, round trips, every malformed header rejected,
// and random bytes only ever raising DkvError.
import { deepStrictEqual } from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { DkvError } from '../../src/lib/errors.js';
import { limits } from '../../src/lib/limits.js';
import { DATAGRAM_AUTH_TAG_BYTES, DATAGRAM_MAGIC, DATAGRAM_VERSION } from '../../src/wire/codes.js';
import { decodeDatagramHeader, encodeDatagramHeader } from '../../src/wire/datagram.js';

const unhex = (text: string): Buffer => Buffer.from(text.replace(/ /g, ''), 'hex');

t.test('fixtures: headers encoded and decoded', async (t) => {
  const fixtures: Array<[string | null, boolean, string, number, number]> = [
    // label, auth tag, bytes, authTagStart, payloadStart
    [null, false, 'd7 01 00', -1, 3],
    ['dkv', false, 'd7 01 01 03 64 6b 76', -1, 7],
    [null, true, 'd7 01 02' + ' 00'.repeat(16), 3, 19],
    ['é', true, 'd7 01 03 02 c3 a9' + ' 00'.repeat(16), 6, 22],
  ];
  for (const [label, withAuthTag, hex, authTagStart, payloadStart] of fixtures) {
    const bytes = unhex(hex);
    t.equal(encodeDatagramHeader(label, withAuthTag).toString('hex'), bytes.toString('hex'), `encodes ${label}`);
    const payload = Buffer.from('payload');
    t.same(decodeDatagramHeader(Buffer.concat([bytes, payload])), {
      version: DATAGRAM_VERSION,
      label,
      authTagStart,
      payloadStart,
    });
  }
});

t.test('round trip: any label and tag, with any payload', async (t) => {
  const label = fc.option(
    fc.string({ minLength: 1, maxLength: 80 }).filter((s) => Buffer.byteLength(s) <= limits.clusterLabelBytesMax),
    { nil: null },
  );
  fc.assert(
    fc.property(label, fc.boolean(), fc.uint8Array({ maxLength: 600 }), (text, withAuthTag, payload) => {
      const header = encodeDatagramHeader(text, withAuthTag);
      const datagram = Buffer.concat([header, payload]);
      const decoded = decodeDatagramHeader(datagram);
      deepStrictEqual(decoded, {
        version: DATAGRAM_VERSION,
        label: text,
        authTagStart: withAuthTag ? header.length - DATAGRAM_AUTH_TAG_BYTES : -1,
        payloadStart: header.length,
      });
      deepStrictEqual(datagram.subarray(decoded.payloadStart), Buffer.from(payload));
    }),
    { numRuns: 1000 },
  );
  // A view into a larger buffer decodes the same: the label is read at the view's offset.
  const pool = Buffer.concat([Buffer.from('junk'), encodeDatagramHeader('abc', false), Buffer.from('x')]);
  t.equal(decodeDatagramHeader(pool.subarray(4)).label, 'abc');
  const longest = 'x'.repeat(limits.clusterLabelBytesMax);
  t.equal(decodeDatagramHeader(encodeDatagramHeader(longest, true)).label, longest);
});

t.test('malformed headers are rejected with BAD_FRAME or UNSUPPORTED_VERSION', async (t) => {
  const cases: Array<[string, Buffer, string]> = [
    ['empty', Buffer.alloc(0), 'BAD_FRAME'],
    ['two bytes', unhex('d7 01'), 'BAD_FRAME'],
    ['wrong magic', unhex('d8 01 00'), 'BAD_FRAME'],
    ['a native frame', unhex('00 00 00 07 01 02 00 00 00 00 01'), 'BAD_FRAME'],
    ['version 0', unhex('d7 00 00'), 'UNSUPPORTED_VERSION'],
    ['version 2', unhex('d7 02 00'), 'UNSUPPORTED_VERSION'],
    ['unknown flag', unhex('d7 01 04'), 'BAD_FRAME'],
    ['all flags', unhex('d7 01 ff'), 'BAD_FRAME'],
    ['label flag, no length', unhex('d7 01 01'), 'BAD_FRAME'],
    ['label of length 0', unhex('d7 01 01 00 61'), 'BAD_FRAME'],
    ['truncated label', unhex('d7 01 01 05 61 62'), 'BAD_FRAME'],
    ['truncated auth tag', unhex('d7 01 02' + ' 00'.repeat(15)), 'BAD_FRAME'],
    ['label, then a truncated auth tag', unhex('d7 01 03 01 61' + ' 00'.repeat(15)), 'BAD_FRAME'],
    ['too long', Buffer.concat([encodeDatagramHeader(null, false), Buffer.alloc(limits.datagramBytesMax - 2)]), 'BAD_FRAME'],
  ];
  for (const [name, bytes, code] of cases) {
    t.throws(() => decodeDatagramHeader(bytes), { name: 'DkvError', code }, name);
  }
  t.doesNotThrow(() => decodeDatagramHeader(Buffer.concat([encodeDatagramHeader(null, false), Buffer.alloc(limits.datagramBytesMax - 3)])));
  t.throws(() => encodeDatagramHeader('', false), { code: 'BAD_REQUEST' });
  t.throws(() => encodeDatagramHeader('x'.repeat(limits.clusterLabelBytesMax + 1), false), { code: 'BAD_REQUEST' });
  t.throws(() => encodeDatagramHeader('é'.repeat(128), false), { code: 'BAD_REQUEST' }, 'counted in UTF-8 bytes');
});

t.test('fuzz: random bytes only ever raise DkvError', async (t) => {
  const started = performance.now();
  let decoded = 0;
  let rejected = 0;
  // Mostly the right magic and version, so the flag, label and tag checks get random input.
  const plausible = fc
    .tuple(fc.nat(7), fc.uint8Array({ maxLength: 40 }))
    .map(([flags, tail]): Uint8Array => Buffer.concat([Buffer.from([DATAGRAM_MAGIC, DATAGRAM_VERSION, flags]), tail]));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), plausible, fc.uint8Array({ minLength: 1390, maxLength: 1410 })), (bytes) => {
      try {
        const header = decodeDatagramHeader(bytes);
        if (header.payloadStart > bytes.length || header.authTagStart >= header.payloadStart) return false;
        decoded++;
      } catch (error) {
        if (!(error instanceof DkvError)) return false;
        rejected++;
      }
      return true;
    }),
    { numRuns: 30_000 },
  );
  t.ok(decoded > 1000 && rejected > 1000, `${decoded} decoded, ${rejected} rejected`);
  t.ok(performance.now() - started < 120_000, 'bounded time');
});
