// The key → token hash of protocol.md. A token is a 48-bit unsigned integer, a plain JS number:
//   token = murmur3_32(key, seed 0) * 2^16 + (murmur3_32(key, seed 1) >>> 16)
// MurmurHash3 (x86, 32-bit) is in every language's standard toolbox, so any client can place a
// key; 48 bits keep virtual-node collisions improbable (about 1e-6 for 25,600 tokens) and fit
// Buffer.writeUIntBE. Pure, and allocation-free: it reads the key where it lies.

export const TOKEN_BITS = 48;
export const TOKEN_BYTES = 6;
export const TOKEN_SPACE = 2 ** TOKEN_BITS;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

export function murmur3x86_32(bytes: Uint8Array, start: number, end: number, seed: number): number {
  return murmurInt32(bytes, start, end, seed) >>> 0;
}

// MurmurHash3 as a signed 32-bit integer. A uint32 of 2^31 or more is not a small integer to V8,
// so returning one from a call that is not inlined allocates a 16-byte HeapNumber; an int32
// never does. The GET path calls this through storeKey, so it must not allocate.
function murmurInt32(bytes: Uint8Array, start: number, end: number, seed: number): number {
  let h = seed | 0;
  const length = end - start;
  const blocksEnd = start + (length & ~3);
  let i = start;
  for (; i < blocksEnd; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  switch (length & 3) {
    case 3:
      k ^= bytes[i + 2]! << 16;
    // falls through
    case 2:
      k ^= bytes[i + 1]! << 8;
    // falls through
    case 1:
      k ^= bytes[i]!;
      k = Math.imul(k, C1);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, C2);
      h ^= k;
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

export function tokenOf(key: Uint8Array, start = 0, end = key.length): number {
  const high = murmurInt32(key, start, end, 0) >>> 0;
  const low = murmurInt32(key, start, end, 1) >>> 16;
  return high * 0x10000 + low;
}

// The first 32 bits of the token of `key[start, end)`, as an int32: what the first four bytes of
// its store key read as a big-endian int32. The read cache's tag.
export function tokenHigh32(key: Uint8Array, start: number, end: number): number {
  return murmurInt32(key, start, end, 0);
}

// The token of `key[start, end)` written big-endian to `target[offset, offset + TOKEN_BYTES)`:
// the bytes of writeUIntBE(tokenOf(key, start, end), offset, 6), without the 48-bit number,
// which V8 boxes (16 bytes) whenever it is passed to a call it does not inline.
export function writeToken(key: Uint8Array, start: number, end: number, target: Uint8Array, offset: number): void {
  const high = murmurInt32(key, start, end, 0);
  const low = murmurInt32(key, start, end, 1);
  target[offset] = high >>> 24;
  target[offset + 1] = high >>> 16;
  target[offset + 2] = high >>> 8;
  target[offset + 3] = high;
  target[offset + 4] = low >>> 24;
  target[offset + 5] = low >>> 16;
}
