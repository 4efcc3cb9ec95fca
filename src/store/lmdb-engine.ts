import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import { DkvError } from '../lib/errors.js';
import { DirectoryLock } from './dir-lock.js';
import type { StorageEngine } from './engine.js';

// One lmdb environment per node: `data` holds the records, `meta` the node's identity and
// settings, `hints` the writes held for replicas that were down. lmdb-js commits the writes of one event turn in one transaction and resolves put()
// at commit; with overlappingSync (its default here) a commit is on disk only when the
// environment's `flushed` resolves. Records rely on the write-ahead log for durability and wait
// only for the commit; metadata waits for the flush.
export class LmdbEngine implements StorageEngine {
  readonly kind = 'lmdb' as const;

  private constructor(
    private readonly lock: DirectoryLock,
    private readonly root: RootDatabase,
    private readonly data: Database<Buffer, Buffer>,
    private readonly meta: Database<string, string>,
    private readonly hintDb: Database<Buffer, Buffer>,
  ) {}

  static open(directory: string): LmdbEngine {
    let lock: DirectoryLock | undefined;
    try {
      mkdirSync(directory, { recursive: true });
      lock = DirectoryLock.acquire(directory);
      const root = open({ path: directory, compression: false });
      const data = root.openDB<Buffer, Buffer>({ name: 'data', keyEncoding: 'binary', encoding: 'binary' });
      const meta = root.openDB<string, string>({ name: 'meta', encoding: 'string' });
      const hints = root.openDB<Buffer, Buffer>({ name: 'hints', keyEncoding: 'binary', encoding: 'binary' });
      return new LmdbEngine(lock, root, data, meta, hints);
    } catch (error) {
      lock?.release();
      if (error instanceof DkvError) throw error;
      throw new DkvError('STORAGE_FAILED', `cannot open data directory ${directory}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  getRecord(key: Uint8Array): Buffer | undefined {
    return this.data.getBinaryFast(key as Buffer);
  }

  putRecord(key: Uint8Array, record: Uint8Array): Promise<unknown> {
    return this.data.put(key as Buffer, record as Buffer);
  }

  async flushed(): Promise<void> {
    await this.root.flushed;
  }

  *records(): Iterable<[Buffer, Buffer]> {
    for (const { key, value } of this.data.getRange()) yield [Buffer.from(key), Buffer.from(value)];
  }

  getHint(key: Uint8Array): Buffer | undefined {
    const value = this.hintDb.get(key as Buffer);
    return value === undefined ? undefined : Buffer.from(value);
  }

  async putHint(key: Uint8Array, value: Uint8Array): Promise<void> {
    await this.hintDb.put(key as Buffer, value as Buffer);
    await this.root.flushed;
  }

  async deleteHint(key: Uint8Array): Promise<void> {
    await this.hintDb.remove(key as Buffer);
  }

  *hints(): Iterable<[Buffer, Buffer]> {
    for (const { key, value } of this.hintDb.getRange()) yield [Buffer.from(key), Buffer.from(value)];
  }

  getMeta(name: string): string | undefined {
    return this.meta.get(name);
  }

  async putMeta(name: string, value: string): Promise<void> {
    await this.meta.put(name, value);
    await this.root.flushed;
  }

  async close(): Promise<void> {
    await this.root.flushed;
    await this.root.close();
    this.lock.release();
  }
}
