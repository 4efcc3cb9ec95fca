// A key's versions read where they lie: the GET reply body (protocol.md, "GET") that replicas
// send each other in REPLICA_PUT and that the store keeps after a record's header, in the one
// layout this codebase's encoder gives it:
//
//   {values: [nil | bin, ...], context: bin([[node, counter], ...]), versions: [[node, counter, tsMs], ...]}
//
// with ASCII node ids (so that comparing their bytes is comparing the strings). scan() checks
// such a body whole, with at least the checks decodeVersionsBody makes, and notes its clock, its
// siblings' dots and whether any value is live, without building an object. Anything else it
// declines, and the caller decodes. What a replica merge needs to tell, without decoding either
// side, that the incoming versions supersede what it holds (dvv.ts, supersedes). Pure.

import { sameBytes, u16be, u32be } from '../lib/bytes.js';
import { limits } from '../lib/limits.js';
import { CONTEXT_KEY, readBinInPlace, VALUES_KEY, VERSIONS_KEY, type Span } from './messages.js';

// readContext's bound on a clock's entries.
const CLOCK_ENTRIES_MAX = limits.siblingsMax * 4;
const SIBLINGS_MAX = limits.siblingsMax * 4;

export class VersionsScan {
  bytes: Uint8Array = new Uint8Array(0);
  // Clock entry i: node id bytes[clockNodeStart[i], clockNodeEnd[i]), counter clockCounter[i].
  clockCount = 0;
  readonly clockNodeStart = new Int32Array(CLOCK_ENTRIES_MAX);
  readonly clockNodeEnd = new Int32Array(CLOCK_ENTRIES_MAX);
  readonly clockCounter = new Float64Array(CLOCK_ENTRIES_MAX);
  // Sibling i's dot: node id bytes[dotNodeStart[i], dotNodeEnd[i]), counter dotCounter[i].
  dotCount = 0;
  readonly dotNodeStart = new Int32Array(SIBLINGS_MAX);
  readonly dotNodeEnd = new Int32Array(SIBLINGS_MAX);
  readonly dotCounter = new Float64Array(SIBLINGS_MAX);
  // Whether some sibling holds a value (not a deletion).
  live = false;
  private at = 0;
  private end = 0;
  private readonly span: Span = { start: 0, end: 0 };

  // Reads bytes[start, end) as a whole versions body; false if it is not one in the layout above.
  scan(bytes: Uint8Array, start: number, end: number): boolean {
    this.bytes = bytes;
    this.at = start;
    this.end = end;
    this.clockCount = 0;
    this.dotCount = 0;
    this.live = false;
    if (!this.literal(VALUES_KEY)) return false;
    const values = this.arrayHeader();
    if (values < 0 || values > SIBLINGS_MAX) return false;
    const span = this.span;
    for (let i = 0; i < values; i++) {
      if (this.at < end && bytes[this.at] === 0xc0) {
        this.at++;
        continue;
      }
      this.at = readBinInPlace(bytes, this.at, end, span);
      if (this.at < 0 || span.end - span.start > limits.valueBytesMax) return false;
      this.live = true;
    }
    if (!this.literal(CONTEXT_KEY)) return false;
    // context: a bin holding the clock, which must fill it exactly
    this.at = readBinInPlace(bytes, this.at, end, span);
    if (this.at < 0) return false;
    const contextEnd = this.at;
    this.at = span.start;
    const entries = this.arrayHeader();
    if (entries < 0 || entries > CLOCK_ENTRIES_MAX) return false;
    for (let i = 0; i < entries; i++) {
      if (this.at >= contextEnd || bytes[this.at++] !== 0x92) return false;
      if (!this.asciiStr(contextEnd)) return false;
      this.clockNodeStart[i] = this.strStart;
      this.clockNodeEnd[i] = this.strEnd;
      const counter = this.uint(contextEnd);
      if (counter < 1) return false;
      this.clockCounter[i] = counter;
    }
    if (this.at !== contextEnd) return false;
    this.clockCount = entries;
    if (!this.literal(VERSIONS_KEY)) return false;
    if (this.arrayHeader() !== values) return false;
    for (let i = 0; i < values; i++) {
      if (this.at >= end || bytes[this.at++] !== 0x93) return false;
      if (!this.asciiStr(end)) return false;
      this.dotNodeStart[i] = this.strStart;
      this.dotNodeEnd[i] = this.strEnd;
      const counter = this.uint(end);
      if (counter < 0 || this.uint(end) < 0) return false;
      this.dotCounter[i] = counter;
    }
    this.dotCount = values;
    return this.at === end;
  }

