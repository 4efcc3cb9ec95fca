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
}

export function pendingWrite(bytes: Buffer, keyStart: number, keyEnd: number): PendingWrite {
  return { bytes, keyStart, keyEnd, superseded: false, next: null };
}

// A pending write's record, as a buffer of its own (a view of the entry's).
export function pendingRecord(entry: PendingWrite): Buffer {
  return entry.bytes.subarray(entry.keyEnd);
}

export function pendingKey(entry: PendingWrite): Buffer {
  return entry.bytes.subarray(entry.keyStart, entry.keyEnd);
}

export class PendingWrites {
  // The first entry of each slot.
  private readonly slots = new Map<number, PendingWrite>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(storeKey: Uint8Array): PendingWrite | undefined {
    for (let entry = this.slots.get(slotOf(storeKey, 0)) ?? null; entry !== null; entry = entry.next) {
      if (holdsKey(entry, storeKey, 0, storeKey.length)) return entry;
    }
    return undefined;
  }

  // Files `entry` as the newest write of its key, in place of any older one.
  set(entry: PendingWrite): void {
    assert(entry.next === null && !entry.superseded, 'a pending write is filed once');
    const id = slotOf(entry.bytes, entry.keyStart);
    const first = this.slots.get(id);
    let before: PendingWrite | null = null;
    for (let at = first ?? null; at !== null; before = at, at = at.next) {
      if (!holdsKey(at, entry.bytes, entry.keyStart, entry.keyEnd)) continue;
      at.superseded = true;
      entry.next = at.next;
      if (before === null) this.slots.set(id, entry);
      else before.next = entry;
      return;
    }
    entry.next = first ?? null;
    this.slots.set(id, entry);
    this.count++;
  }

  isNewest(entry: PendingWrite): boolean {
    return !entry.superseded && this.get(pendingKey(entry)) === entry;
  }

  // Removes `entry` if it is still the newest write of its key.
  deleteIfNewest(entry: PendingWrite): void {
    if (entry.superseded) return;
    const id = slotOf(entry.bytes, entry.keyStart);
    let before: PendingWrite | null = null;
    for (let at = this.slots.get(id) ?? null; at !== null; before = at, at = at.next) {
      if (at !== entry) continue;
      assert(this.count > 0, 'a pending write is removed once');
      if (before !== null) before.next = entry.next;
      else if (entry.next !== null) this.slots.set(id, entry.next);
      else this.slots.delete(id);
      this.count--;
      return;
    }
  }
}

// A store key is at least four bytes long: it starts with its token.
function slotOf(bytes: Uint8Array, at: number): number {
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
