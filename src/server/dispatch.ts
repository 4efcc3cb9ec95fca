// The native dialect: frames in, replies out. GET is the hot path: its key is read in place,
// the record comes from the engine's shared buffer, and the only allocation is the reply.

import { asDkvError, DkvError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { copyRecord, recordIsTombstone, RECORD_HEADER_BYTES, type WriteResult } from '../store/versioned-store.js';
import { FRAME_HEADER_BYTES, FrameFlag, Opcode, OPCODE_NAMES, PROTOCOL_VERSION } from '../wire/codes.js';
import { encodeFrame, FrameDecoder, getFrameKeys, writeFrameHeader, type FrameSink } from '../wire/frame.js';
import {
  decodeBody,
  decodeDeleteRequest,
  decodeKeyRequest,
  decodeMgetRequest,
  decodeMputRequest,
  decodePutRequest,
  readQuorumOptions,
  quorumOptions,
  type QuorumOptions,
  encodeBodyShared,
  errorBodyOf,
  NOT_FOUND_REPLY,
  PutScan,
  readGetKeyInPlace,
  readPutEntry,
  type Span,
  writeBin,
  binBytes,
  CONTEXT_KEY,
} from '../wire/messages.js';
import { assert } from '../lib/assert.js';
import type { ClusterView } from '../coordinator/cluster-view.js';
import type { Connection, Session } from './connection.js';
import type { Service } from './service.js';
import type { RequestCounter } from './stats.js';

const NOT_FOUND = Buffer.from(NOT_FOUND_REPLY);

export class NativeSession implements Session, FrameSink {
  private readonly decoder = new FrameDecoder(this);
  private readonly keySpan: Span = { start: 0, end: 0 };
  private readonly putScan = new PutScan();
  // Request counters by opcode, looked up once per connection.
  private readonly counters: RequestCounter[] = [];

  constructor(
    private readonly connection: Connection,
    private readonly service: Service,
  ) {}

  push(chunk: Buffer): void {
    // Pipelined GETs (a client's, or replica reads from a coordinator): warm what their reads
    // will touch, together, before the decoder hands them over one by one (RecordCache.prefetch).
    // Only a chunk that starts at a frame is scanned.
    if (this.decoder.bufferedBytes === 0) this.service.store.prefetchReads(chunk, getFrameKeys);
    this.decoder.push(chunk);
  }

  pause(): void {
    this.decoder.hold();
  }

  resume(): void {
    this.decoder.release();
  }

  // Framing errors carry request id 0: the stream is lost, so no request can be named.
  fatalReply(error: unknown): Buffer {
    return errorFrame(0, asDkvError(error));
  }

  // No closure may appear in this method: one that captures its variables or `this` makes V8
  // allocate a context on every call, a GET's too (50 bytes per GET, measured with
  // bench/micro.ts). Everything but the in-place GETs goes to dispatch().
  onFrame(opcode: number, flags: number, requestId: number, bytes: Buffer, start: number, end: number): void {
    const service = this.service;
    try {
      if ((flags & FrameFlag.REPLY) !== 0) throw new DkvError('BAD_REQUEST', 'a client must not send reply frames');
      if (service.shuttingDown) throw new DkvError('SHUTTING_DOWN', 'the node is shutting down');
      // With one member, this node holds every key: GET reads its own copy in place.
      if ((opcode === Opcode.GET && service.cluster.size === 1) || opcode === Opcode.REPLICA_GET) {
        this.get(opcode, requestId, bytes, start, end);
        return;
      }
      this.dispatch(opcode, requestId, bytes, start, end);
    } catch (error) {
      this.fail(requestId, error);
    }
  }

  // The counter of a known opcode's requests.
  private counterOf(opcode: number): RequestCounter {
    return (this.counters[opcode] ??= this.service.stats.requestCounter(OPCODE_NAMES.get(opcode)!));
  }

  // Every request but the in-place GETs; what it throws, onFrame answers.
  private dispatch(opcode: number, requestId: number, bytes: Buffer, start: number, end: number): void {
    const service = this.service;
    const name = OPCODE_NAMES.get(opcode);
    if (name === undefined || name === 'ERROR') {
      throw new DkvError('UNKNOWN_OPCODE', `opcode 0x${opcode.toString(16)} is unknown`);
    }
    this.counterOf(opcode).count++;
    // Replica writes are read in place where they can be (Coordinator.replicaPutBody).
    if (opcode === Opcode.REPLICA_PUT) {
      this.later(opcode, requestId, service.coordinator.replicaPutBody(bytes, start, end), () => EMPTY_MAP);
      return;
    }
    if (opcode === Opcode.REPLICA_PUTS) {
      this.later(opcode, requestId, service.coordinator.replicaPuts(bytes, start, end), (reply) => reply);
      return;
    }
    if (opcode === Opcode.PUT && this.putScan.scan(bytes, start, end)) {
      this.putInPlace(requestId, bytes);
      return;
    }
    const body = decodeBody(bytes, start, end);
    switch (opcode) {
      case Opcode.HELLO:
        this.reply(opcode, requestId, this.hello());
        return;
      case Opcode.PING:
        this.connection.send(encodeFrame(opcode, FrameFlag.REPLY, requestId, bytes, start, end));
        return;
      case Opcode.STATS:
        this.reply(opcode, requestId, service.statsSnapshot());
        return;
      case Opcode.MGET: {
        const keys = decodeMgetRequest(body);
        if (service.cluster.size === 1) {
          this.mget(requestId, keys);
          return;
        }
        const options = readQuorumOptions(body);
        const reads = keys.map((key) => service.coordinator.get(key, options));
        this.later(opcode, requestId, Promise.all(reads), (replies) => mgetReplyOf(replies));
        return;
      }
      case Opcode.GET: {
        const key = decodeKeyRequest(body, 'GET');
        const options = readQuorumOptions(body);
        // A body of just {key} is also the REPLICA_GET body: replicas get these bytes as they are.
        const replicaBody = readGetKeyInPlace(bytes, start, end, this.keySpan) ? Buffer.from(bytes.subarray(start, end)) : undefined;
        this.later(opcode, requestId, service.coordinator.get(key, options, replicaBody), (reply) => this.withRing(reply, options));
        return;
      }
      case Opcode.PUT: {
        const put = decodePutRequest(body);
        const options = readQuorumOptions(body);
        const written = service.write(put.key, put.value, put.context, options);
        this.later(opcode, requestId, written, (result) => this.withRing(putReply(result), options));
        return;
      }
      case Opcode.DELETE: {
        const del = decodeDeleteRequest(body);
        const options = readQuorumOptions(body);
        const written = service.write(del.key, null, del.context, options);
        this.later(opcode, requestId, written, (result) => this.withRing(deleteReply(result), options));
        return;
      }
      case Opcode.ROUTING:
        this.reply(opcode, requestId, routingOf(service.cluster));
        return;
      case Opcode.PUSH_PULL: {
        const { state, to, cluster } = (body ?? {}) as { state?: unknown; to?: unknown; cluster?: unknown };
        if (!(state instanceof Uint8Array)) throw new DkvError('BAD_REQUEST', 'PUSH_PULL needs {state: bin}');
        const text = (value: unknown, name: string): string | undefined => {
          if (value === undefined || value === null) return undefined;
          if (typeof value !== 'string') throw new DkvError('BAD_REQUEST', `PUSH_PULL ${name} must be a string`);
          return value;
        };
        const pushed = service.membership.pushPull(state, text(to, 'to'), text(cluster, 'cluster'));
        this.later(opcode, requestId, pushed, (mine) => ({ state: mine }));
        return;
      }
      case Opcode.MEMBERS:
        this.later(opcode, requestId, service.membership.members(), (members) => ({ members }));
        return;
      case Opcode.LEAVE:
        this.later(opcode, requestId, service.leave(), () => ({ left: true }));
        return;
      case Opcode.MPUT: {
        const entries = decodeMputRequest(body);
        const options = readQuorumOptions(body);
        const writes = entries.map((e) => service.write(e.key, e.value, e.context, options));
        this.later(opcode, requestId, Promise.all(writes), (results) => ({
          contexts: results.map((r) => r.context),
        }));
        return;
      }
    }
  }

  // GET of this node's own copy, straight from the engine's buffer into the reply. REPLICA_GET
  // answers a tombstone's versions too (a coordinator merges them); GET answers it as not found.
  private get(opcode: number, requestId: number, bytes: Buffer, start: number, end: number): void {
    const service = this.service;
    this.counterOf(opcode).count++;
    let record: Buffer | undefined;
    if (readGetKeyInPlace(bytes, start, end, this.keySpan)) {
      record = service.store.readRecord(bytes, this.keySpan.start, this.keySpan.end);
    } else {
      const key = decodeKeyRequest(decodeBody(bytes, start, end), 'GET');
      record = service.store.readRecord(key, 0, key.length);
    }
    const found = record !== undefined && (opcode === Opcode.REPLICA_GET || !recordIsTombstone(record));
    const body: Buffer = record !== undefined && found ? record : NOT_FOUND;
    const bodyStart = found ? RECORD_HEADER_BYTES : 0;
    const bodyBytes = body.length - bodyStart;
    // Writes keep a key's record within one frame; this guards records from before that rule.
    if (bodyBytes > limits.frameBytesMax - FRAME_HEADER_BYTES) {
      throw new DkvError('REPLY_TOO_LARGE', `the key's versions take ${bodyBytes} bytes, more than one frame carries`);
    }
    this.sendReply(opcode, requestId, body, bodyStart);
  }

  // Sends body[bodyStart..] (bodyStart at most a frame header's bytes) as the reply: straight into
  // the connection's output slab when it fits, without a frame of its own.
  private sendReply(opcode: number, requestId: number, body: Buffer, bodyStart: number): void {
    const bodyBytes = body.length - bodyStart;
    const connection = this.connection;
    const offset = connection.reserve(FRAME_HEADER_BYTES + bodyBytes);
    if (offset < 0) {
      connection.send(encodeFrame(opcode, FrameFlag.REPLY, requestId, body, bodyStart));
      return;
    }
    const out = connection.outputSlab;
    // fill() copies the body without the view object Buffer#copy from an offset creates; the
    // bytes before bodyStart land where the frame header then goes.
    out.fill(body, offset + FRAME_HEADER_BYTES - bodyStart, offset + FRAME_HEADER_BYTES + bodyBytes);
    writeFrameHeader(out, offset, bodyBytes, opcode, FrameFlag.REPLY, requestId);
  }

  // PUT as PutScan read it: the write the decoded path makes of the same request.
  private putInPlace(requestId: number, bytes: Buffer): void {
    const scan = this.putScan;
    const put = readPutEntry({ key: bytes.subarray(scan.key.start, scan.key.end), value: bytes.subarray(scan.value.start, scan.value.end) }, 'PUT');
    const options = quorumOptions(undefined, scan.w, scan.timeoutMs, scan.ring, false);
    const written = this.service.write(put.key, put.value, undefined, options);
    this.later(Opcode.PUT, requestId, written, (result) => this.withRing(putReply(result), options));
  }

  // A reply to a request that routed by another ring carries this node's checksum, so the
  // client knows to fetch ROUTING again.
  private withRing<T extends Record<string, unknown>>(reply: T | Buffer, options: QuorumOptions): T | Buffer {
    const checksum = this.service.cluster.checksum;
    if (options.ring === undefined || options.ring === checksum) return reply;
    this.service.stats.staleRingReplies++;
    if (!Buffer.isBuffer(reply)) return { ...reply, ring: checksum };
    // A body already encoded (a GET reply, a PUT reply) is a fixmap: it gets one more entry.
    const withRing = Buffer.allocUnsafe(reply.length + 10);
    reply.copy(withRing);
    assert(withRing[0]! >= 0x80 && withRing[0]! < 0x8f, 'an encoded reply body is a fixmap with room for ring');
    withRing[0] = withRing[0]! + 1;
    withRing.write('\xa4ring', reply.length, 'latin1');
    withRing[reply.length + 5] = 0xce;
    withRing.writeUInt32BE(checksum, reply.length + 6);
    return withRing;
  }

  private mget(requestId: number, keys: Uint8Array[]): void {
    const store = this.service.store;
    // The reply body is {"results": [GET reply, ...]}: the stored bodies, concatenated.
    const parts: Buffer[] = [MGET_REPLY_PREFIX, arrayHeader(keys.length)];
    let bodyBytes = parts[0]!.length + parts[1]!.length;
    for (const key of keys) {
      const record = store.readRecord(key, 0, key.length);
      const part =
        record === undefined || recordIsTombstone(record) ? NOT_FOUND : copyRecord(record, RECORD_HEADER_BYTES);
      bodyBytes += part.length;
      if (bodyBytes > limits.frameBytesMax - FRAME_HEADER_BYTES) {
        throw new DkvError('REPLY_TOO_LARGE', `MGET reply exceeds ${limits.frameBytesMax} bytes; ask for fewer keys`);
      }
      parts.push(part);
    }
    const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bodyBytes);
    writeFrameHeader(frame, 0, bodyBytes, Opcode.MGET, FrameFlag.REPLY, requestId);
    let offset = FRAME_HEADER_BYTES;
    for (const part of parts) offset += part.copy(frame, offset);
    this.connection.send(frame);
  }

  private hello(): Record<string, unknown> {
    const service = this.service;
    return {
      version: PROTOCOL_VERSION,
      server: 'dkv',
      serverVersion: service.version,
      nodeId: service.nodeId,
      limits: {
        frameBytesMax: limits.frameBytesMax,
        keyBytesMax: limits.keyBytesMax,
        valueBytesMax: limits.valueBytesMax,
        multiKeysMax: limits.multiKeysMax,
        inFlightMax: limits.connectionInFlightMax,
      },
    };
  }

  // A Buffer is a body already encoded (a GET reply from the coordinator); anything else is
  // encoded here.
  private reply(opcode: number, requestId: number, body: unknown): void {
    if (Buffer.isBuffer(body)) {
      this.sendReply(opcode, requestId, body, 0);
      return;
    }
    const bytes = encodeBodyShared(body);
    this.sendReply(opcode, requestId, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), 0);
  }

  // A reply that waits for the store: the request counts as in flight until it is answered.
  private later<T>(opcode: number, requestId: number, result: Promise<T>, replyOf: (value: T) => unknown): void {
    this.connection.requestStarted();
    result.then(
      (value) => {
        this.reply(opcode, requestId, replyOf(value));
        this.connection.requestFinished();
      },
      (error: unknown) => {
        this.fail(requestId, error);
        this.connection.requestFinished();
      },
    );
  }

  private fail(requestId: number, error: unknown): void {
    const dkvError = asDkvError(error);
    this.service.stats.countError(dkvError.code);
    if (dkvError.code === 'INTERNAL' || dkvError.code === 'STORAGE_FAILED') {
      this.service.log.error({ err: error, requestId }, 'request failed');
    }
    this.connection.send(errorFrame(requestId, dkvError));
  }
}

