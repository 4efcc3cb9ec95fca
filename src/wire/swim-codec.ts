// SWIM messages in the payload of a datagram (protocol.md, "Membership"). Pure.
//
// A payload is one or more messages back to back, each u8 type ‖ u16 body length ‖ body:
//
//   PING      u32 seq ‖ str target
//   PING_REQ  u32 seq ‖ str target
//   ACK       u32 seq
//   NACK      u32 seq
//   ALIVE     u32 incarnation ‖ str id ‖ str host ‖ u16 udp port ‖ u16 tcp port
//   SUSPECT   u32 incarnation ‖ str id ‖ str from
//   DEAD      u32 incarnation ‖ str id ‖ str from
//   LEFT      u32 incarnation ‖ str id
//
// where str is u8 length (1..255) ‖ UTF-8 bytes. The reader decodes in place (no allocation until
// a caller asks for a string), so answering a PING allocates only the reply datagram.

import { assert } from '../lib/assert.js';
import { u16be as u16, u32be as u32 } from '../lib/bytes.js';
import { SwimMessageType } from './codes.js';

export const SWIM_MESSAGE_HEADER_BYTES = 3;
const STR_BYTES_MAX = 255;
// Up to this length a byte loop copies faster than Buffer.copy (measured on Node 20).
const SHORT_COPY_BYTES_MAX = 64;

// Walks a payload. `next()` returns the next message's type, 0 at the end of the payload, or
// -1 if the payload is malformed (the caller drops the whole datagram).
export class SwimReader {
  bytes: Uint8Array = new Uint8Array(0);
  private offset = 0;
  private end = 0;
  type = 0;
  // PING, PING_REQ, ACK, NACK: seq. ALIVE, SUSPECT, DEAD, LEFT: incarnation.
  number = 0;
  idStart = 0;
  idBytes = 0;
  hostStart = 0;
  hostBytes = 0;
  fromStart = 0;
  fromBytes = 0;
  udpPort = 0;
  tcpPort = 0;

  // Whether the strings were checked on an earlier pass over the same bytes (`checked`), so this
  // pass need not check their UTF-8 again.
  private checked = false;

  reset(bytes: Uint8Array, start: number, end: number, checked = false): void {
    assert(start >= 0 && start <= end && end <= bytes.length, 'reader bounds inside the buffer');
    this.checked = checked;
    this.bytes = bytes;
    this.offset = start;
    this.end = end;
  }

  // Where the next message starts: reset() to it reads that message again.
  get position(): number {
    return this.offset;
  }

  next(): number {
    if (this.offset === this.end) return 0;
    if (this.end - this.offset < SWIM_MESSAGE_HEADER_BYTES) return -1;
    const type = this.bytes[this.offset]!;
    const bodyBytes = u16(this.bytes, this.offset + 1);
    const bodyStart = this.offset + SWIM_MESSAGE_HEADER_BYTES;
    const bodyEnd = bodyStart + bodyBytes;
    if (bodyEnd > this.end) return -1;
    this.type = type;
    let at = bodyStart;
    if (bodyEnd - at < 4) return -1;
    this.number = u32(this.bytes, at);
    at += 4;
    switch (type) {
      case SwimMessageType.ACK:
      case SwimMessageType.NACK:
        break;
      case SwimMessageType.PING:
      case SwimMessageType.PING_REQ:
      case SwimMessageType.LEFT:
        at = this.readString(at, bodyEnd, 0);
        break;
      case SwimMessageType.SUSPECT:
      case SwimMessageType.DEAD:
        at = this.readString(at, bodyEnd, 0);
        if (at >= 0) at = this.readString(at, bodyEnd, 2);
        break;
      case SwimMessageType.ALIVE:
        at = this.readString(at, bodyEnd, 0);
        if (at >= 0) at = this.readString(at, bodyEnd, 1);
        if (at >= 0 && bodyEnd - at >= 4) {
          this.udpPort = u16(this.bytes, at);
          this.tcpPort = u16(this.bytes, at + 2);
          at += 4;
        } else {
          at = -1;
        }
        break;
      default:
        return -1;
    }
    // A body must be exactly its fields: trailing bytes mean sender and receiver disagree.
    if (at !== bodyEnd) return -1;
    this.offset = bodyEnd;
    return type;
  }

