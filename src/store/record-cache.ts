// A read cache in front of the storage engine, for records read often. An lmdb lookup walks a
// B-tree through pages spread over the memory map: about ten cache misses, a third of a RESP GET's
// 2.3 us at pipeline 16 (perf, 100k keys). A lookup here touches two index lines (tags and
// positions) and the entry.
//
// Nothing in it is a JavaScript object per entry, so it adds no work for the garbage collector
// however many records it holds (an LRU of Map entries and Buffers did, and lost to lmdb):
// - records are appended to one off-heap arena used as a ring, the oldest overwritten first
//   (FIFO eviction);
// - an index of 2-way sets, chosen by the top bits of the store key (its token, a hash), holds
//   for each way the arena position of an entry and a tag (the token's first 32 bits), which
//   rules out most wrong ways without reading the arena. A fill takes the way its key already
//   has, else an empty or overwritten one, else the older.
// An entry is   u16 BE key length ‖ u32 BE record length ‖ store key ‖ record.
// Positions count bytes appended since the start (a float64 holds them exactly for 2^53 bytes);
// an entry is still in the arena while its position is at most one arena length behind the end.
//
// The store keeps the cache exact: every write files its key's new record here as it becomes the
// key's newest, and a read files what the engine returned (an empty record when it had none) only
// when no write of the key waits.
// So whatever the cache holds for a key is its newest record, and the store asks it first, even
// before its writes in flight; and the next write of a key finds its current record here
// instead of in lmdb.

import { u16be, u32be } from '../lib/bytes.js';
import { limits } from '../lib/limits.js';

const ENTRY_HEADER_BYTES = 6;
const EMPTY = -1;
// What prefetch() touches of an entry: four cache lines, a 100-byte value's whole entry. A
// longer record's further lines come to a copy that runs through them in order, which the
// processor's own prefetcher follows.
const PREFETCH_ENTRY_BYTES = 256;
const CACHE_LINE_BYTES = 64;

// A store key's tag: the first 32 bits of its token, as an int32. Its top bits choose the set.
function tagOf(storeKey: Uint8Array): number {
  return u32be(storeKey, 0) | 0;
}

export interface RecordCacheStats {
  hits: number;
  misses: number;
  fills: number;
}

export class RecordCache {
  readonly stats: RecordCacheStats = { hits: 0, misses: 0, fills: 0 };
  private readonly arena: Buffer;
  // Way w of set s is index 2s + w in both.
  private readonly positions: Float64Array;
  private readonly tags: Int32Array;
  private readonly setShift: number;
  // Bytes appended since the start: the next entry goes at end % arena length.
  private end = 0;
  // The arena and, after it, room for the record last found: a hit copies the record there with
  // copyWithin (Buffer's copy() would allocate a view) and returns it through `found`, whose
  // `length` is the record's (as lmdb's shared read buffer does). A hit allocates nothing.
  private readonly memory: Buffer;
  private readonly found: Buffer;
  // prefetch()'s positions, and where its loads go so that the compiler keeps them.
  private readonly prefetchPositions = new Float64Array(limits.readPrefetchKeysMax);
  private prefetchSink = 0;

  // `bytes` of arena, and one index way per `bytesPerWay` of it (rounded to a power of two).
  constructor(
    bytes: number,
    private readonly recordBytesMax: number,
    bytesPerWay = 64,
  ) {
    this.memory = Buffer.allocUnsafeSlow(bytes + recordBytesMax);
    this.arena = this.memory.subarray(0, bytes);
    const wayBits = Math.max(2, Math.min(26, Math.round(Math.log2(bytes / bytesPerWay))));
    this.positions = new Float64Array(1 << wayBits).fill(EMPTY);
    this.tags = new Int32Array(1 << wayBits);
    this.setShift = 32 - (wayBits - 1);
    this.found = Buffer.from(this.memory.buffer, this.memory.byteOffset + bytes, recordBytesMax);
    Object.defineProperty(this.found, 'length', { value: 0, writable: true });
  }

  // The index of `storeKey`'s way, or -1.
  private find(storeKey: Uint8Array, tag = tagOf(storeKey)): number {
    const first = (tag >>> this.setShift) << 1;
    if (this.tags[first] === tag && this.holds(first, storeKey)) return first;
    if (this.tags[first + 1] === tag && this.holds(first + 1, storeKey)) return first + 1;
    return -1;
  }

