// Membership news waiting to be gossiped. Each message is about one member (its subject); a
// newer message about the same member replaces the older one. Packets take the least-sent
// messages first (newest first among equals), and a message is dropped once it has been sent
// transmitLimit times. Pure.

import { assert } from '../lib/assert.js';
import type { SwimWriter } from '../wire/swim-codec.js';

interface Broadcast {
  subject: number;
  message: Buffer;
  transmits: number;
  order: number;
}

export class GossipQueue {
  private entries: Broadcast[] = [];
  private enqueued = 0;

  constructor(readonly messagesMax: number) {
    assert(messagesMax >= 1, 'gossip queue holds at least one message');
  }

  get length(): number {
    return this.entries.length;
  }

  has(subject: number): boolean {
    for (const entry of this.entries) if (entry.subject === subject) return true;
    return false;
  }

  enqueue(subject: number, message: Buffer): void {
    const entries = this.entries;
    for (let i = 0; i < entries.length; i++) {
      if (entries[i]!.subject === subject) {
        entries.splice(i, 1);
        break;
      }
    }
    // Least sent first, newest first among equals: a fresh message goes to the front.
    entries.unshift({ subject, message, transmits: 0, order: this.enqueued++ });
    // Past the bound, the most-sent message is the one most members already have.
    if (entries.length > this.messagesMax) entries.pop();
  }

  // Appends messages that fit into the packet being written; returns how many.
  fill(writer: SwimWriter, transmitLimit: number): number {
    const entries = this.entries;
    if (entries.length === 0) return 0;
    let added = 0;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.message.length > writer.remaining) continue;
      writer.append(entry.message);
      entry.transmits++;
      added++;
    }
    if (added > 0) {
      let kept = 0;
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i]!;
        if (entry.transmits < transmitLimit) entries[kept++] = entry;
      }
      entries.length = kept;
      entries.sort(byLeastSentThenNewest);
    }
    return added;
  }
}

function byLeastSentThenNewest(a: Broadcast, b: Broadcast): number {
  return a.transmits - b.transmits || b.order - a.order;
}
