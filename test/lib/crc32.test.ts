// CRC-32 by slicing-by-8 against the definition (a byte a step) on any bytes and range, and the
// check value every CRC-32 implementation agrees on.
import fc from 'fast-check';
import t from 'tap';
import { crc32 } from '../../src/lib/crc32.js';

function bitwise(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) {
    crc ^= bytes[i]!;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

t.test('the check value and the empty range', async (t) => {
  t.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  t.equal(crc32(Buffer.alloc(0)), 0);
  t.equal(crc32(Buffer.from('xx123456789yy'), 2, 11), 0xcbf43926, 'a range of a larger buffer');
});

t.test('any bytes and range agree with a bit at a time', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(), (bytes, a, b) => {
      const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
      const end = start + (bytes.length === 0 ? 0 : b % (bytes.length - start + 1));
      return crc32(bytes, start, end) === bitwise(bytes, start, end);
    }),
    { numRuns: 5000 },
  );
  t.pass('5000 ranges');
});