// {"context": bin}, written directly.
function putReply(result: WriteResult): Buffer {
  const body = Buffer.allocUnsafe(1 + CONTEXT_KEY.length + binBytes(result.context.length));
  body[0] = 0x81;
  body.set(CONTEXT_KEY, 1);
  writeBin(body, 1 + CONTEXT_KEY.length, result.context);
  return body;
}

function deleteReply(result: WriteResult): Record<string, unknown> {
  return { existed: result.existed, context: result.context };
}

const EMPTY_MAP = {};
const MGET_REPLY_PREFIX = Buffer.from([0x81, 0xa7, ...Buffer.from('results')]);

// {"results": [GET reply body, ...]} from bodies already encoded.
function mgetReplyOf(bodies: Buffer[]): Buffer {
  return Buffer.concat([MGET_REPLY_PREFIX, arrayHeader(bodies.length), ...bodies]);
}

// ROUTING: the ring as this node has it (protocol.md, "Cluster").
function routingOf(cluster: ClusterView): unknown {
  return {
    ring: cluster.checksum,
    vnodes: cluster.vnodes,
    replicas: cluster.replicasN,
    members: cluster.members().map((m) => ({
      id: m.id,
      tcpAddress: `${m.address.host}:${m.address.tcpPort}`,
      state: m.status,
    })),
  };
}

function arrayHeader(count: number): Buffer {
  if (count < 16) return Buffer.from([0x90 | count]);
  const header = Buffer.allocUnsafe(3);
  header[0] = 0xdc;
  header.writeUInt16BE(count, 1);
  return header;
}

export function errorFrame(requestId: number, error: DkvError): Buffer {
  const body = encodeBodyShared(errorBodyOf(error));
  return encodeFrame(Opcode.ERROR, FrameFlag.REPLY, requestId, Buffer.from(body.buffer, body.byteOffset, body.length));
}
