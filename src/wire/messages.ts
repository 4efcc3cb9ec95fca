// Message bodies of the native protocol (protocol.md, "Opcodes"): msgpack maps with the field
// names written here. Decoders validate shape and every size limit; they throw DkvError
// BAD_REQUEST, KEY_TOO_LARGE, VALUE_TOO_LARGE or TOO_MANY_KEYS. Pure.

import { Decoder, Encoder } from '@msgpack/msgpack';
import { assert } from '../lib/assert.js';
import { sameBytes, u16be, u32be } from '../lib/bytes.js';
import { DkvError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import type { Clock, Sibling, Versioned } from '../version/dvv.js';

export interface PutEntry {
  key: Uint8Array;
  value: Uint8Array;
  context: Clock | undefined;
}

export interface DeleteRequest {
  key: Uint8Array;
  context: Clock | undefined;
}

// What a GET answers: every sibling (null for a concurrent deletion), the opaque causal
// context, and each sibling's version [node, counter, tsMs].
export interface GetReply {
  values: Array<Uint8Array | null>;
  context: Uint8Array | null;
  versions: Array<[string, number, number]>;
}

const bodyDecoder = new Decoder({
  maxStrLength: limits.frameBytesMax,
  maxBinLength: limits.frameBytesMax,
  maxArrayLength: limits.respArgsMax,
  // STATS is the largest map (about 80 counters, plus one per request kind and error seen).
  maxMapLength: 512,
  maxExtLength: 0,
});

// One encoder for the process: encodeSharedRef's output is overwritten by the next call, so
// every caller copies it out before encoding again.
const bodyEncoder = new Encoder({ ignoreUndefined: true });

export function encodeBodyShared(body: unknown): Uint8Array {
  return bodyEncoder.encodeSharedRef(body);
}

export function encodeBody(body: unknown): Uint8Array {
  return bodyEncoder.encode(body);
}

// An empty body stands for nil.
export function decodeBody(bytes: Uint8Array, start: number, end: number): unknown {
  if (start === end) return null;
  if (!nestingFits(bytes, start, end)) {
    throw new DkvError('BAD_REQUEST', `body nests arrays and maps deeper than ${limits.bodyDepthMax}`);
  }
  try {
    return bodyDecoder.decode(bytes.subarray(start, end));
  } catch (error) {
    throw new DkvError('BAD_REQUEST', `body is not valid msgpack: ${(error as Error).message}`);
  }
}

// Items still to come in each open array or map, by depth; depth 0 is the top-level object.
const itemsLeft = new Float64Array(limits.bodyDepthMax + 1);

// Whether the msgpack object at `bytes[start, end)` nests no deeper than bodyDepthMax. It walks
// the bytes once, skipping strings and binaries by their length, before the decoder builds any
// object. Malformed or truncated input passes: the decoder rejects it.
export function nestingFits(bytes: Uint8Array, start: number, end: number): boolean {
  let depth = 0;
  itemsLeft[0] = 1;
  let i = start;
  while (i < end) {
    while (depth > 0 && itemsLeft[depth] === 0) depth--;
    if (itemsLeft[depth] === 0) return true;
    itemsLeft[depth] = itemsLeft[depth]! - 1;
    const tag = bytes[i++]!;
    let items = 0; // of an array or map that starts here
    let skip = 0; // bytes of payload after the tag and its length field
    if (tag <= 0x7f || tag >= 0xe0) {
      // positive or negative fixint
    } else if (tag <= 0x8f) {
      items = (tag & 0x0f) * 2;
    } else if (tag <= 0x9f) {
      items = tag & 0x0f;
    } else if (tag <= 0xbf) {
      skip = tag & 0x1f;
    } else {
      switch (tag) {
        case 0xc4: // bin 8
        case 0xd9: // str 8
          skip = 1 + (bytes[i] ?? 0);
          break;
        case 0xc5: // bin 16
        case 0xda: // str 16
          skip = 2 + readUint(bytes, i, 2);
          break;
        case 0xc6: // bin 32
        case 0xdb: // str 32
          skip = 4 + readUint(bytes, i, 4);
          break;
        case 0xc7: // ext 8: length, type, data
          skip = 2 + (bytes[i] ?? 0);
          break;
        case 0xc8: // ext 16
          skip = 3 + readUint(bytes, i, 2);
          break;
        case 0xc9: // ext 32
          skip = 5 + readUint(bytes, i, 4);
          break;
        case 0xcc:
        case 0xd0:
          skip = 1;
          break;
        case 0xcd:
        case 0xd1:
          skip = 2;
          break;
        case 0xca:
        case 0xce:
        case 0xd2:
          skip = 4;
          break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
          skip = 8;
          break;
        case 0xd4: // fixext 1, 2, 4, 8, 16: type, data
          skip = 2;
          break;
        case 0xd5:
          skip = 3;
          break;
        case 0xd6:
          skip = 5;
          break;
        case 0xd7:
          skip = 9;
          break;
        case 0xd8:
          skip = 17;
          break;
        case 0xdc: // array 16
          items = readUint(bytes, i, 2);
          skip = 2;
          break;
        case 0xdd: // array 32
          items = readUint(bytes, i, 4);
          skip = 4;
          break;
        case 0xde: // map 16
          items = readUint(bytes, i, 2) * 2;
          skip = 2;
          break;
        case 0xdf: // map 32
          items = readUint(bytes, i, 4) * 2;
          skip = 4;
          break;
        default:
          // nil, false, true, and 0xc1 (never used), which the decoder rejects
          break;
      }
    }
    i += skip;
    if (items > 0) {
      if (depth === limits.bodyDepthMax) return false;
      itemsLeft[++depth] = items;
    }
  }
  return true;
}

// A big-endian unsigned integer of `bytes` (1..4) at `offset`; 0 past the end.
function readUint(bytes: Uint8Array, offset: number, count: number): number {
  let value = 0;
  for (let k = 0; k < count; k++) value = value * 256 + (bytes[offset + k] ?? 0);
  return value;
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function asMap(body: unknown, what: string): Record<string, unknown> {
  if (body === null) return {};
  if (!isMap(body)) throw new DkvError('BAD_REQUEST', `${what}: body must be a map`);
  return body;
}

const utf8 = new TextEncoder();

function asBytes(value: unknown, what: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return utf8.encode(value);
  throw new DkvError('BAD_REQUEST', `${what} must be bin or str`);
}

export function readKey(value: unknown, what = 'key'): Uint8Array {
  const key = asBytes(value, what);
  if (key.length > limits.keyBytesMax) {
    throw new DkvError('KEY_TOO_LARGE', `${what} is ${key.length} bytes (max ${limits.keyBytesMax})`);
  }
  return key;
}

export function readValue(value: unknown, what = 'value'): Uint8Array {
  const bytes = asBytes(value, what);
  if (bytes.length > limits.valueBytesMax) {
    throw new DkvError('VALUE_TOO_LARGE', `${what} is ${bytes.length} bytes (max ${limits.valueBytesMax})`);
  }
  return bytes;
}

function readArray(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new DkvError('BAD_REQUEST', `${what} must be an array`);
  if (value.length > limits.multiKeysMax) {
    throw new DkvError('TOO_MANY_KEYS', `${what} has ${value.length} entries (max ${limits.multiKeysMax})`);
  }
  return value;
}

// A context is the msgpack encoding of a clock: an array of [node id, counter] pairs.
export function encodeContext(clock: Clock): Uint8Array {
  return encodeBody(clock);
}

export function readContext(value: unknown): Clock | undefined {
  if (value === undefined || value === null) return undefined;
  if (!(value instanceof Uint8Array)) throw new DkvError('BAD_REQUEST', 'context must be bin');
  let clock: unknown;
  try {
    clock = decodeBody(value, 0, value.length);
  } catch {
    throw new DkvError('BAD_REQUEST', 'context is not one this server issued');
  }
  if (!Array.isArray(clock) || clock.length > limits.siblingsMax * 4) {
    throw new DkvError('BAD_REQUEST', 'context is not one this server issued');
  }
  for (const entry of clock) {
    if (
      !Array.isArray(entry) ||
      entry.length !== 2 ||
      typeof entry[0] !== 'string' ||
      !Number.isSafeInteger(entry[1]) ||
      (entry[1] as number) < 1
    ) {
      throw new DkvError('BAD_REQUEST', 'context is not one this server issued');
    }
  }
  return clock as Clock;
}

export function decodeKeyRequest(body: unknown, what: string): Uint8Array {
  return readKey(asMap(body, what).key);
}

export function decodePutRequest(body: unknown): PutEntry {
  return readPutEntry(asMap(body, 'PUT'), 'PUT');
}

// A PUT's (or an MPUT entry's) key, value and context from their fields' values as decoded.
export function readPutEntry(map: Record<string, unknown>, what: string): PutEntry {
  return {
    key: readKey(map.key, `${what} key`),
    value: readValue(map.value, `${what} value`),
    context: readContext(map.context),
  };
}

export function decodeDeleteRequest(body: unknown): DeleteRequest {
  const map = asMap(body, 'DELETE');
  return { key: readKey(map.key), context: readContext(map.context) };
}

// Per-request quorum settings of GET, PUT and DELETE (protocol.md, "Cluster"): all optional.
export interface QuorumOptions {
  r: number | undefined;
  w: number | undefined;
  timeoutMs: number | undefined;
  // The ring checksum the client routed by; a reply carries the node's own when they differ.
  ring: number | undefined;
  // Set by a node that forwards a PUT or DELETE to a replica: the replica coordinates it
  // whatever its own ring says, so that two nodes with different rings cannot bounce a write.
  forwarded: boolean;
}

export function readQuorumOptions(body: unknown): QuorumOptions {
  const map = asMap(body, 'request');
  return quorumOptions(map.r, map.w, map.timeoutMs, map.ring, map.forwarded === true);
}

// The options from their fields' values as decoded (undefined or null where a field is absent),
// checked.
export function quorumOptions(r: unknown, w: unknown, timeoutMs: unknown, ring: unknown, forwarded: boolean): QuorumOptions {
  return {
    r: optionalInt(r, 'r', 1, limits.replicasMax),
    w: optionalInt(w, 'w', 1, limits.replicasMax),
    timeoutMs: optionalInt(timeoutMs, 'timeoutMs', 1, limits.requestTimeoutMsMax),
    ring: optionalInt(ring, 'ring', 0, 0xffffffff),
    forwarded,
  };
}

function optionalInt(value: unknown, what: string, min: number, max: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    throw new DkvError('BAD_REQUEST', `${what} must be an integer from ${min} to ${max}`);
  }
  return value as number;
}

// REPLICA_PUT: {key, versions: bin (a GET reply body), hint?: str (the replica it is held for)}.
export interface ReplicaPut {
  key: Uint8Array;
  versions: Versioned;
  // The versions as they came: a GET reply body.
  body: Uint8Array;
  hintFor: string | undefined;
}

export function decodeReplicaPut(body: unknown): ReplicaPut {
  const map = asMap(body, 'REPLICA_PUT');
  const versions = map.versions;
  if (!(versions instanceof Uint8Array)) throw new DkvError('BAD_REQUEST', 'REPLICA_PUT versions must be bin');
  let decoded: Versioned;
  try {
    decoded = versionedFromReply(decodeGetReply(decodeBody(versions, 0, versions.length)));
  } catch (error) {
    throw new DkvError('BAD_REQUEST', `REPLICA_PUT versions: ${(error as Error).message}`);
  }
  if (map.hint !== undefined && (typeof map.hint !== 'string' || map.hint.length === 0 || map.hint.length > 64)) {
    throw new DkvError('BAD_REQUEST', 'REPLICA_PUT hint must be a node id');
  }
  return { key: readKey(map.key), versions: decoded, body: versions, hintFor: map.hint as string | undefined };
}

export function decodeMgetRequest(body: unknown): Uint8Array[] {
  return readArray(asMap(body, 'MGET').keys, 'MGET keys').map((key) => readKey(key));
}

export function decodeMputRequest(body: unknown): PutEntry[] {
  return readArray(asMap(body, 'MPUT').entries, 'MPUT entries').map((entry) => {
    if (!isMap(entry)) throw new DkvError('BAD_REQUEST', 'MPUT entries must be maps');
    return readPutEntry(entry, 'MPUT');
  });
}

// The GET reply for a versioned value. Its encoding is also what the store keeps on disk after
// its two-byte record header, so a GET copies it straight from the storage engine to the reply.
export function getReplyOf(value: Versioned): GetReply {
  return {
    values: value.siblings.map((s) => s.value),
    context: encodeContext(value.clock),
    versions: value.siblings.map((s) => [s.node, s.counter, s.tsMs]),
  };
}

export const NOT_FOUND_REPLY: Uint8Array = encodeBody({ values: [], context: null, versions: [] });

export function decodeGetReply(body: unknown): GetReply {
  const map = asMap(body, 'GET reply');
  const values = map.values;
  const versions = map.versions;
  if (!Array.isArray(values) || !Array.isArray(versions) || values.length !== versions.length) {
    throw new DkvError('PROTOCOL_VIOLATION', 'GET reply is malformed');
  }
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    const version = versions[i];
    if (
      (value !== null && !(value instanceof Uint8Array)) ||
      !Array.isArray(version) ||
      version.length !== 3 ||
      typeof version[0] !== 'string' ||
      typeof version[1] !== 'number' ||
      typeof version[2] !== 'number'
    ) {
      throw new DkvError('PROTOCOL_VIOLATION', 'GET reply sibling is malformed');
    }
  }
  const context = map.context;
  if (context !== null && context !== undefined && !(context instanceof Uint8Array)) {
    throw new DkvError('PROTOCOL_VIOLATION', 'GET reply context is malformed');
  }
  return {
    values: values as Array<Uint8Array | null>,
    context: (context as Uint8Array | null | undefined) ?? null,
    versions: versions as Array<[string, number, number]>,
  };
}

