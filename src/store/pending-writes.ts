// Writes waiting for the storage engine, off the JavaScript heap. The log makes a write durable
// before the engine commits it (for seconds: versioned-store.ts says why), and until then reads
// and later writes of its key find it here.
//
// A pending write lives through several young-generation collections, each of which copied it
// when it was an object and a buffer of its own: 170 bytes a write surviving each of them, a
// tenth of the main thread under redis-benchmark SET at pipeline 16 (heap sampling, GC trace). So
// nothing here is a JavaScript object per write:
// - writes are appended, as log entries (wal.ts's layout: the log writes these very bytes), to
//   chunks of memory allocated in turn and never written twice: a view of an entry stays valid
//   as long as it is held (the log and lmdb hold views until they have written them);
// - a write is named by its position: chunk number × CHUNK_SPAN + offset in the chunk; positions
//   only grow, so the writes of a batch are a range of them;
// - the index, an open-addressing table (linear probing) with one slot per key, holds the
//   position of each key's newest write and its tag (the first four bytes of its store key, the
//   top of its token, which V8 keeps unboxed), so a lookup compares keys only for equal tags;
// - a bit per 8 bytes of each chunk says that the write starting there was replaced by a newer
//   one of its key, so that committing a batch skips those without a lookup (a lookup per
//   write was 5% of a node's main thread under writes, CPU profile).
// release() drops the chunks before a position once the engine has every write there.

import { assert } from '../lib/assert.js';
import { u16be } from '../lib/bytes.js';
import { LOG_ENTRY_KEY_START, logEntryBytes, logEntryLength, writeLogEntry } from './wal.js';

// Chunk numbers are counted in units of this in a position (an entry is at most a frame, 4 MiB).
const CHUNK_SPAN = 1 << 24;
// The usual chunk: about 7,000 writes of 100-byte values. A longer entry gets a chunk of its own.
const CHUNK_BYTES = 1 << 20;
const EMPTY = -1;

export class PendingWrites {
  // The chunks from number `firstChunk` on, how many bytes of each hold entries, and where the
  // next entry goes.
  private chunks: Buffer[] = [];
  private filled: number[] = [];
  private replacedBits: Uint8Array[] = [];
  private firstChunk = 0;
  private endPosition = 0;
  private heldBytes = 0;
  // The index: one slot per key, EMPTY or the position of the key's newest write.
  private tags: Int32Array;
  private positions: Float64Array;
  private count = 0;
  // Where prefetch()'s loads go, so that the compiler keeps them.
  private prefetchSink = 0;
  // What append() replaced (the key's write before, or EMPTY), and where the entry lies.
  replaced = EMPTY;
  lastChunk: Buffer = Buffer.alloc(0);
  lastStart = 0;
  lastEnd = 0;

  constructor(slots = 1024) {
    assert((slots & (slots - 1)) === 0, 'the table has a power-of-two size');
    this.tags = new Int32Array(slots);
    this.positions = new Float64Array(slots).fill(EMPTY);
  }

  // Keys with a pending write.
  get size(): number {
    return this.count;
  }

  // Bytes of entries in the chunks held: the memory pending writes take.
  get bytes(): number {
    return this.heldBytes;
  }

  // The position the next entry will have: every write appended so far lies before it.
  get end(): number {
    return this.endPosition;
  }

