// The dkv fuzzer. Two phases:
//
//  1. Network: a real dkvd under random and mutated-valid native frames and RESP commands on many
//     connections at once, for --seconds (or --cases connections). Every reply must be a
//     well-formed frame or RESP reply in the dialect the connection chose, no reply may be an
//     INTERNAL error, valid requests must be answered in full, and every second a fresh client
//     must get a PING, a PUT and a GET of a canary key answered. The server must never exit,
//     never log an error, let go of every connection, and shut down cleanly at the end.
//  2. Decoders: fast-check feeds random inputs into FrameDecoder, RespParser, decodeBody (and
//     the request decoders after it) and decodeDatagramHeader, for --decoder-seconds; each
//     may only ever throw DkvError.
//
//   npm run fuzz -- --seconds 60 [--cases N] [--seed S] [--connections 32]
//                   [--storage lmdb|memory] [--decoder-seconds S]
//
// A finding prints seed=…; the same seed replays the same inputs (their interleaving on the
// sockets still depends on timing). Exits 1 if anything was found.

import { createSocket } from 'node:dgram';
import { readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import fc from 'fast-check';
import { DkvClient } from '../src/client/client.js';
import { DkvError } from '../src/lib/errors.js';
import { limits } from '../src/lib/limits.js';
import { ERROR_CODE_NAMES, FRAME_HEADER_BYTES, FrameFlag, Opcode } from '../src/wire/codes.js';
import { decodeDatagramHeader, encodeDatagramHeader } from '../src/wire/datagram.js';
import { encodeFrame, FrameDecoder } from '../src/wire/frame.js';
import {
  decodeBody,
  decodeDeleteRequest,
  decodeGetReply,
  decodeKeyRequest,
  decodeMgetRequest,
  decodeMputRequest,
  decodePutRequest,
  encodeBody,
  encodeContext,
} from '../src/wire/messages.js';
import { RespParser } from '../src/wire/resp.js';
import { chunksAt } from './helpers/chunks.js';
import { startDkvd, type Dkvd } from './helpers/dkvd.js';

// ---- options ----

interface Options {
  seconds: number;
  cases: number;
  seed: number;
  connections: number;
  storage: 'lmdb' | 'memory';
  decoderSeconds: number;
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    seconds: 60,
    cases: Infinity,
    seed: Date.now() % 2 ** 31,
    connections: 32,
    storage: 'lmdb',
    decoderSeconds: NaN,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    const number = Number(value);
    const needNumber = (): number => {
      if (value === undefined || !Number.isFinite(number) || number < 0) usage(`${flag} needs a number`);
      i++;
      return number;
    };
    switch (flag) {
      case '--seconds':
        options.seconds = needNumber();
        break;
      case '--cases':
        options.cases = needNumber();
        break;
      case '--seed':
        options.seed = Math.floor(needNumber());
        break;
      case '--connections':
        options.connections = Math.max(1, Math.floor(needNumber()));
        break;
      case '--decoder-seconds':
        options.decoderSeconds = needNumber();
        break;
      case '--storage':
        if (value !== 'lmdb' && value !== 'memory') usage('--storage is lmdb or memory');
        options.storage = value;
        i++;
        break;
      case '--help':
      case '-h':
        usage();
        break;
      default:
        usage(`unknown option ${flag}`);
    }
  }
  if (Number.isNaN(options.decoderSeconds)) options.decoderSeconds = options.seconds;
  return options;
}

function usage(problem?: string): never {
  if (problem !== undefined) process.stderr.write(`fuzz: ${problem}\n`);
  process.stderr.write(
    'usage: npm run fuzz -- [--seconds 60] [--cases N] [--seed S] [--connections 32] [--storage lmdb|memory] [--decoder-seconds S]\n',
  );
  process.exit(problem === undefined ? 0 : 2);
}

// ---- randomness: one seeded generator, so inputs replay ----

class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  // mulberry32
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let x = this.state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  // Mostly small sizes, sometimes large ones.
  size(max: number): number {
    const r = this.next();
    if (r < 0.7) return this.int(Math.min(max, 32) + 1);
    if (r < 0.95) return this.int(Math.min(max, 2048) + 1);
    return this.int(max + 1);
  }
}

// ---- findings ----

interface Finding {
  kind: string;
  detail: string;
  input: string;
}

const findings: Finding[] = [];
const findingKinds = new Map<string, number>();

function found(kind: string, detail: string, input?: Buffer): void {
  const count = (findingKinds.get(kind) ?? 0) + 1;
  findingKinds.set(kind, count);
  if (count > 5) return; // the first few of each kind are enough
  const sample = input === undefined ? '' : input.subarray(0, 256).toString('hex');
  findings.push({ kind, detail, input: sample });
  process.stderr.write(`FINDING ${kind}: ${detail}${sample === '' ? '' : `\n  input (hex, first 256 bytes): ${sample}`}\n`);
}

