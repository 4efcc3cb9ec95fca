// Virtual time for the simulator, and the two priority queues that drive it. Pure.
//
// Nothing here knows what an event means. `EventHeap` orders one-off events (a packet arriving,
// a push-pull exchange, a scenario's action) by (time, order of scheduling), so two events at
// the same virtual millisecond run in the order they were scheduled and a run replays exactly.
// `TimerHeap` keeps one deadline per node (the node's next `tick`) and moves it in place when
// the node's core reports a new deadline, so a node never has stale entries piling up.
// Both are binary heaps over typed arrays: ten thousand nodes and their packets in flight cost
// no per-event objects.

import { assert } from '../lib/assert.js';

export class SimClock {
  private current = 0;

  get nowMs(): number {
    return this.current;
  }

  advanceTo(timeMs: number): void {
    assert(timeMs >= this.current, 'virtual time never runs backwards');
    this.current = timeMs;
  }
}

// A min-heap of (timeMs, seq) → handle, where handle is a small integer the caller maps to its
// event (a slot in its own arrays).
export class EventHeap {
  private times: Float64Array;
  private seqs: Float64Array;
  private handles: Int32Array;
  private count = 0;
  private seq = 0;

  constructor(capacity = 1024) {
    assert(capacity >= 1, 'heap capacity is positive');
    this.times = new Float64Array(capacity);
    this.seqs = new Float64Array(capacity);
    this.handles = new Int32Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  // Infinity when empty.
  peekTimeMs(): number {
    return this.count === 0 ? Infinity : this.times[0]!;
  }

  push(timeMs: number, handle: number): void {
    assert(timeMs === timeMs && timeMs < Infinity, 'event time is a finite number');
    if (this.count === this.times.length) this.grow();
    const times = this.times;
    const seqs = this.seqs;
    const handles = this.handles;
    const seq = this.seq++;
    let at = this.count++;
    // Sift up: move parents down until the new entry's place is found.
    while (at > 0) {
      const parent = (at - 1) >> 1;
      const pt = times[parent]!;
      if (pt < timeMs || (pt === timeMs && seqs[parent]! < seq)) break;
      times[at] = pt;
      seqs[at] = seqs[parent]!;
      handles[at] = handles[parent]!;
      at = parent;
    }
    times[at] = timeMs;
    seqs[at] = seq;
    handles[at] = handle;
  }

  // Removes the earliest entry and returns its handle.
  pop(): number {
    assert(this.count > 0, 'pop from a non-empty heap');
    const times = this.times;
    const seqs = this.seqs;
    const handles = this.handles;
    const top = handles[0]!;
    const last = --this.count;
    if (last === 0) return top;
    const t = times[last]!;
    const s = seqs[last]!;
    const h = handles[last]!;
    let at = 0;
    const half = last >> 1;
    while (at < half) {
      let child = 2 * at + 1;
      const right = child + 1;
      if (right < last && (times[right]! < times[child]! || (times[right] === times[child] && seqs[right]! < seqs[child]!))) {
        child = right;
      }
      const ct = times[child]!;
      if (t < ct || (t === ct && s < seqs[child]!)) break;
      times[at] = ct;
      seqs[at] = seqs[child]!;
      handles[at] = handles[child]!;
      at = child;
    }
    times[at] = t;
    seqs[at] = s;
    handles[at] = h;
    return top;
  }

  private grow(): void {
    const capacity = this.times.length * 2;
    const times = new Float64Array(capacity);
    times.set(this.times);
    this.times = times;
    const seqs = new Float64Array(capacity);
    seqs.set(this.seqs);
    this.seqs = seqs;
    const handles = new Int32Array(capacity);
    handles.set(this.handles);
    this.handles = handles;
  }
}

// A min-heap of deadlines keyed by node index, at most one per node. Ties go to the lower index,
// so the order never depends on the heap's history.
export class TimerHeap {
  private times: Float64Array;
  private keys: Int32Array;
  // Where each key sits in the heap, or -1.
  private positions: Int32Array;
  private count = 0;

  constructor(keysMax: number) {
    assert(keysMax >= 1, 'timer heap holds at least one key');
    this.times = new Float64Array(keysMax);
    this.keys = new Int32Array(keysMax);
    this.positions = new Int32Array(keysMax).fill(-1);
  }

  get size(): number {
    return this.count;
  }

  peekTimeMs(): number {
    return this.count === 0 ? Infinity : this.times[0]!;
  }

  peekKey(): number {
    assert(this.count > 0, 'peek into a non-empty heap');
    return this.keys[0]!;
  }

  timeOf(key: number): number {
    const at = this.positions[key]!;
    return at < 0 ? Infinity : this.times[at]!;
  }

  // Sets key's deadline; Infinity removes it.
  set(key: number, timeMs: number): void {
    assert(key >= 0 && key < this.positions.length, 'timer key in range');
    assert(timeMs === timeMs, 'timer deadline is a number');
    const at = this.positions[key]!;
    if (timeMs === Infinity) {
      if (at >= 0) this.removeAt(at);
      return;
    }
    if (at < 0) {
      const end = this.count++;
      this.place(end, timeMs, key);
      this.siftUp(end);
      return;
    }
    const old = this.times[at]!;
    if (old === timeMs) return;
    this.times[at] = timeMs;
    if (timeMs < old) this.siftUp(at);
    else this.siftDown(at);
  }

  private removeAt(at: number): void {
    const key = this.keys[at]!;
    this.positions[key] = -1;
    const last = --this.count;
    if (at === last) return;
    this.place(at, this.times[last]!, this.keys[last]!);
    // The moved entry goes up or down, never both.
    if (at > 0 && this.less(at, (at - 1) >> 1)) this.siftUp(at);
    else this.siftDown(at);
  }

  private place(at: number, timeMs: number, key: number): void {
    this.times[at] = timeMs;
    this.keys[at] = key;
    this.positions[key] = at;
  }

  private less(a: number, b: number): boolean {
    const ta = this.times[a]!;
    const tb = this.times[b]!;
    return ta < tb || (ta === tb && this.keys[a]! < this.keys[b]!);
  }

  private swap(a: number, b: number): void {
    const ta = this.times[a]!;
    const ka = this.keys[a]!;
    this.place(a, this.times[b]!, this.keys[b]!);
    this.place(b, ta, ka);
  }

  private siftUp(at: number): void {
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (!this.less(at, parent)) return;
      this.swap(at, parent);
      at = parent;
    }
  }

  private siftDown(at: number): void {
    const count = this.count;
    for (;;) {
      const left = 2 * at + 1;
      if (left >= count) return;
      const right = left + 1;
      const child = right < count && this.less(right, left) ? right : left;
      if (!this.less(child, at)) return;
      this.swap(at, child);
      at = child;
    }
  }
}
