// Message bodies of the native protocol (protocol.md, "Opcodes"): msgpack maps with the field
// names written here. Decoders validate shape and every size limit; they throw DkvError
// BAD_REQUEST, KEY_TOO_LARGE, VALUE_TOO_LARGE or TOO_MANY_KEYS. Pure.

import { Decoder, Encoder } from '@msgpack/msgpack';
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
  maxMapLength: 64,
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
  try {
    return bodyDecoder.decode(bytes.subarray(start, end));
  } catch (error) {
    throw new DkvError('BAD_REQUEST', `body is not valid msgpack: ${(error as Error).message}`);
  }
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
    clock = bodyDecoder.decode(value);
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

function readPutEntry(map: Record<string, unknown>, what: string): PutEntry {
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
    keyBytes = (bytes[start + 6]! << 8) | bytes[start + 7]!;
    keyStart = start + 8;
  } else if (tag >= 0xa0 && tag <= 0xbf) {
    // fixstr
    keyBytes = tag & 0x1f;
    keyStart = start + 6;
  } else {
    return false;
  }
  if (keyStart + keyBytes !== end || keyBytes > limits.keyBytesMax) return false;
  span.start = keyStart;
  span.end = end;
  return true;
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