// ---- the server ----

function rssBytes(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
  } catch {
    return NaN;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- inputs ----

const KEYS = Array.from({ length: 64 }, (_, i) => `k${i}`);
const CANARY_KEY = 'fuzz-canary';

function randomKey(rng: Rng): Buffer {
  return rng.chance(0.9) ? Buffer.from(rng.pick(KEYS)) : rng.bytes(rng.size(limits.keyBytesMax + 8));
}

function randomValue(rng: Rng): Buffer {
  return rng.chance(0.97) ? rng.bytes(rng.size(4096)) : rng.bytes(rng.int(limits.valueBytesMax + 1));
}

// A random msgpack-able value, nested at most `depth` deep.
function randomMsgpack(rng: Rng, depth: number): unknown {
  switch (rng.int(depth > 0 ? 9 : 6)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.int(2 ** 32) - 2 ** 31;
    case 3:
      return rng.bytes(rng.size(64));
    case 4:
      return rng.pick(['key', 'value', 'keys', 'entries', 'context', 'version', '', 'x']);
    case 5:
      return rng.next() * 1e6;
    case 6:
    case 7: {
      const out: Record<string, unknown> = {};
      const n = rng.int(5);
      for (let i = 0; i < n; i++) out[rng.pick(['key', 'value', 'keys', 'entries', 'context', 'x'])] = randomMsgpack(rng, depth - 1);
      return out;
    }
    default:
      return Array.from({ length: rng.int(5) }, () => randomMsgpack(rng, depth - 1));
  }
}

interface NativeRequest {
  opcode: number;
  body: unknown;
}

function validNativeRequest(rng: Rng): NativeRequest {
  switch (rng.int(9)) {
    case 0:
      return { opcode: Opcode.HELLO, body: { version: 1, client: 'fuzz' } };
    case 1:
      return { opcode: Opcode.PING, body: rng.chance(0.5) ? null : { echo: rng.bytes(rng.size(100)) } };
    case 2:
    case 3:
      return { opcode: Opcode.GET, body: { key: Buffer.from(rng.pick(KEYS)) } };
    case 4:
      return { opcode: Opcode.PUT, body: { key: Buffer.from(rng.pick(KEYS)), value: rng.bytes(rng.size(8192)) } };
    case 5:
      return { opcode: Opcode.DELETE, body: { key: Buffer.from(rng.pick(KEYS)) } };
    case 6:
      return { opcode: Opcode.MGET, body: { keys: Array.from({ length: 1 + rng.int(20) }, () => Buffer.from(rng.pick(KEYS))) } };
    case 7:
      return {
        opcode: Opcode.MPUT,
        body: {
          entries: Array.from({ length: 1 + rng.int(10) }, () => ({ key: Buffer.from(rng.pick(KEYS)), value: rng.bytes(rng.size(512)) })),
        },
      };
    default:
      return { opcode: Opcode.STATS, body: null };
  }
}

// A request that is well framed but may be anything inside: a random opcode, flags or body.
function oddNativeRequest(rng: Rng): { opcode: number; flags: number; body: Buffer } {
  const base = validNativeRequest(rng);
  let opcode = base.opcode;
  let flags = 0;
  let body: Buffer = base.body === null ? Buffer.alloc(0) : Buffer.from(encodeBody(base.body));
  switch (rng.int(7)) {
    case 0:
      opcode = rng.int(256);
      break;
    case 1:
      flags = rng.int(256);
      break;
    case 2:
      body = rng.bytes(rng.size(200));
      break;
    case 3:
      body = Buffer.from(encodeBody(randomMsgpack(rng, 4)));
      break;
    case 4:
      body = Buffer.from(encodeBody({ key: randomKey(rng), value: randomValue(rng), context: rng.chance(0.5) ? rng.bytes(8) : encodeContext([['n', 1 + rng.int(5)]]) }));
      opcode = Opcode.PUT;
      break;
    case 5:
      body = Buffer.from(encodeBody({ keys: Array.from({ length: rng.pick([0, 1, 999, 1000, 1001]) }, () => randomKey(rng)) }));
      opcode = Opcode.MGET;
      break;
    default:
      body = mutate(rng, body, 1 + rng.int(3));
  }
  return { opcode, flags, body };
}

// Changes a few bytes: flips, cuts, insertions, repeats, or the frame length field.
function mutate(rng: Rng, input: Buffer, edits: number): Buffer {
  let bytes = Buffer.from(input);
  for (let e = 0; e < edits; e++) {
    const at = bytes.length === 0 ? 0 : rng.int(bytes.length);
    switch (rng.int(7)) {
      case 0:
        if (bytes.length > 0) bytes[at] = rng.int(256);
        break;
      case 1:
        if (bytes.length > 0) bytes[at]! ^= 1 << rng.int(8);
        break;
      case 2:
        bytes = bytes.subarray(0, at);
        break;
      case 3:
        bytes = Buffer.concat([bytes.subarray(0, at), rng.bytes(1 + rng.int(8)), bytes.subarray(at)]);
        break;
      case 4:
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at, at + 1 + rng.int(16)), bytes.subarray(at)]);
        break;
      case 5:
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(Math.min(bytes.length, at + 1 + rng.int(8)))]);
        break;
      default:
        if (bytes.length >= 4) {
          const lengths = [0, 1, 6, 7, 8, 100, 0xffff, limits.frameBytesMax, limits.frameBytesMax + 1, 0x7fffffff, 0x80000000, 0xffffffff];
          bytes.writeUInt32BE(rng.pick(lengths) >>> 0, 0);
        }
    }
  }
  return bytes;
}

