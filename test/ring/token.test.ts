import fc from 'fast-check';
import t from 'tap';
import { murmur3x86_32, TOKEN_SPACE, tokenOf } from '../../src/ring/token.js';

t.test('tokens are 48-bit integers and read the key where it lies', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(20), fc.nat(20), (key, before, after) => {
      const token = tokenOf(key);
      const framed = Buffer.concat([Buffer.alloc(before, 7), key, Buffer.alloc(after, 9)]);
      return (
        Number.isSafeInteger(token) &&
        token >= 0 &&
        token < TOKEN_SPACE &&
        tokenOf(framed, before, before + key.length) === token
      );
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

t.test('murmur3_32 matches published vectors', async (t) => {
  const m = (s: string, seed: number): number => murmur3x86_32(Buffer.from(s), 0, Buffer.byteLength(s), seed);
  t.equal(m('', 0), 0);
  t.equal(m('', 1), 0x514e28b7);
  t.equal(m('', 0xffffffff), 0x81f16f39);
  t.equal(m('Hello, world!', 0x9747b28c), 0x24884cba);
  t.equal(m('The quick brown fox jumps over the lazy dog', 0x9747b28c), 0x2fa826cd);
});
