// Bad input against one real dkvd: every case gets an answer (where the dialect has one), fails
// only its own connection, and leaves the server serving, with its memory bounded.
//
// Needs the compiled server: run `npx tsc -p .` first.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { DkvClient } from '../../src/client/client.js';
import { limits } from '../../src/lib/limits.js';
import { ErrorCode, FRAME_HEADER_BYTES, FrameFlag, Opcode } from '../../src/wire/codes.js';
import { encodeFrame, FrameDecoder } from '../../src/wire/frame.js';
import { decodeBody, encodeBody } from '../../src/wire/messages.js';
import { removeDir, startDkvd, type Dkvd } from '../helpers/dkvd.js';

const MiB = 1024 * 1024;
const WAIT_MS = 15_000;
const SEED = Number(process.env.DKV_TEST_SEED ?? Date.now() % 2 ** 31);
t.comment(`seed=${SEED}`);

let dkvd: Dkvd;
let port: number;

t.before(async () => {
  dkvd = await startDkvd({ storage: 'memory' });
  port = dkvd.tcpPort;
});

t.teardown(async () => {
  if (dkvd === undefined) return;
  await dkvd.kill(); // if the last test did not stop it
  removeDir(dkvd.dataDir);
});

// ---- helpers ----

// A small deterministic PRNG (mulberry32), so a failing run can be replayed with DKV_TEST_SEED.
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, condition: () => boolean, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