const RESP_COMMANDS: ReadonlyArray<(rng: Rng) => string[]> = [
  (rng) => ['GET', rng.pick(KEYS)],
  (rng) => ['SET', rng.pick(KEYS), rng.bytes(rng.size(2048)).toString('latin1')],
  (rng) => ['DEL', ...Array.from({ length: 1 + rng.int(4) }, () => rng.pick(KEYS))],
  (rng) => ['EXISTS', ...Array.from({ length: 1 + rng.int(4) }, () => rng.pick(KEYS))],
  (rng) => ['MGET', ...Array.from({ length: 1 + rng.int(8) }, () => rng.pick(KEYS))],
  (rng) => ['MSET', ...Array.from({ length: 1 + rng.int(4) }, () => [rng.pick(KEYS), rng.bytes(rng.size(64)).toString('latin1')]).flat()],
  () => ['PING'],
  (rng) => ['ECHO', rng.bytes(rng.size(64)).toString('latin1')],
  () => ['DBSIZE'],
  (rng) => ['INFO', rng.pick(['', 'server', 'stats', 'keyspace', 'all'])].filter((a) => a !== ''),
  () => ['SELECT', '0'],
  (rng) => rng.pick([['CLIENT', 'SETNAME', 'fuzz'], ['CLIENT', 'GETNAME'], ['CLIENT', 'ID'], ['CLIENT', 'SETINFO', 'lib-name', 'fuzz']]),
  (rng) => ['HELLO', rng.pick(['2', '3'])],
  (rng) => ['COMMAND', rng.pick(['COUNT', 'DOCS', 'INFO'])],
  () => ['CONFIG', 'GET', 'save'],
];

function respMultibulk(args: readonly string[]): Buffer {
  return Buffer.from(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a, 'latin1')}\r\n${a}\r\n`).join(''), 'latin1');
}

// Inline arguments are quoted when they need it; binary ones are left to multibulk.
function respInline(args: readonly string[]): Buffer | null {
  const quoted: string[] = [];
  for (const arg of args) {
    if (/^[\x21-\x7e]+$/.test(arg) && !/["'\\]/.test(arg)) quoted.push(arg);
    else if (/^[\x20-\x7e]*$/.test(arg)) quoted.push(`"${arg.replace(/["\\]/g, (c) => `\\${c}`)}"`);
    else return null;
  }
  return Buffer.from(quoted.join(' ') + '\r\n', 'latin1');
}

// ---- replies ----

// Parses one RESP reply at `offset`: its end, INCOMPLETE, or MALFORMED.
const INCOMPLETE = -1;
const MALFORMED = -2;

function respReplyEnd(bytes: Buffer, offset: number, depth = 0): number {
  if (offset >= bytes.length) return INCOMPLETE;
  const lineEnd = bytes.indexOf('\r\n', offset);
  if (lineEnd === -1) return bytes.length - offset > 1_000_000 ? MALFORMED : INCOMPLETE;
  const type = bytes[offset];
  const line = bytes.toString('latin1', offset + 1, lineEnd);
  switch (type) {
    case 0x2b: // +
    case 0x2d: // -
      return lineEnd + 2;
    case 0x3a: // :
      return /^-?\d+$/.test(line) ? lineEnd + 2 : MALFORMED;
    case 0x24: {
      // $
      if (line === '-1') return lineEnd + 2;
      if (!/^\d+$/.test(line)) return MALFORMED;
      const end = lineEnd + 2 + Number(line);
      if (end + 2 > bytes.length) return INCOMPLETE;
      return bytes[end] === 0x0d && bytes[end + 1] === 0x0a ? end + 2 : MALFORMED;
    }
    case 0x2a: {
      // *
      if (line === '-1') return lineEnd + 2;
      if (!/^\d+$/.test(line) || depth > 4) return MALFORMED;
      let at = lineEnd + 2;
      for (let i = 0; i < Number(line); i++) {
        at = respReplyEnd(bytes, at, depth + 1);
        if (at < 0) return at;
      }
      return at;
    }
    default:
      return MALFORMED;
  }
}

