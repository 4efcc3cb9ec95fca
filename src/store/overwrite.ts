// The fast path of the commonest write: a write without a context (RESP SET and DEL, a first
// PUT), which supersedes every version the key holds, so that only the clock carries over. It
// reads the clock where it lies in the current record and writes the new record by hand, with
// the same bytes encodeRecord(writeVersion(...)) would produce (a property test holds it to
// that). It handles the clock of a key only this node has coordinated; any other returns
// undefined and the general path runs. Pure.
//
// Record (see versioned-store.ts): u8 format ‖ u8 flags ‖
//   {values: [v], context: bin(clock), versions: [[node, counter, tsMs]]}

import { u16be, u32be } from '../lib/bytes.js';
import { binHeaderBytes, CONTEXT_KEY, uint32At, uint32BytesAt, VALUES_KEY, VERSIONS_KEY, writeBinHeader } from '../wire/messages.js';

const RECORD_FORMAT = 1;
const TOMBSTONE = 0x01;

export interface Overwrite {
  record: Buffer;
  // Whether the key had a live value before.
  existed: boolean;
  // The new context (the msgpack clock) lies at record[contextStart, contextEnd).
  contextStart: number;
  contextEnd: number;
}

// The counter of `node` in the clock of `record`: 0 for no record or an empty clock, -1 when the
// record is not one this fast path reads (another node in the clock, an unexpected encoding).
function ownCounter(record: Uint8Array | undefined, node: Uint8Array): number {
  if (record === undefined) return 0;
  const end = record.length;
  if (end < 2 + VALUES_KEY.length + 1 || record[0] !== RECORD_FORMAT) return -1;
  let i = 2;
  for (let k = 0; k < VALUES_KEY.length; k++) if (record[i++] !== VALUES_KEY[k]) return -1;
  // values: fixarray of nil or bin
  const header = record[i++]!;
  if ((header & 0xf0) !== 0x90) return -1;
  for (let n = header & 0x0f; n > 0; n--) {
    const tag = record[i++];
    if (tag === 0xc0) continue;
    if (tag === 0xc4) i += 1 + record[i]!;
    else if (tag === 0xc5) i += 2 + u16be(record, i);
    else if (tag === 0xc6) i += 4 + u32be(record, i);
    else return -1;
    if (i > end) return -1;
  }
  for (let k = 0; k < CONTEXT_KEY.length; k++) if (record[i++] !== CONTEXT_KEY[k]) return -1;
  if (record[i++] !== 0xc4) return -1;
  const contextEnd = i + 1 + record[i]!;
  i++;
  if (contextEnd > end) return -1;
  const clock = record[i++];
  if (clock === 0x90) return 0;
  if (clock !== 0x91 || record[i++] !== 0x92) return -1;
  // [node, counter]: the node must be this one
  const nodeTag = record[i++]!;
  let nodeBytes: number;
  if (nodeTag >= 0xa0 && nodeTag <= 0xbf) nodeBytes = nodeTag & 0x1f;
  else if (nodeTag === 0xd9) nodeBytes = record[i++]!;
  else return -1;
  if (nodeBytes !== node.length) return -1;
  for (let k = 0; k < nodeBytes; k++) if (record[i++] !== node[k]) return -1;
  const size = uint32BytesAt(record, i, contextEnd);
  return size !== 0 && i + size === contextEnd ? uint32At(record, i) : -1;
}

// How many bytes msgpack needs for an unsigned integer, as @msgpack/msgpack encodes it.
function uintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x100) return 2;
  if (value < 0x10000) return 3;
  if (value < 0x100000000) return 5;
  return 9;
}

function writeUint(target: Buffer, i: number, value: number): number {
  if (value < 0x80) {
    target[i] = value;
    return i + 1;
  }
  if (value < 0x100) {
    target[i] = 0xcc;
    target[i + 1] = value;
    return i + 2;
  }
  if (value < 0x10000) {
    target[i] = 0xcd;
    target.writeUInt16BE(value, i + 1);
    return i + 3;
  }
  if (value < 0x100000000) {
    target[i] = 0xce;
    target.writeUInt32BE(value, i + 1);
    return i + 5;
  }
  target[i] = 0xcf;
  target.writeUInt32BE(Math.floor(value / 0x100000000), i + 1);
  target.writeUInt32BE(value >>> 0, i + 5);
  return i + 9;
}

function strHeaderSize(bytes: number): number {
  return bytes < 32 ? 1 : 2;
}

function writeStr(target: Buffer, i: number, str: Uint8Array): number {
  if (str.length < 32) {
    target[i++] = 0xa0 | str.length;
  } else {
    target[i++] = 0xd9;
    target[i++] = str.length;
  }
  target.set(str, i);
  return i + str.length;
}

// The record after a write of `value` (null deletes) without a context through `node` (its id's
// UTF-8 bytes, under 256 of them), or undefined when the current record is not the simple kind.
export function overwrite(
  current: Uint8Array | undefined,
  node: Uint8Array,
  tsMs: number,
  value: Uint8Array | null,
): Overwrite | undefined {
  const previous = ownCounter(current, node);
  if (previous < 0 || previous >= 0xffffffff || node.length > 0xff) return undefined;
  const counter = previous + 1;
  const existed = current !== undefined && (current[1]! & TOMBSTONE) === 0;
  // context: [[node, counter]]
  const clockBytes = 2 + strHeaderSize(node.length) + node.length + uintSize(counter);
  const valueBytes = value === null ? 1 : binHeaderBytes(value.length) + value.length;
  const size =
    2 +
    VALUES_KEY.length +
    1 +
    valueBytes +
    CONTEXT_KEY.length +
    2 +
    clockBytes +
    VERSIONS_KEY.length +
    2 +
    strHeaderSize(node.length) +
    node.length +
    uintSize(counter) +
    uintSize(tsMs);
  const record = Buffer.allocUnsafe(size);
  record[0] = RECORD_FORMAT;
  record[1] = value === null ? TOMBSTONE : 0;
  let i = 2;
  record.set(VALUES_KEY, i);
  i += VALUES_KEY.length;
  record[i++] = 0x91;
  if (value === null) {
    record[i++] = 0xc0;
  } else {
    i = writeBinHeader(record, i, value.length);
    record.set(value, i);
    i += value.length;
  }
  record.set(CONTEXT_KEY, i);
  i += CONTEXT_KEY.length;
  record[i++] = 0xc4;
  record[i++] = clockBytes;
  const contextStart = i;
  record[i++] = 0x91;
  record[i++] = 0x92;
  i = writeStr(record, i, node);
  i = writeUint(record, i, counter);
  const contextEnd = i;
  record.set(VERSIONS_KEY, i);
  i += VERSIONS_KEY.length;
  record[i++] = 0x91;
  record[i++] = 0x93;
  i = writeStr(record, i, node);
  i = writeUint(record, i, counter);
  writeUint(record, i, tsMs);
  return { record, existed, contextStart, contextEnd };
}
