// Versioned key-value storage on one node: places keys by token, keeps a dotted version vector
// set per key, and acknowledges a write once the write-ahead log has it on disk (or, without a
// log, once the engine has committed it).
//
// A record on disk is
//   u8 format (1) ‖ u8 flags (bit 0: tombstone) ‖ msgpack GET reply body
// so a native GET copies the body from the engine straight into its reply frame.

import { assert } from '../lib/assert.js';
import { DkvError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { TOKEN_BYTES, tokenHigh32, writeToken } from '../ring/token.js';
import { FRAME_HEADER_BYTES } from '../wire/codes.js';
import { isTombstone, mergeVersions, supersedes, writeVersion, type Clock, type Versioned } from '../version/dvv.js';
import {
  decodeBody,
  decodeGetReply,
  encodeBodyShared,
  encodeContext,
  getReplyOf,
  versionedFromReply,
} from '../wire/messages.js';
import { VersionsScan } from '../wire/versions-scan.js';
import type { StorageEngine } from './engine.js';
import { overwrite } from './overwrite.js';
import { PendingWrites } from './pending-writes.js';
import type { RecordCache, RecordCacheStats } from './record-cache.js';
import type { WalStats, WriteAheadLog } from './wal.js';

export const RECORD_FORMAT = 1;
export const RECORD_HEADER_BYTES = 2;
export const RecordFlag = { TOMBSTONE: 0x01 } as const;
// What the read cache files for a key that has no record at all: every record is longer. A
// read of a key never written then stops at the cache instead of walking lmdb's B-tree to find
// nothing (redis-benchmark's keys after vs-redis.sh's SET pass: 5% of GETs, and 5% of
// dkvd's time at pipeline 16, perf).
const NO_RECORD = Buffer.alloc(0);

// Finds the keys of the requests at the start of `bytes`, for prefetchReads.
export type KeyFinder = (bytes: Uint8Array, starts: Int32Array, ends: Int32Array, writes: Uint8Array) => number;

export interface LocalWrite {
  // The key's record after the write (format byte, flags, GET reply body).
  record: Buffer;
  result: WriteResult;
  durable: Promise<void>;
}

export interface WriteResult {
  // The clock after the write, encoded as a client context.
  context: Uint8Array;
  // Whether the key had a live value before the write.
  existed: boolean;
}

export class VersionedStore {
  // Writes not yet committed to the engine, by store key. The log makes a write durable
  // before the engine commits it, so until the commit, reads and later writes of the key find
  // it here.
  private readonly pending = new PendingWrites();
  private readonly nodeIdBytes: Buffer;
  // One reusable store-key buffer per key length, so a read builds its key without allocating.
  private readonly keyScratch: Buffer[] = [];
  private liveKeyCount = 0;
  // prefetchReads()'s keys, whether each is written, and their tags.
  private readonly prefetchStarts = new Int32Array(limits.readPrefetchKeysMax);
  private readonly prefetchEnds = new Int32Array(limits.readPrefetchKeysMax);
  private readonly prefetchTags = new Int32Array(limits.readPrefetchKeysMax);
  private readonly prefetchWrites = new Uint8Array(limits.readPrefetchKeysMax);
  private readonly prefetchWriteTags = new Int32Array(limits.readPrefetchKeysMax);
  // mergeInPlace()'s readings of the incoming and the current versions.
  private readonly incomingScan = new VersionsScan();
  private readonly currentScan = new VersionsScan();
  // Set when the engine failed to commit: what it holds is behind the log from then on, so the
  // store refuses writes (the log replays them at the next start).
  private failure: Error | null = null;
  // Where the pending writes not yet handed to the engine (the open batch) start, and how many
  // keys they are. With the log making writes durable, the engine gets them in batches (every
  // storeCommitDelayMs, or once storeCommitBatchMax keys or storeCommitBatchBytesMax bytes wait):
  // a key written often is rewritten on disk once per batch, and a batch rewrites each B-tree
  // page it touches once.
  private openStart = 0;
  private uncommittedKeys = 0;
  private uncommittedBytes = 0;
  private commitTimer: NodeJS.Timeout | null = null;
  // Settles once every commit started so far has; and who waits for the next commit to settle.
  private committed: Promise<void> = Promise.resolve();
  private commitsInFlight = 0;
  // Writes whose log appends wait for commits to free memory (persist()).
  private appendsWaiting = 0;
  private commitWaiters: Array<() => void> = [];

  constructor(
    readonly engine: StorageEngine,
    readonly nodeId: string,
    private readonly wallClockMs: () => number,
    // Where writes become durable; null for an engine that keeps nothing (memory).
    private readonly wal: WriteAheadLog | null,
    // Records read often, in front of the engine; null for none.
    private readonly cache: RecordCache | null = null,
  ) {
    this.nodeIdBytes = Buffer.from(nodeId);
    for (const [, record] of engine.records()) {
      if ((record[1]! & RecordFlag.TOMBSTONE) === 0) this.liveKeyCount++;
    }
    // A log segment may go only once the engine holds its writes on disk. Those that still wait
    // here go with the next commit (at most storeCommitDelayMs away), not with one forced now: a
    // forced commit is a smaller batch, so more B-tree pages rewritten per write (1M SETs at
    // pipeline 16 on 100k keys made 22-23 commits with forcing, 16 without, before batches
    // counted keys). A failed commit keeps the segment.
    wal?.useCheckpoint(async () => {
      await (this.openStart === this.pending.end ? this.committed : new Promise<void>((resolve) => this.commitWaiters.push(resolve)));
      this.checkHealthy();
      await engine.flushed();
    });
  }

  get liveKeys(): number {
    return this.liveKeyCount;
  }

  // Keys with a write not yet committed to the engine, and the memory those writes take.
  get pendingWrites(): number {
    return this.pending.size;
  }

  get pendingBytes(): number {
    return this.pending.bytes;
  }

  // Transactions handed to the engine, and the writes they carried.
  commits = 0;
  committedWrites = 0;

  // The read cache's counters, when there is a cache.
  get cacheStats(): RecordCacheStats | null {
    return this.cache?.stats ?? null;
  }

  // The log's counters, when there is a log.
  get walStats(): WalStats | null {
    return this.wal?.stats ?? null;
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

  // The newest record of `bytes[start, end)`, or undefined: the cache's, else a pending write's,
  // else the engine's (which the cache then keeps, as it keeps that there is none); in a buffer
  // the cache or engine shares (valid until the next store call) when it is not a pending
  // write's. The cache goes first because whatever it holds for a key is the key's newest record
  // (every write files its record there, and a read files one only when no write of the key is
  // pending): a read of a key written in the last second then skips the pending index, whose
  // lookup misses the processor's caches at every step (redis-benchmark GETs at pipeline 16
  // right after 100k SETs: 463k/s with the pending index first, 571-610k/s with the cache
  // first). This is the GET hot path: with no write in flight it allocates nothing. A read may
  // see a write that is still in flight; it always sees every acknowledged one.
  readRecord(bytes: Uint8Array, start: number, end: number): Buffer | undefined {
    const key = this.storeKey(bytes, start, end);
    const cache = this.cache;
    if (cache !== null) {
      const cached = cache.get(key);
      if (cached !== undefined) return cached.length === 0 ? undefined : cached;
    }
    if (this.pending.size > 0) {
      const position = this.pending.find(key, 0, key.length);
      if (position >= 0) return this.pending.record(position);
    }
    const record = this.engine.getRecord(key);
    cache?.put(key, record ?? NO_RECORD);
    return record;
  }

  // Warms the memory that the requests whose keys `findKeys` finds in `bytes` will touch, all
  // at once: for a pipeline of requests that arrived together. `findKeys` writes key i's span to
  // starts[i], ends[i], and 1 to writes[i] for a key the request writes (0 for a read), and
  // returns how many it found (at most starts.length), as leadingKeys (RESP) and getFrameKeys
  // (native frames) do. Every key's read goes to the cache (RecordCache.prefetch); a write also
  // files itself in the pending index (PendingWrites.prefetch), which reads mostly skip. A hint
  // only; without a read cache, nothing is scanned.
  prefetchReads(bytes: Uint8Array, findKeys: KeyFinder): void {
    const cache = this.cache;
    if (cache === null) return;
    const starts = this.prefetchStarts;
    const ends = this.prefetchEnds;
    const writes = this.prefetchWrites;
    const count = findKeys(bytes, starts, ends, writes);
    if (count < 2) return;
    const tags = this.prefetchTags;
    const writeTags = this.prefetchWriteTags;
    let written = 0;
    for (let i = 0; i < count; i++) {
      const tag = tokenHigh32(bytes, starts[i]!, ends[i]!);
      tags[i] = tag;
      if (writes[i] === 1) writeTags[written++] = tag;
    }
    cache.prefetch(tags, count);
    if (written > 0 && this.pending.size > 0) this.pending.prefetch(writeTags, written);
  }

  read(key: Uint8Array): Versioned | undefined {
    const record = this.readRecord(key, 0, key.length);
    return record === undefined ? undefined : decodeRecord(copyRecord(record));
  }

  exists(key: Uint8Array): boolean {
    const record = this.readRecord(key, 0, key.length);
    return record !== undefined && !recordIsTombstone(record);
  }

  // Writes `value` (null deletes) with the client's context; resolves when durable.
  write(key: Uint8Array, value: Uint8Array | null, context: Clock | undefined): Promise<WriteResult> {
    try {
      const local = this.writeLocal(key, value, context);
      return local.durable.then(() => local.result);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  // A write whose writer needs to know only when it is durable (a RESP SET on a lone node):
  // writeLocal() without the objects of its result, nor the view of the new context.
  writeDurable(key: Uint8Array, value: Uint8Array | null): Promise<void> {
    this.checkHealthy();
    const storeKey = this.storeKey(key, 0, key.length);
    const fast = overwrite(this.currentRecord(storeKey), this.nodeIdBytes, this.wallClockMs(), value);
    if (fast === undefined) return this.writeLocal(key, value, undefined).durable;
    return this.persist(storeKey, fast.record, Number(value !== null) - Number(fast.existed));
  }

  // A write as a coordinator makes it: the new record at once (to send to the other replicas
  // while this one syncs), and a promise that resolves once it is durable here.
  writeLocal(key: Uint8Array, value: Uint8Array | null, context: Clock | undefined): LocalWrite {
    this.checkHealthy();
    const storeKey = this.storeKey(key, 0, key.length);
    const currentRecord = this.currentRecord(storeKey);
    const tsMs = this.wallClockMs();
    let record: Buffer;
    let existed: boolean;
    let live: boolean;
    let nextContext: Uint8Array;
    const fast = context === undefined ? overwrite(currentRecord, this.nodeIdBytes, tsMs, value) : undefined;
    if (fast !== undefined) {
      record = fast.record;
      existed = fast.existed;
      live = value !== null;
      nextContext = record.subarray(fast.contextStart, fast.contextEnd);
    } else {
      const current = currentRecord === undefined ? undefined : decodeRecord(copyRecord(currentRecord));
      // The value may lie in a connection's reusable buffer: the record keeps its own copy.
      const owned = value === null ? null : Uint8Array.prototype.slice.call(value);
      const next = writeVersion(current, context, this.nodeId, tsMs, owned);
      record = encodeRecord(next);
      existed = current !== undefined && !isTombstone(current);
      live = !isTombstone(next);
      nextContext = encodeContext(next.clock);
      // A GET must be able to answer with every sibling in one frame.
      if (record.length - RECORD_HEADER_BYTES > limits.frameBytesMax - FRAME_HEADER_BYTES) {
        throw new DkvError(
          'VALUE_TOO_LARGE',
          `the key's versions would take ${record.length} bytes together, more than one reply can carry; write with the context of a read to resolve its siblings`,
        );
      }
    }
    return {
      record,
      result: { context: nextContext, existed },
      durable: this.persist(storeKey, record, Number(live) - Number(existed)),
    };
  }

  // Merges versions another replica holds (replication, hinted handoff, read repair) into this
  // key's; resolves once the result is durable. Never makes a new dot. `incomingBody`, the
  // versions' GET reply body if the caller has it, is stored as it is when the incoming
  // versions supersede this node's (no re-encoding).
  async merge(key: Uint8Array, incoming: Versioned, incomingBody?: Uint8Array): Promise<void> {
    this.checkHealthy();
    const storeKey = this.storeKey(key, 0, key.length);
    const currentRecord = this.currentRecord(storeKey);
    const current = currentRecord === undefined ? undefined : decodeRecord(copyRecord(currentRecord));
    const existed = current !== undefined && !isTombstone(current);
    let record: Buffer;
    let live: boolean;
    if (incomingBody !== undefined && (current === undefined || supersedes(incoming, current))) {
      live = !isTombstone(incoming);
      record = recordOfBody(incomingBody, 0, incomingBody.length, live);
    } else {
      const merged = mergeVersions(current, incoming)!;
      live = !isTombstone(merged);
      record = encodeRecord(merged);
    }
    await this.persist(storeKey, record, Number(live) - Number(existed));
  }

  // merge() for the usual case, without decoding: the versions body bytes[start, end) (a GET reply
  // body, as REPLICA_PUT carries it) supersedes what this node holds for the key bytes[keyStart,
  // keyEnd) of the same request, or it holds nothing. Then the body becomes the key's record as it is, and the
  // promise resolves once that is durable. Returns undefined, having changed nothing, for any
  // other case (siblings to merge, a layout VersionsScan does not read): the caller decodes and
  // calls merge(). Decoding both sides was most of a replica's work per write.
  mergeInPlace(bytes: Uint8Array, keyStart: number, keyEnd: number, start: number, end: number): Promise<void> | undefined {
    this.checkHealthy();
    const incoming = this.incomingScan;
    if (!incoming.scan(bytes, start, end)) return undefined;
    const storeKey = this.storeKey(bytes, keyStart, keyEnd);
    const current = this.currentRecord(storeKey);
    if (current !== undefined) {
      if (current[0] !== RECORD_FORMAT || !this.currentScan.scan(current, RECORD_HEADER_BYTES, current.length)) return undefined;
      if (!incoming.supersedes(this.currentScan)) return undefined;
    }
    const existed = current !== undefined && !recordIsTombstone(current);
    const record = recordOfBody(bytes, start, end, incoming.live);
    return this.persist(storeKey, record, Number(incoming.live) - Number(existed));
  }

  // The record a write builds on: as readRecord finds it, except that a miss does not fill the
  // cache (the write files its own record there at once).
  private currentRecord(storeKey: Buffer): Buffer | undefined {
    const cached = this.cache?.get(storeKey);
    if (cached !== undefined) return cached.length === 0 ? undefined : cached;
    const position = this.pending.find(storeKey, 0, storeKey.length);
    return position < 0 ? this.engine.getRecord(storeKey) : this.pending.record(position);
  }

  private checkHealthy(): void {
    if (this.failure !== null) {
      throw new DkvError('STORAGE_FAILED', `storage failed earlier: ${this.failure.message}`, { cause: this.failure });
    }
  }

  // Makes `record` the key's newest, counts the live-key delta (deltas of one key's writes add up
  // to the right total in the order they are made), and returns a promise that resolves once
  // the record is durable. Writes of one log batch share that promise: no async function and no
  // promise of its own per write (together 900 bytes of heap per RESP SET, measured). The key
  // and record are copied at once, into the write's log entry among the pending writes.
  private persist(storeKey: Uint8Array, record: Buffer, liveDelta: number): Promise<void> {
    assert(record[0] === RECORD_FORMAT, 'a record starts with its format');
    const pending = this.pending;
    const position = pending.append(storeKey, record);
    // Reads find the write in the cache, or among the pending ones until the engine has it.
    this.cache?.put(storeKey, record);
    this.liveKeyCount += liveDelta;
    const wal = this.wal;
    if (wal === null) return this.commitRange(position, pending.end);
    // A rewrite of a key the open batch holds costs the batch no key: the engine gets the newest.
    if (pending.replaced < this.openStart) this.uncommittedKeys++;
    const chunk = pending.lastChunk;
    const start = pending.lastStart;
    const end = pending.lastEnd;
    this.uncommittedBytes += end - start;
    // Past a bound of keys or bytes waiting for the engine, writers wait for the commits under way
    // (starting one if there is none), and so does every writer after them until they are done:
    // the log must have a key's writes in the order they were made, or a replay would end on an
    // older one. A batch of storeCommitBatchMax keys or storeCommitBatchBytesMax bytes goes to
    // the engine at once.
    if (this.appendsWaiting > 0 || pending.size >= limits.storePendingWritesMax || pending.bytes >= limits.storePendingBytesMax) {
      if (this.commitsInFlight === 0) void this.commitPending();
      this.appendsWaiting++;
      return this.committed.then(() => {
        this.appendsWaiting--;
        return wal.appendBytes(chunk, start, end);
      });
    }
    if (this.uncommittedKeys >= limits.storeCommitBatchMax || this.uncommittedBytes >= limits.storeCommitBatchBytesMax) {
      void this.commitPending();
    } else this.commitTimer ??= setTimeout(this.commitPending, limits.storeCommitDelayMs);
    return wal.appendBytes(chunk, start, end);
  }

  // Hands the engine every write it does not have yet, in one transaction.
  private readonly commitPending = (): Promise<void> => {
    if (this.commitTimer !== null) clearTimeout(this.commitTimer);
    this.commitTimer = null;
    const start = this.openStart;
    this.openStart = this.pending.end;
    this.uncommittedKeys = 0;
    this.uncommittedBytes = 0;
    const done = this.commitRange(start, this.openStart);
    const waiters = this.commitWaiters;
    this.commitWaiters = [];
    if (waiters.length > 0) void this.committed.then(() => waiters.forEach((resolve) => resolve()));
    return done.catch(() => undefined);
  };

  // commit() of the writes in [start, end); once it and every commit before it have settled,
  // and none failed, their memory goes.
  private commitRange(start: number, end: number): Promise<void> {
    this.commitsInFlight++;
    const done = this.commit(start, end);
    // Commits may overlap, and a later one may settle first.
    this.committed = Promise.all([this.committed, done.catch(() => undefined)]).then(() => {
      this.commitsInFlight--;
      if (this.failure === null) this.pending.release(end);
    });
    return done;
  }

  // Hands the engine the writes in [start, end) and, once they are committed, drops them from
  // the pending index. A key written again since is committed once, by its newest write (a newer
  // write that comes in while this runs is in the next batch). The puts go in slices, one
  // event-loop turn each: lmdb-js costs 1-3 µs of this thread per put, and a second's batch of a
  // busy node in one go held every request behind it for 2-6 ms (18,000 puts under a write
  // load: 30-86 ms).
  private async commit(start: number, end: number): Promise<void> {
    const pending = this.pending;
    const commits: Array<Promise<unknown>> = [];
    let last: Promise<unknown> | undefined;
    let puts = 0;
    let seen = 0;
    for (let at = pending.following(start); at < end; at = pending.next(at)) {
      if (++seen % limits.storeCommitSlice === 0) await new Promise(setImmediate);
      // Until this commit settles, its writes leave the index only when newer ones replace them.
      if (pending.wasReplaced(at)) continue;
      // lmdb answers every put of one transaction with the same promise. It reads the record
      // from the view when it writes the transaction: the pending write's memory stays until then.
      const committed = this.engine.putRecord(pending.key(at), pending.record(at));
      if (committed !== last) commits.push(committed);
      last = committed;
      puts++;
    }
    if (puts > 0) {
      this.commits++;
      this.committedWrites += puts;
    }
    try {
      await Promise.all(commits);
    } catch (error) {
      this.failure ??= error as Error;
      throw new DkvError('STORAGE_FAILED', `write failed: ${(error as Error).message}`, { cause: error });
    }
    // In slices too: dropping 60,000 entries in one go held requests up for 4-5 ms.
    seen = 0;
    for (let at = pending.following(start); at < end; at = pending.next(at)) {
      if (++seen % limits.storeCommitSlice === 0) await new Promise(setImmediate);
      pending.deleteIfNewest(at);
    }
  }

  // Commits every write that waits for the engine, now, and resolves once that commit and every
  // one before it have settled: what a clean stop does first (the log stays the durable copy
  // either way).
  async flush(): Promise<void> {
    void this.commitPending();
    await this.committed;
  }

}

// The record of versions whose GET reply body is bytes[start, end), stored as it is.
function recordOfBody(bytes: Uint8Array, start: number, end: number, live: boolean): Buffer {
  const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + end - start);
  record[0] = RECORD_FORMAT;
  record[1] = live ? 0 : RecordFlag.TOMBSTONE;
  record.set(bytes.subarray(start, end), RECORD_HEADER_BYTES);
  return record;
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