// One connection and what came back on it.
class Connection {
  readonly chunks: Buffer[] = [];
  receivedBytes = 0;
  closedByServer = false;
  closed = false;
  frames = 0;
  readonly errorCodes: number[] = [];
  malformed: string | null = null;
  // Chosen by the first byte written, as the server chooses.
  nativeDialect: boolean | null = null;
  // Until a mutated input is sent, the server's view of the stream is known: valid requests
  // must then be answered exactly.
  clean = true;
  private decoder: FrameDecoder | null = null;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => (this.closedByServer = true));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  private onData(chunk: Buffer): void {
    this.receivedBytes += chunk.length;
    if (this.nativeDialect === true) {
      this.decoder ??= new FrameDecoder(
        {
          onFrame: (opcode, flags, _requestId, bytes, start, end) => {
            this.frames++;
            if ((flags & FrameFlag.REPLY) === 0) this.malformed ??= 'a reply frame without the REPLY flag';
            if (opcode !== Opcode.ERROR) return;
            try {
              const body = decodeBody(bytes, start, end) as { code?: unknown };
              const code = Number(body?.code);
              this.errorCodes.push(code);
              if (!ERROR_CODE_NAMES.has(code)) this.malformed ??= `unknown error code ${code}`;
            } catch (error) {
              this.malformed ??= `an ERROR body that does not decode: ${(error as Error).message}`;
            }
          },
        },
        // Replies are bounded by the frame limit too.
        limits.frameBytesMax,
      );
      try {
        this.decoder.push(chunk);
      } catch (error) {
        this.malformed ??= `reply frames do not decode: ${(error as Error).message}`;
      }
    } else {
      this.chunks.push(chunk);
    }
  }

  // RESP replies so far: how many, and how many are errors of which kind.
  respReplies(): { count: number; errors: string[]; rest: number } {
    const bytes = Buffer.concat(this.chunks);
    let at = 0;
    let count = 0;
    const errors: string[] = [];
    for (;;) {
      const end = respReplyEnd(bytes, at);
      if (end === MALFORMED) {
        this.malformed ??= `a malformed RESP reply at byte ${at}: ${JSON.stringify(bytes.toString('latin1', at, at + 80))}`;
        break;
      }
      if (end === INCOMPLETE) break;
      if (bytes[at] === 0x2d) errors.push(bytes.toString('latin1', at + 1, Math.min(end - 2, at + 200)));
      count++;
      at = end;
    }
    return { count, errors, rest: bytes.length - at };
  }
}

async function open(port: number): Promise<Connection | null> {
  const socket = connect({ host: '127.0.0.1', port, noDelay: true });
  const connection = new Connection(socket);
  const ok = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 10_000);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (!ok) {
    socket.destroy();
    return null;
  }
  return connection;
}

