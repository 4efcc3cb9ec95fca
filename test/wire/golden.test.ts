import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { encodeFrame, FrameDecoder } from '../../src/wire/frame.js';
import { decodeBody, encodeBody } from '../../src/wire/messages.js';
import { REPO_ROOT } from '../helpers/dkvd.js';
import { GOLDEN_FRAMES } from '../helpers/golden-vectors.js';

const protocol = readFileSync(join(REPO_ROOT, 'protocol.md'), 'utf8');

function bytesOf(hex: string): Buffer {
  return Buffer.from(hex.replace(/ /g, ''), 'hex');
}

// msgpack bin decodes to Uint8Array; compare as plain data.
function normalise(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bin: Buffer.from(value).toString('hex') };
  if (Array.isArray(value)) return value.map(normalise);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalise(v)]));
  }
  return value;
}

for (const vector of GOLDEN_FRAMES) {
  t.test(vector.name, async (t) => {
    const body = vector.body === null ? Buffer.alloc(0) : Buffer.from(encodeBody(vector.body));
    const encoded = encodeFrame(vector.opcode, vector.flags, vector.requestId, body);
    t.equal(encoded.toString('hex'), bytesOf(vector.hex).toString('hex'), 'encodes to the golden bytes');

    const frames: unknown[] = [];
    new FrameDecoder({
      onFrame(opcode, flags, requestId, bytes, start, end) {
        frames.push({ opcode, flags, requestId, body: normalise(decodeBody(bytes, start, end)) });
      },
    }).push(bytesOf(vector.hex));
    t.same(frames, [
      { opcode: vector.opcode, flags: vector.flags, requestId: vector.requestId, body: normalise(vector.body) },
    ]);

    t.ok(protocol.includes(`\n${vector.hex}\n`), 'protocol.md shows the same bytes');
  });
}

t.test('protocol.md token vectors match the hash', async (t) => {
  const { murmur3x86_32, tokenOf } = await import('../../src/ring/token.js');
  const rows = [...protocol.matchAll(/^\| `([^`]*)`[^|]*\| `([0-9a-f]{8})` \| `([0-9a-f]{8})` \| `([0-9a-f]{12})` \| (\d+) \|$/gm)];
  t.ok(rows.length >= 8, `found ${rows.length} rows`);
  for (const [, key, h0, h1, tokenHex, tokenDecimal] of rows) {
    const bytes = Buffer.from(key === '""' ? '' : key!);
    t.equal(murmur3x86_32(bytes, 0, bytes.length, 0).toString(16).padStart(8, '0'), h0, `seed 0 of "${key}"`);
    t.equal(murmur3x86_32(bytes, 0, bytes.length, 1).toString(16).padStart(8, '0'), h1, `seed 1 of "${key}"`);
    t.equal(tokenOf(bytes).toString(16).padStart(12, '0'), tokenHex);
    t.equal(tokenOf(bytes), Number(tokenDecimal));
  }
  const sixteen = Buffer.from([...Array(16).keys()]);
  t.ok(protocol.includes(`| \`${tokenOf(sixteen).toString(16)}\` | ${tokenOf(sixteen)} |`), '16-byte vector');
});

t.test('the SWIM datagram example in protocol.md is what the codec writes and reads', async (t) => {
  const { encodeDatagramHeader } = await import('../../src/wire/datagram.js');
  const { SwimReader, SwimWriter } = await import('../../src/wire/swim-codec.js');
  const { SwimMessageType } = await import('../../src/wire/codes.js');
  const writer = new SwimWriter(1400);
  writer.begin(encodeDatagramHeader(null, false));
  writer.ping(7, Buffer.from('b'));
  const ping = writer.finish();
  writer.begin(encodeDatagramHeader(null, false));
  writer.ack(7);
  const ack = writer.finish();
  const spaced = (bytes: Buffer): string => bytes.toString('hex').replace(/(..)(?!$)/g, '$1 ');
  t.match(protocol, `\`${spaced(ping)}\``, 'protocol.md shows the PING bytes');
  t.match(protocol, `\`${spaced(ack)}\``, 'protocol.md shows the ACK bytes');
  const reader = new SwimReader();
  reader.reset(ping, 3, ping.length);
  t.equal(reader.next(), SwimMessageType.PING);
  t.equal(reader.number, 7);
  t.equal(reader.id(), 'b');
  t.equal(reader.next(), 0);
});