  // Reads a str into the id (0), host (1) or from (2) slot; returns the offset after it or -1.
  private readString(at: number, bodyEnd: number, slot: 0 | 1 | 2): number {
    if (at >= bodyEnd) return -1;
    const length = this.bytes[at]!;
    if (length === 0 || at + 1 + length > bodyEnd || (!this.checked && !isUtf8(this.bytes, at + 1, length))) return -1;
    if (slot === 0) {
      this.idStart = at + 1;
      this.idBytes = length;
    } else if (slot === 1) {
      this.hostStart = at + 1;
      this.hostBytes = length;
    } else {
      this.fromStart = at + 1;
      this.fromBytes = length;
    }
    return at + 1 + length;
  }

  id(): string {
    return utf8(this.bytes, this.idStart, this.idBytes);
  }

  host(): string {
    return utf8(this.bytes, this.hostStart, this.hostBytes);
  }

  from(): string {
    return utf8(this.bytes, this.fromStart, this.fromBytes);
  }

  // Whether the id slot holds exactly `id` (compared byte by byte, without allocating).
  idEquals(id: Uint8Array): boolean {
    if (id.length !== this.idBytes) return false;
    const bytes = this.bytes;
    const start = this.idStart;
    for (let i = 0; i < id.length; i++) if (bytes[start + i] !== id[i]) return false;
    return true;
  }
}

// Whether the bytes are well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
// past U+10FFFF). Anything else decodes with U+FFFD substituted, three bytes each, so the string
// would re-encode to other bytes and perhaps past 255 of them.
function isUtf8(bytes: Uint8Array, start: number, length: number): boolean {
  const end = start + length;
  let i = start;
  while (i < end) {
    const lead = bytes[i]!;
    if (lead < 0x80) {
      i++;
      continue;
    }
    let tail: number;
    let low = 0x80;
    let high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) tail = 1;
    else if (lead >= 0xe0 && lead <= 0xef) {
      tail = 2;
      if (lead === 0xe0) low = 0xa0;
      else if (lead === 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      tail = 3;
      if (lead === 0xf0) low = 0x90;
      else if (lead === 0xf4) high = 0x8f;
    } else return false;
    if (end - i - 1 < tail) return false;
    const second = bytes[i + 1]!;
    if (second < low || second > high) return false;
    for (let k = 2; k <= tail; k++) {
      const next = bytes[i + k]!;
      if (next < 0x80 || next > 0xbf) return false;
    }
    i += 1 + tail;
  }
  return true;
}

function utf8(bytes: Uint8Array, start: number, length: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, length).toString('utf8');
}

// Builds one datagram in a scratch buffer; `finish()` copies it out (the copy belongs to the
// socket until its send completes, and the scratch is reused at once).
export class SwimWriter {
  private readonly scratch: Buffer;
  private offset = 0;

  constructor(readonly packetBytesMax: number) {
    this.scratch = Buffer.alloc(packetBytesMax);
  }

  begin(header: Uint8Array): void {
    assert(header.length < this.packetBytesMax, 'datagram header fits a packet');
    this.scratch.set(header, 0);
    this.offset = header.length;
  }

  get remaining(): number {
    return this.packetBytesMax - this.offset;
  }

  get length(): number {
    return this.offset;
  }

  ping(seq: number, target: Uint8Array): void {
    this.seqAndString(SwimMessageType.PING, seq, target);
  }

  pingReq(seq: number, target: Uint8Array): void {
    this.seqAndString(SwimMessageType.PING_REQ, seq, target);
  }

  ack(seq: number): void {
    this.seqOnly(SwimMessageType.ACK, seq);
  }

  nack(seq: number): void {
    this.seqOnly(SwimMessageType.NACK, seq);
  }

  // Appends a message encoded earlier (a gossip broadcast).
  append(message: Uint8Array): void {
    assert(message.length <= this.remaining, 'message fits the rest of the packet');
    this.scratch.set(message, this.offset);
    this.offset += message.length;
  }