// The versioned value a GET reply (or a stored record body) describes.
// The versions in a GET reply body (undefined for a key with none).
export function decodeVersionsBody(body: Uint8Array): Versioned | undefined {
  const reply = decodeGetReply(decodeBody(body, 0, body.length));
  return reply.versions.length === 0 ? undefined : versionedFromReply(reply);
}

export function versionedFromReply(reply: GetReply): Versioned {
  const clock = reply.context === null ? [] : (readContext(reply.context) ?? []);
  const siblings: Sibling[] = reply.values.map((value, i) => {
    const [node, counter, tsMs] = reply.versions[i]!;
    return { node, counter, tsMs, value };
  });
  return { clock, siblings };
}

// The hot path of GET: a body that is exactly {"key": <bin or str>} is read in place, without
// decoding, and the key's span is written to `span`. Anything else returns false and goes
// through decodeBody.
export interface Span {
  start: number;
  end: number;
}

export function readGetKeyInPlace(bytes: Uint8Array, start: number, end: number, span: Span): boolean {
  // fixmap of one entry, fixstr "key"
  if (end - start < 6) return false;
  if (
    bytes[start] !== 0x81 ||
    bytes[start + 1] !== 0xa3 ||
    bytes[start + 2] !== 0x6b ||
    bytes[start + 3] !== 0x65 ||
    bytes[start + 4] !== 0x79
  ) {
    return false;
  }
  const tag = bytes[start + 5]!;
  let keyStart: number;
  let keyBytes: number;
  if (tag === 0xc4 || tag === 0xd9) {
    // bin 8, str 8
    if (end - start < 7) return false;
    keyBytes = bytes[start + 6]!;
    keyStart = start + 7;
  } else if (tag === 0xc5 || tag === 0xda) {
    // bin 16, str 16
    if (end - start < 8) return false;
    keyBytes = u16be(bytes, start + 6);
    keyStart = start + 8;
  } else if (tag >= 0xa0 && tag <= 0xbf) {
    // fixstr
    keyBytes = tag & 0x1f;
    keyStart = start + 6;
  } else {
    return false;
  }
  if (keyStart + keyBytes !== end || keyBytes > limits.keyBytesMax) return false;
  // A str key is the UTF-8 of its decoded text (asBytes), which is its own bytes only when they
  // are valid UTF-8; ASCII is, and anything else takes the decoder's path like PUT does.
  if (tag !== 0xc4 && tag !== 0xc5) {
    for (let i = keyStart; i < end; i++) if (bytes[i]! >= 0x80) return false;
  }
  span.start = keyStart;
  span.end = end;
  return true;
}

