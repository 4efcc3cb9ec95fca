// Lifeguard's suspicion timer: it starts at its maximum and shrinks towards its minimum as other
// members independently confirm the suspicion, so a member that many see failing is declared
// dead quickly while one node's lone accusation waits long enough to be refuted. Pure.
//
// After c of the k expected confirmations the timeout is
//   max − (max − min) · log(c + 1) / log(k + 1), never below min,
// counted from the moment the suspicion began (as in memberlist's suspicion.go).

import { assert } from '../lib/assert.js';
import { sameBytes } from '../lib/bytes.js';

export class Suspicion {
  // The ids of the accusers counted, as UTF-8 bytes (at most confirmationsExpected + 1): a
  // gossiped SUSPECT is checked against them in place, without decoding its accuser into a
  // string. Ids are well-formed UTF-8, so equal bytes are equal ids.
  private readonly confirmers: Uint8Array[];
  private confirmations = 0;
  deadlineMs: number;
  // Whether the holder has already asked the suspect itself, once its timer ran out unconfirmed.
  lastChanceSent = false;
  // A suspicion this node raised itself stays its own until recheckUntilMs: the suspect is probed
  // once more (directly and through others, under recheckSeq) and, if it answers, the suspicion
  // is withdrawn without anyone else hearing of it. Infinity: announced (or heard from others).
  recheckSeq = 0;
  recheckUntilMs = Infinity;

  constructor(
    // Who raised the suspicion this node heard first.
    readonly accuser: string,
    readonly startMs: number,
    readonly confirmationsExpected: number,
    readonly timeoutMinMs: number,
    readonly timeoutMaxMs: number,
  ) {
    assert(timeoutMinMs > 0 && timeoutMinMs <= timeoutMaxMs, 'suspicion timeouts are ordered');
    this.confirmers = [Buffer.from(accuser, 'utf8')];
    this.deadlineMs = startMs + (confirmationsExpected < 1 ? timeoutMinMs : timeoutMaxMs);
  }

  get isPrivate(): boolean {
    return this.recheckUntilMs !== Infinity;
  }

  get confirmationCount(): number {
    return this.confirmations;
  }

  // Whether the id whose UTF-8 bytes are bytes[start, start + length) has accused already.
  hasConfirmer(bytes: Uint8Array, start: number, length: number): boolean {
    for (const id of this.confirmers) if (id.length === length && sameBytes(id, 0, bytes, start, length)) return true;
    return false;
  }

  // A new accuser shortens the timer; a repeated one does not. Returns whether it counted, so the
  // caller re-gossips only news.
  confirm(from: string): boolean {
    if (this.confirmations >= this.confirmationsExpected) return false;
    const fromBytes = Buffer.from(from, 'utf8');
    if (this.hasConfirmer(fromBytes, 0, fromBytes.length)) return false;
    this.confirmers.push(fromBytes);
    this.confirmations++;
    this.deadlineMs =
      this.startMs +
      suspicionTimeoutMs(this.confirmations, this.confirmationsExpected, this.timeoutMinMs, this.timeoutMaxMs);
    return true;
  }
}

export function suspicionTimeoutMs(confirmations: number, expected: number, minMs: number, maxMs: number): number {
  if (expected < 1) return minMs;
  const fraction = Math.log(confirmations + 1) / Math.log(expected + 1);
  const raw = Math.floor(maxMs - fraction * (maxMs - minMs));
  return raw < minMs ? minMs : raw;
}

// The shortest suspicion timeout for a cluster of n members: multiplier · max(1, log10 n) · the
// probe interval, so that it grows with the time a rumour needs to reach everyone.
export function suspicionTimeoutMinMs(multiplier: number, members: number, probeIntervalMs: number): number {
  const scale = Math.max(1, Math.log10(Math.max(1, members)));
  return Math.floor(multiplier * scale * probeIntervalMs);
}
