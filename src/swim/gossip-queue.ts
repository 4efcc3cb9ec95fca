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
  // The fill that last sent it.
  sentIn: number;
}

export class GossipQueue {
  private entries: Broadcast[] = [];
  private enqueued = 0;
  private fills = 0;
  private readonly sent: Broadcast[] = [];

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
    entries.unshift({ subject, message, transmits: 0, order: this.enqueued++, sentIn: 0 });
    // Past the bound, the most-sent message is the one most members already have.
    if (entries.length > this.messagesMax) entries.pop();
  }

  // Appends messages that fit into the packet being written; returns how many. Then drops the
  // messages sent their transmitLimit times and restores the order: the messages just sent, one
  // transmit up, are merged back among the others (each group is still in order by itself). A
  // linear merge through a kept scratch array allocates nothing, where Array.prototype.sort's
  // scratch arrays were more than a third of the simulator's allocation.
  fill(writer: SwimWriter, transmitLimit: number): number {
    const entries = this.entries;
    if (entries.length === 0) return 0;
    const fill = ++this.fills;
    let added = 0;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.message.length > writer.remaining) continue;
      writer.append(entry.message);
      entry.transmits++;
      entry.sentIn = fill;
      added++;
    }
    if (added === 0) return 0;
    // The scratch array keeps its length between fills (shrinking it would give its storage back
    // and the next fill would allocate it again); slots past `count` are stale.
    const sent = this.sent;
    let count = 0;
    let unsent = 0;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.transmits >= transmitLimit) continue;
      if (entry.sentIn !== fill) entries[unsent++] = entry;
      else sent[count++] = entry;
    }
    let i = unsent - 1;
    let j = count - 1;
    let k = unsent + count - 1;
    entries.length = k + 1;
    while (j >= 0) {
      if (i >= 0 && byLeastSentThenNewest(entries[i]!, sent[j]!) > 0) entries[k--] = entries[i--]!;
      else entries[k--] = sent[j--]!;
    }
    return added;
  }
}

function byLeastSentThenNewest(a: Broadcast, b: Broadcast): number {
  return a.transmits - b.transmits || b.order - a.order;
}