// The hot path of PUT: a body that is a map of "key" and "value", both bin, and of any of "w",
// "timeoutMs" and "ring", each nil or an integer of at most 32 bits that msgpack writes unsigned
// (fixint, uint 8, 16 or 32), in any order and each at most once, is read in place: scan() puts
// the key's and the value's spans and the numbers (undefined where absent or nil) in the
// fields. Anything else (a context, str keys or values, any other field or encoding) returns
// false and is decoded, so that what a request means, and what is wrong with it, is decided in
// one place (readKey, readValue, quorumOptions).
export class PutScan {
  readonly key: Span = { start: 0, end: 0 };
  readonly value: Span = { start: 0, end: 0 };
  w: number | undefined;
  timeoutMs: number | undefined;
  ring: number | undefined;

  scan(bytes: Uint8Array, start: number, end: number): boolean {
    if (start >= end) return false;
    const head = bytes[start]!;
    if (head < 0x82 || head > 0x85) return false;
    let seen = 0;
    this.w = this.timeoutMs = this.ring = undefined;
    let at = start + 1;
    for (let entry = head & 0x0f; entry > 0; entry--) {
      const field = fieldAt(bytes, at, end);
      if (field === FIELD_UNKNOWN || (seen & field) !== 0) return false;
      seen |= field;
      at += bytes[at]! - 0xa0 + 1;
      if (field === FIELD_KEY || field === FIELD_VALUE) {
        at = readBinInPlace(bytes, at, end, field === FIELD_KEY ? this.key : this.value);
        if (at < 0) return false;
        continue;
      }
      let number: number | undefined;
      if (at < end && bytes[at] === 0xc0) {
        number = undefined;
        at += 1;
      } else {
        const size = uint32BytesAt(bytes, at, end);
        if (size === 0) return false;
        number = uint32At(bytes, at);
        at += size;
      }
      if (field === FIELD_W) this.w = number;
      else if (field === FIELD_TIMEOUT) this.timeoutMs = number;
      else this.ring = number;
    }
    return at === end && (seen & (FIELD_KEY | FIELD_VALUE)) === (FIELD_KEY | FIELD_VALUE);
  }
}

