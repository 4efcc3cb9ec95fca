// Counting a request's replica answers against its R or W. Pure.

import { assert } from '../lib/assert.js';
import { DkvError } from '../lib/errors.js';

export type QuorumState = 'waiting' | 'met' | 'failed';

export class QuorumCount {
  answered = 0;
  failed = 0;

  // `candidates`: how many replicas can still be asked in all (a failed one may be replaced by
  // a fallback: the caller raises `candidates` when it adds one).
  constructor(
    readonly needed: number,
    public candidates: number,
  ) {
    assert(needed >= 1, 'a quorum needs at least one answer');
  }

  get state(): QuorumState {
    if (this.answered >= this.needed) return 'met';
    if (this.candidates - this.failed < this.needed) return 'failed';
    return 'waiting';
  }

  succeed(): QuorumState {
    this.answered++;
    return this.state;
  }

  fail(): QuorumState {
    this.failed++;
    return this.state;
  }

  // The error for a request that ends without its quorum: replicas failed, or time ran out.
  error(what: string, timedOut: boolean, timeoutMs: number): DkvError {
    const details = { answered: this.answered, needed: this.needed };
    if (timedOut) {
      return new DkvError(
        'REPLICA_TIMEOUT',
        `${what}: ${this.answered} of ${this.needed} replicas answered within ${timeoutMs} ms`,
        { details },
      );
    }
    return new DkvError('QUORUM_FAILED', `${what}: ${this.answered} of ${this.needed} replicas answered; the others failed or are down`, {
      details,
    });
  }
}
