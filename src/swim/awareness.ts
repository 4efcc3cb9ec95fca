// Lifeguard's local health: a score that rises when this node shows signs of being the slow one
// (missed NACKs, suspicions it had to refute, a late event loop) and falls with each successful
// probe. Probe intervals and timeouts are multiplied by score + 1, so a struggling node probes
// less aggressively instead of accusing healthy peers. Pure.

import { assert } from '../lib/assert.js';

export class Awareness {
  private value = 0;

  constructor(readonly scoreMax: number) {
    assert(Number.isInteger(scoreMax) && scoreMax >= 1, 'awareness maximum is a positive integer');
  }

  get score(): number {
    return this.value;
  }

  apply(delta: number): void {
    const next = this.value + delta;
    this.value = next < 0 ? 0 : next > this.scoreMax - 1 ? this.scoreMax - 1 : next;
  }

  scaleMs(ms: number): number {
    return ms * (this.value + 1);
  }
}
