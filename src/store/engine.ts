// The storage engine interface: an ordered map of binary keys to binary records, plus a few
// named metadata strings. Keys are `token (6 bytes, big-endian) ‖ user key`, so one token range
// is one ordered scan. lmdb-engine.ts keeps them on disk; memory-engine.ts in memory.

export interface StorageEngine {
  readonly kind: 'lmdb' | 'memory';
  // The record under `key`, or undefined. The buffer may be shared by the engine and is valid
  // only until the engine's next call: copy what must outlive it.
  getRecord(key: Uint8Array): Buffer | undefined;
  // Resolves once the record is committed: readers see it. Concurrent calls share one
  // transaction. Durability is the write-ahead log's business (wal.ts), or flushed()'s.
  putRecord(key: Uint8Array, record: Uint8Array): Promise<unknown>;
  // Resolves once everything committed so far, and every put already made, is on disk.
  flushed(): Promise<void>;
  // Every record in key order; the buffers are copies.
  records(): Iterable<[key: Buffer, record: Buffer]>;
  // Hinted handoff: versions held for a replica that was down, until it is back. Each hint is
  // durable once putHint resolves; a deleted hint may come back after a crash (delivering it
  // twice is harmless: replicas merge).
  getHint(key: Uint8Array): Buffer | undefined;
  putHint(key: Uint8Array, value: Uint8Array): Promise<void>;
  deleteHint(key: Uint8Array): Promise<void>;
  // Every hint in key order; the buffers are copies.
  hints(): Iterable<[key: Buffer, value: Buffer]>;
  getMeta(name: string): string | undefined;
  // Resolves once the value is on disk.
  putMeta(name: string, value: string): Promise<void>;
  close(): Promise<void>;
}