  private live(way: number): boolean {
    const position = this.positions[way]!;
    return position !== EMPTY && position >= this.end - this.arena.length;
  }

  private holds(way: number, storeKey: Uint8Array): boolean {
    if (!this.live(way)) return false;
    const arena = this.arena;
    const at = this.positions[way]! % arena.length;
    const keyBytes = u16be(arena, at);
    if (keyBytes !== storeKey.length) return false;
    const keyAt = at + ENTRY_HEADER_BYTES;
    for (let i = keyBytes - 1; i >= 0; i--) if (arena[keyAt + i] !== storeKey[i]) return false;
    return true;
  }

  // The record filed under `storeKey`, in a buffer shared by every lookup (valid until the next).
  get(storeKey: Uint8Array): Buffer | undefined {
    const way = this.find(storeKey);
    if (way < 0) {
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    const arena = this.arena;
    const at = this.positions[way]! % arena.length;
    const recordBytes = u32be(arena, at + 2);
    const recordAt = at + ENTRY_HEADER_BYTES + storeKey.length;
    this.memory.copyWithin(arena.length, recordAt, recordAt + recordBytes);
    const found = this.found as { length: number } & Buffer;
    found.length = recordBytes;
    return found;
  }

  // Warms what lookups of the keys with tags[0, count) will touch: the index lines of their sets,
  // then the first lines of the entries their tags point at, each in one loop. JavaScript has no
  // prefetch instruction, but independent loads in one loop overlap in the processor, while
  // GETs handled one at a time each wait for their own misses in turn: the index line, then
  // the entry. With 100k keys that was about 0.4 us of a RESP GET's 2 us at pipeline 16. A hint
  // only: a stale or foreign position just warms a line, and nothing changes.
  prefetch(tags: Int32Array, count: number): void {
    const positions = this.prefetchPositions;
    const n = Math.min(count, positions.length);
    for (let i = 0; i < n; i++) {
      const tag = tags[i]!;
      const first = (tag >>> this.setShift) << 1;
      positions[i] = this.tags[first] === tag ? this.positions[first]! : this.positions[first + 1]!;
    }
    const arena = this.arena;
    const span = Math.min(PREFETCH_ENTRY_BYTES, arena.length);
    let sink = 0;
    for (let i = 0; i < n; i++) {
      const position = positions[i]!;
      if (position === EMPTY) continue;
      const at = Math.min(position % arena.length, arena.length - span);
      for (let line = 0; line < span; line += CACHE_LINE_BYTES) sink += arena[at + line]!;
    }
    this.prefetchSink = sink;
  }

  // Files `record` (`record.length` bytes of it, which may be a shared buffer) under `storeKey`.
  put(storeKey: Uint8Array, record: Uint8Array): void {
    const recordBytes = record.length;
    const entryBytes = ENTRY_HEADER_BYTES + storeKey.length + recordBytes;
    const arena = this.arena;
    if (recordBytes > this.recordBytesMax || entryBytes > arena.length >> 4) {
      // Not kept; nor may an older record of the key be.
      this.delete(storeKey);
      return;
    }
    const tag = tagOf(storeKey);
    let way = this.find(storeKey, tag);
    if (way < 0) {
      const first = (tag >>> this.setShift) << 1;
      if (!this.live(first)) way = first;
      else if (!this.live(first + 1)) way = first + 1;
      else way = this.positions[first]! < this.positions[first + 1]! ? first : first + 1;
    }
    let at = this.end % arena.length;
    // An entry never wraps: the arena's tail too short for it is skipped.
    if (at + entryBytes > arena.length) {
      this.end += arena.length - at;
      at = 0;
    }
    arena.writeUInt16BE(storeKey.length, at);
    arena.writeUInt32BE(recordBytes, at + 2);
    arena.set(storeKey, at + ENTRY_HEADER_BYTES);
    // lmdb's shared buffer is larger underneath than its length says: copy it through a view.
    const recordAt = at + ENTRY_HEADER_BYTES + storeKey.length;
    if (record.byteLength === recordBytes) arena.set(record, recordAt);
    else arena.set(new Uint8Array(record.buffer, record.byteOffset, recordBytes), recordAt);
    this.positions[way] = this.end;
    this.tags[way] = tag;
    this.end += entryBytes;
    this.stats.fills++;
  }

  // Forgets `storeKey`'s record, if it is filed.
  delete(storeKey: Uint8Array): void {
    const way = this.find(storeKey);
    if (way >= 0) this.positions[way] = EMPTY;
  }
}
