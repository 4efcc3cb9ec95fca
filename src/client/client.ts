// The dkv client: one TCP connection in the native dialect, many requests in flight on it,
// replies matched by request id, a deadline per request, and reconnection on the next request
// after the connection drops. Used by dkv-cli, the tests and the benchmarks.

import { connect as netConnect, type Socket } from 'node:net';
import { DkvError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { FRAME_HEADER_BYTES, FrameFlag, Opcode } from '../wire/codes.js';
import { encodeFrame, FrameDecoder, writeFrameHeader, type FrameSink } from '../wire/frame.js';
import { binBytes, decodeBody, decodeGetReply, encodeBodyShared, errorOfBody, writeBin, type GetReply } from '../wire/messages.js';

export interface ClientOptions {
  host?: string;
  port?: number;
  // A request that has no reply after this long fails with TIMEOUT. Default 5000.
  timeoutMs?: number;
  // How long a connection attempt may take. Default 3000.
  connectTimeoutMs?: number;
}

// A cluster member as MEMBERS reports it (protocol.md, "MEMBERS").
export interface Member {
  id: string;
  // host:port of its UDP (membership) and TCP (client) ports.
  address: string;
  tcpAddress: string;
  state: 'alive' | 'suspect' | 'dead' | 'left';
  incarnation: number;
  // Milliseconds since its state last changed.
  sinceMs: number;
}

export type Key = string | Uint8Array;
export type Value = string | Uint8Array;

export interface GetResult {
  // The live values: one, or several concurrent siblings.
  values: Buffer[];
  // Every sibling in order; null marks a deletion concurrent with a live value.
  siblings: Array<Buffer | null>;
  // Pass it to put or del to supersede exactly what this read saw.
  context: Buffer | null;
  // [node, counter, tsMs] for each sibling.
  versions: Array<[string, number, number]>;
}

export interface ReadOptions {
  timeoutMs?: number;
  // Replicas to read (R); default: the node's.
  r?: number;
  // The ring checksum the caller routed by (ClusterClient sets it).
  ring?: number;
}

export interface WriteOptions {
  context?: Uint8Array | null;
  timeoutMs?: number;
  // Replicas that must acknowledge (W); default: the node's.
  w?: number;
  ring?: number;
}

export interface PutResult {
  context: Buffer;
}

export interface DeleteResult {
  existed: boolean;
  context: Buffer;
}

export interface MputEntry {
  key: Key;
  value: Value;
  context?: Uint8Array | null;
}

export interface Pending {
  requestId: number;
  opcode: number;
  deadlineMs: number;
  // Resolve with the reply body's bytes, undecoded (errors are still decoded).
  raw: boolean;
  resolve: (body: unknown) => void;
  reject: (error: DkvError) => void;
}

// Deadlines are checked by one timer at this period rather than one timer per request.
const DEADLINE_SWEEP_MS = 25;
const RECONNECT_DELAY_MIN_MS = 50;
const RECONNECT_DELAY_MAX_MS = 2000;

export function parseAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address);
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || port < 1 || port > 65535) {
    throw new DkvError('BAD_REQUEST', `"${address}" is not host:port`);
  }
  return { host: match[1] ?? match[2]!, port };
}

export class DkvClient implements FrameSink {
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  private socket: Socket | null = null;
  private connecting: Promise<Socket> | null = null;
  private decoder = new FrameDecoder(this);
  private readonly pending = new InFlight();
  private nextRequestId = 1;
  private sweepTimer: NodeJS.Timeout | null = null;
  private reconnectDelayMs = 0;
  private lastFailureMs = 0;
  private closed = false;
  private corked: Socket | null = null;

  private readonly uncork = (): void => {
    this.corked?.uncork();
    this.corked = null;
  };

  constructor(options: ClientOptions = {}) {
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? 7001;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 3000;
  }

