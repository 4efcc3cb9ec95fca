// Writes waiting for the storage engine, found by store key without allocating: a GET looks here
// first whenever any write waits, so the lookup must not build a string key per request. Entries
// are filed under the first four bytes of the store key (the top of the key's token: an int32,
// which V8 keeps unboxed), and a lookup compares the whole key.

import { assert } from '../lib/assert.js';

export interface PendingWrite {
  readonly storeKey: Buffer;
  readonly record: Buffer;
  // Set once a newer write of the key has taken this one's place: then it is in the index no
  // more, and whoever holds it knows without a lookup.
  superseded: boolean;
}

export class PendingWrites {
  // Usually one entry per slot; tokens that share their top 32 bits share a slot.
  private readonly slots = new Map<number, PendingWrite[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(storeKey: Uint8Array): PendingWrite | undefined {
    const slot = this.slots.get(slotOf(storeKey));
    if (slot === undefined) return undefined;
    for (let i = 0; i < slot.length; i++) if (sameKey(slot[i]!.storeKey, storeKey)) return slot[i];
    return undefined;
  }

  // Files `entry` as the newest write of its key, in place of any older one.
  set(entry: PendingWrite): void {
    const id = slotOf(entry.storeKey);
    const slot = this.slots.get(id);
    if (slot === undefined) {
      this.slots.set(id, [entry]);
      this.count++;
      return;
    }
    for (let i = 0; i < slot.length; i++) {
      if (sameKey(slot[i]!.storeKey, entry.storeKey)) {
        slot[i]!.superseded = true;
        slot[i] = entry;
        return;
      }
    }
    slot.push(entry);
    this.count++;
  }

  isNewest(entry: PendingWrite): boolean {
    return !entry.superseded && this.get(entry.storeKey) === entry;
  }

  // Removes `entry` if it is still the newest write of its key.
  deleteIfNewest(entry: PendingWrite): void {
    if (entry.superseded) return;
    const id = slotOf(entry.storeKey);
    const slot = this.slots.get(id);
    if (slot === undefined) return;
    const i = slot.indexOf(entry);
    if (i < 0) return;
    assert(this.count > 0, 'a pending write is removed once');
    if (slot.length === 1) this.slots.delete(id);
    else slot.splice(i, 1);
    this.count--;
  }
}

function slotOf(storeKey: Uint8Array): number {
  return (storeKey[0]! << 24) | (storeKey[1]! << 16) | (storeKey[2]! << 8) | storeKey[3]!;
}

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}