  // Appends the write of `record` to `storeKey` and files it as the key's newest: returns its
  // position, sets `replaced`, and `lastChunk`[`lastStart`, `lastEnd`) to its bytes.
  append(storeKey: Uint8Array, record: Uint8Array): number {
    const entryBytes = logEntryBytes(storeKey.length, record.length);
    assert(entryBytes < CHUNK_SPAN, 'a pending write fits the span of a position');
    let chunkIndex = this.chunks.length - 1;
    let at = chunkIndex < 0 ? 0 : this.filled[chunkIndex]!;
    if (chunkIndex < 0 || at + entryBytes > this.chunks[chunkIndex]!.length) {
      const bytes = Math.max(CHUNK_BYTES, entryBytes);
      this.chunks.push(Buffer.allocUnsafeSlow(bytes));
      this.filled.push(0);
      this.replacedBits.push(new Uint8Array(Math.ceil(bytes / 64)));
      chunkIndex++;
      at = 0;
    }
    const chunk = this.chunks[chunkIndex]!;
    writeLogEntry(chunk, at, storeKey, record);
    this.filled[chunkIndex] = at + entryBytes;
    const position = (this.firstChunk + chunkIndex) * CHUNK_SPAN + at;
    this.endPosition = position + entryBytes;
    this.heldBytes += entryBytes;
    this.lastChunk = chunk;
    this.lastStart = at;
    this.lastEnd = at + entryBytes;
    const tag = tagOf(storeKey, 0);
    const slot = this.slotOf(tag, storeKey, 0, storeKey.length);
    const replaced = this.positions[slot]!;
    this.replaced = replaced;
    this.positions[slot] = position;
    if (replaced === EMPTY) {
      this.tags[slot] = tag;
      if (++this.count * 2 > this.positions.length) this.grow();
    } else {
      const bit = offsetOf(replaced) >> 3;
      this.replacedBits[chunkOf(replaced) - this.firstChunk]![bit >> 3]! |= 1 << (bit & 7);
    }
    return position;
  }

  // The position of the newest write of the key bytes[start, end), or EMPTY (-1).
  find(bytes: Uint8Array, start: number, end: number): number {
    return this.positions[this.slotOf(tagOf(bytes, start), bytes, start, end)]!;
  }

  // The record of the write at `position`, and its store key: views of its entry.
  record(position: number): Buffer {
    const chunk = this.chunkAt(position);
    const at = offsetOf(position);
    return chunk.subarray(at + LOG_ENTRY_KEY_START + u16be(chunk, at + LOG_ENTRY_KEY_START - 2), at + logEntryLength(chunk, at));
  }

  key(position: number): Buffer {
    const chunk = this.chunkAt(position);
    const at = offsetOf(position) + LOG_ENTRY_KEY_START;
    return chunk.subarray(at, at + u16be(chunk, at - 2));
  }

  // The position of the first write at or after `position` (or end): a batch's range starts
  // where the writes before it ended, which may be the end of a chunk.
  following(position: number): number {
    const index = chunkOf(position) - this.firstChunk;
    if (index < this.chunks.length - 1 && offsetOf(position) >= this.filled[index]!) return (chunkOf(position) + 1) * CHUNK_SPAN;
    return position;
  }

  // The position of the write after the one at `position` (or end).
  next(position: number): number {
    return this.following(position + logEntryLength(this.chunkAt(position), offsetOf(position)));
  }

  // Whether a newer write of its key replaced the write at `position`.
  wasReplaced(position: number): boolean {
    const bit = offsetOf(position) >> 3;
    return (this.replacedBits[chunkOf(position) - this.firstChunk]![bit >> 3]! & (1 << (bit & 7))) !== 0;
  }

  // Removes the write at `position` from the index if it is still its key's newest.
  deleteIfNewest(position: number): void {
    if (this.wasReplaced(position)) return;
    const chunk = this.chunkAt(position);
    const at = offsetOf(position) + LOG_ENTRY_KEY_START;
    const slot = this.slotOf(tagOf(chunk, at), chunk, at, at + u16be(chunk, at - 2));
    if (this.positions[slot] !== position) return;
    this.count--;
    this.emptySlot(slot);
  }

  // Drops the chunks that only writes before `position` are in: the engine has them all, and
  // the index points at none of them (views of them stay valid while they are held). The chunk
  // writes go to stays.
  release(position: number): void {
    assert(position <= this.endPosition, 'releases go no further than the writes');
    const drop = Math.min(chunkOf(position) - this.firstChunk, this.chunks.length - 1);
    if (drop <= 0) return;
    for (let i = 0; i < drop; i++) this.heldBytes -= this.filled[i]!;
    this.chunks.splice(0, drop);
    this.filled.splice(0, drop);
    this.replacedBits.splice(0, drop);
    this.firstChunk += drop;
  }

