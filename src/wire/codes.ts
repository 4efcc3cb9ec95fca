// Every number that crosses the wire lives here and in protocol.md; the two change together.
// Codes are only ever added: never renumber or reuse one.

export const PROTOCOL_VERSION = 1;

// Native frame header: u32 length, u8 version, u8 opcode, u8 flags, u32 request id.
export const FRAME_LENGTH_BYTES = 4;
export const FRAME_HEADER_BYTES = 11;
// The length field counts everything after itself: the rest of the header plus the body.
export const FRAME_LENGTH_MIN = FRAME_HEADER_BYTES - FRAME_LENGTH_BYTES;

export const Opcode = {
  HELLO: 0x01,
  PING: 0x02,
  GET: 0x03,
  PUT: 0x04,
  DELETE: 0x05,
  MGET: 0x06,
  MPUT: 0x07,
  STATS: 0x08,
  // Membership (protocol.md, "Membership").
  PUSH_PULL: 0x09,
  MEMBERS: 0x0a,
  LEAVE: 0x0b,
  // The ring and the cluster (protocol.md, "Cluster").
  ROUTING: 0x0c,
  // Node to node: one replica's own versions of a key, and a merge of versions into them.
  REPLICA_GET: 0x10,
  REPLICA_PUT: 0x11,
  // Many REPLICA_PUT bodies in one request, with one reply.
  REPLICA_PUTS: 0x12,
  ERROR: 0x7f,
} as const;
export type OpcodeName = keyof typeof Opcode;

export const OPCODE_NAMES: ReadonlyMap<number, OpcodeName> = new Map(
  Object.entries(Opcode).map(([name, code]) => [code, name as OpcodeName]),
);

export const FrameFlag = {
  // Set on every frame a server sends in answer to a request.
  REPLY: 0x01,
} as const;

// Error codes: the wire carries the number, clients branch on it. Codes 1-99 are sent by
// servers; 100 and up are raised by clients and never appear on the wire.
export const ErrorCode = {
  BAD_FRAME: 1,
  UNSUPPORTED_VERSION: 2,
  UNKNOWN_OPCODE: 3,
  BAD_REQUEST: 4,
  KEY_TOO_LARGE: 5,
  VALUE_TOO_LARGE: 6,
  TOO_MANY_KEYS: 7,
  SIBLINGS_EXCEEDED: 8,
  STORAGE_FAILED: 9,
  SHUTTING_DOWN: 10,
  OVERLOADED: 11,
  INTERNAL: 12,
  REPLY_TOO_LARGE: 13,
  // Fewer replicas answered than the request's R or W needed.
  QUORUM_FAILED: 14,
  // The request's timeout passed before R or W replicas answered.
  REPLICA_TIMEOUT: 15,
  // A PUSH_PULL meant for another member: the address it went to now belongs to someone else.
  WRONG_MEMBER: 16,
  // A PUSH_PULL from a node of another cluster label (or none, or one where the receiver has none).
  WRONG_CLUSTER: 17,

  TIMEOUT: 100,
  CONNECTION_CLOSED: 101,
  CANNOT_CONNECT: 102,
  PROTOCOL_VIOLATION: 103,
} as const;
export type ErrorCodeName = keyof typeof ErrorCode;

export const ERROR_CODE_NAMES: ReadonlyMap<number, ErrorCodeName> = new Map(
  Object.entries(ErrorCode).map(([name, code]) => [code, name as ErrorCodeName]),
);

// UDP datagrams (SWIM): the first two bytes.
export const DATAGRAM_MAGIC = 0xd7;
export const DATAGRAM_VERSION = 1;
export const DatagramFlag = {
  LABEL: 0x01,
  AUTH_TAG: 0x02,
} as const;
// Reserved for the authentication tag (HMAC-SHA-256 truncated to 128 bits).
export const DATAGRAM_AUTH_TAG_BYTES = 16;

// SWIM messages inside a datagram's payload (protocol.md, "Membership"). Each is
// u8 type ‖ u16 body length ‖ body; a datagram carries one or more of them.
export const SwimMessageType = {
  PING: 0x01,
  PING_REQ: 0x02,
  ACK: 0x03,
  NACK: 0x04,
  ALIVE: 0x05,
  SUSPECT: 0x06,
  DEAD: 0x07,
  LEFT: 0x08,
} as const;
export type SwimMessageTypeName = keyof typeof SwimMessageType;

// Member states as they appear in MEMBERS replies and push-pull records.
export const MemberState = {
  ALIVE: 1,
  SUSPECT: 2,
  DEAD: 3,
  LEFT: 4,
} as const;
export type MemberStateName = keyof typeof MemberState;
