// Writes waiting for the storage engine, found by store key without allocating: a GET looks here
// whenever the read cache does not hold its key and a write waits, so the lookup must not build
// a string key per request. Entries are filed under the first four bytes of the store key (the
// top of the key's token: an int32, which V8 keeps unboxed), keys that share them in a chain,
// and a lookup compares the whole key.
//
// A pending write lives for seconds (until lmdb commits its batch), through several young-
// generation collections, each of which copies it: so it is as few objects as can be. Its key
// and record lie in one buffer (the store uses the write's log entry), and the index adds no
// object of its own per write.

import { assert } from '../lib/assert.js';

export interface PendingWrite {
  // The store key at [keyStart, keyEnd), the record from keyEnd to the end.
  readonly bytes: Buffer;
  readonly keyStart: number;
  readonly keyEnd: number;
  // Set once a newer write of the key has taken this one's place: then it is in the index no
  // more, and whoever holds it knows without a lookup.
  superseded: boolean;
  // The next entry of the same slot (another key whose first four bytes are the same).
  next: PendingWrite | null;
  // Which of its owner's batches the write is in (versioned-store.ts numbers them).
  readonly batch: number;
}

export function pendingWrite(bytes: Buffer, keyStart: number, keyEnd: number, batch = 0): PendingWrite {
  return { bytes, keyStart, keyEnd, superseded: false, next: null, batch };
}

// A pending write's record, as a buffer of its own (a view of the entry's).
export function pendingRecord(entry: PendingWrite): Buffer {
  return entry.bytes.subarray(entry.keyEnd);
}

export function pendingKey(entry: PendingWrite): Buffer {
  return entry.bytes.subarray(entry.keyStart, entry.keyEnd);
}

export class PendingWrites {
  // An open-addressing table (linear probing) of slots: a slot holds the entries whose keys share
  // their first four bytes (`tags`), chained from `heads`. It grows and never shrinks: a Map here
  // grew to tens of thousands of entries and shrank again with every lmdb batch, and reallocating
  // its table was over a third of what a node kept past a young-generation collection (heap
  // sampling, 3 nodes under writes).
  private tags: Int32Array;
  private heads: Array<PendingWrite | null>;
  private slotsUsed = 0;
  private count = 0;
  // Where prefetch()'s loads go, so that the compiler keeps them.
  private prefetchSink = 0;

  constructor(slots = 1024) {
    assert((slots & (slots - 1)) === 0, 'the table has a power-of-two size');
    this.tags = new Int32Array(slots);
    this.heads = new Array<PendingWrite | null>(slots).fill(null);
  }

  get size(): number {
    return this.count;
  }

  get(storeKey: Uint8Array): PendingWrite | undefined {
    for (let entry = this.heads[this.slotOf(tagOf(storeKey, 0))] ?? null; entry !== null; entry = entry.next) {
      if (holdsKey(entry, storeKey, 0, storeKey.length)) return entry;
    }
    return undefined;
  }

  // Files `entry` as the newest write of its key, in place of any older one, which it returns.
  set(entry: PendingWrite): PendingWrite | null {
    assert(entry.next === null && !entry.superseded, 'a pending write is filed once');
    const tag = tagOf(entry.bytes, entry.keyStart);
    const slot = this.slotOf(tag);
    const first = this.heads[slot] ?? null;
    let before: PendingWrite | null = null;
    for (let at = first; at !== null; before = at, at = at.next) {
      if (!holdsKey(at, entry.bytes, entry.keyStart, entry.keyEnd)) continue;
      at.superseded = true;
      entry.next = at.next;
      if (before === null) this.heads[slot] = entry;
      else before.next = entry;
      return at;
    }
    entry.next = first;
    this.heads[slot] = entry;
    this.count++;
    if (first !== null) return null;
    this.tags[slot] = tag;
    if (++this.slotsUsed * 2 > this.heads.length) this.grow();
    return null;
  }

  // Warms what lookups of keys with tags[0, count) (their tagOf) will touch: their slots, then
  // the first entry of each and its key's bytes, each in one loop, so that the misses of
  // different keys overlap (as RecordCache.prefetch does). Filing a write looks its key up here:
  // five dependent misses with 100k keys waiting, 0.6 us of a RESP SET at pipeline 16 (CPU
  // profile). A hint only.
  prefetch(tags: Int32Array, count: number): void {
    const heads = this.heads;
    const mask = heads.length - 1;
    let sink = 0;
    for (let i = 0; i < count; i++) {
      const slot = tags[i]! & mask;
      sink += this.tags[slot]!;
      const head = heads[slot];
      if (head !== null && head !== undefined) sink += head.keyStart;
    }
    for (let i = 0; i < count; i++) {
      const head = heads[tags[i]! & mask];
      if (head !== null && head !== undefined) sink += head.bytes[head.keyStart]!;
    }
    this.prefetchSink = sink;
  }

  isNewest(entry: PendingWrite): boolean {
    return !entry.superseded && this.get(pendingKey(entry)) === entry;
  }

  // Removes `entry` if it is still the newest write of its key.
  deleteIfNewest(entry: PendingWrite): void {
    if (entry.superseded) return;
    const slot = this.slotOf(tagOf(entry.bytes, entry.keyStart));
    let before: PendingWrite | null = null;
    for (let at = this.heads[slot] ?? null; at !== null; before = at, at = at.next) {
      if (at !== entry) continue;
      assert(this.count > 0, 'a pending write is removed once');
      this.count--;
      if (before !== null) before.next = entry.next;
      else if (entry.next !== null) this.heads[slot] = entry.next;
      else this.emptySlot(slot);
      return;
    }
  }

  // The slot of `tag`'s entries, or the empty slot where they would go.
  private slotOf(tag: number): number {
    const mask = this.heads.length - 1;
    let slot = tag & mask;
    while (this.heads[slot] !== null && this.tags[slot] !== tag) slot = (slot + 1) & mask;
    return slot;
  }

  // Empties `slot`, moving back the slots after it that probing would no longer find.
  private emptySlot(slot: number): void {
    const mask = this.heads.length - 1;
    let hole = slot;
    for (let at = (slot + 1) & mask; this.heads[at] !== null; at = (at + 1) & mask) {
      // The slot at `at` may fill the hole when the hole lies between its home and it.
      if (((at - (this.tags[at]! & mask)) & mask) >= ((at - hole) & mask)) {
        this.heads[hole] = this.heads[at]!;
        this.tags[hole] = this.tags[at]!;
        hole = at;
      }
    }
    this.heads[hole] = null;
    this.slotsUsed--;
  }

  private grow(): void {
    const tags = this.tags;
    const heads = this.heads;
    this.tags = new Int32Array(tags.length * 2);
    this.heads = new Array<PendingWrite | null>(heads.length * 2).fill(null);
    for (let i = 0; i < heads.length; i++) {
      if (heads[i] === null) continue;
      const slot = this.slotOf(tags[i]!);
      this.heads[slot] = heads[i]!;
      this.tags[slot] = tags[i]!;
    }
  }
}

// A store key is at least four bytes long: it starts with its token, a hash, whose first four
// bytes are its tag.
function tagOf(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!;
}

// Whether `entry`'s key is bytes[start, end).
function holdsKey(entry: PendingWrite, bytes: Uint8Array, start: number, end: number): boolean {
  const own = entry.bytes;
  const ownStart = entry.keyStart;
  if (entry.keyEnd - ownStart !== end - start) return false;
  for (let i = end - start - 1; i >= 0; i--) if (own[ownStart + i] !== bytes[start + i]) return false;
  return true;
}