// The bytes of the msgpack unsigned integer of at most 32 bits (positive fixint, uint 8, 16 or
// 32) at bytes[at], ending by `end`; 0 if there is none.
export function uint32BytesAt(bytes: Uint8Array, at: number, end: number): number {
  if (at >= end) return 0;
  const tag = bytes[at]!;
  const size = tag < 0x80 ? 1 : tag === 0xcc ? 2 : tag === 0xcd ? 3 : tag === 0xce ? 5 : 0;
  return at + size <= end ? size : 0;
}

// The value of the integer uint32BytesAt found at bytes[at].
export function uint32At(bytes: Uint8Array, at: number): number {
  const tag = bytes[at]!;
  if (tag < 0x80) return tag;
  if (tag === 0xcc) return bytes[at + 1]!;
  return tag === 0xcd ? u16be(bytes, at + 1) : u32be(bytes, at + 1);
}

const FIELD_UNKNOWN = 0;
const FIELD_KEY = 1;
const FIELD_VALUE = 2;
const FIELD_W = 4;
const FIELD_TIMEOUT = 8;
const FIELD_RING = 16;

// Which of PutScan's fields the fixstr at bytes[at] names.
function fieldAt(bytes: Uint8Array, at: number, end: number): number {
  if (at >= end) return FIELD_UNKNOWN;
  const length = bytes[at]! - 0xa0;
  if (length < 1 || length > 9 || at + 1 + length > end) return FIELD_UNKNOWN;
  const c = bytes[at + 1]!;
  if (length === 1) return c === 0x77 ? FIELD_W : FIELD_UNKNOWN; // w
  if (length === 3) return sameBytes(bytes, at, FIELD_NAME_KEY, 0, 4) ? FIELD_KEY : FIELD_UNKNOWN;
  if (length === 4) return sameBytes(bytes, at, FIELD_NAME_RING, 0, 5) ? FIELD_RING : FIELD_UNKNOWN;
  if (length === 5) return sameBytes(bytes, at, FIELD_NAME_VALUE, 0, 6) ? FIELD_VALUE : FIELD_UNKNOWN;
  return sameBytes(bytes, at, FIELD_NAME_TIMEOUT, 0, 10) ? FIELD_TIMEOUT : FIELD_UNKNOWN;
}

