// The golden vectors of protocol.md: each frame as an object and as the exact bytes. The test
// checks both directions against the codec and that protocol.md shows the same bytes.
import { encodeBody, encodeContext } from '../../src/wire/messages.js';

export interface GoldenFrame {
  name: string;
  opcode: number;
  flags: number;
  requestId: number;
  body: unknown;
  hex: string;
}

const context = Buffer.from(encodeContext([['n1', 1]]));
const oneValue = { values: [Buffer.from('1')], context, versions: [['n1', 1, 1700000000000]] };

export const GOLDEN_FRAMES: GoldenFrame[] = [
  {
    name: 'HELLO request, id 1',
    opcode: 0x01,
    flags: 0,
    requestId: 1,
    body: { version: 1, client: 'x' },
    hex: '00 00 00 1a 01 01 00 00 00 00 01 82 a7 76 65 72 73 69 6f 6e 01 a6 63 6c 69 65 6e 74 a1 78',
  },
  {
    name: 'PING request with an empty body, id 2',
    opcode: 0x02,
    flags: 0,
    requestId: 2,
    body: null,
    hex: '00 00 00 07 01 02 00 00 00 00 02',
  },
  {
    name: 'GET request for key "a", id 3',
    opcode: 0x03,
    flags: 0,
    requestId: 3,
    body: { key: Buffer.from('a') },
    hex: '00 00 00 0f 01 03 00 00 00 00 03 81 a3 6b 65 79 c4 01 61',
  },
  {
    name: 'GET reply: not found, id 3',
    opcode: 0x03,
    flags: 1,
    requestId: 3,
    body: { values: [], context: null, versions: [] },
    hex: '00 00 00 23 01 03 01 00 00 00 03 83 a6 76 61 6c 75 65 73 90 a7 63 6f 6e 74 65 78 74 c0 a8 76 65 72 73 69 6f 6e 73 90',
  },
  {
    name: 'PUT request key "a" value "1", no context, id 4',
    opcode: 0x04,
    flags: 0,
    requestId: 4,
    body: { key: Buffer.from('a'), value: Buffer.from('1') },
    hex: '00 00 00 18 01 04 00 00 00 00 04 82 a3 6b 65 79 c4 01 61 a5 76 61 6c 75 65 c4 01 31',
  },
  {
    name: 'PUT reply with the context [["n1", 1]], id 4',
    opcode: 0x04,
    flags: 1,
    requestId: 4,
    body: { context },
    hex: '00 00 00 18 01 04 01 00 00 00 04 81 a7 63 6f 6e 74 65 78 74 c4 06 91 92 a2 6e 31 01',
  },
  {
    name: 'GET reply: one value "1" written by node n1 at 1700000000000 ms, id 5',
    opcode: 0x03,
    flags: 1,
    requestId: 5,
    body: oneValue,
    hex: '00 00 00 3b 01 03 01 00 00 00 05 83 a6 76 61 6c 75 65 73 91 c4 01 31 a7 63 6f 6e 74 65 78 74 c4 06 91 92 a2 6e 31 01 a8 76 65 72 73 69 6f 6e 73 91 93 a2 6e 31 01 cf 00 00 01 8b cf e5 68 00',
  },
  {
    name: 'REPLICA_PUTS request with one entry, id 6',
    opcode: 0x12,
    flags: 0,
    requestId: 6,
    body: [Buffer.from(encodeBody({ key: Buffer.from('a'), versions: Buffer.from(encodeBody(oneValue)) }))],
    hex: '00 00 00 51 01 12 00 00 00 00 06 91 c4 47 82 a3 6b 65 79 c4 01 61 a8 76 65 72 73 69 6f 6e 73 c4 34 83 a6 76 61 6c 75 65 73 91 c4 01 31 a7 63 6f 6e 74 65 78 74 c4 06 91 92 a2 6e 31 01 a8 76 65 72 73 69 6f 6e 73 91 93 a2 6e 31 01 cf 00 00 01 8b cf e5 68 00',
  },
  {
    name: 'REPLICA_PUTS reply: the entry is durable, id 6',
    opcode: 0x12,
    flags: 1,
    requestId: 6,
    body: [null],
    hex: '00 00 00 09 01 12 01 00 00 00 06 91 c0',
  },
  {
    name: 'REPLICA_PUTS reply: one entry durable, one failed, id 7',
    opcode: 0x12,
    flags: 1,
    requestId: 7,
    body: [null, { code: 9, name: 'STORAGE_FAILED', message: 'disk full' }],
    hex: '00 00 00 36 01 12 01 00 00 00 07 92 c0 83 a4 63 6f 64 65 09 a4 6e 61 6d 65 ae 53 54 4f 52 41 47 45 5f 46 41 49 4c 45 44 a7 6d 65 73 73 61 67 65 a9 64 69 73 6b 20 66 75 6c 6c',
  },
  {
    name: 'ERROR reply to an unknown opcode, id 9',
    opcode: 0x7f,
    flags: 1,
    requestId: 9,
    body: { code: 3, name: 'UNKNOWN_OPCODE', message: 'opcode 0x42 is unknown' },
    hex: '00 00 00 41 01 7f 01 00 00 00 09 83 a4 63 6f 64 65 03 a4 6e 61 6d 65 ae 55 4e 4b 4e 4f 57 4e 5f 4f 50 43 4f 44 45 a7 6d 65 73 73 61 67 65 b6 6f 70 63 6f 64 65 20 30 78 34 32 20 69 73 20 75 6e 6b 6e 6f 77 6e',
  },
];
