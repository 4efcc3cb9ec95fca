// The RESP dialect: Redis commands over the same port, for redis-cli, Redis client libraries
// and netcat. Replies go out in command order, as RESP requires, even when a write finishes
// after a later read.

import { asDkvError, DkvError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { isTombstone, winnerOf, type Versioned } from '../version/dvv.js';
import { decodeVersionsBody, readSingleValueInPlace, type QuorumOptions, type Span } from '../wire/messages.js';
import { recordIsTombstone, RECORD_HEADER_BYTES, type WriteResult } from '../store/versioned-store.js';
import {
  RESP_EMPTY_ARRAY,
  RESP_NIL,
  RESP_OK,
  RESP_PONG,
  RespParser,
  leadingKeys,
  respArrayHeader,
  respBulk,
  respBulkBytes,
  respBulkArray,
  respBulkString,
  respError,
  respInteger,
  type RespArgs,
  type RespSink,
  writeRespBulk,
} from '../wire/resp.js';
import type { Connection, Session } from './connection.js';
import type { Service } from './service.js';
import type { RequestCounter } from './stats.js';
import { RESP_COMMANDS, type RespCommandSpec } from './resp-commands.js';

// A reply slot: filled when the store answers, or holding a command (`deferred`) that waits for
// its turn to start.
interface Slot {
  reply: Buffer | null;
  deferred: RespArgs | null;
}

type Handler = (args: RespArgs) => Buffer | Promise<Buffer>;

const GET = Buffer.from('get');
const SET = Buffer.from('set');
const MGET = Buffer.from('mget');
const EXISTS = Buffer.from('exists');

const okReply = (): Buffer => RESP_OK;

export class RespSession implements Session, RespSink {
  private readonly parser = new RespParser(this);
  // Replies waiting for an earlier one; empty when every reply so far is written.
  private readonly queue: Slot[] = [];
  // Slots in the queue whose command has not started yet.
  private deferredCount = 0;
  private readonly valueSpan: Span = { start: 0, end: 0 };
  // The acknowledgement of the last SET, and its reply: SETs that share one (a log batch's) share
  // the reply's promise too.
  private lastAck: Promise<unknown> | null = null;
  private lastAckReply: Promise<Buffer> | null = null;
  // The last reply promise waited for, and the slots that wait for it.
  private awaited: Promise<Buffer> | null = null;
  private awaitedSlots: Slot[] = [];
  private readonly handlers: ReadonlyMap<string, Handler>;
  // GET's and SET's request counters, taken at their first use (STATS lists what was used).
  private getCounter: RequestCounter | null = null;
  private setCounter: RequestCounter | null = null;

  constructor(
    private readonly connection: Connection,
    private readonly service: Service,
  ) {
    this.handlers = new Map<string, Handler>([
      ['get', (a) => this.get(a)],
      ['set', (a) => this.set(a)],
      ['del', (a) => this.del(a)],
      ['exists', (a) => this.exists(a)],
      ['mget', (a) => this.mget(a)],
      ['mset', (a) => this.mset(a)],
      ['dbsize', () => respInteger(this.service.store.liveKeys)],
      ['ping', (a) => (a.count === 1 ? RESP_PONG : respBulk(a.bytes, a.starts[1], a.ends[1]))],
      ['echo', (a) => respBulk(a.bytes, a.starts[1], a.ends[1])],
      ['info', (a) => this.info(a)],
      ['quit', () => this.quit()],
      ['select', (a) => this.select(a)],
      ['client', (a) => this.client(a)],
      ['hello', (a) => this.hello(a)],
      ['command', (a) => this.command(a)],
      ['config', (a) => this.config(a)],
    ]);
  }

  push(chunk: Buffer): void {
    // A pipeline of GETs or SETs on one node: warm what their reads (a SET's of the record it
    // builds on) will touch, together, before the parser hands them over one by one. Only a
    // chunk that starts at a command is scanned.
    if (this.service.cluster.size === 1 && this.parser.bufferedBytes === 0) this.service.store.prefetchReads(chunk, leadingKeys);
    this.parser.push(chunk);
  }

  pause(): void {
    this.parser.hold();
  }

  resume(): void {
    this.parser.release();
  }

  fatalReply(error: unknown): Buffer {
    return respError(`ERR ${asDkvError(error).message}`);
  }

  onCommand(args: RespArgs): void {
    // Reads see only durable writes, so a read pipelined behind this connection's own writes
    // waits for them (`SET a 1` then `GET a` answers 1, as in Redis), and every command after a
    // waiting read waits its turn too, so that no later write overtakes it.
    if (this.deferredCount > 0 || (this.queue.length > 0 && isRead(args))) {
      this.queue.push({ reply: null, deferred: copyArgs(args) });
      this.deferredCount++;
      this.connection.requestStarted();
      return;
    }
    if (this.queue.length === 0 && args.count === 2 && nameIs(args, GET) && this.service.cluster.size === 1 && this.getInPlace(args)) return;
    const slot = this.start(args);
    if (slot === null) return;
    this.queue.push(slot);
    this.connection.requestStarted();
  }

  // Runs a command. Its reply is written now when nothing is ahead of it (returns null), or
  // else waits in the slot returned.
  private start(args: RespArgs, slot?: Slot): Slot | null {
    const reply = this.execute(args);
    if (reply instanceof Promise) return this.whenDone(reply, slot ?? { reply: null, deferred: null });
    if (slot === undefined && this.queue.length === 0) {
      this.connection.send(reply);
      return null;
    }
    const ready = slot ?? { reply: null, deferred: null };
    ready.reply = reply;
    return ready;
  }

  // Kept out of start(): closures over `this` there would make V8 allocate a context on every
  // call of start(), a GET's too (40 bytes per GET, measured with bench/micro.ts once SETs run).
  // Commands whose replies come from one promise (a pipeline's SETs, made durable by one log
  // sync) wait on it together: one reaction for all of them.
  private whenDone(reply: Promise<Buffer>, slot: Slot): Slot {
    if (reply === this.awaited) {
      this.awaitedSlots.push(slot);
      return slot;
    }
    const slots = [slot];
    this.awaited = reply;
    this.awaitedSlots = slots;
    reply.then(
      (bytes) => {
        this.settled(reply);
        this.fill(slots, bytes);
      },
      (error: unknown) => {
        this.settled(reply);
        for (const waiting of slots) waiting.reply = this.errorReply(error);
        this.drain();
      },
    );
    return slot;
  }

  // Slots that come for `reply` once it has settled need a reaction of their own.
  private settled(reply: Promise<Buffer>): void {
    if (this.awaited === reply) this.awaited = null;
  }

  private countGet(): void {
    (this.getCounter ??= this.service.stats.requestCounter('resp.get')).count++;
  }

  private execute(args: RespArgs): Buffer | Promise<Buffer> {
    try {
      if (this.service.shuttingDown) throw new DkvError('SHUTTING_DOWN', 'the node is shutting down');
      return this.dispatch(args);
    } catch (error) {
      return this.errorReply(error);
    }
  }

  private dispatch(args: RespArgs): Buffer | Promise<Buffer> {
    // GET and SET are recognised from their bytes; everything else by its lower-cased name.
    if (nameIs(args, GET) && args.count === 2) {
      this.countGet();
      return this.get(args);
    }
    if (nameIs(args, SET) && args.count === 3) {
      (this.setCounter ??= this.service.stats.requestCounter('resp.set')).count++;
      return this.set(args);
    }
    const name = text(args, 0).toLowerCase();
    const spec = RESP_COMMANDS.get(name);
    const handler = this.handlers.get(name);
    if (spec === undefined || handler === undefined) return unknownCommand(args);
    this.service.stats.countRequest(`resp.${name}`);
    if (!arityFits(spec, args.count)) {
      return respError(`ERR wrong number of arguments for '${name}' command`);
    }
    return handler(args);
  }

  private fill(slots: Slot[], reply: Buffer): void {
    for (const slot of slots) slot.reply = reply;
    this.drain();
  }

  // Writes the replies that are ready at the head of the queue, and starts waiting commands
  // whose turn has come: a write once every command before it has started, a read once every
  // reply before it is written.
  private drain(): void {
    const queue = this.queue;
    let written = 0;
    for (let i = 0; i < queue.length; i++) {
      const slot = queue[i]!;
      if (slot.deferred !== null) {
        if (i > written && isRead(slot.deferred)) break;
        const args = slot.deferred;
        slot.deferred = null;
        this.deferredCount--;
        this.start(args, slot);
      }
      if (i === written && slot.reply !== null) {
        this.connection.send(slot.reply);
        written++;
      }
    }
    if (written > 0) queue.splice(0, written);
    for (let i = 0; i < written; i++) this.connection.requestFinished();
  }

  private errorReply(error: unknown): Buffer {
    const dkvError = asDkvError(error);
    this.service.stats.countError(dkvError.code);
    if (dkvError.code === 'INTERNAL' || dkvError.code === 'STORAGE_FAILED') {
      this.service.log.error({ err: error }, 'command failed');
    }
    return respError(`${dkvError.code} ${dkvError.message}`);
  }

  private get(args: RespArgs): Buffer | Promise<Buffer> {
    if (this.service.cluster.size > 1) return this.clusterRead(keyOf(args, 1)).then(bulkOfWinner);
    const keyStart = args.starts[1]!;
    const keyEnd = args.ends[1]!;
    if (keyEnd - keyStart > limits.keyBytesMax) checkedKey(args, 1);
    const record = this.service.store.readRecord(args.bytes, keyStart, keyEnd);
    if (record === undefined || recordIsTombstone(record)) return RESP_NIL;
    if (readSingleValueInPlace(record, RECORD_HEADER_BYTES, record.length, this.valueSpan)) {
      return respBulk(record, this.valueSpan.start, this.valueSpan.end);
    }
    return bulkOfWinner(this.service.store.read(keyOf(args, 1)));
  }

  // GET when nothing waits ahead of it: a single value is written straight into the
  // connection's output slab, with no reply buffer of its own. False: not handled here.
  private getInPlace(args: RespArgs): boolean {
    const keyStart = args.starts[1]!;
    const keyEnd = args.ends[1]!;
    if (keyEnd - keyStart > limits.keyBytesMax || this.service.shuttingDown) return false;
    const record = this.service.store.readRecord(args.bytes, keyStart, keyEnd);
    if (record === undefined || recordIsTombstone(record)) return false;
    const span = this.valueSpan;
    if (!readSingleValueInPlace(record, RECORD_HEADER_BYTES, record.length, span)) return false;
    const offset = this.connection.reserve(respBulkBytes(span.end - span.start));
    if (offset < 0) return false;
    this.countGet();
    writeRespBulk(this.connection.outputSlab, offset, record, span.start, span.end, this.connection.outputView);
    return true;
  }

  private set(args: RespArgs): Buffer | Promise<Buffer> {
    if (args.count > 3) {
      return respError(
        'ERR dkv supports plain SET key value only: no expiry (EX, PX, EXAT, PXAT, KEEPTTL) and no conditions (NX, XX, GET)',
      );
    }
    const key = checkedKey(args, 1);
    const value = checkedValue(args, 2);
    const ack = this.service.acknowledgedWrite(key, value, DEFAULT_QUORUM);
    if (ack !== this.lastAck) {
      this.lastAck = ack;
      this.lastAckReply = ack.then(okReply);
    }
    return this.lastAckReply!;
  }

  // Across the cluster: the coordinator with the node's default R and W.
  private clusterRead(key: Uint8Array): Promise<Versioned | undefined> {
    return this.service.coordinator.get(key, DEFAULT_QUORUM).then(decodeVersionsBody);
  }

  private write(key: Uint8Array, value: Uint8Array | null): Promise<WriteResult> {
    return this.service.write(key, value, undefined, DEFAULT_QUORUM);
  }

  private async del(args: RespArgs): Promise<Buffer> {
    const keys = checkedKeys(args, 1, 1);
    const results = await Promise.all(keys.map((key) => this.write(key, null)));
    return respInteger(results.filter((r) => r.existed).length);
  }

  private exists(args: RespArgs): Buffer | Promise<Buffer> {
    const keys = checkedKeys(args, 1, 1);
    if (this.service.cluster.size > 1) {
      return Promise.all(keys.map((key) => this.clusterRead(key))).then((values) =>
        respInteger(values.filter((v) => v !== undefined && !isTombstone(v)).length),
      );
    }
    return respInteger(keys.filter((key) => this.service.store.exists(key)).length);
  }

  private mget(args: RespArgs): Buffer | Promise<Buffer> {
    const keys = checkedKeys(args, 1, 1);
    const header = respArrayHeader(keys.length);
    if (this.service.cluster.size > 1) {
      return Promise.all(keys.map((key) => this.clusterRead(key))).then((values) =>
        Buffer.concat([header, ...values.map(bulkOfWinner)]),
      );
    }
    const parts = [header];
    for (const key of keys) parts.push(bulkOfWinner(this.service.store.read(key)));
    return Buffer.concat(parts);
  }

  private async mset(args: RespArgs): Promise<Buffer> {
    if ((args.count - 1) % 2 !== 0) return respError("ERR wrong number of arguments for 'mset' command");
    const pairs = (args.count - 1) / 2;
    if (pairs > limits.multiKeysMax) {
      throw new DkvError('TOO_MANY_KEYS', `MSET has ${pairs} pairs (max ${limits.multiKeysMax})`);
    }
    const writes: Promise<unknown>[] = [];
    // Keys and values are checked before any write starts, so a bad pair writes nothing.
    const entries: Array<[Uint8Array, Uint8Array]> = [];
    for (let i = 1; i < args.count; i += 2) entries.push([checkedKey(args, i), checkedValue(args, i + 1)]);
    for (const [key, value] of entries) writes.push(this.write(key, value));
    await Promise.all(writes);
    return RESP_OK;
  }

  private info(args: RespArgs): Buffer {
    const section = args.count > 1 ? text(args, 1).toLowerCase() : 'all';
    const snapshot = this.service.statsSnapshot();
    const lines: string[] = [];
    if (section === 'all' || section === 'default' || section === 'everything' || section === 'server') {
      lines.push(
        '# Server',
        'redis_version:7.0.0',
        `dkv_version:${this.service.version}`,
        `dkv_node_id:${this.service.nodeId}`,
        'redis_mode:standalone',
        `process_id:${process.pid}`,
        `uptime_in_seconds:${Math.floor(Number(snapshot.uptimeMs) / 1000)}`,
        '',
      );
    }
    if (section === 'all' || section === 'default' || section === 'everything' || section === 'stats') {
      lines.push('# Stats');
      for (const [name, value] of Object.entries(snapshot)) lines.push(`${name}:${value}`);
      lines.push('');
    }
    if (section === 'membership') {
      lines.push('# Membership');
      for (const [name, value] of Object.entries(snapshot)) if (name.startsWith('swim')) lines.push(`${name}:${value}`);
      lines.push('');
    }
    if (section === 'all' || section === 'default' || section === 'everything' || section === 'keyspace') {
      lines.push('# Keyspace', `db0:keys=${this.service.store.liveKeys},expires=0,avg_ttl=0`, '');
    }
    return respBulkString(lines.join('\r\n'));
  }

  private select(args: RespArgs): Buffer {
    const index = text(args, 1);
    if (!/^-?\d{1,18}$/.test(index)) return respError('ERR value is not an integer or out of range');
    return Number(index) === 0 ? RESP_OK : respError('ERR DB index is out of range');
  }

  private quit(): Buffer {
    this.parser.stop();
    queueMicrotask(() => this.connection.end());
    return RESP_OK;
  }

  private client(args: RespArgs): Buffer {
    const sub = text(args, 1).toLowerCase();
    switch (sub) {
      case 'setname': {
        if (args.count !== 3) return respError("ERR wrong number of arguments for 'client|setname' command");
        const name = text(args, 2);
        if (/[^\x21-\x7e]/.test(name)) {
          return respError('ERR Client names cannot contain spaces, newlines or special characters.');
        }
        this.connection.name = name === '' ? null : name;
        return RESP_OK;
      }
      case 'getname':
        return this.connection.name === null ? RESP_NIL : respBulkString(this.connection.name);
      case 'id':
        return respInteger(this.connection.id);
      case 'setinfo':
        return RESP_OK;
      default:
        return respError(`ERR unknown subcommand '${sub}'. Try CLIENT HELP.`);
    }
  }

  // dkv speaks RESP2 only: HELLO 3 is refused the way Redis refuses an unknown version, and
  // clients fall back to RESP2.
  private hello(args: RespArgs): Buffer {
    let i = 1;
    if (args.count > 1) {
      const version = text(args, 1);
      if (!/^\d+$/.test(version)) return respError('ERR Protocol version is not an integer or out of range');
      if (version !== '2') return respError('NOPROTO sorry, this protocol version is not supported.');
      i = 2;
    }
    for (; i < args.count; i++) {
      const option = text(args, i).toLowerCase();
      if (option === 'setname' && i + 1 < args.count) {
        this.connection.name = text(args, ++i);
      } else if (option === 'auth') {
        return respError('ERR AUTH is not supported: this dkv node has no client password');
      } else {
        return respError(`ERR Syntax error in HELLO option '${option}'`);
      }
    }
    return Buffer.concat([
      respArrayHeader(14),
      respBulkString('server'),
      respBulkString('dkv'),
      respBulkString('version'),
      respBulkString(this.service.version),
      respBulkString('proto'),
      respInteger(2),
      respBulkString('id'),
      respInteger(this.connection.id),
      respBulkString('mode'),
      respBulkString('standalone'),
      respBulkString('role'),
      respBulkString('master'),
      respBulkString('modules'),
      RESP_EMPTY_ARRAY,
    ]);
  }

  private command(args: RespArgs): Buffer {
    const sub = args.count > 1 ? text(args, 1).toLowerCase() : '';
    const entry = (spec: RespCommandSpec): Buffer =>
      Buffer.concat([
        respArrayHeader(6),
        respBulkString(spec.name),
        respInteger(spec.arity),
        respBulkArray(spec.flags),
        respInteger(spec.firstKey),
        respInteger(spec.lastKey),
        respInteger(spec.keyStep),
      ]);
    switch (sub) {
      case '':
        return Buffer.concat([respArrayHeader(RESP_COMMANDS.size), ...[...RESP_COMMANDS.values()].map(entry)]);
      case 'count':
        return respInteger(RESP_COMMANDS.size);
      case 'info': {
        const names = [];
        for (let i = 2; i < args.count; i++) names.push(text(args, i).toLowerCase());
        return Buffer.concat([
          respArrayHeader(names.length),
          ...names.map((n) => {
            const spec = RESP_COMMANDS.get(n);
            return spec === undefined ? RESP_NIL : entry(spec);
          }),
        ]);
      }
      // redis-cli asks for documentation to show hints; it starts cleanly without any.
      case 'docs':
        return RESP_EMPTY_ARRAY;
      default:
        return respError(`ERR unknown subcommand '${sub}'. Try COMMAND HELP.`);
    }
  }

  // redis-benchmark reads `save` and `appendonly` before it starts. dkv makes every write
  // durable before acknowledging it, which is closest to appendonly with fsync always.
  private config(args: RespArgs): Buffer {
    if (text(args, 1).toLowerCase() !== 'get') return respError('ERR dkv has no settable configuration over RESP');
    const values: Record<string, string> = { save: '', appendonly: 'yes', appendfsync: 'always', databases: '1' };
    const items: string[] = [];
    for (let i = 2; i < args.count; i++) {
      const name = text(args, i).toLowerCase();
      if (name in values) items.push(name, values[name]!);
    }
    return respBulkArray(items);
  }
}

function isRead(args: RespArgs): boolean {
  return nameIs(args, GET) || nameIs(args, MGET) || nameIs(args, EXISTS);
}

// A command of its own, for one that must wait: parsed arguments point into a buffer the parser
// reuses.
function copyArgs(args: RespArgs): RespArgs {
  const first = args.starts[0]!;
  const last = args.ends[args.count - 1]!;
  const starts = new Int32Array(args.count);
  const ends = new Int32Array(args.count);
  for (let i = 0; i < args.count; i++) {
    starts[i] = args.starts[i]! - first;
    ends[i] = args.ends[i]! - first;
  }
  return { bytes: Buffer.from(args.bytes.subarray(first, last)), starts, ends, count: args.count };
}

function nameIs(args: RespArgs, lower: Buffer): boolean {
  const start = args.starts[0]!;
  if (args.ends[0]! - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    if ((args.bytes[start + i]! | 0x20) !== lower[i]) return false;
  }
  return true;
}

function arityFits(spec: RespCommandSpec, count: number): boolean {
  if (spec.arity >= 0) return count === spec.arity;
  return count >= -spec.arity && count <= (spec.maxArgs ?? Infinity);
}

function text(args: RespArgs, i: number): string {
  if (i >= args.count) return '';
  return args.bytes.toString('utf8', args.starts[i], args.ends[i]);
}

// Argument i where it lies, in the parser's buffer: valid only during the command. The store
// copies what it keeps before a write first waits.
function keyOf(args: RespArgs, i: number): Buffer {
  return args.bytes.subarray(args.starts[i], args.ends[i]);
}

function checkedKey(args: RespArgs, i: number): Buffer {
  const bytes = args.ends[i]! - args.starts[i]!;
  if (bytes > limits.keyBytesMax) throw new DkvError('KEY_TOO_LARGE', `key is ${bytes} bytes (max ${limits.keyBytesMax})`);
  return keyOf(args, i);
}

function checkedValue(args: RespArgs, i: number): Buffer {
  const bytes = args.ends[i]! - args.starts[i]!;
  if (bytes > limits.valueBytesMax) {
    throw new DkvError('VALUE_TOO_LARGE', `value is ${bytes} bytes (max ${limits.valueBytesMax})`);
  }
  return args.bytes.subarray(args.starts[i], args.ends[i]);
}

function checkedKeys(args: RespArgs, from: number, step: number): Buffer[] {
  const keys: Buffer[] = [];
  for (let i = from; i < args.count; i += step) keys.push(checkedKey(args, i));
  if (keys.length > limits.multiKeysMax) {
    throw new DkvError('TOO_MANY_KEYS', `${keys.length} keys (max ${limits.multiKeysMax})`);
  }
  return keys;
}

const DEFAULT_QUORUM: QuorumOptions = { r: undefined, w: undefined, timeoutMs: undefined, ring: undefined, forwarded: false };


function bulkOfWinner(value: Versioned | undefined): Buffer {
  if (value === undefined || isTombstone(value)) return RESP_NIL;
  const winner = winnerOf(value);
  return winner === undefined ? RESP_NIL : respBulk(winner.value!);
}

function unknownCommand(args: RespArgs): Buffer {
  const shown: string[] = [];
  for (let i = 1; i < args.count && shown.length < 8; i++) shown.push(`'${text(args, i).slice(0, 64)}'`);
  return respError(`ERR unknown command '${text(args, 0).slice(0, 128)}', with args beginning with: ${shown.join(' ')}`);
}
