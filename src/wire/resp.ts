// The RESP2 dialect (protocol.md, "RESP"): an incremental, bounded parser for multibulk
// commands and inline commands (the netcat dialect), and reply encoders. Pure.
//
// A parsed command is handed over as spans into a buffer the parser owns, valid only during the
// call: the hot path reads GET and SET arguments where they lie.

import { copyBytes } from '../lib/bytes.js';
import { DkvError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { StreamDecoder } from './stream-decoder.js';

export interface RespArgs {
  bytes: Buffer;
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  count: number;
}

export interface RespSink {
  onCommand(args: RespArgs): void;
}

const CR = 0x0d;
const LF = 0x0a;
const INCOMPLETE = -1;

export class RespProtocolError extends DkvError {
  constructor(message: string) {
    super('BAD_REQUEST', `Protocol error: ${message}`);
  }
}

// The keys of the multibulk GET and SET commands at the start of `bytes`, at most
// `starts.length` of them: key i is bytes[starts[i], ends[i]), and writes[i] is 1 for a SET's
// key, 0 for a GET's. Returns how many. It stops at the
// first thing that is not a whole `*2\r\n$3\r\nGET\r\n$<n>\r\n<key>\r\n` or
// `*3\r\n$3\r\nSET\r\n$<n>\r\n<key>\r\n$<m>\r\n<value>\r\n` (the name in any case, a key
// of at most keyBytesMax bytes), so when `bytes` starts at a command boundary, what it finds are
// the keys of the first commands the parser hands over from them. For prefetching only: the
// parser stays the judge of what the bytes mean, and a chunk that starts mid-command yields
// nothing.
export function leadingKeys(bytes: Uint8Array, starts: Int32Array, ends: Int32Array, writes: Uint8Array): number {
  const end = bytes.length;
  let count = 0;
  let at = 0;
  while (count < starts.length && at + 14 < end) {
    if (
      bytes[at] !== 0x2a /* '*' */ ||
      bytes[at + 2] !== CR ||
      bytes[at + 3] !== LF ||
      bytes[at + 4] !== 0x24 /* '$' */ ||
      bytes[at + 5] !== 0x33 /* '3' */ ||
      bytes[at + 6] !== CR ||
      bytes[at + 7] !== LF ||
      (bytes[at + 9]! | 0x20) !== 0x65 /* 'e' */ ||
      (bytes[at + 10]! | 0x20) !== 0x74 /* 't' */ ||
      bytes[at + 11] !== CR ||
      bytes[at + 12] !== LF
    ) {
      break;
    }
    const name = bytes[at + 8]! | 0x20;
    const isGet = name === 0x67 /* 'g' */ && bytes[at + 1] === 0x32; /* '2' */
    if (!isGet && !(name === 0x73 /* 's' */ && bytes[at + 1] === 0x33) /* '3' */) break;
    if (!readBulk(bytes, at + 13, limits.keyBytesMax)) break;
    const keyStart = bulk.start;
    const keyEnd = bulk.end;
    if (!isGet && !readBulk(bytes, keyEnd + 2, limits.respBulkBytesMax)) break;
    starts[count] = keyStart;
    ends[count] = keyEnd;
    writes[count] = isGet ? 0 : 1;
    count++;
    at = bulk.end + 2;
  }
  return count;
}

// readBulk's answer: where the data of the bulk string it read lies.
const bulk = { start: 0, end: 0 };

// Whether a whole bulk string `$<n>\r\n<n bytes>\r\n` of at most `max` bytes starts at `at`;
// if so, its data is bytes[bulk.start, bulk.end).
function readBulk(bytes: Uint8Array, at: number, max: number): boolean {
  const end = bytes.length;
  if (at >= end || bytes[at] !== 0x24 /* '$' */) return false;
  let i = at + 1;
  let length = 0;
  while (i < end && bytes[i]! >= 0x30 && bytes[i]! <= 0x39 && length <= max) {
    length = length * 10 + bytes[i]! - 0x30;
    i++;
  }
  if (i === at + 1 || length > max || i + 1 >= end || bytes[i] !== CR || bytes[i + 1] !== LF) return false;
  const dataEnd = i + 2 + length;
  if (dataEnd + 1 >= end || bytes[dataEnd] !== CR || bytes[dataEnd + 1] !== LF) return false;
  bulk.start = i + 2;
  bulk.end = dataEnd;
  return true;
}

export class RespParser extends StreamDecoder {
  private readonly args: RespArgs = {
    bytes: Buffer.alloc(0),
    starts: new Int32Array(limits.respArgsMax),
    ends: new Int32Array(limits.respArgsMax),
    count: 0,
  };
  private readonly inlineScratch = Buffer.allocUnsafe(limits.respInlineBytesMax);
  private stopped = false;

  constructor(private readonly sink: RespSink) {
    super();
  }

  // Stop handing over commands (after QUIT): the rest of the input is ignored.
  stop(): void {
    this.stopped = true;
  }

  // Throws RespProtocolError on input that cannot be a command; the caller replies with the
  // error and closes the connection, as Redis does.
  protected parse(bytes: Buffer): number {
    const end = bytes.length;
    let offset = 0;
    while (offset < end && !this.stopped && !this.held) {
      const next =
        bytes[offset] === 0x2a /* '*' */
          ? this.parseMultibulk(bytes, offset, end)
          : this.parseInline(bytes, offset, end);
      if (next === INCOMPLETE) break;
      offset = next;
    }
    // After QUIT the rest is dropped.
    return this.stopped ? end : offset;
  }

  // Returns the offset after the command, or INCOMPLETE with neededBytes set.
  private parseMultibulk(bytes: Buffer, start: number, end: number): number {
    const countLine = this.readLine(bytes, start + 1, end, 'multibulk count');
    if (countLine === INCOMPLETE) return this.need(end - start + 1);
    const count = parseInteger(bytes, start + 1, countLine);
    if (count === null || count > limits.respArgsMax) {
      throw new RespProtocolError('invalid multibulk length');
    }
    let offset = countLine + 2;
    // Redis treats *0 and *-1 as nothing at all.
    if (count <= 0) return offset;
    const args = this.args;
    for (let i = 0; i < count; i++) {
      if (offset >= end) return this.need(offset - start + 1);
      if (bytes[offset] !== 0x24 /* '$' */) {
        throw new RespProtocolError(`expected '$', got '${String.fromCharCode(bytes[offset]!)}'`);
      }
      const lengthLine = this.readLine(bytes, offset + 1, end, 'bulk length');
      if (lengthLine === INCOMPLETE) return this.need(end - start + 1);
      const length = parseInteger(bytes, offset + 1, lengthLine);
      if (length === null || length < 0 || length > limits.respBulkBytesMax) {
        throw new RespProtocolError('invalid bulk length');
      }
      const valueStart = lengthLine + 2;
      const valueEnd = valueStart + length;
      if (valueEnd + 2 - start > limits.respCommandBytesMax) {
        throw new RespProtocolError(`command of more than ${limits.respCommandBytesMax} bytes`);
      }
      if (valueEnd + 2 > end) return this.need(valueEnd + 2 - start);
      if (bytes[valueEnd] !== CR || bytes[valueEnd + 1] !== LF) {
        throw new RespProtocolError('bulk string not terminated by CRLF');
      }
      args.starts[i] = valueStart;
      args.ends[i] = valueEnd;
      offset = valueEnd + 2;
    }
    args.bytes = bytes;
    args.count = count;
    this.sink.onCommand(args);
    return offset;
  }

  // The offset of the CR ending a line that starts at `start`, or INCOMPLETE.
  private readLine(bytes: Buffer, start: number, end: number, what: string): number {
    const limit = Math.min(end, start + 32);
    for (let i = start; i < limit; i++) {
      if (bytes[i] === CR) {
        if (i + 1 >= end) return INCOMPLETE;
        if (bytes[i + 1] !== LF) throw new RespProtocolError(`${what} not terminated by CRLF`);
        return i;
      }
    }
    if (limit < end) throw new RespProtocolError(`${what} is too long`);
    return INCOMPLETE;
  }

  private need(bytes: number): number {
    this.neededBytes = bytes;
    return INCOMPLETE;
  }

  private parseInline(bytes: Buffer, start: number, end: number): number {
    const newline = bytes.indexOf(LF, start);
    const lineLimit = start + limits.respInlineBytesMax;
    if (newline === -1 || newline >= end) {
      // A line of exactly respInlineBytesMax bytes is allowed: its newline may be the next byte.
      if (end - start > limits.respInlineBytesMax) throw new RespProtocolError('too big inline request');
      return this.need(end - start + 1);
    }
    if (newline > lineLimit) throw new RespProtocolError('too big inline request');
    const lineEnd = newline > start && bytes[newline - 1] === CR ? newline - 1 : newline;
    const count = splitInline(bytes, start, lineEnd, this.inlineScratch, this.args);
    if (count === null) throw new RespProtocolError('unbalanced quotes in request');
    if (count > 0) {
      this.args.bytes = this.inlineScratch;
      this.args.count = count;
      this.sink.onCommand(this.args);
    }
    return newline + 1;
  }
}

// A RESP integer line: optional '-', then 1 to 18 digits.
function parseInteger(bytes: Buffer, start: number, end: number): number | null {
  let i = start;
  let negative = false;
  if (bytes[i] === 0x2d) {
    negative = true;
    i++;
  }
  if (i === end || end - i > 18) return null;
  let value = 0;
  for (; i < end; i++) {
    const digit = bytes[i]! - 0x30;
    if (digit < 0 || digit > 9) return null;
    value = value * 10 + digit;
  }
  return negative ? -value : value;
}

const HEX = /^[0-9a-fA-F]$/;

// Splits an inline command the way redis-cli and Redis do (sdssplitargs): arguments separated
// by blanks, "double quotes" with \n \r \t \b \a \\ \" \xHH escapes, 'single quotes' with \'.
// Argument bytes are written to `scratch`; returns the count, or null for unbalanced quotes.
// More arguments than `args` holds is a protocol error, as it is for a multibulk command:
// dropping the rest would, say, run an MSET on only some of its pairs.
export function splitInline(
  bytes: Buffer,
  start: number,
  end: number,
  scratch: Buffer,
  args: RespArgs,
): number | null {
  let count = 0;
  let out = 0;
  let i = start;
  while (true) {
    while (i < end && isBlank(bytes[i]!)) i++;
    if (i >= end) return count;
    if (count >= args.starts.length) throw new RespProtocolError('too many arguments in inline request');
    args.starts[count] = out;
    let inDouble = false;
    let inSingle = false;
    let done = false;
    while (!done) {
      if (inDouble) {
        if (i >= end) return null;
        const c = bytes[i]!;
        if (c === 0x5c && i + 3 < end && bytes[i + 1] === 0x78 && isHex(bytes[i + 2]!) && isHex(bytes[i + 3]!)) {
          scratch[out++] = parseInt(String.fromCharCode(bytes[i + 2]!, bytes[i + 3]!), 16);
          i += 4;
        } else if (c === 0x5c && i + 1 < end) {
          scratch[out++] = unescape(bytes[i + 1]!);
          i += 2;
        } else if (c === 0x22) {
          // A closing quote must be followed by a blank or the end.
          if (i + 1 < end && !isBlank(bytes[i + 1]!)) return null;
          i++;
          done = true;
        } else {
          scratch[out++] = c;
          i++;
        }
      } else if (inSingle) {
        if (i >= end) return null;
        const c = bytes[i]!;
        if (c === 0x5c && i + 1 < end && bytes[i + 1] === 0x27) {
          scratch[out++] = 0x27;
          i += 2;
        } else if (c === 0x27) {
          if (i + 1 < end && !isBlank(bytes[i + 1]!)) return null;
          i++;
          done = true;
        } else {
          scratch[out++] = c;
          i++;
        }
      } else if (i >= end || isBlank(bytes[i]!)) {
        done = true;
      } else if (bytes[i] === 0x22) {
        inDouble = true;
        i++;
      } else if (bytes[i] === 0x27) {
        inSingle = true;
        i++;
      } else {
        scratch[out++] = bytes[i]!;
        i++;
      }
    }
    args.ends[count] = out;
    count++;
  }
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === CR || c === LF || c === 0x0b || c === 0x0c || c === 0;
}

function isHex(c: number): boolean {
  return HEX.test(String.fromCharCode(c));
}

function unescape(c: number): number {
  switch (c) {
    case 0x6e:
      return LF; // \n
    case 0x72:
      return CR; // \r
    case 0x74:
      return 0x09; // \t
    case 0x62:
      return 0x08; // \b
    case 0x61:
      return 0x07; // \a
    default:
      return c;
  }
}

// ---- replies ----

export const RESP_OK = Buffer.from('+OK\r\n');
export const RESP_PONG = Buffer.from('+PONG\r\n');
export const RESP_NIL = Buffer.from('$-1\r\n');
export const RESP_EMPTY_ARRAY = Buffer.from('*0\r\n');

export function respSimple(text: string): Buffer {
  return Buffer.from(`+${text}\r\n`);
}

// Error text must be one line: CR and LF become spaces.
export function respError(text: string): Buffer {
  return Buffer.from(`-${text.replace(/[\r\n]+/g, ' ')}\r\n`);
}

export function respInteger(value: number): Buffer {
  return Buffer.from(`:${value}\r\n`);
}

export function respArrayHeader(count: number): Buffer {
  return Buffer.from(`*${count}\r\n`);
}

function decimalDigits(value: number): number {
  let digits = 1;
  while (value >= 10) {
    value = Math.floor(value / 10);
    digits++;
  }
  return digits;
}

// The size of the bulk string of `length` bytes: $<length>\r\n<bytes>\r\n.
export function respBulkBytes(length: number): number {
  return 1 + decimalDigits(length) + 2 + length + 2;
}

// Writes the bulk string of `bytes[start, end)` at `target[offset]`, which has room for
// respBulkBytes(end - start) bytes. With `targetView` (a DataView over target's bytes) it
// allocates nothing: the RESP GET hot path.
export function writeRespBulk(
  target: Buffer,
  offset: number,
  bytes: Uint8Array,
  start: number,
  end: number,
  targetView: DataView | null = null,
): void {
  const length = end - start;
  const digits = decimalDigits(length);
  target[offset] = 0x24;
  let n = length;
  for (let i = digits; i >= 1; i--) {
    target[offset + i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  target[offset + digits + 1] = CR;
  target[offset + digits + 2] = LF;
  const at = offset + digits + 3;
  if (targetView !== null) copyBytes(target, targetView, at, bytes, start, end);
  else target.set(bytes.subarray(start, end), at);
  target[at + length] = CR;
  target[at + length + 1] = LF;
}

// A bulk string of `bytes[start, end)`, in one new buffer.
export function respBulk(bytes: Uint8Array, start = 0, end = bytes.length): Buffer {
  const reply = Buffer.allocUnsafe(respBulkBytes(end - start));
  writeRespBulk(reply, 0, bytes, start, end);
  return reply;
}

export function respBulkString(text: string): Buffer {
  return respBulk(Buffer.from(text));
}

// An array of bulk strings (null elements are RESP nils).
export function respBulkArray(items: ReadonlyArray<Uint8Array | string | null>): Buffer {
  const parts: Buffer[] = [respArrayHeader(items.length)];
  for (const item of items) {
    if (item === null) parts.push(RESP_NIL);
    else parts.push(typeof item === 'string' ? respBulkString(item) : respBulk(item));
  }
  return Buffer.concat(parts);
}
