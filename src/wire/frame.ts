// The native frame codec (protocol.md, "Native frames"). Pure and incremental: bytes go in,
// whole frames come out; an incomplete frame is a normal result. Every length is checked
// against a named limit before anything is buffered for it.
//
//   offset 0  u32 BE  length of everything after this field (header rest + body)
//          4  u8      protocol version
//          5  u8      opcode
//          6  u8      flags
//          7  u32 BE  request id
//         11  body    msgpack, length − 7 bytes

import { assert } from '../lib/assert.js';
import { DkvError } from '../lib/errors.js';
import { u32be } from '../lib/bytes.js';
import { limits } from '../lib/limits.js';
import { StreamDecoder } from './stream-decoder.js';
import {
  FRAME_HEADER_BYTES,
  FRAME_LENGTH_BYTES,
  FRAME_LENGTH_MIN,
  Opcode,
  PROTOCOL_VERSION,
} from './codes.js';
import { readGetKeyInPlace, type Span } from './messages.js';

const keySpan: Span = { start: 0, end: 0 };

// The keys of the GET and REPLICA_GET frames whose body is just {key} (readGetKeyInPlace) among
// the whole frames at the start of `bytes`, at most `starts.length` of them: key i is
// bytes[starts[i], ends[i]), and writes[i] is 0 (they are reads). Returns how many. Other frames
// are stepped over by their length;
// it stops where the decoder would: at a frame cut short, a length out of bounds or another
// protocol version. For prefetching only: the decoder
// stays the judge of the bytes, and `bytes` must start at a frame.
export function getFrameKeys(bytes: Uint8Array, starts: Int32Array, ends: Int32Array, writes: Uint8Array): number {
  let count = 0;
  let at = 0;
  while (count < starts.length && at + FRAME_HEADER_BYTES <= bytes.length) {
    const length = u32be(bytes, at);
    const frameEnd = at + FRAME_LENGTH_BYTES + length;
    if (length < FRAME_LENGTH_MIN || length > limits.frameBytesMax || frameEnd > bytes.length || bytes[at + 4] !== PROTOCOL_VERSION) break;
    const opcode = bytes[at + 5];
    if ((opcode === Opcode.GET || opcode === Opcode.REPLICA_GET) && readGetKeyInPlace(bytes, at + FRAME_HEADER_BYTES, frameEnd, keySpan)) {
      starts[count] = keySpan.start;
      ends[count] = keySpan.end;
      writes[count] = 0;
      count++;
    }
    at = frameEnd;
  }
  return count;
}

// Frames are handed over in place: `bytes[bodyStart, bodyEnd)` is the body. The bytes belong to
// the decoder and are valid only during the call; copy what must outlive it.
export interface FrameSink {
  onFrame(
    opcode: number,
    flags: number,
    requestId: number,
    bytes: Buffer,
    bodyStart: number,
    bodyEnd: number,
  ): void;
}

export class FrameDecoder extends StreamDecoder {
  constructor(
    private readonly sink: FrameSink,
    private readonly frameBytesMax: number = limits.frameBytesMax,
  ) {
    super();
  }

  // Throws DkvError BAD_FRAME or UNSUPPORTED_VERSION; the stream cannot be resynchronised after
  // either, so the caller closes the connection.
  protected parse(bytes: Buffer): number {
    let offset = 0;
    const end = bytes.length;
    while (end - offset >= FRAME_LENGTH_BYTES && !this.held) {
      const length = bytes.readUInt32BE(offset);
      if (length < FRAME_LENGTH_MIN || length > this.frameBytesMax) {
        throw new DkvError(
          'BAD_FRAME',
          `frame length ${length} is outside ${FRAME_LENGTH_MIN}..${this.frameBytesMax}`,
        );
      }
      if (end - offset >= FRAME_LENGTH_BYTES + 1 && bytes[offset + 4] !== PROTOCOL_VERSION) {
        throw new DkvError(
          'UNSUPPORTED_VERSION',
          `protocol version ${bytes[offset + 4]} is not supported; this server speaks ${PROTOCOL_VERSION}`,
        );
      }
      const frameEnd = offset + FRAME_LENGTH_BYTES + length;
      if (frameEnd > end) break;
      this.sink.onFrame(
        bytes[offset + 5]!,
        bytes[offset + 6]!,
        bytes.readUInt32BE(offset + 7),
        bytes,
        offset + FRAME_HEADER_BYTES,
        frameEnd,
      );
      offset = frameEnd;
    }
    if (offset < end) {
      const rest = end - offset;
      // The version byte is checked as soon as it is here, not when the whole frame is.
      this.neededBytes =
        rest < FRAME_LENGTH_BYTES
          ? FRAME_LENGTH_BYTES
          : rest === FRAME_LENGTH_BYTES
            ? FRAME_LENGTH_BYTES + 1
            : FRAME_LENGTH_BYTES + bytes.readUInt32BE(offset);
    }
    return offset;
  }
}

export function writeFrameHeader(
  target: Uint8Array,
  offset: number,
  bodyBytes: number,
  opcode: number,
  flags: number,
  requestId: number,
): void {
  const length = FRAME_LENGTH_MIN + bodyBytes;
  assert(length <= limits.frameBytesMax, 'a frame fits the frame limit');
  assert(requestId >>> 0 === requestId, 'a request id is a u32');
  target[offset] = length >>> 24;
  target[offset + 1] = (length >>> 16) & 0xff;
  target[offset + 2] = (length >>> 8) & 0xff;
  target[offset + 3] = length & 0xff;
  target[offset + 4] = PROTOCOL_VERSION;
  target[offset + 5] = opcode;
  target[offset + 6] = flags;
  target[offset + 7] = requestId >>> 24;
  target[offset + 8] = (requestId >>> 16) & 0xff;
  target[offset + 9] = (requestId >>> 8) & 0xff;
  target[offset + 10] = requestId & 0xff;
}

// One frame in a new buffer: the header, then `body` copied after it.
export function encodeFrame(
  opcode: number,
  flags: number,
  requestId: number,
  body: Buffer,
  bodyStart = 0,
  bodyEnd = body.length,
): Buffer {
  const bodyBytes = bodyEnd - bodyStart;
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bodyBytes);
  writeFrameHeader(frame, 0, bodyBytes, opcode, flags, requestId);
  body.copy(frame, FRAME_HEADER_BYTES, bodyStart, bodyEnd);
  return frame;
}