// fixstr "key", "ring", "value", "timeoutMs"
const FIELD_NAME_KEY = Uint8Array.of(0xa3, 0x6b, 0x65, 0x79);
const FIELD_NAME_RING = Uint8Array.of(0xa4, 0x72, 0x69, 0x6e, 0x67);
const FIELD_NAME_VALUE = Uint8Array.of(0xa5, 0x76, 0x61, 0x6c, 0x75, 0x65);
const FIELD_NAME_TIMEOUT = Uint8Array.of(0xa9, 0x74, 0x69, 0x6d, 0x65, 0x6f, 0x75, 0x74, 0x4d, 0x73);

// The bytes that open a GET reply body as the encoder writes it, and the names of its other two
// keys: for the code that reads or writes such a body in place (overwrite.ts, versions-scan.ts,
// readReplicaPutInPlace).
// msgpack: fixmap(3), fixstr "values"
export const VALUES_KEY = Uint8Array.of(0x83, 0xa6, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x73);
// fixstr "context"
export const CONTEXT_KEY = Uint8Array.of(0xa7, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x78, 0x74);
// fixstr "versions"
export const VERSIONS_KEY = Uint8Array.of(0xa8, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x73);

// The hot path of REPLICA_PUT: a body that is exactly {"key": bin, "versions": bin}, as
// coordinators send it, is read in place: the key's span goes to `key`, the versions' to
// `versions`. Anything else (a hint, str keys, other layouts) returns false and is decoded.
export function readReplicaPutInPlace(bytes: Uint8Array, start: number, end: number, key: Span, versions: Span): boolean {
  // fixmap of two entries, fixstr "key"
  if (end - start < 7 || bytes[start] !== 0x82 || bytes[start + 1] !== 0xa3 || bytes[start + 2] !== 0x6b || bytes[start + 3] !== 0x65 || bytes[start + 4] !== 0x79) {
    return false;
  }
  const afterKey = readBinInPlace(bytes, start + 5, end, key);
  if (afterKey < 0 || key.end - key.start > limits.keyBytesMax) return false;
  if (afterKey + VERSIONS_KEY.length > end || !sameBytes(bytes, afterKey, VERSIONS_KEY, 0, VERSIONS_KEY.length)) return false;
  return readBinInPlace(bytes, afterKey + VERSIONS_KEY.length, end, versions) === end;
}