// Writes `bytes` in random pieces, sometimes with a pause between them.
async function writeInPieces(rng: Rng, connection: Connection, bytes: Buffer): Promise<void> {
  if (connection.nativeDialect === null && bytes.length > 0) connection.nativeDialect = bytes[0] === 0;
  let at = 0;
  while (at < bytes.length && !connection.closed) {
    const piece = rng.chance(0.5) ? bytes.length - at : 1 + rng.int(Math.min(bytes.length - at, 4096));
    connection.socket.write(bytes.subarray(at, at + piece));
    at += piece;
    if (rng.chance(0.1)) await sleep(rng.int(5));
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

// ---- the network phase ----

interface Counters {
  cases: number;
  bytesSent: number;
  requestsValid: number;
  repliesNative: number;
  repliesResp: number;
  closedByServer: number;
  errorCodes: Map<string, number>;
  scenarios: Map<string, number>;
  datagrams: number;
  healthChecks: number;
  rssMax: number;
}

function bump(map: Map<string, number>, key: string, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

type Scenario = (rng: Rng, connection: Connection, counters: Counters) => Promise<void>;

// Valid native requests, pipelined: every one must be answered, none with an error.
const nativeValid: Scenario = async (rng, connection, counters) => {
  const framesBefore = connection.frames;
  const errorsBefore = connection.errorCodes.length;
  const n = 1 + rng.int(40);
  const frames = Array.from({ length: n }, (_, i) => {
    const request = validNativeRequest(rng);
    const body = request.body === null ? Buffer.alloc(0) : Buffer.from(encodeBody(request.body));
    return encodeFrame(request.opcode, 0, i + 1, body);
  });
  const input = Buffer.concat(frames);
  await writeInPieces(rng, connection, input);
  counters.bytesSent += input.length;
  counters.requestsValid += n;
  const answered = (): number => connection.frames - framesBefore;
  if (!(await waitUntil(() => answered() >= n || connection.closed, 20_000))) {
    found('no-reply', `${answered()} of ${n} valid native requests answered within 20 s`, input);
  } else if (answered() < n) {
    found('closed-on-valid', `the server closed a connection after ${answered()} of ${n} valid requests`, input);
  }
  for (const code of connection.errorCodes.slice(errorsBefore)) {
    found('error-on-valid', `valid native request got error ${ERROR_CODE_NAMES.get(code)}`, input);
  }
};

// Native frames, some well framed with odd contents, some mutated outright.
const nativeMutated: Scenario = async (rng, connection, counters) => {
  connection.clean = false;
  const parts: Buffer[] = [];
  const n = 1 + rng.int(10);
  for (let i = 0; i < n; i++) {
    const request = rng.chance(0.5) ? oddNativeRequest(rng) : { ...validNativeRequest(rng), flags: 0 };
    const body = Buffer.isBuffer(request.body) ? request.body : request.body === null ? Buffer.alloc(0) : Buffer.from(encodeBody(request.body));
    if (body.length > limits.frameBytesMax - FRAME_HEADER_BYTES) continue;
    parts.push(encodeFrame(request.opcode, request.flags, rng.int(2 ** 32), body));
  }
  let input = Buffer.concat(parts);
  // A mutation of the first byte of a connection makes it RESP.
  if (rng.chance(0.5)) input = mutate(rng, input, 1 + rng.int(4));
  await writeInPieces(rng, connection, input);
  counters.bytesSent += input.length;
  await waitUntil(() => connection.closed, rng.pick([20, 100, 300]));
};

// Valid RESP commands, multibulk or inline: every one must be answered, none with a protocol
// error or an INTERNAL error.
const respValid: Scenario = async (rng, connection, counters) => {
  const before = connection.respReplies();
  const n = 1 + rng.int(40);
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const args = rng.pick(RESP_COMMANDS)(rng);
    parts.push((rng.chance(0.3) ? respInline(args) : null) ?? respMultibulk(args));
  }
  const input = Buffer.concat(parts);
  await writeInPieces(rng, connection, input);
  counters.bytesSent += input.length;
  counters.requestsValid += n;
  let replies = connection.respReplies();
  const answered = (): number => replies.count - before.count;
  if (!(await waitUntil(() => ((replies = connection.respReplies()), answered() >= n || connection.closed), 20_000))) {
    found('no-reply', `${answered()} of ${n} valid RESP commands answered within 20 s`, input);
  } else if (answered() < n) {
    found('closed-on-valid', `the server closed a connection after ${answered()} of ${n} valid commands`, input);
  }
  for (const error of replies.errors.slice(before.errors.length)) {
    // HELLO 3 is refused by design; everything else valid must succeed.
    if (!error.startsWith('NOPROTO')) found('error-on-valid', `valid RESP command got -${error}`, input);
  }
};

// RESP commands mutated, unknown, or with huge and negative lengths.
const respMutated: Scenario = async (rng, connection, counters) => {
  connection.clean = false;
  const parts: Buffer[] = [];
  const n = 1 + rng.int(8);
  for (let i = 0; i < n; i++) {
    switch (rng.int(6)) {
      case 0:
        parts.push(respMultibulk([rng.pick(['FLUSHALL', 'SHUTDOWN', 'KEYS', 'EVAL', 'DEBUG', 'xyz']), rng.pick(KEYS)]));
        break;
      case 1:
        parts.push(
          Buffer.from(
            rng.pick(['*99999999999\r\n', '*-1\r\n', '*0\r\n', '*1\r\n$-5\r\n', '*2\r\n$999999999\r\n', '$-5\r\n', `*${limits.respArgsMax + 1}\r\n`, '*1\r\n$4194304\r\n']),
          ),
        );
        break;
      case 2:
        parts.push(Buffer.from(`SET "a b ${rng.pick(['\\x41', '\\', "'", '"', '\\xZZ'])}\r\n`, 'latin1'));
        break;
      case 3:
        parts.push(rng.bytes(rng.size(300)));
        break;
      default: {
        const args = rng.pick(RESP_COMMANDS)(rng);
        parts.push(mutate(rng, respMultibulk(args), 1 + rng.int(3)));
      }
    }
  }
  let input = Buffer.concat(parts);
  // Native frames start with 0x00; keep this one RESP.
  if (input.length > 0 && input[0] === 0 && connection.nativeDialect === null) input = Buffer.concat([Buffer.from('PING\r\n'), input]);
  await writeInPieces(rng, connection, input);
  counters.bytesSent += input.length;
  await waitUntil(() => connection.closed, rng.pick([20, 100, 300]));
};

// Random bytes in either dialect; sometimes a partial frame and a hang-up.
const randomBytes: Scenario = async (rng, connection, counters) => {
  connection.clean = false;
  const input = rng.bytes(1 + rng.size(2000));
  if (rng.chance(0.3)) input[0] = 0;
  await writeInPieces(rng, connection, input);
  counters.bytesSent += input.length;
  await waitUntil(() => connection.closed, rng.pick([0, 20, 100]));
};

const SCENARIOS: ReadonlyArray<[string, Scenario]> = [
  ['native-valid', nativeValid],
  ['native-mutated', nativeMutated],
  ['native-mutated', nativeMutated],
  ['resp-valid', respValid],
  ['resp-mutated', respMutated],
  ['resp-mutated', respMutated],
  ['random-bytes', randomBytes],
];

async function networkPhase(options: Options, server: Dkvd): Promise<Counters> {
  const counters: Counters = {
    cases: 0,
    bytesSent: 0,
    requestsValid: 0,
    repliesNative: 0,
    repliesResp: 0,
    closedByServer: 0,
    errorCodes: new Map(),
    scenarios: new Map(),
    datagrams: 0,
    healthChecks: 0,
    rssMax: 0,
  };
  const started = Date.now();
  const deadline = started + options.seconds * 1000;
  let stopping = false;
  const done = (): boolean => stopping || Date.now() >= deadline || counters.cases >= options.cases;
  void server.exited.then((code) => {
    if (!stopping) {
      found('crash', `dkvd exited with ${code} during the run; its last log lines:\n${server.logLines.slice(-20).join('\n')}`);
      stopping = true;
    }
  });

  const worker = async (index: number): Promise<void> => {
    // Each worker has its own generator, so its inputs replay from the seed.
    const rng = new Rng(options.seed * 1000 + index);
    while (!done()) {
      const connection = await open(server.tcpPort);
      if (connection === null) {
        if (!done()) found('connect-failed', `worker ${index} could not connect`);
        await sleep(100);
        continue;
      }
      // One to three scenarios on the same connection, as long as it stays open.
      const rounds = 1 + rng.int(3);
      for (let round = 0; round < rounds && !connection.closed && !done(); round++) {
        const [name, scenario] = round === 0 ? rng.pick(SCENARIOS) : sameDialect(rng, connection);
        bump(counters.scenarios, name);
        await scenario(rng, connection, counters);
        counters.cases++;
      }
      if (connection.malformed !== null) found('malformed-reply', connection.malformed);
      const errorNames: string[] = [];
      if (connection.nativeDialect === true) {
        counters.repliesNative += connection.frames;
        for (const code of connection.errorCodes) errorNames.push(ERROR_CODE_NAMES.get(code) ?? String(code));
      } else {
        const replies = connection.respReplies();
        counters.repliesResp += replies.count;
        for (const error of replies.errors) errorNames.push(`-${error.split(' ').slice(0, error.startsWith('ERR') ? 3 : 1).join(' ')}`);
      }
      for (const name of errorNames) {
        bump(counters.errorCodes, name);
        if (/INTERNAL|STORAGE_FAILED/.test(name)) found('internal-error', `a reply carried ${name}`);
      }
      if (connection.closedByServer) counters.closedByServer++;
      if (rng.chance(0.5)) connection.socket.destroy();
      else connection.socket.end();
      await waitUntil(() => connection.closed, 2_000);
      connection.socket.destroy();
    }
  };

  // A fresh client must be served every second, and the canary must keep its value.
  const canaryValue = `canary-${options.seed}`;
  const health = async (): Promise<void> => {
    let last = 0;
    while (!done()) {
      await sleep(Math.max(0, 1000 - (Date.now() - last)));
      if (done()) break;
      last = Date.now();
      try {
        const client = await DkvClient.connect({ port: server.tcpPort, timeoutMs: 20_000, connectTimeoutMs: 10_000 });
        try {
          await client.ping();
          const got = await client.get(CANARY_KEY);
          if (counters.healthChecks > 0 && got?.values[0]?.toString() !== canaryValue) {
            found('canary', `the canary key reads ${JSON.stringify(got?.values.map(String))}`);
          }
          await client.put(CANARY_KEY, canaryValue);
          counters.healthChecks++;
        } finally {
          await client.close();
        }
      } catch (error) {
        found('health', `a fresh client was not served: ${(error as Error).message}`);
      }
      counters.rssMax = Math.max(counters.rssMax, rssBytes(server.pid));
    }
  };

  // Random datagrams at the membership port: dropped, but they must not hurt.
  const datagrams = async (): Promise<void> => {
    const rng = new Rng(options.seed ^ 0x5eed);
    const socket = createSocket('udp4');
    socket.on('error', () => {});
    while (!done()) {
      const header = rng.chance(0.5) ? encodeDatagramHeader(rng.chance(0.5) ? 'fuzz' : null, rng.chance(0.5)) : Buffer.alloc(0);
      const datagram = Buffer.concat([header, rng.bytes(rng.size(1500))]).subarray(0, 1500);
      await new Promise<void>((resolve) => socket.send(datagram, server.udpPort, '127.0.0.1', () => resolve()));
      counters.datagrams++;
      await sleep(10);
    }
    socket.close();
  };

  const progress = setInterval(() => {
    const elapsed = (Date.now() - started) / 1000;
    process.stderr.write(
      `  ${elapsed.toFixed(0)} s: ${counters.cases} cases, ${(counters.bytesSent / 2 ** 20).toFixed(1)} MiB sent, ` +
        `RSS ${(rssBytes(server.pid) / 2 ** 20).toFixed(0)} MiB, ${findings.length} findings\n`,
    );
  }, 10_000);
  await Promise.all([...Array.from({ length: options.connections }, (_, i) => worker(i)), health(), datagrams()]);
  clearInterval(progress);
  stopping = true;
  return counters;
}

// Follow-on scenarios keep to the dialect the connection already chose, and send valid
// requests only while nothing mutated has gone before them.
function sameDialect(rng: Rng, connection: Connection): [string, Scenario] {
  const valid = connection.clean && rng.chance(0.5);
  if (connection.nativeDialect === true) return valid ? ['native-valid', nativeValid] : ['native-mutated', nativeMutated];
  return valid ? ['resp-valid', respValid] : ['resp-mutated', respMutated];
}

// ---- the decoder phase ----

interface DecoderRun {
  name: string;
  runs: number;
  errors: number;
  ms: number;
}

function decoderPhase(options: Options): DecoderRun[] {
  const targets: Array<[string, fc.Arbitrary<Uint8Array>, (input: Uint8Array, cuts: number[]) => boolean]> = [];
  const cuts = fc.array(fc.nat(), { maxLength: 8 });
  const onlyDkvError = (f: () => void): boolean | 'error' => {
    try {
      f();
      return true;
    } catch (error) {
      return error instanceof DkvError ? 'error' : false;
    }
  };
  let errors = 0;
  const count = (result: boolean | 'error'): boolean => {
    if (result === 'error') errors++;
    return result !== false;
  };
  const frameSink = { onFrame() {} };
  const plausibleFrame = fc
    .tuple(fc.nat(600), fc.uint8Array({ maxLength: 600 }))
    .map(([length, tail]): Uint8Array => Buffer.concat([Buffer.from([0, 0, length >> 8, length & 0xff, 1]), tail]));
  targets.push([
    'FrameDecoder',
    fc.oneof(fc.uint8Array({ maxLength: 300 }), plausibleFrame),
    (input, points) => count(onlyDkvError(() => {
      const decoder = new FrameDecoder(frameSink, 512);
      for (const chunk of chunksAt(input, points)) decoder.push(chunk);
    })),
  ]);
  const respSink = { onCommand() {} };
  const starred = fc
    .tuple(fc.nat(8), fc.uint8Array({ maxLength: 300 }))
    .map(([n, tail]): Uint8Array => Buffer.concat([Buffer.from(`*${n}\r\n$`), tail]));
  targets.push([
    'RespParser',
    fc.oneof(fc.uint8Array({ maxLength: 300 }), starred, fc.string({ unit: 'binary-ascii', maxLength: 200 }).map((s): Uint8Array => Buffer.from(s, 'latin1'))),
    (input, points) => count(onlyDkvError(() => {
      const parser = new RespParser(respSink);
      for (const chunk of chunksAt(input, points)) parser.push(chunk);
    })),
  ]);
  const requestDecoders = [
    (b: unknown) => decodeKeyRequest(b, 'GET'),
    decodePutRequest,
    decodeDeleteRequest,
    decodeMgetRequest,
    decodeMputRequest,
    decodeGetReply,
  ];
  const validBodies = [
    encodeBody({ key: Buffer.from('k'), value: Buffer.from('v'), context: encodeContext([['n1', 1]]) }),
    encodeBody({ keys: [Buffer.from('a'), 'b'] }),
    encodeBody({ entries: [{ key: 'a', value: Buffer.from('b') }] }),
    encodeBody({ values: [Buffer.from('v')], context: encodeContext([['n1', 2]]), versions: [['n1', 2, 5]] }),
  ];
  const mutatedBody = fc
    .tuple(fc.constantFrom(...validBodies), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }))
    .map(([body, edits]): Uint8Array => {
      const copy = Buffer.from(body);
      for (const [at, value] of edits) copy[at % copy.length] = value;
      return copy;
    });
  targets.push([
    'decodeBody + request decoders',
    fc.oneof(fc.uint8Array({ maxLength: 200 }), mutatedBody),
    (input) => {
      let body: unknown;
      const decoded = onlyDkvError(() => {
        body = decodeBody(input, 0, input.length);
      });
      if (decoded !== true) return count(decoded);
      return requestDecoders.every((decode) => count(onlyDkvError(() => decode(body))));
    },
  ]);
  targets.push([
    'decodeDatagramHeader',
    fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.tuple(fc.nat(7), fc.uint8Array({ maxLength: 64 })).map(([flags, tail]): Uint8Array => Buffer.concat([Buffer.from([0xd7, 1, flags]), tail])),
    ),
    (input) => count(onlyDkvError(() => decodeDatagramHeader(input))),
  ]);

  const results: DecoderRun[] = [];
  const perTargetMs = (options.decoderSeconds * 1000) / targets.length;
  for (const [name, arbitrary, check] of targets) {
    let runs = 0;
    errors = 0;
    const started = performance.now();
    const details = fc.check(
      fc.property(arbitrary, cuts, (input, points) => {
        runs++;
        return check(input, points);
      }),
      { numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: perTargetMs, markInterruptAsFailure: false, seed: options.seed },
    );
    if (details.failed) {
      found('decoder', `${name} threw something other than DkvError: ${fc.defaultReportMessage(details) ?? ''}`);
    }
    results.push({ name, runs, errors, ms: performance.now() - started });
  }
  return results;
}