  finish(): Buffer {
    const length = this.offset;
    const packet = Buffer.allocUnsafe(length);
    // Node 20's copy() of part of a buffer allocates a view of that part. A short datagram (an
    // ACK, a bare PING) is copied byte by byte instead: faster at that size, and no allocation.
    if (length <= SHORT_COPY_BYTES_MAX) {
      const scratch = this.scratch;
      for (let i = 0; i < length; i++) packet[i] = scratch[i]!;
    } else {
      this.scratch.copy(packet, 0, 0, length);
    }
    return packet;
  }

  private seqOnly(type: number, seq: number): void {
    assert(this.remaining >= SWIM_MESSAGE_HEADER_BYTES + 4, 'ACK fits the packet');
    const s = this.scratch;
    let at = this.offset;
    s[at] = type;
    s.writeUInt16BE(4, at + 1);
    s.writeUInt32BE(seq >>> 0, at + 3);
    this.offset = at + 7;
  }

  private seqAndString(type: number, seq: number, text: Uint8Array): void {
    assert(text.length >= 1 && text.length <= STR_BYTES_MAX, 'str is 1..255 bytes');
    const bodyBytes = 4 + 1 + text.length;
    assert(this.remaining >= SWIM_MESSAGE_HEADER_BYTES + bodyBytes, 'PING fits the packet');
    const s = this.scratch;
    const at = this.offset;
    s[at] = type;
    s.writeUInt16BE(bodyBytes, at + 1);
    s.writeUInt32BE(seq >>> 0, at + 3);
    s[at + 7] = text.length;
    s.set(text, at + 8);
    this.offset = at + SWIM_MESSAGE_HEADER_BYTES + bodyBytes;
  }
}

// Membership records (ALIVE, SUSPECT, DEAD, LEFT) are encoded once, queued for gossip, and
// copied into many packets; push-pull carries the same records back to back.
export function encodeAlive(incarnation: number, id: string, host: string, udpPort: number, tcpPort: number): Buffer {
  const idBytes = str(id);
  const hostBytes = str(host);
  assert(udpPort >= 0 && udpPort <= 0xffff, 'udp port is u16');
  assert(tcpPort >= 0 && tcpPort <= 0xffff, 'tcp port is u16');
  const message = record(SwimMessageType.ALIVE, incarnation, 1 + idBytes.length + 1 + hostBytes.length + 4);
  let at = putString(message, 7, idBytes);
  at = putString(message, at, hostBytes);
  message.writeUInt16BE(udpPort, at);
  message.writeUInt16BE(tcpPort, at + 2);
  return message;
}

export function encodeSuspect(incarnation: number, id: string, from: string): Buffer {
  return encodeAccusation(SwimMessageType.SUSPECT, incarnation, id, from);
}

export function encodeDead(incarnation: number, id: string, from: string): Buffer {
  return encodeAccusation(SwimMessageType.DEAD, incarnation, id, from);
}

export function encodeLeft(incarnation: number, id: string): Buffer {
  const idBytes = str(id);
  const message = record(SwimMessageType.LEFT, incarnation, 1 + idBytes.length);
  putString(message, 7, idBytes);
  return message;
}

function encodeAccusation(type: number, incarnation: number, id: string, from: string): Buffer {
  const idBytes = str(id);
  const fromBytes = str(from);
  const message = record(type, incarnation, 1 + idBytes.length + 1 + fromBytes.length);
  putString(message, putString(message, 7, idBytes), fromBytes);
  return message;
}

function record(type: number, incarnation: number, fieldBytes: number): Buffer {
  assert(Number.isInteger(incarnation) && incarnation >= 0 && incarnation <= 0xffffffff, 'incarnation is u32');
  const bodyBytes = 4 + fieldBytes;
  const message = Buffer.allocUnsafe(SWIM_MESSAGE_HEADER_BYTES + bodyBytes);
  message[0] = type;
  message.writeUInt16BE(bodyBytes, 1);
  message.writeUInt32BE(incarnation, 3);
  return message;
}

function str(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  assert(bytes.length >= 1 && bytes.length <= STR_BYTES_MAX, 'str is 1..255 bytes');
  return bytes;
}

function putString(target: Buffer, at: number, text: Buffer): number {
  target[at] = text.length;
  text.copy(target, at + 1);
  return at + 1 + text.length;
}
