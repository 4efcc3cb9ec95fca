// A coordinator's replica writes, gathered per peer into REPLICA_PUTS requests (protocol.md,
// "Cluster"): the writes a node coordinates together go to each other replica in one frame, and
// come back in one reply, instead of a frame, a reply and a pending request each. Under
// replicated writes (3 nodes, 51 in flight) that is about 17 writes a request.
//
// The transport is the caller's (ReplicaPutTransport): a dkvd's peer pool, or the simulator's
// network. A peer that answers REPLICA_PUTS with UNKNOWN_OPCODE (a node of a version before it,
// during a rolling upgrade) gets those writes, and for a while every later one, as single
// REPLICA_PUTs instead.

import { asDkvError, DkvError, isDkvError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { FRAME_HEADER_BYTES } from '../wire/codes.js';
import { arrayHeaderBytes, binBytes, decodeBody, encodeReplicaPutsBody, errorOfBody, isAllNil } from '../wire/messages.js';

// Told once per write, with the slot it was added with: null when the peer has it durably, else
// why not. (An object and a number rather than a callback: a write sent to two replicas then
// makes no closure for either.)
export interface ReplicaPutTarget {
  replicaPutDone(slot: number, error: DkvError | null): void;
}

export interface ReplicaPutTransport {
  // Carries one REPLICA_PUTS body to peer `id`; resolves with the reply body.
  sendBatch(id: string, body: Buffer, timeoutMs: number): Promise<Buffer>;
  // Carries one REPLICA_PUT body; resolves once the peer has it durably.
  sendOne(id: string, body: Buffer, timeoutMs: number): Promise<unknown>;
  // Runs `flush` once the writes made together have joined (process.nextTick in a dkvd).
  schedule(flush: () => void): void;
  nowMs(): number;
}

// How long a peer that did not know REPLICA_PUTS gets single REPLICA_PUTs before batches are
// tried again (it may have been upgraded meanwhile).
const UNBATCHED_MS = 60_000;

interface Batch {
  bodies: Buffer[];
  targets: ReplicaPutTarget[];
  slots: number[];
  // The bodies' bytes as bins.
  bytes: number;
  timeoutMs: number;
}

// What one REPLICA_PUTS body may hold of its entries' bins: a frame's worth.
const BATCH_BYTES_MAX = limits.frameBytesMax - FRAME_HEADER_BYTES - arrayHeaderBytes(limits.multiKeysMax);

export class ReplicaPutBatches {
  // The open batches by peer. Each flush starts a new map rather than clearing this one: a
  // cleared map that has grown old keeps pointing at the last batches, and the young-generation
  // collector then keeps them, and every write their callbacks reach, alive until a full
  // collection (measured: 4 times the promoted bytes, 17% fewer puts/s).
  private open = new Map<string, Batch>();
  private scheduled = false;
  // REPLICA_PUTS requests sent, for STATS: writes sent over requests sent is the batch size.
  sent = 0;
  // Peers that answered REPLICA_PUTS with UNKNOWN_OPCODE, and until when they get single writes.
  private readonly unbatched = new Map<string, number>();

  constructor(private readonly transport: ReplicaPutTransport) {}

  // Sends `body` (a REPLICA_PUT body) to peer `id` with the other writes made with it; `target`
  // is told the outcome once, with `slot`. `timeoutMs`: how long the write may wait for the
  // peer (the request waits for the longest of its writes').
  add(id: string, body: Buffer, timeoutMs: number, target: ReplicaPutTarget, slot: number): void {
    if (this.unbatched.size > 0 && this.isUnbatched(id)) {
      this.sendOne(id, body, timeoutMs, target, slot);
      return;
    }
    let batch = this.open.get(id);
    const bytes = binBytes(body.length);
    // A batch that cannot take this write goes now; a write too large for any frame goes alone
    // and fails alone.
    if (batch !== undefined && (batch.slots.length >= limits.multiKeysMax || batch.bytes + bytes > BATCH_BYTES_MAX)) {
      this.open.delete(id);
      this.flushOne(id, batch);
      batch = undefined;
    }
    if (batch === undefined) {
      batch = { bodies: [], targets: [], slots: [], bytes: 0, timeoutMs };
      this.open.set(id, batch);
    }
    batch.bodies.push(body);
    batch.targets.push(target);
    batch.slots.push(slot);
    batch.bytes += bytes;
    if (timeoutMs > batch.timeoutMs) batch.timeoutMs = timeoutMs;
    if (!this.scheduled) {
      this.scheduled = true;
      this.transport.schedule(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const open = this.open;
    this.open = new Map();
    for (const [id, batch] of open) this.flushOne(id, batch);
  };

  private flushOne(id: string, batch: Batch): void {
    this.sent++;
    attempt(() => this.transport.sendBatch(id, encodeReplicaPutsBody(batch.bodies, batch.bytes), batch.timeoutMs)).then(
      (body) => settle(batch, body),
      (error: unknown) => {
        if (isDkvError(error, 'UNKNOWN_OPCODE')) {
          this.unbatched.set(id, this.transport.nowMs() + UNBATCHED_MS);
          for (let i = 0; i < batch.slots.length; i++) this.sendOne(id, batch.bodies[i]!, batch.timeoutMs, batch.targets[i]!, batch.slots[i]!);
          return;
        }
        tellAll(batch, asDkvError(error));
      },
    );
  }

  private isUnbatched(id: string): boolean {
    const until = this.unbatched.get(id);
    if (until === undefined) return false;
    if (this.transport.nowMs() < until) return true;
    this.unbatched.delete(id);
    return false;
  }

  private sendOne(id: string, body: Buffer, timeoutMs: number, target: ReplicaPutTarget, slot: number): void {
    attempt(() => this.transport.sendOne(id, body, timeoutMs)).then(
      () => target.replicaPutDone(slot, null),
      (error: unknown) => target.replicaPutDone(slot, asDkvError(error)),
    );
  }
}

// A send that throws (a peer that is no member) fails like one that rejects.
function attempt<T>(send: () => Promise<T>): Promise<T> {
  try {
    return send();
  } catch (error) {
    return Promise.reject(error);
  }
}

// Tells every write of `batch` the same outcome.
function tellAll(batch: Batch, error: DkvError | null): void {
  for (let i = 0; i < batch.slots.length; i++) batch.targets[i]!.replicaPutDone(batch.slots[i]!, error);
}

// Tells each write its outcome from a REPLICA_PUTS reply: an array with one element per write,
// nil for durable or an error map (as ERROR's body).
function settle(batch: Batch, body: Buffer): void {
  const count = batch.slots.length;
  if (isAllNil(body, 0, body.length, count)) {
    tellAll(batch, null);
    return;
  }
  let results: unknown;
  try {
    results = decodeBody(body, 0, body.length);
  } catch {
    results = undefined;
  }
  if (!Array.isArray(results) || results.length !== count) {
    tellAll(batch, new DkvError('PROTOCOL_VIOLATION', `REPLICA_PUTS reply is not an array of ${count} results`));
    return;
  }
  for (let i = 0; i < count; i++) batch.targets[i]!.replicaPutDone(batch.slots[i]!, results[i] === null ? null : errorOfBody(results[i]));
}