  // A connected client; rejects with CANNOT_CONNECT.
  static async connect(options: ClientOptions | string = {}): Promise<DkvClient> {
    const client = new DkvClient(typeof options === 'string' ? parseAddress(options) : options);
    await client.ensureConnected();
    return client;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  // Not connected, and waiting out the backoff after a failed connection attempt: a request now
  // would wait for it.
  get backingOff(): boolean {
    return this.socket === null && performance.now() < this.lastFailureMs + this.reconnectDelayMs;
  }

  async get(key: Key, options: ReadOptions = {}): Promise<GetResult | null> {
    const plain = options.r === undefined && options.ring === undefined && options.timeoutMs === undefined;
    const request = plain
      ? encodeKeyBody(bytesOf(key))
      : { key: bytesOf(key), r: options.r, ring: options.ring, timeoutMs: serverTimeout(options.timeoutMs) };
    const body = await this.request(Opcode.GET, request, options.timeoutMs);
    this.noteRing(body);
    return resultOf(decodeGetReply(body));
  }

  async put(key: Key, value: Value, options: WriteOptions = {}): Promise<PutResult> {
    const body = await this.request(
      Opcode.PUT,
      { key: bytesOf(key), value: bytesOf(value), ...writeFields(options) },
      options.timeoutMs,
    );
    this.noteRing(body);
    return { context: bufferField(body, 'context') };
  }

  async del(key: Key, options: WriteOptions = {}): Promise<DeleteResult> {
    const body = await this.request(Opcode.DELETE, { key: bytesOf(key), ...writeFields(options) }, options.timeoutMs);
    this.noteRing(body);
    return { existed: (body as { existed?: unknown }).existed === true, context: bufferField(body, 'context') };
  }

  // The ring checksum of the last reply that said the caller's ring was stale (protocol.md,
  // "Cluster"), or null.
  staleRing: number | null = null;

  private noteRing(body: unknown): void {
    const ring = (body as { ring?: unknown } | null)?.ring;
    if (typeof ring === 'number') this.staleRing = ring;
  }

  async mget(keys: Key[], options: { timeoutMs?: number } = {}): Promise<Array<GetResult | null>> {
    const body = (await this.request(Opcode.MGET, { keys: keys.map(bytesOf) }, options.timeoutMs)) as {
      results?: unknown;
    };
    if (!Array.isArray(body.results)) throw new DkvError('PROTOCOL_VIOLATION', 'MGET reply has no results');
    return body.results.map((r) => resultOf(decodeGetReply(r)));
  }

  async mput(entries: MputEntry[], options: { timeoutMs?: number } = {}): Promise<Buffer[]> {
    const body = (await this.request(
      Opcode.MPUT,
      {
        entries: entries.map((e) => ({ key: bytesOf(e.key), value: bytesOf(e.value), context: e.context ?? undefined })),
      },
      options.timeoutMs,
    )) as { contexts?: unknown };
    if (!Array.isArray(body.contexts)) throw new DkvError('PROTOCOL_VIOLATION', 'MPUT reply has no contexts');
    return body.contexts.map((c) => Buffer.from(c as Uint8Array));
  }

  // Round-trip time in milliseconds.
  async ping(options: { timeoutMs?: number } = {}): Promise<number> {
    const started = performance.now();
    await this.request(Opcode.PING, null, options.timeoutMs);
    return performance.now() - started;
  }

  async stats(): Promise<Record<string, string | number>> {
    return (await this.request(Opcode.STATS, null)) as Record<string, string | number>;
  }

  // The cluster as this node sees it, itself included.
  async members(options: { timeoutMs?: number } = {}): Promise<Member[]> {
    const body = (await this.request(Opcode.MEMBERS, null, options.timeoutMs)) as { members?: unknown };
    if (!Array.isArray(body?.members)) throw new DkvError('PROTOCOL_VIOLATION', 'MEMBERS reply has no members array');
    return body.members as Member[];
  }

  // Asks the node to leave the cluster gracefully; it stops once its departure has spread.
  async leave(options: { timeoutMs?: number } = {}): Promise<void> {
    await this.request(Opcode.LEAVE, null, options.timeoutMs ?? Math.max(this.timeoutMs, 15_000));
  }

  async hello(): Promise<Record<string, unknown>> {
    return (await this.request(Opcode.HELLO, { version: 1, client: 'dkv-client' })) as Record<string, unknown>;
  }

  // Sends one request; resolves with its decoded reply body. `body` is encoded as msgpack
  // unless it is already an encoded Buffer.
  async request(opcode: number, body: unknown, timeoutMs = this.timeoutMs): Promise<unknown> {
    return this.send(opcode, body, timeoutMs, false);
  }

  // Like request, but resolves with the reply body's bytes (a copy), undecoded.
  async requestRaw(opcode: number, body: unknown, timeoutMs = this.timeoutMs): Promise<Buffer> {
    return (await this.send(opcode, body, timeoutMs, true)) as Buffer;
  }

  private async send(opcode: number, body: unknown, timeoutMs: number, raw: boolean): Promise<unknown> {
    if (this.closed) throw new DkvError('CONNECTION_CLOSED', 'the client is closed');
    const socket = this.socket ?? (await this.ensureConnected());
    const requestId = this.nextRequestId;
    this.nextRequestId = this.nextRequestId === 0xffffffff ? 1 : this.nextRequestId + 1;
    const frame = frameOf(opcode, requestId, body);
    return new Promise<unknown>((resolve, reject) => {
      this.pending.add({ requestId, opcode, deadlineMs: performance.now() + timeoutMs, raw, resolve, reject });
      if (this.sweepTimer === null) this.sweepTimer = setInterval(this.sweep, DEADLINE_SWEEP_MS);
      // Requests made in one turn of the event loop go out in one write.
      if (this.corked === null) {
        this.corked = socket;
        socket.cork();
        process.nextTick(this.uncork);
      }
      socket.write(frame);
    });
  }

  onFrame(opcode: number, flags: number, requestId: number, bytes: Buffer, start: number, end: number): void {
    const pending = this.pending.take(requestId);
    if (pending === undefined) return; // timed out already
    if ((flags & FrameFlag.REPLY) === 0) {
      pending.reject(new DkvError('PROTOCOL_VIOLATION', 'server sent a frame without the REPLY flag'));
      return;
    }
    if (pending.raw && opcode === pending.opcode) {
      pending.resolve(Buffer.from(bytes.subarray(start, end)));
      return;
    }
    let body: unknown;
    try {
      body = decodeBody(bytes, start, end);
    } catch (error) {
      pending.reject(new DkvError('PROTOCOL_VIOLATION', 'reply body is not msgpack', { cause: error }));
      return;
    }
    if (opcode === Opcode.ERROR) {
      pending.reject(errorOfBody(body));
    } else if (opcode !== pending.opcode) {
      pending.reject(new DkvError('PROTOCOL_VIOLATION', `reply opcode ${opcode} answers ${pending.opcode}`));
    } else {
      pending.resolve(body);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.failAll(new DkvError('CONNECTION_CLOSED', 'the client was closed'));
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) await new Promise<void>((resolve) => socket.end(resolve));
  }

  private readonly sweep = (): void => {
    const now = performance.now();
    for (const pending of this.pending.takeAll((p) => p.deadlineMs <= now)) {
      pending.reject(new DkvError('TIMEOUT', `no reply from ${this.host}:${this.port} within the timeout`));
    }
    if (this.pending.size === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  };

  private ensureConnected(): Promise<Socket> {
    if (this.socket !== null) return Promise.resolve(this.socket);
    this.connecting ??= this.openSocket().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async openSocket(): Promise<Socket> {
    // After a failure, wait before the next attempt: doubling from 50 ms up to 2 s.
    const waitMs = this.lastFailureMs + this.reconnectDelayMs - performance.now();
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    const socket = netConnect({ host: this.host, port: this.port, noDelay: true });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`no connection within ${this.connectTimeoutMs} ms`));
          socket.destroy();
        }, this.connectTimeoutMs);
        socket.once('connect', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
      });
    } catch (error) {
      this.lastFailureMs = performance.now();
      this.reconnectDelayMs = Math.min(
        RECONNECT_DELAY_MAX_MS,
        Math.max(RECONNECT_DELAY_MIN_MS, this.reconnectDelayMs * 2),
      );
      throw new DkvError('CANNOT_CONNECT', `cannot connect to ${this.host}:${this.port}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    this.reconnectDelayMs = 0;
    socket.removeAllListeners('error');
    this.decoder = new FrameDecoder(this);
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk);
      } catch (error) {
        socket.destroy(error as Error);
      }
    });
    socket.on('error', () => {
      // 'close' follows and fails what is in flight
    });
    socket.on('close', () => {
      if (this.socket === socket) this.socket = null;
      this.failAll(new DkvError('CONNECTION_CLOSED', `connection to ${this.host}:${this.port} closed`));
    });
    if (this.closed) {
      socket.destroy();
      throw new DkvError('CONNECTION_CLOSED', 'the client was closed');
    }
    this.socket = socket;
    return socket;
  }

  private failAll(error: DkvError): void {
    for (const p of this.pending.takeAll(() => true)) p.reject(error);
  }
}

// Requests waiting for their replies, by request id. Ids are handed out in order, so a table of
// slots indexed by the id's low bits finds each without hashing; it doubles when more than half
// its slots are in use, and a request that is still in flight when its slot comes round again
// (a slow one among many fast ones) moves to a Map of its own. A Map of every request
// reallocated its table every few dozen requests (ids only ever grow), and those tables outlived
// young-generation collections: a tenth of what a node kept past them under replicated writes
// (heap sampling).
export class InFlight {
  private slots: Array<Pending | null> = new Array<Pending | null>(64).fill(null);
  private readonly slow = new Map<number, Pending>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(pending: Pending): void {
    if (this.count * 2 >= this.slots.length) this.grow();
    const slot = pending.requestId & (this.slots.length - 1);
    const older = this.slots[slot];
    if (older !== null && older !== undefined) this.slow.set(older.requestId, older);
    this.slots[slot] = pending;
    this.count++;
  }

  // The request `requestId`, no longer in flight; undefined if it is not (it timed out).
  take(requestId: number): Pending | undefined {
    const slot = requestId & (this.slots.length - 1);
    const pending = this.slots[slot];
    if (pending !== null && pending !== undefined && pending.requestId === requestId) {
      this.slots[slot] = null;
      this.count--;
      return pending;
    }
    const slow = this.slow.get(requestId);
    if (slow === undefined) return undefined;
    this.slow.delete(requestId);
    this.count--;
    return slow;
  }

  // Takes every request that `which` picks.
  takeAll(which: (pending: Pending) => boolean): Pending[] {
    const taken: Pending[] = [];
    for (let slot = 0; slot < this.slots.length; slot++) {
      const pending = this.slots[slot];
      if (pending === null || pending === undefined || !which(pending)) continue;
      this.slots[slot] = null;
      taken.push(pending);
    }
    for (const [requestId, pending] of this.slow) {
      if (!which(pending)) continue;
      this.slow.delete(requestId);
      taken.push(pending);
    }
    this.count -= taken.length;
    return taken;
  }

  // Two requests in different slots are in different slots of a table twice the size.
  private grow(): void {
    const old = this.slots;
    this.slots = new Array<Pending | null>(old.length * 2).fill(null);
    const mask = this.slots.length - 1;
    for (const pending of old) if (pending !== null && pending !== undefined) this.slots[pending.requestId & mask] = pending;
  }
}

const utf8 = new TextEncoder();

function bytesOf(value: Key | Value): Uint8Array {
  return typeof value === 'string' ? utf8.encode(value) : value;
}

function bufferField(body: unknown, field: string): Buffer {
  const value = (body as Record<string, unknown> | null)?.[field];
  if (!(value instanceof Uint8Array)) throw new DkvError('PROTOCOL_VIOLATION', `reply has no ${field}`);
  return Buffer.from(value);
}

function writeFields(options: WriteOptions): Record<string, unknown> {
  return {
    context: options.context ?? undefined,
    w: options.w,
    ring: options.ring,
    timeoutMs: serverTimeout(options.timeoutMs),
  };
}

// The coordinator gets a little less time than the client waits, so that its answer (a
// REPLICA_TIMEOUT with counts) arrives before the client gives up.
function serverTimeout(timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined ? undefined : Math.max(1, Math.min(limits.requestTimeoutMsMax, Math.floor(timeoutMs * 0.9)));
}

function resultOf(reply: GetReply): GetResult | null {
  const siblings = reply.values.map((v) => (v === null ? null : Buffer.from(v)));
  const values = siblings.filter((v): v is Buffer => v !== null);
  if (values.length === 0) return null;
  return {
    values,
    siblings,
    context: reply.context === null ? null : Buffer.from(reply.context),
    versions: reply.versions,
  };
}

// `body`, if a frame can carry it (a request the server would refuse, and close the connection
// for, is refused here instead).
function fitsFrame<T extends Uint8Array>(body: T): T {
  if (body.length > limits.frameBytesMax - FRAME_HEADER_BYTES) {
    throw new DkvError('VALUE_TOO_LARGE', `request of ${body.length} bytes exceeds the frame limit`);
  }
  return body;
}

// {"key": bin}, written directly: the body of GET, the request the benchmarks send most.
function encodeKeyBody(key: Uint8Array): Buffer {
  if (key.length > limits.keyBytesMax) {
    throw new DkvError('KEY_TOO_LARGE', `key is ${key.length} bytes (max ${limits.keyBytesMax})`);
  }
  const body = Buffer.allocUnsafe(5 + binBytes(key.length));
  body.set([0x81, 0xa3, 0x6b, 0x65, 0x79], 0);
  writeBin(body, 5, key);
  return body;
}

function frameOf(opcode: number, requestId: number, body: unknown): Buffer {
  if (Buffer.isBuffer(body)) return encodeFrame(opcode, 0, requestId, fitsFrame(body));
  if (body === null) {
    const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
    writeFrameHeader(frame, 0, 0, opcode, 0, requestId);
    return frame;
  }
  const bytes = fitsFrame(encodeBodyShared(body));
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bytes.length);
  writeFrameHeader(frame, 0, bytes.length, opcode, 0, requestId);
  frame.set(bytes, FRAME_HEADER_BYTES);
  return frame;
}