// {"key": bin, "versions": bin}, written directly: the REPLICA_PUT body a coordinator sends to
// each replica of every write (the same bytes for all of them), as readReplicaPutInPlace reads
// it and as encodeBody would write it.
export function encodeReplicaPutBody(key: Uint8Array, versions: Uint8Array): Buffer {
  const body = Buffer.allocUnsafe(5 + binBytes(key.length) + VERSIONS_KEY.length + binBytes(versions.length));
  body.set([0x82, 0xa3, 0x6b, 0x65, 0x79], 0);
  let at = writeBin(body, 5, key);
  body.set(VERSIONS_KEY, at);
  at = writeBin(body, at + VERSIONS_KEY.length, versions);
  assert(at === body.length, 'a REPLICA_PUT body fills its buffer');
  return body;
}

// ERROR's body for `error` (also a failed entry's result in a REPLICA_PUTS reply).
export function errorBodyOf(error: DkvError): Record<string, unknown> {
  return { code: error.wireCode, name: error.code, message: error.message, ...error.details };
}

// The error an ERROR body (or a REPLICA_PUTS entry's result) describes.
export function errorOfBody(body: unknown): DkvError {
  const error = (isMap(body) ? body : {}) as { code?: unknown; message?: unknown; answered?: unknown; needed?: unknown };
  const details =
    typeof error.answered === 'number' && typeof error.needed === 'number' ? { answered: error.answered, needed: error.needed } : undefined;
  return DkvError.fromWire(Number(error.code), String(error.message), details);
}