  // Warms what lookups of keys with tags[0, count) (their tagOf) will touch: their slots, then
  // the key bytes of the write each slot points at, each in one loop, so that the misses of
  // different keys overlap (as RecordCache.prefetch does). Filing a write looks its key up here:
  // dependent misses with 100k keys waiting, 0.6 us of a RESP SET at pipeline 16 (CPU profile).
  // A hint only.
  prefetch(tags: Int32Array, count: number): void {
    const positions = this.positions;
    const mask = positions.length - 1;
    let sink = 0;
    for (let i = 0; i < count; i++) sink += this.tags[tags[i]! & mask]!;
    for (let i = 0; i < count; i++) {
      const position = positions[tags[i]! & mask]!;
      if (position === EMPTY) continue;
      const chunk = this.chunks[chunkOf(position) - this.firstChunk];
      if (chunk !== undefined) sink += chunk[offsetOf(position) + LOG_ENTRY_KEY_START]!;
    }
    this.prefetchSink = sink;
  }

  private chunkAt(position: number): Buffer {
    const chunk = this.chunks[chunkOf(position) - this.firstChunk];
    assert(chunk !== undefined, 'a pending write is not released while it is used');
    return chunk;
  }

  // The slot of the key bytes[start, end) with `tag`, or the empty slot where it would go.
  private slotOf(tag: number, bytes: Uint8Array, start: number, end: number): number {
    const positions = this.positions;
    const mask = positions.length - 1;
    let slot = tag & mask;
    for (;;) {
      const position = positions[slot]!;
      if (position === EMPTY || (this.tags[slot] === tag && this.holdsKey(position, bytes, start, end))) return slot;
      slot = (slot + 1) & mask;
    }
  }

  // Whether the write at `position` has the key bytes[start, end).
  private holdsKey(position: number, bytes: Uint8Array, start: number, end: number): boolean {
    const chunk = this.chunkAt(position);
    const at = offsetOf(position) + LOG_ENTRY_KEY_START;
    if (u16be(chunk, at - 2) !== end - start) return false;
    for (let i = end - start - 1; i >= 0; i--) if (chunk[at + i] !== bytes[start + i]) return false;
    return true;
  }

  // Empties `slot`, moving back the slots after it that probing would no longer find.
  private emptySlot(slot: number): void {
    const positions = this.positions;
    const mask = positions.length - 1;
    let hole = slot;
    for (let at = (slot + 1) & mask; positions[at] !== EMPTY; at = (at + 1) & mask) {
      // The slot at `at` may fill the hole when the hole lies between its home and it.
      if (((at - (this.tags[at]! & mask)) & mask) >= ((at - hole) & mask)) {
        positions[hole] = positions[at]!;
        this.tags[hole] = this.tags[at]!;
        hole = at;
      }
    }
    positions[hole] = EMPTY;
  }

  private grow(): void {
    const tags = this.tags;
    const positions = this.positions;
    this.tags = new Int32Array(tags.length * 2);
    this.positions = new Float64Array(positions.length * 2).fill(EMPTY);
    const mask = this.positions.length - 1;
    for (let i = 0; i < positions.length; i++) {
      if (positions[i] === EMPTY) continue;
      let slot = tags[i]! & mask;
      while (this.positions[slot] !== EMPTY) slot = (slot + 1) & mask;
      this.positions[slot] = positions[i]!;
      this.tags[slot] = tags[i]!;
    }
  }
}

function chunkOf(position: number): number {
  return Math.floor(position / CHUNK_SPAN);
}

function offsetOf(position: number): number {
  return position % CHUNK_SPAN;
}

// A store key is at least four bytes long: it starts with its token, a hash, whose first four
// bytes are its tag.
function tagOf(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!;
}
