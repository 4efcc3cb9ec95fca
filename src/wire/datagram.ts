// The header of every UDP datagram (protocol.md, "UDP datagrams"). The membership layer (SWIM)
// fills the payload; this codec only frames it. Pure.
//
//   u8 magic 0xD7 ‖ u8 version ‖ u8 flags
//   [flags & LABEL]    u8 label length (1..255) ‖ label (UTF-8)
//   [flags & AUTH_TAG] 16-byte authentication tag
//   payload

import { DkvError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { DATAGRAM_AUTH_TAG_BYTES, DATAGRAM_MAGIC, DATAGRAM_VERSION, DatagramFlag } from './codes.js';

export interface DatagramHeader {
  version: number;
  label: string | null;
  // Offset of the authentication tag, or -1 when there is none.
  authTagStart: number;
  payloadStart: number;
}

const KNOWN_FLAGS = DatagramFlag.LABEL | DatagramFlag.AUTH_TAG;

export function decodeDatagramHeader(bytes: Uint8Array): DatagramHeader {
  if (bytes.length > limits.datagramBytesMax) {
    throw new DkvError('BAD_FRAME', `datagram of ${bytes.length} bytes (max ${limits.datagramBytesMax})`);
  }
  if (bytes.length < 3 || bytes[0] !== DATAGRAM_MAGIC) throw new DkvError('BAD_FRAME', 'not a dkv datagram');
  const version = bytes[1]!;
  if (version !== DATAGRAM_VERSION) {
    throw new DkvError('UNSUPPORTED_VERSION', `datagram version ${version} (this node speaks ${DATAGRAM_VERSION})`);
  }
  const flags = bytes[2]!;
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new DkvError('BAD_FRAME', `unknown datagram flags 0x${flags.toString(16)}`);
  let offset = 3;
  let label: string | null = null;
  if ((flags & DatagramFlag.LABEL) !== 0) {
    const labelBytes = bytes[offset] ?? 0;
    if (labelBytes === 0 || offset + 1 + labelBytes > bytes.length) throw new DkvError('BAD_FRAME', 'truncated label');
    label = Buffer.from(bytes.buffer, bytes.byteOffset + offset + 1, labelBytes).toString('utf8');
    offset += 1 + labelBytes;
  }
  let authTagStart = -1;
  if ((flags & DatagramFlag.AUTH_TAG) !== 0) {
    if (offset + DATAGRAM_AUTH_TAG_BYTES > bytes.length) throw new DkvError('BAD_FRAME', 'truncated auth tag');
    authTagStart = offset;
    offset += DATAGRAM_AUTH_TAG_BYTES;
  }
  return { version, label, authTagStart, payloadStart: offset };
}

// The header bytes for a label (or none) and, if `withAuthTag`, room for a tag (zeroed; the
// sender writes it after signing).
export function encodeDatagramHeader(label: string | null, withAuthTag: boolean): Buffer {
  const labelBytes = label === null ? null : Buffer.from(label, 'utf8');
  if (labelBytes !== null && (labelBytes.length === 0 || labelBytes.length > limits.clusterLabelBytesMax)) {
    throw new DkvError('BAD_REQUEST', `cluster label must be 1..${limits.clusterLabelBytesMax} bytes`);
  }
  const header = Buffer.alloc(
    3 + (labelBytes === null ? 0 : 1 + labelBytes.length) + (withAuthTag ? DATAGRAM_AUTH_TAG_BYTES : 0),
  );
  header[0] = DATAGRAM_MAGIC;
  header[1] = DATAGRAM_VERSION;
  header[2] = (labelBytes === null ? 0 : DatagramFlag.LABEL) | (withAuthTag ? DatagramFlag.AUTH_TAG : 0);
  if (labelBytes !== null) {
    header[3] = labelBytes.length;
    labelBytes.copy(header, 4);
  }
  return header;
}