// REPLICA_PUTS: an array of REPLICA_PUT bodies, each as a bin (protocol.md). `bodies` take
// `bodyBytes` as bins, headers included (binBytes).
export function encodeReplicaPutsBody(bodies: readonly Uint8Array[], bodyBytes: number): Buffer {
  const body = Buffer.allocUnsafe(arrayHeaderBytes(bodies.length) + bodyBytes);
  let at = writeArrayHeader(body, 0, bodies.length);
  for (const part of bodies) at = writeBin(body, at, part);
  assert(at === body.length, 'a REPLICA_PUTS body fills its buffer');
  return body;
}

// The REPLICA_PUTS reply when every entry is durable: an array of `count` nils.
export function replicaPutsAllDurable(count: number): Buffer {
  const body = Buffer.allocUnsafe(arrayHeaderBytes(count) + count);
  body.fill(0xc0, writeArrayHeader(body, 0, count));
  return body;
}

// isAllNil's scratch header.
const allNilHead: ArrayHead = { count: 0, next: 0 };

// Whether bytes[start, end) is an array of `count` nils (replicaPutsAllDurable's reply).
export function isAllNil(bytes: Uint8Array, start: number, end: number, count: number): boolean {
  const head = allNilHead;
  if (!readArrayHeaderInPlace(bytes, start, end, head) || head.count !== count || end - head.next !== count) return false;
  for (let i = head.next; i < end; i++) if (bytes[i] !== 0xc0) return false;
  return true;
}

// The bytes of a msgpack array header for `count` elements.
export function arrayHeaderBytes(count: number): number {
  return count <= 15 ? 1 : count <= 0xffff ? 3 : 5;
}

// Writes the msgpack array header for `count` elements at target[at]; returns the offset after it.
export function writeArrayHeader(target: Buffer, at: number, count: number): number {
  if (count <= 15) {
    target[at] = 0x90 | count;
    return at + 1;
  }
  return writeSizedHeader(target, at, count, 0xdc, 0xdd);
}

// A msgpack header of a 16- or 32-bit size (array 16 / 32, bin 16 / 32, ...): `tag16` and its
// u16, or `tag32` and its u32. Returns the offset after it.
function writeSizedHeader(target: Buffer, at: number, size: number, tag16: number, tag32: number): number {
  if (size <= 0xffff) {
    target[at] = tag16;
    target.writeUInt16BE(size, at + 1);
    return at + 3;
  }
  target[at] = tag32;
  target.writeUInt32BE(size, at + 1);
  return at + 5;
}

