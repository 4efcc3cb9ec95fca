import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import { DkvError } from '../lib/errors.js';
import { DirectoryLock } from './dir-lock.js';
import type { StorageEngine } from './engine.js';

// One lmdb environment per node: `data` holds the records, `meta` the node's identity and
// settings. lmdb-js commits the writes of one event turn in one transaction and resolves put()
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
  ) {}

  static open(directory: string): LmdbEngine {
    let lock: DirectoryLock | undefined;
    try {
      mkdirSync(directory, { recursive: true });
      lock = DirectoryLock.acquire(directory);
      const root = open({ path: directory, compression: false });
      const data = root.openDB<Buffer, Buffer>({ name: 'data', keyEncoding: 'binary', encoding: 'binary' });
      const meta = root.openDB<string, string>({ name: 'meta', encoding: 'string' });
      return new LmdbEngine(lock, root, data, meta);
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