  // This scan's clock's counter for node bytes[start, end) of `other`, 0 if it has none.
  counterOf(other: Uint8Array, start: number, end: number): number {
    const bytes = this.bytes;
    const length = end - start;
    for (let i = 0; i < this.clockCount; i++) {
      const at = this.clockNodeStart[i]!;
      if (this.clockNodeEnd[i]! - at !== length) continue;
      let same = true;
      for (let k = 0; k < length && same; k++) same = bytes[at + k] === other[start + k];
      if (same) return this.clockCounter[i]!;
    }
    return 0;
  }

  // Whether merging `current` into these versions would leave just these (dvv.ts, supersedes):
  // this clock has seen every entry of current's, and every sibling of current.
  supersedes(current: VersionsScan): boolean {
    const other = current.bytes;
    for (let i = 0; i < current.clockCount; i++) {
      if (this.counterOf(other, current.clockNodeStart[i]!, current.clockNodeEnd[i]!) < current.clockCounter[i]!) return false;
    }
    for (let i = 0; i < current.dotCount; i++) {
      if (this.counterOf(other, current.dotNodeStart[i]!, current.dotNodeEnd[i]!) < current.dotCounter[i]!) return false;
    }
    return true;
  }

  private strStart = 0;
  private strEnd = 0;

  private literal(expected: Uint8Array): boolean {
    if (this.at + expected.length > this.end || !sameBytes(this.bytes, this.at, expected, 0, expected.length)) return false;
    this.at += expected.length;
    return true;
  }

  // A fixarray or array 16 header: its count, or -1.
  private arrayHeader(): number {
    const bytes = this.bytes;
    if (this.at >= this.end) return -1;
    const tag = bytes[this.at]!;
    if ((tag & 0xf0) === 0x90) {
      this.at++;
      return tag & 0x0f;
    }
    if (tag === 0xdc && this.at + 3 <= this.end) {
      this.at += 3;
      return u16be(bytes, this.at - 2);
    }
    return -1;
  }

  // A fixstr or str 8 of ASCII bytes before `limit`, noted in strStart and strEnd.
  private asciiStr(limit: number): boolean {
    const bytes = this.bytes;
    if (this.at >= limit) return false;
    const tag = bytes[this.at++]!;
    let length: number;
    if (tag >= 0xa0 && tag <= 0xbf) length = tag & 0x1f;
    else if (tag === 0xd9 && this.at < limit) length = bytes[this.at++]!;
    else return false;
    if (this.at + length > limit) return false;
    for (let i = this.at; i < this.at + length; i++) if (bytes[i]! >= 0x80) return false;
    this.strStart = this.at;
    this.strEnd = this.at + length;
    this.at += length;
    return true;
  }

  // A positive fixint or uint 8/16/32/64 (a safe integer) before `limit`, or -1.
  private uint(limit: number): number {
    const bytes = this.bytes;
    if (this.at >= limit) return -1;
    const tag = bytes[this.at++]!;
    if (tag < 0x80) return tag;
    let size: number;
    if (tag === 0xcc) size = 1;
    else if (tag === 0xcd) size = 2;
    else if (tag === 0xce) size = 4;
    else if (tag === 0xcf) size = 8;
    else return -1;
    if (this.at + size > limit) return -1;
    let value: number;
    if (size === 1) value = bytes[this.at]!;
    else if (size === 2) value = u16be(bytes, this.at);
    else if (size === 4) value = u32be(bytes, this.at);
    else {
      const high = u32be(bytes, this.at);
      if (high >= 0x200000) return -1; // past 2^53: not a safe integer
      value = high * 0x100000000 + u32be(bytes, this.at + 4);
    }
    this.at += size;
    return value;
  }
}
