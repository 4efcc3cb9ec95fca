// Comparing byte ranges without making views of them. Pure.

// Whether a[aStart, aStart + length) and b[bStart, bStart + length) hold the same bytes.
export function sameBytes(a: Uint8Array, aStart: number, b: Uint8Array, bStart: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[aStart + i] !== b[bStart + i]) return false;
  return true;
}
