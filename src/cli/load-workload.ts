// What `dkv-cli bench` asks for, decided ahead of the sockets: a seeded random stream, the key
// distributions and the request templates. Pure: the same seed gives the same requests.

import { assert } from '../lib/assert.js';
import { limits } from '../lib/limits.js';
import type { SeededRandom } from '../lib/random.js';
import { FRAME_HEADER_BYTES, Opcode } from '../wire/codes.js';
import { writeFrameHeader } from '../wire/frame.js';

// The seed of connection `index`: each connection draws from its own stream, so what it sends
// does not depend on how the event loop interleaves the connections.
export function connectionSeed(seed: number, index: number): number {
  return (Math.imul(seed ^ 0x5bd1e995, 0x01000193) + Math.imul(index + 1, 0x9e3779b9)) >>> 0;
}

export interface KeyChooser {
  // A key index in [0, keys).
  next(random: SeededRandom): number;
}

export class UniformKeys implements KeyChooser {
  constructor(private readonly keys: number) {}

  next(random: SeededRandom): number {
    return Math.floor(random.next53() * this.keys);
  }
}

// YCSB's zipfian constant. With 100,000 keys the hottest key gets about 8% of the requests.
export const ZIPFIAN_THETA = 0.99;

// Zipfian ranks by Gray et al., "Quickly generating billion-record synthetic databases"
// (SIGMOD 1994), as YCSB's ZipfianGenerator does it: zeta(n) is summed once, then each draw is
// one uniform number and one pow(), with no table. Rank 0 is the hottest key. Ranks 0 and 1 are
// exact; beyond them the method approximates the tail, which is what YCSB measures with too.
export class ZipfianKeys implements KeyChooser {
  private readonly zetaN: number;
  private readonly alpha: number;
  private readonly eta: number;
  private readonly halfPowTheta: number;

  constructor(
    private readonly keys: number,
    readonly theta = ZIPFIAN_THETA,
  ) {
    assert(keys >= 1, 'a zipfian key space needs at least one key');
    assert(theta > 0 && theta < 1, 'the zipfian constant must be in (0, 1)');
    this.zetaN = zeta(keys, theta);
    this.alpha = 1 / (1 - theta);
    this.halfPowTheta = Math.pow(0.5, theta);
    const zeta2 = 1 + this.halfPowTheta;
    // With one or two keys the tail formula is never reached; eta is then unused.
    this.eta = keys <= 2 ? 0 : (1 - Math.pow(2 / keys, 1 - theta)) / (1 - zeta2 / this.zetaN);
  }

  // The exact probability of `rank` under the Zipf law this approximates.
  probability(rank: number): number {
    return 1 / Math.pow(rank + 1, this.theta) / this.zetaN;
  }

  next(random: SeededRandom): number {
    const u = random.next53();
    const uz = u * this.zetaN;
    if (uz < 1) return 0;
    if (uz < 1 + this.halfPowTheta) return Math.min(1, this.keys - 1);
    const rank = Math.floor(this.keys * Math.pow(this.eta * u - this.eta + 1, this.alpha));
    return Math.min(rank, this.keys - 1);
  }
}

// zeta(n, θ) = Σ_{i=1..n} 1/i^θ, summed from the small terms up to keep the rounding error low.
export function zeta(n: number, theta: number): number {
  let sum = 0;
  for (let i = n; i >= 1; i--) sum += 1 / Math.pow(i, theta);
  return sum;
}

export const KEY_PREFIX = 'bench:';

// Keys are KEY_PREFIX and the index in fixed-width decimal, so every request of a kind has the
// same length and a template is patched in place.
export function keyDigitsOf(keys: number): number {
  return String(Math.max(0, keys - 1)).length;
}

export function keyOf(index: number, digits: number): string {
  return KEY_PREFIX + String(index).padStart(digits, '0');
}

// A request frame of one kind with everything but the request id and the key's digits filled in.
export interface RequestTemplate {
  readonly opcode: number;
  readonly frame: Buffer;
  // Where the key's decimal digits start in the frame.
  readonly digitsOffset: number;
  readonly digits: number;
}

// GET {"key": bin}
export function getTemplate(digits: number): RequestTemplate {
  const keyBytes = KEY_PREFIX.length + digits;
  const body = [0x81, ...fixstr('key'), ...binHeader(keyBytes)];
  return template(Opcode.GET, body, keyBytes, null, digits);
}

// PUT {"key": bin, "value": bin}. Without a context the write overwrites every version the node
// holds (version/dvv.ts), so repeated writes of a key never pile up siblings.
export function putTemplate(digits: number, value: Uint8Array): RequestTemplate {
  const keyBytes = KEY_PREFIX.length + digits;
  const body = [0x82, ...fixstr('key'), ...binHeader(keyBytes)];
  return template(Opcode.PUT, body, keyBytes, value, digits);
}

function template(
  opcode: number,
  bodyStart: number[],
  keyBytes: number,
  value: Uint8Array | null,
  digits: number,
): RequestTemplate {
  assert(keyBytes <= limits.keyBytesMax, 'bench keys fit the key limit');
  const valueHeader = value === null ? [] : [...fixstr('value'), ...binHeader(value.length)];
  const bodyBytes = bodyStart.length + keyBytes + valueHeader.length + (value?.length ?? 0);
  const frame = Buffer.alloc(FRAME_HEADER_BYTES + bodyBytes);
  writeFrameHeader(frame, 0, bodyBytes, opcode, 0, 0);
  let offset = FRAME_HEADER_BYTES;
  frame.set(bodyStart, offset);
  offset += bodyStart.length;
  offset += frame.write(KEY_PREFIX, offset, 'latin1');
  const digitsOffset = offset;
  frame.fill(0x30, offset, offset + digits);
  offset += digits;
  if (value !== null) {
    frame.set(valueHeader, offset);
    offset += valueHeader.length;
    frame.set(value, offset);
    offset += value.length;
  }
  assert(offset === frame.length, 'a template is filled exactly');
  return { opcode, frame, digitsOffset, digits };
}

function fixstr(text: string): number[] {
  assert(text.length < 32, 'a fixstr holds at most 31 bytes');
  return [0xa0 | text.length, ...Buffer.from(text, 'latin1')];
}

function binHeader(bytes: number): number[] {
  if (bytes <= 0xff) return [0xc4, bytes];
  if (bytes <= 0xffff) return [0xc5, bytes >>> 8, bytes & 0xff];
  return [0xc6, bytes >>> 24, (bytes >>> 16) & 0xff, (bytes >>> 8) & 0xff, bytes & 0xff];
}

// Copies `template` to `target` at `offset` with its request id and key index filled in;
// returns the offset after it.
export function writeRequest(
  target: Buffer,
  offset: number,
  template: RequestTemplate,
  requestId: number,
  keyIndex: number,
): number {
  target.set(template.frame, offset);
  target[offset + 7] = requestId >>> 24;
  target[offset + 8] = (requestId >>> 16) & 0xff;
  target[offset + 9] = (requestId >>> 8) & 0xff;
  target[offset + 10] = requestId & 0xff;
  let index = keyIndex;
  for (let i = offset + template.digitsOffset + template.digits - 1; i >= offset + template.digitsOffset; i--) {
    target[i] = 0x30 + (index % 10);
    index = Math.floor(index / 10);
  }
  return offset + template.frame.length;
}
