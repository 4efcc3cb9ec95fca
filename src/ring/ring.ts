// The consistent-hash ring (protocol.md, "Ring"). Pure.
//
// Each member owns V virtual-node tokens: token_i = tokenOf(UTF-8 of `${id}#${i}`), i = 0..V−1.
// A key's preference list is the first N distinct members met walking clockwise from the key's
// token: starting at the first virtual node whose token is ≥ the key's token (wrapping past the
// largest to the smallest). Equal tokens (a 48-bit collision) are ordered by member id.
//
// Every node computes the same ring from the same member ids and V. Its checksum (a 32-bit
// MurmurHash3 of V and the sorted ids) names it in requests, so a peer or client with another
// ring learns it is stale.

import { assert } from '../lib/assert.js';
import { murmur3x86_32, TOKEN_SPACE, tokenOf } from './token.js';

export class Ring {
  // Member ids, sorted; owners[] below index into this array.
  readonly members: readonly string[];
  // Virtual-node tokens in ascending order, and the member index owning each.
  readonly tokens: Float64Array;
  readonly owners: Int32Array;
  readonly checksum: number;

  constructor(
    memberIds: Iterable<string>,
    readonly vnodes: number,
  ) {
    assert(Number.isInteger(vnodes) && vnodes >= 1, 'at least one virtual node per member');
    const members = [...new Set(memberIds)].sort();
    this.members = members;
    const count = members.length * vnodes;
    const entries: Array<[number, number]> = new Array(count);
    for (let m = 0; m < members.length; m++) {
      for (let i = 0; i < vnodes; i++) entries[m * vnodes + i] = [vnodeToken(members[m]!, i), m];
    }
    // Members are sorted, so ordering ties by member index orders them by id.
    entries.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.tokens = new Float64Array(count);
    this.owners = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      this.tokens[i] = entries[i]![0];
      this.owners[i] = entries[i]![1];
    }
    this.checksum = ringChecksum(members, vnodes);
  }

  get size(): number {
    return this.members.length;
  }

  // The indices (into `members`) of the first n distinct members clockwise from `token`, written
  // to `out`; returns how many (fewer than n only if the ring has fewer members).
  preferenceIndices(token: number, n: number, out: Int32Array): number {
    const members = this.members.length;
    const want = Math.min(n, members, out.length);
    if (want === 0) return 0;
    const tokens = this.tokens;
    const count = tokens.length;
    // First virtual node with a token ≥ the key's.
    let lo = 0;
    let hi = count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (tokens[mid]! < token) lo = mid + 1;
      else hi = mid;
    }
    let found = 0;
    for (let step = 0; step < count && found < want; step++) {
      const owner = this.owners[(lo + step) % count]!;
      let seen = false;
      for (let j = 0; j < found; j++) {
        if (out[j] === owner) {
          seen = true;
          break;
        }
      }
      if (!seen) out[found++] = owner;
    }
    return found;
  }

  preferenceList(key: Uint8Array, n: number): string[] {
    const out = new Int32Array(Math.min(n, this.members.length));
    const found = this.preferenceIndices(tokenOf(key), n, out);
    return Array.from(out.subarray(0, found), (i) => this.members[i]!);
  }

  // Each member's share of the token space as primary owner: the arcs that end at its virtual
  // nodes (a key's first replica is the owner of the first token at or after it).
  primaryShares(): number[] {
    const shares = new Array<number>(this.members.length).fill(0);
    const count = this.tokens.length;
    for (let i = 0; i < count; i++) {
      const previous = i === 0 ? this.tokens[count - 1]! - TOKEN_SPACE : this.tokens[i - 1]!;
      shares[this.owners[i]!]! += (this.tokens[i]! - previous) / TOKEN_SPACE;
    }
    return shares;
  }

  // Each member's share of the key space it holds a replica of, with N replicas per key.
  replicaShares(n: number): number[] {
    const shares = new Array<number>(this.members.length).fill(0);
    const count = this.tokens.length;
    const out = new Int32Array(Math.min(n, this.members.length));
    for (let i = 0; i < count; i++) {
      const previous = i === 0 ? this.tokens[count - 1]! - TOKEN_SPACE : this.tokens[i - 1]!;
      const arc = (this.tokens[i]! - previous) / TOKEN_SPACE;
      // Keys on this arc have the same preference list as the token at its end.
      const found = this.preferenceIndices(this.tokens[i]!, n, out);
      for (let j = 0; j < found; j++) shares[out[j]!]! += arc;
    }
    return shares;
  }
}

export function vnodeToken(memberId: string, index: number): number {
  return tokenOf(Buffer.from(`${memberId}#${index}`, 'utf8'));
}

export function ringChecksum(sortedIds: readonly string[], vnodes: number): number {
  const bytes = Buffer.from(`${vnodes}\n${sortedIds.join('\n')}`, 'utf8');
  return murmur3x86_32(bytes, 0, bytes.length, 0);
}
