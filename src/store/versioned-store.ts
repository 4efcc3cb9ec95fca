// Versioned key-value storage on one node: places keys by token, keeps a dotted version vector
// set per key, and acknowledges writes only when the engine says they are durable.
//
// A record on disk is
//   u8 format (1) ‖ u8 flags (bit 0: tombstone) ‖ msgpack GET reply body
// so a native GET copies the body from the engine straight into its reply frame.

import { DkvError } from '../lib/errors.js';
import { TOKEN_BYTES, writeToken } from '../ring/token.js';
import { isTombstone, writeVersion, type Clock, type Versioned } from '../version/dvv.js';
import {
  decodeBody,
  decodeGetReply,
  encodeBodyShared,
  encodeContext,
  getReplyOf,
  versionedFromReply,
} from '../wire/messages.js';
import type { StorageEngine } from './engine.js';

export const RECORD_FORMAT = 1;
export const RECORD_HEADER_BYTES = 2;
export const RecordFlag = { TOMBSTONE: 0x01 } as const;

export interface WriteResult {
  // The clock after the write, encoded as a client context.
  context: Uint8Array;
  // Whether the key had a live value before the write.
  existed: boolean;
}

interface PendingWrite {
  value: Versioned;
}

export class VersionedStore {
  // Writes whose records are not yet durable, by store key. A write reads the newest version of
  // its key from here first, because lmdb shows a record to readers only once it is committed.
  private readonly pending = new Map<string, PendingWrite>();
  // One reusable store-key buffer per key length, so a read builds its key without allocating.
  private readonly keyScratch: Buffer[] = [];
  private liveKeyCount = 0;

  constructor(
    readonly engine: StorageEngine,
    readonly nodeId: string,
    private readonly wallClockMs: () => number,
  ) {
    for (const [, record] of engine.records()) {
      if ((record[1]! & RecordFlag.TOMBSTONE) === 0) this.liveKeyCount++;
    }
  }

  get liveKeys(): number {
    return this.liveKeyCount;
  }

  get pendingWrites(): number {
    return this.pending.size;
  }

  // The store key of `bytes[start, end)` in a scratch buffer owned by the store: valid until the
  // next call.
  private storeKey(bytes: Uint8Array, start: number, end: number): Buffer {
    const keyBytes = end - start;
    let key = this.keyScratch[keyBytes];
    if (key === undefined) {
      key = Buffer.allocUnsafe(TOKEN_BYTES + keyBytes);
      this.keyScratch[keyBytes] = key;
    }
    writeToken(bytes, start, end, key, 0);
    for (let i = 0; i < keyBytes; i++) key[TOKEN_BYTES + i] = bytes[start + i]!;
    return key;
  }

  // Reads see what is durable: a write is visible once it is acknowledged. (RESP keeps a
  // connection's reads behind its own earlier writes; see resp-session.ts.)
  // The committed record of `bytes[start, end)`, in a buffer shared with the engine (valid until
  // the next store call), or undefined. This is the GET hot path: it allocates nothing.
  readRecord(bytes: Uint8Array, start: number, end: number): Buffer | undefined {
    return this.engine.getRecord(this.storeKey(bytes, start, end));
  }

  read(key: Uint8Array): Versioned | undefined {
    const record = this.readRecord(key, 0, key.length);
    return record === undefined ? undefined : decodeRecord(copyRecord(record));
  }

  // Whether the key has a live value that is durable.
  exists(key: Uint8Array): boolean {
    const record = this.readRecord(key, 0, key.length);
    return record !== undefined && !recordIsTombstone(record);
  }

  private newest(storeKey: Buffer, name: string): Versioned | undefined {
    const pending = this.pending.get(name);
    if (pending !== undefined) return pending.value;
    const record = this.engine.getRecord(storeKey);
    return record === undefined ? undefined : decodeRecord(copyRecord(record));
  }

  // Writes `value` (null deletes) with the client's context; resolves when durable.
  async write(key: Uint8Array, value: Uint8Array | null, context: Clock | undefined): Promise<WriteResult> {
    const storeKey = Buffer.from(this.storeKey(key, 0, key.length));
    const name = storeKey.toString('latin1');
    const current = this.newest(storeKey, name);
    // The value may lie in a connection's reusable buffer: the pending map keeps its own copy.
    const owned = value === null ? null : Uint8Array.prototype.slice.call(value);
    const next = writeVersion(current, context, this.nodeId, this.wallClockMs(), owned);
    const existed = current !== undefined && !isTombstone(current);
    const live = !isTombstone(next);
    const entry: PendingWrite = { value: next };
    this.pending.set(name, entry);
    try {
      await this.engine.putRecord(storeKey, encodeRecord(next));
      // Counted once durable, like everything a reader sees. Deltas of one key's writes add up
      // to the right total whatever order their flushes resolve in.
      this.liveKeyCount += Number(live) - Number(existed);
    } catch (error) {
      throw new DkvError('STORAGE_FAILED', `write failed: ${(error as Error).message}`, { cause: error });
    } finally {
      if (this.pending.get(name) === entry) this.pending.delete(name);
    }
    return { context: encodeContext(next.clock), existed };
  }
}

export function encodeRecord(value: Versioned): Buffer {
  const body = encodeBodyShared(getReplyOf(value));
  const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + body.length);
  record[0] = RECORD_FORMAT;
  record[1] = isTombstone(value) ? RecordFlag.TOMBSTONE : 0;
  record.set(body, RECORD_HEADER_BYTES);
  return record;
}

export function decodeRecord(record: Buffer): Versioned {
  if (record.length < RECORD_HEADER_BYTES || record[0] !== RECORD_FORMAT) {
    throw new DkvError('STORAGE_FAILED', `record format ${record[0]} is unknown`);
  }
  return versionedFromReply(decodeGetReply(decodeBody(record, RECORD_HEADER_BYTES, record.length)));
}

// A record of its own. lmdb's shared read buffer reports the record's size as `length` but is
// larger underneath (Buffer.from, subarray() and copy() from offset 0 see all of it), so copy
// through a view with explicit bounds.
export function copyRecord(record: Buffer, start = 0): Buffer {
  return Buffer.from(new Uint8Array(record.buffer, record.byteOffset + start, record.length - start));
}

export function recordIsTombstone(record: Uint8Array): boolean {
  return (record[1]! & RecordFlag.TOMBSTONE) !== 0;
}
