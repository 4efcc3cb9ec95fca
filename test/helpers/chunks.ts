// Splitting input the ways a socket might deliver it, for the incremental decoders' tests.
import fc from 'fast-check';

// `input` cut at `cuts` (offsets, in any order, duplicates allowed: an empty chunk is a chunk).
export function chunksAt(input: Uint8Array, cuts: readonly number[]): Buffer[] {
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.length);
  const points = cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let previous = 0;
  for (const point of points) {
    chunks.push(bytes.subarray(previous, point));
    previous = point;
  }
  chunks.push(bytes.subarray(previous));
  return chunks;
}

// One chunk per byte.
export function bytewise(input: Uint8Array): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < input.length; i++) chunks.push(Buffer.from([input[i]!]));
  return chunks;
}

// Cut offsets for fc: taken modulo the input length plus one by chunksAt.
export const cutsArbitrary = fc.array(fc.nat(), { maxLength: 40 });

// What a decoder made of some chunks: its output so far and the error it stopped at, if any.
export interface Outcome<T> {
  items: T[];
  error: string | null;
  bufferedBytes: number;
}

// Feeds `chunks` to a fresh decoder until it throws; `items` is what it handed out.
export function run<T>(
  make: (items: T[]) => { push(chunk: Buffer): void; readonly bufferedBytes: number },
  chunks: readonly Buffer[],
  describe: (error: unknown) => string,
): Outcome<T> {
  const items: T[] = [];
  const decoder = make(items);
  for (const chunk of chunks) {
    try {
      decoder.push(chunk);
    } catch (error) {
      return { items, error: describe(error), bufferedBytes: -1 };
    }
  }
  return { items, error: null, bufferedBytes: decoder.bufferedBytes };
}
