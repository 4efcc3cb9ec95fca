// Byte ranges compared, and big-endian integers read, in place: without making views (a
// DataView or a subarray) of them. Pure.

// Whether a[aStart, aStart + length) and b[bStart, bStart + length) hold the same bytes.
export function sameBytes(a: Uint8Array, aStart: number, b: Uint8Array, bStart: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[aStart + i] !== b[bStart + i]) return false;
  return true;
}

export function u16be(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!;
}

// Unsigned: the top byte is multiplied in, not shifted into the sign bit.
export function u32be(bytes: Uint8Array, at: number): number {
  return bytes[at]! * 0x1000000 + ((bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!);
}
