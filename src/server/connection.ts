// One client connection: dialect sniffing, output batching and backpressure. The protocol
// itself is a session (dispatch.ts or resp-session.ts) chosen by the first byte.

import type { Socket } from 'node:net';
import { assert } from '../lib/assert.js';
import { limits } from '../lib/limits.js';
import type { Logger } from '../lib/log.js';
import type { ServerStats } from './stats.js';

export interface Session {
  // Throws on input the session cannot go on from; the connection then answers and closes.
  push(chunk: Buffer): void;
  // Stop handing out requests: the connection has stopped reading, and requests already
  // received wait as bytes until resume(). Without this, one chunk of pipelined GETs of a large
  // value would queue gigabytes of replies.
  pause(): void;
  // Hand out the requests that waited; throws as push does.
  resume(): void;
  // The reply to send before closing for `error`, if the dialect has one.
  fatalReply(error: unknown): Buffer | undefined;
}

// A connection gets its slab with its first reply: idle connections hold none.
const NO_OUTPUT = Buffer.alloc(0);
const NO_OUTPUT_VIEW = new DataView(NO_OUTPUT.buffer, NO_OUTPUT.byteOffset, 0);

export type SessionFactory = (connection: Connection, firstByte: number) => Session;

export class Connection {
  private session: Session | null = null;
  private inFlight = 0;
  private corked = false;
  // Small replies of one event-loop turn are copied into this slab and written as one buffer:
  // fewer, larger writes than one per reply (12% more GETs per second, measured).
  private output = NO_OUTPUT;
  // A view of the slab, for copyBytes.
  private outputDataView = NO_OUTPUT_VIEW;
  private outputStart = 0;
  private outputEnd = 0;
  private readingPaused = false;
  private closing = false;
  // Any per-connection name a client gives itself (RESP CLIENT SETNAME).
  name: string | null = null;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly stats: ServerStats,
    private readonly log: Logger,
    private readonly sessionOf: SessionFactory,
    private readonly onClosed: (connection: Connection) => void,
  ) {
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('drain', this.maybeResume);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    // A client that shuts down its sending side (nc at end of input) still gets every reply.
    socket.on('end', () => this.end());
  }

  private readonly onData = (chunk: Buffer): void => {
    this.stats.bytesIn += chunk.length;
    if (this.closing) return;
    if (this.session === null) this.session = this.sessionOf(this, chunk[0]!);
    this.feed(chunk);
  };

  // Gives the session a chunk, or with null lets it go on with the requests that waited.
  private feed(chunk: Buffer | null): void {
    const session = this.session!;
    this.cork();
    try {
      if (chunk === null) session.resume();
      else session.push(chunk);
    } catch (error) {
      this.stats.protocolErrors++;
      if (this.log.isLevelEnabled('debug')) this.log.debug({ connection: this.id, err: error }, 'protocol error');
      const reply = session.fatalReply(error);
      if (reply !== undefined) this.send(reply);
      this.end();
    }
  }

  // Queues `bytes` for the client. Replies written in one event-loop turn go out in one writev.
  send(bytes: Buffer): void {
    if (this.socket.destroyed) return;
    this.cork();
    if (bytes.length > limits.replyCopyBytesMax) {
      this.flushOutput();
      this.socket.write(bytes);
    } else {
      if (this.output.length - this.outputEnd < bytes.length) {
        this.newOutputSlab();
      }
      bytes.copy(this.output, this.outputEnd);
      this.outputEnd += bytes.length;
    }
    this.stats.bytesOut += bytes.length;
    const unsent = this.socket.writableLength + this.outputEnd - this.outputStart;
    if (unsent >= limits.connectionWriteBytesHighWater) this.pauseReading();
  }

  // Room for a reply of `bytes` bytes in the output slab, for the caller to write at once at the
  // offset returned in `outputSlab`: a GET's reply then needs no buffer of its own. Returns -1
  // for a reply too large to gather, which the caller sends as its own buffer.
  reserve(bytes: number): number {
    if (bytes > limits.replyCopyBytesMax || this.socket.destroyed) return -1;
    this.cork();
    if (this.output.length - this.outputEnd < bytes) {
      this.newOutputSlab();
    }
    const offset = this.outputEnd;
    this.outputEnd += bytes;
    this.stats.bytesOut += bytes;
    const unsent = this.socket.writableLength + this.outputEnd - this.outputStart;
    if (unsent >= limits.connectionWriteBytesHighWater) this.pauseReading();
    return offset;
  }

  get outputSlab(): Buffer {
    return this.output;
  }

  get outputView(): DataView {
    return this.outputDataView;
  }

  // Sends what the slab holds and starts a new one.
  private newOutputSlab(): void {
    this.flushOutput();
    this.output = Buffer.allocUnsafe(limits.connectionOutputSlabBytes);
    this.outputDataView = new DataView(this.output.buffer, this.output.byteOffset, this.output.length);
    this.outputStart = this.outputEnd = 0;
  }

  // Hands the socket the replies gathered in the slab since the last flush. That part of the
  // slab then belongs to the socket and is never written again.
  private flushOutput(): void {
    if (this.outputEnd === this.outputStart) return;
    this.socket.write(this.output.subarray(this.outputStart, this.outputEnd));
    this.outputStart = this.outputEnd;
  }

  // Replies gather until every connection's input of this event-loop turn has been handled, and
  // then go out together (setImmediate runs after the turn's I/O callbacks; process.nextTick ran
  // after each one). The client then finds many replies at once instead of being woken for each
  // connection's in turn. redis-benchmark GET at pipeline 16, three alternating pairs: 811k-924k
  // against 682k-794k GETs/s, 1.12-1.26 against 1.30-1.53 µs of dkvd's CPU a GET; pipeline 1 GET
  // and SET at pipeline 16, and 3 nodes under writes, alike. With few connections it costs a
  // little: dkv-cli bench with 4 connections of 64 in flight, 1-4% fewer GETs and PUTs a second
  // and about 20 µs more at the p50 (Redis, which also writes its replies at the end of a turn,
  // is the model here).
  private cork(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    setImmediate(this.uncork);
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.flushOutput();
    this.socket.uncork();
  };

  requestStarted(): void {
    if (++this.inFlight >= limits.connectionInFlightMax) this.pauseReading();
  }

  requestFinished(): void {
    assert(this.inFlight > 0, 'a request finishes once');
    this.inFlight--;
    if (this.readingPaused) this.maybeResume();
    if (this.closing && this.inFlight === 0) this.close();
  }

  private pauseReading(): void {
    if (this.readingPaused) return;
    this.readingPaused = true;
    this.stats.readsPaused++;
    this.socket.pause();
    this.session?.pause();
  }

  private readonly maybeResume = (): void => {
    if (
      this.readingPaused &&
      !this.closing &&
      this.inFlight <= limits.connectionInFlightMax >> 1 &&
      this.socket.writableLength < limits.connectionWriteBytesHighWater >> 1
    ) {
      this.readingPaused = false;
      this.feed(null);
      // The requests that waited may have paused reading again.
      if (!this.readingPaused && !this.closing) this.socket.resume();
    }
  };

  // Stop reading, let in-flight requests answer, then close.
  end(): void {
    if (this.closing) return;
    this.closing = true;
    this.socket.pause();
    if (this.inFlight === 0) this.close();
  }

  // Sends what is queued, then closes both directions: the server is done with this client
  // whether or not the client has finished sending.
  private close(): void {
    this.flushOutput();
    this.socket.end(() => this.socket.destroy());
  }

  destroy(): void {
    this.socket.destroy();
  }

  private readonly onError = (error: Error): void => {
    if (this.log.isLevelEnabled('debug')) this.log.debug({ connection: this.id, err: error }, 'socket error');
  };

  private readonly onClose = (): void => {
    this.closing = true;
    this.onClosed(this);
  };
}