function rssBytes(): number {
  const status = readFileSync(`/proc/${dkvd.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

interface Frame {
  opcode: number;
  flags: number;
  requestId: number;
  body: unknown;
}

// Every raw connection a test opens, so that a failing test leaves none behind.
const opened = new Set<Raw>();
t.afterEach(() => {
  for (const raw of opened) raw.destroy();
  opened.clear();
});

// One raw TCP connection: what the server sent, as bytes and (for native) as frames, and
// whether it closed its side.
class Raw {
  readonly received: Buffer[] = [];
  readonly frames: Frame[] = [];
  ended = false;
  closed = false;
  private readonly decoder = new FrameDecoder({
    onFrame: (opcode, flags, requestId, bytes, start, end) => {
      this.frames.push({ opcode, flags, requestId, body: decodeBody(bytes, start, end) });
    },
  });

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      if (this.received[0]![0] === 0) this.decoder.push(chunk);
    });
    socket.on('end', () => (this.ended = true));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  static async open(): Promise<Raw> {
    const socket = connect({ host: '127.0.0.1', port, noDelay: true });
    const raw = new Raw(socket);
    opened.add(raw);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('connect timed out')), WAIT_MS);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    return raw;
  }

  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  text(): string {
    return Buffer.concat(this.received).toString('latin1');
  }

  async frame(index: number): Promise<Frame> {
    await waitFor(`frame ${index}`, () => this.frames.length > index);
    return this.frames[index]!;
  }

  async line(index: number): Promise<string> {
    await waitFor(`reply line ${index}`, () => this.text().split('\r\n').length > index + 1);
    return this.text().split('\r\n')[index]!;
  }

  async serverEnded(): Promise<void> {
    await waitFor('the server to close the connection', () => this.ended || this.closed);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function frameBytes(opcode: number, requestId: number, body: unknown, flags = 0): Buffer {
  return encodeFrame(opcode, flags, requestId, body === null ? Buffer.alloc(0) : Buffer.from(encodeBody(body)));
}

function header(length: number, version = 1, opcode: number = Opcode.PING): Buffer {
  const bytes = Buffer.alloc(FRAME_HEADER_BYTES);
  bytes.writeUInt32BE(length >>> 0, 0);
  bytes[4] = version;
  bytes[5] = opcode;
  bytes.writeUInt32BE(77, 7);
  return bytes;
}

function expectError(t: Test, frame: Frame, code: keyof typeof ErrorCode, requestId: number): void {
  t.equal(frame.opcode, Opcode.ERROR, 'an ERROR frame');
  t.equal(frame.flags & FrameFlag.REPLY, FrameFlag.REPLY, 'with the REPLY flag');
  t.equal(frame.requestId, requestId, `for request ${requestId}`);
  t.match(frame.body, { code: ErrorCode[code], name: code });
}

async function withClient<T>(use: (client: DkvClient) => Promise<T>): Promise<T> {
  const client = await DkvClient.connect({ port, timeoutMs: WAIT_MS });
  try {
    return await use(client);
  } finally {
    await client.close();
  }
}

async function stats(): Promise<Record<string, string | number>> {
  return withClient((client) => client.stats());
}

// After every case: the process is alive and a fresh connection is served, both dialects.
async function serverServes(t: Test): Promise<void> {
  t.equal(dkvd.child.exitCode, null, 'dkvd is running');
  await withClient(async (client) => {
    await client.put('probe', 'ok');
    t.same((await client.get('probe'))?.values, [Buffer.from('ok')], 'a fresh native connection gets a GET answered');
  });
  const resp = await Raw.open();
  resp.write('PING\r\n');
  t.equal(await resp.line(0), '+PONG', 'a fresh RESP connection gets a PONG');
  resp.destroy();
}

// ---- native frames ----

// A native connection: the first frame chooses the dialect (its first byte is 0x00).
async function nativeConnection(t: Test): Promise<Raw> {
  const raw = await Raw.open();
  raw.write(frameBytes(Opcode.PING, 1, null));
  const pong = await raw.frame(0);
  t.same([pong.opcode, pong.requestId], [Opcode.PING, 1], 'a native connection');
  return raw;
}

t.test('a frame header that claims 4 GiB: ERROR, closed, no memory taken', async (t) => {
  const claim = header(0xffffffff);
  // Once to warm up the code paths, then measured.
  for (let round = 0; round < 2; round++) {
    const raw = await nativeConnection(t);
    const before = rssBytes();
    raw.write(claim);
    expectError(t, await raw.frame(1), 'BAD_FRAME', 0);
    t.match(raw.frames[1]!.body, { message: 'frame length 4294967295 is outside 7..4194304' });
    await raw.serverEnded();
    raw.destroy();
    if (round === 1) t.ok(rssBytes() - before < 1 * MiB, `RSS grew by ${rssBytes() - before} bytes`);
  }
  // The STATS view agrees: a 4 GiB claim on ten connections at once costs nothing.
  const raws = await Promise.all(Array.from({ length: 10 }, () => nativeConnection(t)));
  const before = Number((await stats()).memoryRssBytes);
  for (const raw of raws) raw.write(claim);
  for (const raw of raws) await raw.serverEnded();
  for (const raw of raws) raw.destroy();
  const after = Number((await stats()).memoryRssBytes);
  t.ok(after - before < 1 * MiB, `STATS memoryRssBytes grew by ${after - before} bytes`);
  await serverServes(t);
});

t.test('the same header as the first bytes of a connection is RESP: bounded, then refused', async (t) => {
  // A first byte other than 0x00 chooses RESP, where this is the start of an inline command: the
  // server keeps at most respInlineBytesMax bytes of it waiting for a newline.
  const raw = await Raw.open();
  const before = rssBytes();
  raw.write(header(0xffffffff));
  raw.write(Buffer.alloc(limits.respInlineBytesMax, 0xff));
  t.equal(await raw.line(0), '-ERR Protocol error: too big inline request');
  await raw.serverEnded();
  raw.destroy();
  t.ok(rssBytes() - before < 1 * MiB, `RSS grew by ${rssBytes() - before} bytes`);
  await serverServes(t);
});

for (const length of [0, 1, 2, 3, 4, 5, 6]) {
  t.test(`frame length ${length}: ERROR BAD_FRAME and closed`, async (t) => {
    const raw = await Raw.open();
    raw.write(header(length));
    expectError(t, await raw.frame(0), 'BAD_FRAME', 0);
    await raw.serverEnded();
    raw.destroy();
    await serverServes(t);
  });
}

for (const length of [0x80000000, 0xfffffff9, limits.frameBytesMax + 1]) {
  t.test(`frame length 0x${length.toString(16)} (negative as an int32, or past the max): BAD_FRAME`, async (t) => {
    const raw = await nativeConnection(t);
    // Sent a byte at a time: the error must not wait for the claimed bytes.
    for (const byte of header(length).subarray(0, 4)) {
      raw.write(Buffer.from([byte]));
      await sleep(5);
    }
    expectError(t, await raw.frame(1), 'BAD_FRAME', 0);
    await raw.serverEnded();
    raw.destroy();
    await serverServes(t);
  });
}

t.test('an unsupported protocol version: ERROR UNSUPPORTED_VERSION and closed', async (t) => {
  const raw = await Raw.open();
  raw.write(header(7, 2));
  expectError(t, await raw.frame(0), 'UNSUPPORTED_VERSION', 0);
  await raw.serverEnded();
  raw.destroy();
  await serverServes(t);
});

t.test('unknown opcodes: ERROR UNKNOWN_OPCODE, and the connection goes on', async (t) => {
  const raw = await Raw.open();
  const opcodes = [0x00, 0x0f, 0x42, 0x7e, Opcode.ERROR, 0x80, 0xff];
  opcodes.forEach((opcode, i) => raw.write(frameBytes(opcode, 100 + i, { key: 'k' })));
  for (let i = 0; i < opcodes.length; i++) expectError(t, await raw.frame(i), 'UNKNOWN_OPCODE', 100 + i);
  raw.write(frameBytes(Opcode.GET, 200, { key: 'probe-missing' }));
  const reply = await raw.frame(opcodes.length);
  t.same([reply.opcode, reply.flags, reply.requestId], [Opcode.GET, FrameFlag.REPLY, 200], 'a GET on the same connection');
  t.same(reply.body, { values: [], context: null, versions: [] });
  t.notOk(raw.ended, 'still open');
  raw.destroy();
  await serverServes(t);
});

t.test('a request with the REPLY flag: BAD_REQUEST, and the connection goes on', async (t) => {
  const raw = await Raw.open();
  raw.write(frameBytes(Opcode.PING, 5, null, FrameFlag.REPLY));
  expectError(t, await raw.frame(0), 'BAD_REQUEST', 5);
  raw.write(frameBytes(Opcode.PING, 6, null));
  t.same((await raw.frame(1)).requestId, 6);
  raw.destroy();
  await serverServes(t);
});

t.test('malformed msgpack bodies: BAD_REQUEST, and the connection goes on', async (t) => {
  const raw = await Raw.open();
  const bodies = [
    Buffer.from([0xc1]), // never used
    Buffer.from([0x82, 0xa3, 0x6b]), // truncated
    Buffer.from([0x81, 0xa3, 0x6b, 0x65, 0x79, 0xc4, 0x01, 0x61, 0x00]), // trailing byte
    Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff]), // a map of 4 billion entries
    Buffer.from([0xd4, 0x01, 0x00]), // an extension
    Buffer.from(encodeBody(['not', 'a', 'map'])),
  ];
  const opcodes = [Opcode.PUT, Opcode.GET, Opcode.GET, Opcode.MGET, Opcode.DELETE, Opcode.MPUT];
  bodies.forEach((body, i) => raw.write(encodeFrame(opcodes[i]!, 0, 10 + i, body)));
  for (let i = 0; i < bodies.length; i++) expectError(t, await raw.frame(i), 'BAD_REQUEST', 10 + i);
  raw.write(frameBytes(Opcode.GET, 99, { key: 'probe' }));
  const reply = await raw.frame(bodies.length);
  t.same([reply.opcode, reply.requestId], [Opcode.GET, 99], 'a GET on the same connection');
  raw.destroy();
  await serverServes(t);
});

t.test('a 4 MiB body of nested arrays: BAD_REQUEST at once, memory bounded', async (t) => {
  // Regression: this decoded into gigabytes of objects and held the event loop for seconds.
  const bomb = Buffer.alloc(limits.frameBytesMax - 7, 0x91);
  const before = rssBytes();
  const raw = await Raw.open();
  for (let i = 0; i < 3; i++) raw.write(encodeFrame(Opcode.PUT, 0, 1 + i, bomb));
  for (let i = 0; i < 3; i++) expectError(t, await raw.frame(i), 'BAD_REQUEST', 1 + i);
  t.match((await raw.frame(0)).body, { message: /deeper than/ });
  t.ok(rssBytes() - before < 64 * MiB, `RSS grew by ${Math.round((rssBytes() - before) / MiB)} MiB`);
  raw.destroy();
  await serverServes(t);
});

t.test('a truncated frame, then the client closes', async (t) => {
  for (const cut of [1, 4, 5, 11, 50]) {
    const raw = await Raw.open();
    raw.write(Buffer.concat([header(FRAME_HEADER_BYTES - 4 + 100, 1, Opcode.PUT), Buffer.alloc(100)]).subarray(0, cut));
    await sleep(20);
    raw.socket.end();
    await waitFor('the connection to close', () => raw.closed);
  }
  await withClient(async (client) => {
    const deadline = Date.now() + WAIT_MS;
    while (Number((await client.stats()).connectionsCurrent) > 1 && Date.now() < deadline) await sleep(20);
    t.equal(Number((await client.stats()).connectionsCurrent), 1, 'no connection left behind but this one');
  });
  await serverServes(t);
});

t.test('bytes after a fatal error, then the client hangs up: the server lets go', async (t) => {
  // Regression: a connection closing after a protocol error stopped reading; bytes the client had
  // sent after the bad ones stayed unread, so its hang-up was never seen and the connection was
  // never released.
  const inputs: Array<[string, Buffer]> = [
    ['native', Buffer.concat([header(3), Buffer.alloc(256 * 1024, 0x41)])],
    ['RESP', Buffer.concat([Buffer.from('*1\r\n$-5\r\n'), Buffer.alloc(256 * 1024, 0x41)])],
  ];
  for (const [dialect, input] of inputs) {
    for (const hangUp of ['end', 'destroy'] as const) {
      const raw = await Raw.open();
      raw.write(input);
      await waitFor('an error reply', () => raw.received.length > 0);
      await raw.serverEnded();
      if (hangUp === 'end') raw.socket.end();
      else raw.destroy();
      await waitFor('the client side to close', () => raw.closed);
      t.pass(`${dialect}, then ${hangUp}`);
    }
  }
  await withClient(async (client) => {
    const deadline = Date.now() + WAIT_MS;
    while (Number((await client.stats()).connectionsCurrent) > 1 && Date.now() < deadline) await sleep(20);
    t.equal(Number((await client.stats()).connectionsCurrent), 1, 'no connection left behind but this one');
  });
  await serverServes(t);
});

t.test('random bytes on a few hundred fresh connections', async (t) => {
  const random = prng(SEED);
  const connections = 300;
  const batch = 30;
  let repliesSeen = 0;
  const started = Date.now();
  for (let first = 0; first < connections; first += batch) {
    const raws = await Promise.all(Array.from({ length: batch }, () => Raw.open()));
    for (const raw of raws) {
      const bytes = Buffer.alloc(1 + Math.floor(random() * 600));
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
      // A third start as a native frame would, so the frame checks see random input too.
      const kind = Math.floor(random() * 3);
      if (kind === 0 && bytes.length >= 5) bytes.set([0, 0, Math.floor(random() * 4), Math.floor(random() * 256), 1]);
      raw.write(bytes);
    }
    // Give the server time to answer (or to wait for more bytes), then hang up.
    await sleep(100);
    for (const raw of raws) {
      if (raw.received.length > 0) repliesSeen++;
      raw.destroy();
    }
    t.ok(Date.now() - started < 120_000, 'bounded time');
  }
  t.comment(`${repliesSeen} of ${connections} connections got a reply before hanging up`);
  await serverServes(t);
});

// ---- RESP ----

const respProtocolErrors: Array<[string, string]> = [
  ['*99999999999\r\n', 'invalid multibulk length'],
  ['*-99999999999999999999\r\n', 'invalid multibulk length'],
  [`*${'9'.repeat(40)}\r\n`, 'multibulk count is too long'],
  ['*1\r\n$-5\r\n', 'invalid bulk length'],
  ['*2\r\n$999999999\r\n', 'invalid bulk length'],
  ['*1\r\n$99999999999999999999999999999999999\r\n', 'bulk length is too long'],
  ['*1\r\nGET\r\n', "expected '$', got 'G'"],
  ['*1\r\n$3\r\nGETXX', 'bulk string not terminated by CRLF'],
  ['*1\rX', 'multibulk count not terminated by CRLF'],
  ['SET "a b\r\n', 'unbalanced quotes in request'],
];

for (const [input, message] of respProtocolErrors) {
  t.test(`RESP ${JSON.stringify(input)}: -ERR Protocol error, closed`, async (t) => {
    const raw = await Raw.open();
    raw.write(input);
    t.equal(await raw.line(0), `-ERR Protocol error: ${message}`);
    await raw.serverEnded();
    raw.destroy();
    await serverServes(t);
  });
}

t.test('RESP "$-5" alone is an inline command: unknown, and the connection goes on', async (t) => {
  const raw = await Raw.open();
  raw.write('$-5\r\nPING\r\n');
  t.match(await raw.line(0), /^-ERR unknown command '\$-5'/);
  t.equal(await raw.line(1), '+PONG');
  raw.destroy();
  await serverServes(t);
});

t.test('RESP: an unknown command gets -ERR unknown command, and the connection goes on', async (t) => {
  const raw = await Raw.open();
  raw.write('*2\r\n$8\r\nFLUSHALL\r\n$5\r\nASYNC\r\n');
  t.equal(await raw.line(0), "-ERR unknown command 'FLUSHALL', with args beginning with: 'ASYNC'");
  raw.write('SHUTDOWN NOSAVE\r\n');
  t.match(await raw.line(1), /^-ERR unknown command 'SHUTDOWN'/);
  raw.write('PING\r\n');
  t.equal(await raw.line(2), '+PONG', 'a PING on the same connection');
  t.notOk(raw.ended, 'still open');
  raw.destroy();
  await serverServes(t);
});

t.test('RESP: a command that claims more than 4 MiB in its bulk lengths is refused, memory bounded', async (t) => {
  // Regression: 2001 bulks of 4 MiB were all buffered, 8 GiB for one command.
  const before = rssBytes();
  const raw = await Raw.open();
  const bulk = limits.respBulkBytesMax - 1000;
  raw.write(`*2001\r\n$${bulk}\r\n`);
  raw.write(Buffer.alloc(bulk, 0x61));
  raw.write(`\r\n$${bulk}\r\n`);
  t.equal(await raw.line(0), `-ERR Protocol error: command of more than ${limits.respCommandBytesMax} bytes`);
  await raw.serverEnded();
  raw.destroy();
  t.ok(rssBytes() - before < 64 * MiB, `RSS grew by ${Math.round((rssBytes() - before) / MiB)} MiB`);
  await serverServes(t);
});

// ---- a client that never reads ----

// Writes `request` over and over without reading a reply, for a bounded time or byte count, and
// checks that the server stopped reading rather than queueing replies without bound.
async function pipelineWithoutReading(t: Test, request: Buffer, rssGrowthMax = 64 * MiB): Promise<void> {
  const batch = Buffer.concat(Array.from({ length: Math.ceil(MiB / request.length) }, () => request));
  const statsBefore = await stats();
  const rssBefore = rssBytes();
  const raw = await Raw.open();
  raw.socket.pause(); // never read: replies pile up in the kernel, then in the server
  raw.socket.removeAllListeners('data');
  let written = 0;
  let peakRss = rssBefore;
  const started = Date.now();
  // Until 200 MiB are written, or 32 MiB have waited in this client for two seconds: the
  // server has stopped reading. Bounded at 30 s either way.
  let fullSince = Infinity;
  while (written < 200 * MiB && Date.now() - fullSince < 2_000 && Date.now() - started < 30_000) {
    if (raw.socket.writableLength < 32 * MiB) {
      fullSince = Infinity;
      raw.socket.write(batch);
      written += batch.length;
      await sleep(0);
    } else {
      fullSince = Math.min(fullSince, Date.now());
      await sleep(50);
    }
    peakRss = Math.max(peakRss, rssBytes());
  }
  const statsAfter = await stats();
  const taken = Number(statsAfter.bytesIn) - Number(statsBefore.bytesIn);
  t.comment(
    `wrote ${Math.round(written / MiB)} MiB in ${Date.now() - started} ms; the server took ${Math.round(taken / MiB)} MiB; ` +
      `${Math.round(raw.socket.writableLength / MiB)} MiB wait in the client; server RSS peak +${Math.round((peakRss - rssBefore) / MiB)} MiB`,
  );
  t.ok(peakRss - rssBefore < rssGrowthMax, `the server RSS stayed within +${rssGrowthMax / MiB} MiB`);
  t.ok(raw.socket.writableLength > 8 * MiB, "the server stopped reading: the client's writes back up");
  t.ok(taken < 64 * MiB, 'the server read little of what was sent');
  t.ok(Number(statsAfter.readsPaused) > Number(statsBefore.readsPaused), 'STATS counts the paused reads');
  raw.destroy();
  await waitFor('the server to let go of the connection', () => raw.closed);
  await serverServes(t);
  // The memory went back.
  await sleep(500);
  t.ok(rssBytes() - rssBefore < rssGrowthMax, `RSS afterwards +${Math.round((rssBytes() - rssBefore) / MiB)} MiB`);
}

t.test('native: GETs of a 1 MiB value pipelined without reading the replies', async (t) => {
  await withClient((client) => client.put('big', Buffer.alloc(limits.valueBytesMax, 0x62)));
  await pipelineWithoutReading(t, frameBytes(Opcode.GET, 1, { key: Buffer.from('big') }));
});

t.test('native: GETs of a missing key pipelined without reading the replies', async (t) => {
  await pipelineWithoutReading(t, frameBytes(Opcode.GET, 1, { key: Buffer.from('no-such-key') }));
});

t.test('RESP: GETs of a 1 MiB value pipelined without reading the replies', async (t) => {
  await withClient((client) => client.put('big', Buffer.alloc(limits.valueBytesMax, 0x62)));
  await pipelineWithoutReading(t, Buffer.from('*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n'));
});

t.test('RESP: SETs pipelined without reading the replies', async (t) => {
  // Replies of five bytes fill the kernel's buffers slowly, so the server does work through a
  // few hundred thousand SETs before it stops; the garbage they leave shows in RSS until a GC.
  await pipelineWithoutReading(t, Buffer.from('SET k 0123456789\r\n'), 128 * MiB);
});

// ---- connection churn ----

t.test('5,000 connections opened and dropped in bursts', async (t) => {
  const total = 5000;
  // Each wave is open at once, in this process and in dkvd (which inherits the limit): keep it
  // well inside the open-file limit.
  const fdLimit = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim()) || 1024;
  const wave = Math.max(50, Math.min(500, Math.floor((fdLimit - 200) / 2)));
  t.comment(`ulimit -n is ${fdLimit}: waves of ${wave}`);
  const before = Number((await stats()).connectionsTotal);
  const started = Date.now();
  let opened = 0;
  for (let first = 0; first < total; first += wave) {
    const sockets = await Promise.all(
      Array.from(
        { length: Math.min(wave, total - first) },
        (_, i) =>
          new Promise<Socket>((resolve, reject) => {
            const socket = connect({ host: '127.0.0.1', port });
            const timer = setTimeout(() => reject(new Error('connect timed out')), 30_000);
            socket.once('connect', () => {
              clearTimeout(timer);
              // Some say something first: half a frame, or half a RESP command.
              if (i % 3 === 1) socket.write(header(100).subarray(0, 6));
              if (i % 3 === 2) socket.write('*2\r\n$3\r\nGE');
              resolve(socket);
            });
            socket.once('error', (error) => {
              clearTimeout(timer);
              reject(error);
            });
          }),
      ),
    );
    opened += sockets.length;
    for (const socket of sockets) {
      socket.on('error', () => {});
      socket.destroy();
    }
    t.ok(Date.now() - started < 180_000, 'bounded time');
  }
  t.equal(opened, total);
  t.comment(`${total} connections in ${Date.now() - started} ms`);
  await withClient(async (client) => {
    let current = Infinity;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      current = Number((await client.stats()).connectionsCurrent);
      if (current <= 1) break;
      await sleep(50);
    }
    t.equal(current, 1, 'connectionsCurrent is back to just this client');
    const s = await client.stats();
    t.ok(Number(s.connectionsTotal) - before >= total, `connectionsTotal grew by ${Number(s.connectionsTotal) - before}`);
    t.equal(Number(s.connectionsRejected), 0, 'none rejected');
  });
  await serverServes(t);
});

t.test('after all of it, dkvd logged no errors and shuts down cleanly', async (t) => {
  const errors = dkvd.logLines.filter((line) => /"level":(50|60)/.test(line));
  t.same(errors, [], 'no error or fatal log lines');
  t.equal(await dkvd.stop(), 0, 'exit code 0 on SIGTERM');
});
