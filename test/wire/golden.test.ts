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