// ---- main ----

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  process.stderr.write(
    `fuzz: seed=${options.seed} seconds=${options.seconds} cases=${options.cases} connections=${options.connections} ` +
      `storage=${options.storage} decoder-seconds=${options.decoderSeconds}\n`,
  );

  let network: Counters | null = null;
  let server: Dkvd | null = null;
  if (options.seconds > 0 && options.cases > 0) {
    server = await startDkvd({ storage: options.storage });
    const rssStart = rssBytes(server.pid);
    process.stderr.write(`network phase: dkvd pid ${server.pid} on tcp ${server.tcpPort}, udp ${server.udpPort}\n`);
    const started = Date.now();
    try {
      network = await networkPhase(options, server);
    } finally {
      const networkMs = Date.now() - started;
      if (server.child.exitCode === null && server.child.signalCode === null) {
        // Every connection must be let go of.
        let current = NaN;
        try {
          const client = await DkvClient.connect({ port: server.tcpPort, timeoutMs: 20_000 });
          const deadline = Date.now() + 20_000;
          do {
            current = Number((await client.stats()).connectionsCurrent);
            if (current <= 1) break;
            await sleep(100);
          } while (Date.now() < deadline);
          const stats = await client.stats();
          process.stderr.write(
            `server stats: ${JSON.stringify({ connectionsTotal: stats.connectionsTotal, protocolErrors: stats.protocolErrors, readsPaused: stats.readsPaused, keys: stats.keys, datagramsIn: stats.datagramsIn })}\n`,
          );
          await client.close();
        } catch (error) {
          found('health', `the final STATS failed: ${(error as Error).message}`);
        }
        if (current > 1) found('leak', `${current - 1} connections still open 20 s after the run`);
        const rssEnd = rssBytes(server.pid);
        server.child.kill('SIGTERM');
        const timer = setTimeout(() => server!.child.kill('SIGKILL'), 15_000);
        const code = await server.exited;
        clearTimeout(timer);
        if (code !== 0) found('shutdown', `dkvd exited with ${code} on SIGTERM`);
        process.stderr.write(
          `network phase: ${(networkMs / 1000).toFixed(1)} s; RSS ${(rssStart / 2 ** 20).toFixed(0)} MiB at start, ` +
            `${((network?.rssMax ?? NaN) / 2 ** 20).toFixed(0)} MiB peak (sampled each second), ${(rssEnd / 2 ** 20).toFixed(0)} MiB at the end\n`,
        );
      }
      const errorLines = server.logLines.filter((line) => /"level":(50|60)/.test(line));
      for (const line of errorLines.slice(0, 5)) found('server-log', line);
      rmSync(server.dataDir, { recursive: true, force: true });
    }
    if (network !== null) {
      process.stderr.write(
        `network phase: ${network.cases} cases (${[...network.scenarios].map(([k, v]) => `${k} ${v}`).join(', ')}), ` +
          `${(network.bytesSent / 2 ** 20).toFixed(1)} MiB sent, ${network.requestsValid} valid requests, ` +
          `${network.repliesNative} native and ${network.repliesResp} RESP replies, ${network.closedByServer} connections closed by the server, ` +
          `${network.datagrams} datagrams, ${network.healthChecks} health checks\n` +
          `  error replies: ${[...network.errorCodes].sort((a, b) => b[1] - a[1]).slice(0, 20).map(([k, v]) => `${k} ${v}`).join(', ')}\n`,
      );
    }
  }

  if (options.decoderSeconds > 0) {
    process.stderr.write(`decoder phase: ${options.decoderSeconds} s\n`);
    const results = decoderPhase(options);
    let total = 0;
    for (const r of results) {
      total += r.runs;
      process.stderr.write(`  ${r.name}: ${r.runs} inputs in ${(r.ms / 1000).toFixed(1)} s, ${r.errors} DkvErrors\n`);
    }
    process.stderr.write(`decoder phase: ${total} inputs\n`);
  }

  process.stderr.write(
    findings.length === 0
      ? `fuzz: no findings (seed=${options.seed})\n`
      : `fuzz: ${[...findingKinds].map(([k, v]) => `${v} ${k}`).join(', ')} (seed=${options.seed})\n`,
  );
  process.exit(findings.length === 0 ? 0 : 1);
}

main().catch((error: unknown) => {
  process.stderr.write(`fuzz: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
