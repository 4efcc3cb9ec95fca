// Dotted version vectors (the DVV sets of Riak, simplified to one dot per sibling). Pure.
//
// A versioned value is a clock (for each node, the highest counter of its writes that this
// value has seen) and the siblings: concurrent values, each with the dot (node, counter) of the
// write that made it. A write through node `i` with a context C (a clock an earlier read
// returned) drops exactly the siblings C covers, keeps the rest as siblings, and adds the new
// value with dot (i, clock[i] + 1). A write without a context overwrites everything the node
// holds: its context is the current clock.

import { assert } from '../lib/assert.js';
import { DkvError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';

// Sorted by node id, one entry per node, counters ≥ 1.
export type Clock = ReadonlyArray<readonly [node: string, counter: number]>;

export interface Sibling {
  readonly node: string;
  readonly counter: number;
  // Wall-clock time of the write at its coordinator: only for choosing a deterministic winner
  // (RESP GET), never for causality.
  readonly tsMs: number;
  // null marks a deletion that is concurrent with a live sibling.
  readonly value: Uint8Array | null;
}

export interface Versioned {
  readonly clock: Clock;
  readonly siblings: readonly Sibling[];
}

export function counterOf(clock: Clock, node: string): number {
  for (const [id, counter] of clock) if (id === node) return counter;
  return 0;
}

export function covers(clock: Clock, node: string, counter: number): boolean {
  return counterOf(clock, node) >= counter;
}

// The pointwise maximum of two clocks.
export function joinClocks(a: Clock, b: Clock): Clock {
  const joined = new Map<string, number>(a);
  for (const [node, counter] of b) {
    if (counter > (joined.get(node) ?? 0)) joined.set(node, counter);
  }
  return [...joined.entries()].sort(byNode);
}

function byNode(a: readonly [string, number], b: readonly [string, number]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

export function writeVersion(
  current: Versioned | undefined,
  context: Clock | undefined,
  node: string,
  tsMs: number,
  value: Uint8Array | null,
): Versioned {
  const clock = current?.clock ?? [];
  const seen = context ?? clock;
  const counter = counterOf(clock, node) + 1;
  assert(Number.isSafeInteger(counter), 'a dot counter stays a safe integer');
  const siblings: Sibling[] = [];
  for (const sibling of current?.siblings ?? []) {
    if (!covers(seen, sibling.node, sibling.counter)) siblings.push(sibling);
  }
  // A deletion leaves a tombstone with its own dot, even beside other tombstones: a later write
  // whose context saw those but not this one must keep it as a concurrent deletion.
  siblings.push({ node, counter, tsMs, value });
  // Siblings in dot order, as merges leave them: replicas holding the same versions hold the
  // same bytes.
  siblings.sort(byDot);
  if (siblings.length > limits.siblingsMax) {
    throw new DkvError(
      'SIBLINGS_EXCEEDED',
      `key has ${siblings.length} concurrent versions (max ${limits.siblingsMax}); write with the context of a read to resolve them`,
    );
  }
  const nextClock = joinClocks(joinClocks(clock, seen), [[node, counter]]);
  return { clock: nextClock, siblings };
}

export function isTombstone(value: Versioned): boolean {
  return value.siblings.every((s) => s.value === null);
}

// One deterministic winner among live siblings: the latest timestamp, then the greater node
// id, then the greater counter. Every replica and client picks the same one.
export function winnerOf(value: Versioned): Sibling | undefined {
  let best: Sibling | undefined;
  for (const s of value.siblings) {
    if (s.value === null) continue;
    if (best === undefined || compareSiblings(s, best) > 0) best = s;
  }
  return best;
}

function compareSiblings(a: Sibling, b: Sibling): number {
  if (a.tsMs !== b.tsMs) return a.tsMs - b.tsMs;
  if (a.node !== b.node) return a.node < b.node ? -1 : 1;
  return a.counter - b.counter;
}

// The union of two replicas' versions of one key (DVV-set sync): a sibling survives unless the
// other side's clock has seen its dot and dropped it; the clocks join. Commutative, associative
// and idempotent, and it never makes a dot: replication, hinted handoff and read repair all merge
// with it. Concurrent deletions stay as separate nil siblings (collapsing them would break
// associativity); a later write with a context covers them all.
export function mergeVersions(a: Versioned | undefined, b: Versioned | undefined): Versioned | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  const siblings: Sibling[] = [];
  const keep = (mine: Versioned, theirs: Versioned): void => {
    for (const s of mine.siblings) {
      if (siblings.some((k) => k.node === s.node && k.counter === s.counter)) continue;
      const held = theirs.siblings.some((o) => o.node === s.node && o.counter === s.counter);
      if (held || !covers(theirs.clock, s.node, s.counter)) siblings.push(s);
    }
  };
  keep(a, b);
  keep(b, a);
  siblings.sort(byDot);
  return { clock: joinClocks(a.clock, b.clock), siblings };
}

// Whether mergeVersions(current, incoming) is just `incoming`: its clock has seen all of
// current's, and every sibling of current is one of incoming's or was dropped by it. The usual
// case when a replica receives the next write of a key.
export function supersedes(incoming: Versioned, current: Versioned): boolean {
  for (const [node, counter] of current.clock) if (counterOf(incoming.clock, node) < counter) return false;
  for (const s of current.siblings) {
    if (!covers(incoming.clock, s.node, s.counter)) return false;
  }
  return true;
}

// Two replicas hold the same versions: what a merge would not change.
export function sameVersions(a: Versioned | undefined, b: Versioned | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.clock.length !== b.clock.length || a.siblings.length !== b.siblings.length) return false;
  for (let i = 0; i < a.clock.length; i++) {
    if (a.clock[i]![0] !== b.clock[i]![0] || a.clock[i]![1] !== b.clock[i]![1]) return false;
  }
  const dots = new Set(a.siblings.map((s) => `${s.counter}:${s.node}`));
  return b.siblings.every((s) => dots.has(`${s.counter}:${s.node}`));
}

function byDot(a: Sibling, b: Sibling): number {
  return a.node < b.node ? -1 : a.node > b.node ? 1 : a.counter - b.counter;
}
