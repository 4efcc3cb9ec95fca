// The bench workload: a seeded stream that replays, the zipfian generator against the exact Zipf
// law, and request templates that decode as the GET and PUT they claim to be.
import t from 'tap';
import {
  connectionSeed,
  getTemplate,
  keyDigitsOf,
  keyOf,
  putTemplate,
  UniformKeys,
  writeRequest,
  zeta,
  ZipfianKeys,
} from '../../src/cli/load-workload.js';
import { SeededRandom } from '../../src/lib/random.js';
import { FRAME_HEADER_BYTES, Opcode } from '../../src/wire/codes.js';
import { FrameDecoder } from '../../src/wire/frame.js';
import { decodeBody, decodeKeyRequest, decodePutRequest } from '../../src/wire/messages.js';

const SEED = Number(process.env.DKV_TEST_SEED ?? Date.now() % 2 ** 31);
t.comment(`seed=${SEED}`);

function draws(seed: number, count: number): number[] {
  const random = new SeededRandom(seed);
  return Array.from({ length: count }, () => random.next32());
}

t.test('the same seed gives the same stream, another seed another', async (t) => {
  t.same(draws(SEED, 100), draws(SEED, 100));
  t.not(draws(SEED, 100).join(), draws(SEED + 1, 100).join());
  t.ok(draws(0, 100).some((x) => x !== 0), 'seed 0 does not leave the state all zero');
});

t.test('each connection draws from a stream of its own', async (t) => {
  const seeds = new Set(Array.from({ length: 64 }, (_, index) => connectionSeed(SEED, index)));
  t.equal(seeds.size, 64);
  t.equal(connectionSeed(SEED, 3), connectionSeed(SEED, 3));
  t.not(connectionSeed(SEED, 0), connectionSeed(SEED + 1, 0));
});

t.test('floats are in [0, 1) and uniform keys cover the space evenly', async (t) => {
  const random = new SeededRandom(SEED);
  const keys = new UniformKeys(10);
  const counts = new Array<number>(10).fill(0);
  const samples = 200_000;
  for (let i = 0; i < samples; i++) {
    const x = random.next53();
    if (!(x >= 0 && x < 1)) t.fail(`float ${x} out of range`);
    counts[keys.next(random)]!++;
  }
  // Each count is binomial(200000, 0.1): σ ≈ 134; 6σ bounds make a false failure negligible.
  for (const [key, n] of counts.entries()) t.ok(Math.abs(n - samples / 10) < 6 * 134, `key ${key}: ${n}`);
});

t.test('zeta is the sum it is defined as', async (t) => {
  t.equal(zeta(1, 0.99), 1);
  t.ok(Math.abs(zeta(2, 0.99) - (1 + 0.5 ** 0.99)) < 1e-15);
  let naive = 0;
  for (let i = 1; i <= 1000; i++) naive += 1 / i ** 0.99;
  t.ok(Math.abs(zeta(1000, 0.99) - naive) < 1e-9);
});

// Gray et al.'s method is exact for ranks 0 and 1 and approximates the rest; YCSB relies on the
// approximation being close. Checked against the exact Zipf law for several key-space sizes.
t.test('zipfian ranks follow the Zipf law with θ = 0.99', async (t) => {
  const samples = 400_000;
  for (const keys of [1, 2, 3, 10, 1000, 100_000]) {
    const zipf = new ZipfianKeys(keys);
    const random = new SeededRandom(SEED + keys);
    const counts = new Float64Array(keys);
    for (let i = 0; i < samples; i++) {
      const rank = zipf.next(random);
      if (!(Number.isInteger(rank) && rank >= 0 && rank < keys)) t.fail(`rank ${rank} outside [0, ${keys})`);
      counts[rank]!++;
    }
    for (const rank of [0, 1].filter((r) => r < keys)) {
      const p = zipf.probability(rank);
      const sigma = Math.sqrt(samples * p * (1 - p));
      t.ok(Math.abs(counts[rank]! - samples * p) <= 6 * sigma + 1e-9, `${keys} keys: rank ${rank} is exact`);
    }
    // Kolmogorov-Smirnov distance from the exact law: sampling noise is about 1/sqrt(samples)
    // = 0.0016; the method's own approximation error is under 0.02 for these sizes.
    let observed = 0;
    let expected = 0;
    let distance = 0;
    for (let rank = 0; rank < keys; rank++) {
      observed += counts[rank]! / samples;
      expected += zipf.probability(rank);
      distance = Math.max(distance, Math.abs(observed - expected));
    }
    t.ok(distance < 0.025, `${keys} keys: KS distance ${distance.toFixed(4)}`);
  }
});

t.test('key names have a fixed width for the key space', async (t) => {
  t.equal(keyDigitsOf(1), 1);
  t.equal(keyDigitsOf(10), 1);
  t.equal(keyDigitsOf(11), 2);
  t.equal(keyDigitsOf(100_000), 5);
  t.equal(keyOf(42, 5), 'bench:00042');
});

interface Decoded {
  opcode: number;
  flags: number;
  requestId: number;
  body: unknown;
}

function decodeFrames(bytes: Buffer): Decoded[] {
  const frames: Decoded[] = [];
  new FrameDecoder({
    onFrame(opcode, flags, requestId, frame, start, end) {
      frames.push({ opcode, flags, requestId, body: decodeBody(frame, start, end) });
    },
  }).push(bytes);
  return frames;
}

t.test('requests written from templates decode as GET and PUT of the right key', async (t) => {
  for (const keys of [1, 100_000]) {
    for (const valueBytes of [0, 100, 300, 70_000]) {
      const digits = keyDigitsOf(keys);
      const value = Buffer.alloc(valueBytes, 0xab);
      const get = getTemplate(digits);
      const put = putTemplate(digits, value);
      const out = Buffer.alloc(get.frame.length + put.frame.length);
      const key = keys - 1;
      let offset = writeRequest(out, 0, get, 0xfedcba98, key);
      offset = writeRequest(out, offset, put, 7, key);
      t.equal(offset, out.length);
      const [getFrame, putFrame] = decodeFrames(out);
      t.same(
        { opcode: getFrame!.opcode, flags: getFrame!.flags, requestId: getFrame!.requestId },
        { opcode: Opcode.GET, flags: 0, requestId: 0xfedcba98 },
      );
      t.equal(Buffer.from(decodeKeyRequest(getFrame!.body, 'GET')).toString(), keyOf(key, digits));
      const decoded = decodePutRequest(putFrame!.body);
      t.same(
        { opcode: putFrame!.opcode, requestId: putFrame!.requestId, key: Buffer.from(decoded.key).toString() },
        { opcode: Opcode.PUT, requestId: 7, key: keyOf(key, digits) },
      );
      t.ok(Buffer.from(decoded.value).equals(value), `${valueBytes}-byte value`);
      t.equal(decoded.context, undefined);
    }
  }
});

t.test('a template is patched in place: every key of the space, no stale digits', async (t) => {
  const digits = keyDigitsOf(1000);
  const get = getTemplate(digits);
  const out = Buffer.alloc(get.frame.length);
  for (const key of [999, 0, 5, 120]) {
    writeRequest(out, 0, get, key + 1, key);
    const body = decodeBody(out, FRAME_HEADER_BYTES, out.length);
    t.equal(Buffer.from(decodeKeyRequest(body, 'GET')).toString(), keyOf(key, digits));
  }
});
