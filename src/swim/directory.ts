// Member identities: id, its encoded bytes and its addresses, each under a small integer index
// that the core's per-member arrays use. A dkvd has one directory for its one core. The simulator
// shares one directory among all its cores so that ten thousand nodes do not each keep ten
// thousand copies of every id (their views of state and incarnation stay separate); simulated
// nodes keep their addresses for life, so sharing addresses changes nothing. Pure.

import { assert } from '../lib/assert.js';
import { sameBytes } from '../lib/bytes.js';
import { limits } from '../lib/limits.js';
import { encodeAlive } from '../wire/swim-codec.js';

export class MemberDirectory {
  readonly ids: string[] = [];
  readonly idBytes: Buffer[] = [];
  readonly hosts: string[] = [];
  readonly udpPorts: number[] = [];
  readonly tcpPorts: number[] = [];
  private readonly byId = new Map<string, number>();
  // The same index by the id's UTF-8 bytes, so that a record read from a datagram finds its
  // member without decoding a string: open addressing over FNV-1a hashes, each slot a pair
  // (index + 1, hash). The bytes compared are the ids' copies back to back in one array, id i at
  // [idEnds[i - 1], idEnds[i]): a lookup reads two flat arrays, where following each id's own
  // Buffer (object, then storage) cost cache misses on every record once the simulator had ten
  // thousand members.
  private slots = new Int32Array(2 * 1024);
  private idArena = new Uint8Array(16 * 1024);
  private idEnds = new Int32Array(1024);
  // Each member's ALIVE record at the incarnation it was last encoded for: push-pull sends one
  // per member, and the simulator's nodes share them.
  private readonly aliveRecords: Array<Buffer | undefined> = [];
  private readonly aliveRecordIncarnations: number[] = [];

  get size(): number {
    return this.ids.length;
  }

  find(id: string): number | undefined {
    return this.byId.get(id);
  }

  // The index of the id whose UTF-8 bytes are bytes[start, start + length), or -1.
  findBytes(bytes: Uint8Array, start: number, length: number): number {
    const hash = fnv1a(bytes, start, length);
    const slots = this.slots;
    const mask = (slots.length >> 1) - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = slots[2 * slot]!;
      if (entry === 0) return -1;
      if (slots[2 * slot + 1] === hash && this.idAt(entry - 1, bytes, start, length)) return entry - 1;
    }
  }

  // Whether id `index` is bytes[start, start + length).
  private idAt(index: number, bytes: Uint8Array, start: number, length: number): boolean {
    const from = index === 0 ? 0 : this.idEnds[index - 1]!;
    return this.idEnds[index]! - from === length && sameBytes(this.idArena, from, bytes, start, length);
  }

  private place(index: number, hash: number): void {
    const slots = this.slots;
    const mask = (slots.length >> 1) - 1;
    let slot = hash & mask;
    while (slots[2 * slot] !== 0) slot = (slot + 1) & mask;
    slots[2 * slot] = index + 1;
    slots[2 * slot + 1] = hash;
  }

  // The index of id, added if new; -1 when the directory is full.
  intern(id: string, host: string, udpPort: number, tcpPort: number): number {
    const known = this.byId.get(id);
    if (known !== undefined) return known;
    if (this.ids.length >= limits.membersMax) return -1;
    const idBytes = Buffer.from(id, 'utf8');
    assert(idBytes.length >= 1 && idBytes.length <= 255, 'member id is 1..255 bytes');
    const index = this.ids.length;
    this.ids.push(id);
    this.idBytes.push(idBytes);
    this.hosts.push(host);
    this.udpPorts.push(udpPort);
    this.tcpPorts.push(tcpPort);
    this.byId.set(id, index);
    const from = index === 0 ? 0 : this.idEnds[index - 1]!;
    if (index === this.idEnds.length) this.idEnds = grown(this.idEnds, 2 * index);
    while (from + idBytes.length > this.idArena.length) this.idArena = grown(this.idArena, 2 * this.idArena.length);
    this.idArena.set(idBytes, from);
    this.idEnds[index] = from + idBytes.length;
    // At most half full: probes stay short.
    if (2 * this.ids.length > this.slots.length >> 1) {
      this.slots = new Int32Array(this.slots.length * 2);
      for (let i = 0; i < this.ids.length; i++) this.place(i, fnv1a(this.idBytes[i]!, 0, this.idBytes[i]!.length));
    } else {
      this.place(index, fnv1a(idBytes, 0, idBytes.length));
    }
    return index;
  }

  // The ALIVE record of member `index` at `incarnation`, with its address. Callers only read it.
  aliveRecord(index: number, incarnation: number): Buffer {
    const cached = this.aliveRecords[index];
    if (cached !== undefined && this.aliveRecordIncarnations[index] === incarnation) return cached;
    const record = encodeAlive(incarnation, this.ids[index]!, this.hosts[index]!, this.udpPorts[index]!, this.tcpPorts[index]!);
    this.aliveRecords[index] = record;
    this.aliveRecordIncarnations[index] = incarnation;
    return record;
  }

  setAddress(index: number, host: string, udpPort: number, tcpPort: number): void {
    this.aliveRecords[index] = undefined;
    this.hosts[index] = host;
    this.udpPorts[index] = udpPort;
    this.tcpPorts[index] = tcpPort;
  }
}

// As an Int32Array holds it: the slots compare hashes without converting to an unsigned number.
function fnv1a(bytes: Uint8Array, start: number, length: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < start + length; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  return hash | 0;
}

function grown<T extends Int32Array | Uint8Array>(array: T, length: number): T {
  const bigger = new (array.constructor as new (length: number) => T)(length);
  bigger.set(array);
  return bigger;
}
