// One node per data directory. A second dkvd on the same directory would interleave its
// write-ahead log with the first one's, and replay and delete segments the first is still
// writing. The lock is a file holding the owner's pid, created exclusively; a lock whose pid no
// longer runs (a node killed with SIGKILL) is stale and taken over.

import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DkvError } from '../lib/errors.js';

const LOCK_FILE = 'dkvd.pid';

export class DirectoryLock {
  private constructor(private readonly path: string) {}

  static acquire(directory: string): DirectoryLock {
    const path = join(directory, LOCK_FILE);
    // Two attempts: the second after removing a stale lock. If another starter took it between
    // the two, the exclusive create fails and the live owner is named.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx');
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        return new DirectoryLock(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = Number.parseInt(readOwner(path), 10);
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isRunning(owner)) {
        throw new DkvError(
          'STORAGE_FAILED',
          `data directory ${directory} is in use by process ${owner}; if no dkvd runs there, remove ${path}`,
        );
      }
      removeIfPresent(path);
    }
    throw new DkvError('STORAGE_FAILED', `cannot lock data directory ${directory}`);
  }

  release(): void {
    if (readOwner(this.path).trim() === String(process.pid)) removeIfPresent(this.path);
  }
}

function readOwner(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function removeIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
