// copyBytes against a plain copy: any lengths and offsets (aligned or not), buffers that are views
// into larger memory, and sources that change memory from one call to the next (its kept view).
import fc from 'fast-check';
import t from 'tap';
import { copyBytes } from '../../src/lib/bytes.js';

// A buffer of `length` bytes at `offset` in a larger memory, as Node's pooled buffers are.
function inMemory(bytes: Uint8Array, offset: number): Buffer {
  const memory = Buffer.alloc(offset + bytes.length + 7, 0xee);
  memory.set(bytes, offset);
  return memory.subarray(offset, offset + bytes.length);
}

t.test('copies any range to any place, and nothing around it', async (t) => {
  const copy = fc.record({
    source: fc.uint8Array({ maxLength: 200 }),
    sourceOffset: fc.nat(9),
    targetBytes: fc.nat(240),
    targetOffset: fc.nat(9),
    a: fc.nat(),
    b: fc.nat(),
    at: fc.nat(),
  });
  fc.assert(
    fc.property(fc.array(copy, { minLength: 1, maxLength: 4 }), (copies) => {
      for (const c of copies) {
        const source = inMemory(c.source, c.sourceOffset);
        const start = c.a % (source.length + 1);
        const end = start + (c.b % (source.length - start + 1));
        const length = end - start;
        const target = inMemory(new Uint8Array(c.targetBytes + length).fill(0x55), c.targetOffset);
        const at = c.at % (target.length - length + 1);
        const expected = Buffer.from(target);
        expected.set(source.subarray(start, end), at);
        const memoryBefore = Buffer.from(new Uint8Array(target.buffer));
        copyBytes(target, new DataView(target.buffer, target.byteOffset, target.length), at, source, start, end);
        if (!target.equals(expected)) return false;
        // Bytes of the memory outside target are untouched.
        const memoryAfter = new Uint8Array(target.buffer);
        for (let i = 0; i < memoryAfter.length; i++) {
          const inside = i >= target.byteOffset && i < target.byteOffset + target.length;
          if (!inside && memoryAfter[i] !== memoryBefore[i]) return false;
        }
      }
      return true;
    }),
    { numRuns: 3000 },
  );
});

t.test('a source in the memory of the call before, then in another', async (t) => {
  const memory = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const other = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i));
  const target = Buffer.alloc(64);
  const view = new DataView(target.buffer, target.byteOffset, target.length);
  copyBytes(target, view, 0, memory.subarray(10, 100), 5, 45);
  t.same([...target.subarray(0, 40)], Array.from({ length: 40 }, (_, i) => 15 + i));
  copyBytes(target, view, 3, memory.subarray(100), 0, 20);
  t.same([...target.subarray(3, 23)], Array.from({ length: 20 }, (_, i) => 100 + i));
  copyBytes(target, view, 1, other, 0, 30);
  t.same([...target.subarray(1, 31)], Array.from({ length: 30 }, (_, i) => 255 - i));
});
