import type { StorageEngine } from './engine.js';

const DONE: Promise<void> = Promise.resolve();

// Records in memory, for the simulator and `--storage memory`. Nothing survives the process.
export class MemoryEngine implements StorageEngine {
  readonly kind = 'memory' as const;
  private readonly data = new Map<string, Buffer>();
  private readonly meta = new Map<string, string>();
  private readonly hintMap = new Map<string, Buffer>();

  getRecord(key: Uint8Array): Buffer | undefined {
    return this.data.get(latin1(key));
  }

  putRecord(key: Uint8Array, record: Uint8Array): Promise<unknown> {
    this.data.set(latin1(key), Buffer.from(record));
    return DONE;
  }

  flushed(): Promise<void> {
    return Promise.resolve();
  }

  *records(): Iterable<[Buffer, Buffer]> {
    const keys = [...this.data.keys()].sort();
    for (const key of keys) yield [Buffer.from(key, 'latin1'), Buffer.from(this.data.get(key)!)];
  }

  getHint(key: Uint8Array): Buffer | undefined {
    const value = this.hintMap.get(latin1(key));
    return value === undefined ? undefined : Buffer.from(value);
  }

  putHint(key: Uint8Array, value: Uint8Array): Promise<void> {
    this.hintMap.set(latin1(key), Buffer.from(value));
    return DONE;
  }

  deleteHint(key: Uint8Array): Promise<void> {
    this.hintMap.delete(latin1(key));
    return DONE;
  }

  *hints(): Iterable<[Buffer, Buffer]> {
    const keys = [...this.hintMap.keys()].sort();
    for (const key of keys) yield [Buffer.from(key, 'latin1'), Buffer.from(this.hintMap.get(key)!)];
  }

  getMeta(name: string): string | undefined {
    return this.meta.get(name);
  }

  putMeta(name: string, value: string): Promise<void> {
    this.meta.set(name, value);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function latin1(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');
}