// Where a msgpack array's elements start, and how many there are.
export interface ArrayHead {
  count: number;
  next: number;
}

// A msgpack array header at `at`, before `end`, into `head`; false if there is none.
export function readArrayHeaderInPlace(bytes: Uint8Array, at: number, end: number, head: ArrayHead): boolean {
  if (at >= end) return false;
  const tag = bytes[at]!;
  if (tag >= 0x90 && tag <= 0x9f) {
    head.count = tag & 0x0f;
    head.next = at + 1;
  } else if (tag === 0xdc && at + 3 <= end) {
    head.count = u16be(bytes, at + 1);
    head.next = at + 3;
  } else if (tag === 0xdd && at + 5 <= end) {
    head.count = u32be(bytes, at + 1);
    head.next = at + 5;
  } else {
    return false;
  }
  return true;
}

// The bytes of a msgpack bin header for `length` bytes of data.
export function binHeaderBytes(length: number): number {
  return length <= 0xff ? 2 : length <= 0xffff ? 3 : 5;
}

// Writes the msgpack bin header for `length` bytes of data at target[at]; returns the offset
// after it.
export function writeBinHeader(target: Buffer, at: number, length: number): number {
  if (length <= 0xff) {
    target[at] = 0xc4;
    target[at + 1] = length;
    return at + 2;
  }
  return writeSizedHeader(target, at, length, 0xc5, 0xc6);
}

// The bytes of `length` bytes of data as a msgpack bin, header included.
export function binBytes(length: number): number {
  return binHeaderBytes(length) + length;
}

// Writes `data` as a msgpack bin at target[at]; returns the offset after it.
export function writeBin(target: Buffer, at: number, data: Uint8Array): number {
  const start = writeBinHeader(target, at, data.length);
  target.set(data, start);
  return start + data.length;
}

// A bin 8, 16 or 32 at `at`, before `end`: its data's span goes to `span`; returns the offset
// after it, or -1.
export function readBinInPlace(bytes: Uint8Array, at: number, end: number, span: Span): number {
  if (at >= end) return -1;
  const tag = bytes[at]!;
  const lengthBytes = tag === 0xc4 ? 1 : tag === 0xc5 ? 2 : tag === 0xc6 ? 4 : 0;
  if (lengthBytes === 0 || at + 1 + lengthBytes > end) return -1;
  const length = lengthBytes === 1 ? bytes[at + 1]! : lengthBytes === 2 ? u16be(bytes, at + 1) : u32be(bytes, at + 1);
  const dataStart = at + 1 + lengthBytes;
  if (dataStart + length > end) return -1;
  span.start = dataStart;
  span.end = dataStart + length;
  return span.end;
}

// The hot path of RESP GET: a GET reply body (as the store keeps it) whose `values` is one bin,
// read in place. Its span goes to `span`. Anything else (siblings, a different encoding)
// returns false and is decoded.
const VALUES_FIELD = [0x83, 0xa6, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x73, 0x91] as const;

export function readSingleValueInPlace(bytes: Uint8Array, start: number, end: number, span: Span): boolean {
  let i = start;
  if (end - start < VALUES_FIELD.length + 2) return false;
  for (const expected of VALUES_FIELD) if (bytes[i++] !== expected) return false;
  const tag = bytes[i++]!;
  let length: number;
  if (tag === 0xc4) {
    length = bytes[i++]!;
  } else if (tag === 0xc5) {
    length = (bytes[i]! << 8) | bytes[i + 1]!;
    i += 2;
  } else if (tag === 0xc6) {
    length = ((bytes[i]! << 24) >>> 0) + ((bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!);
    i += 4;
  } else {
    return false;
  }
  if (i + length > end) return false;
  span.start = i;
  span.end = i + length;
  return true;
}
