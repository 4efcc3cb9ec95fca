// The RESP parser and reply encoders: multibulk and inline commands as Redis reads them, the
// same commands however the bytes are split, every bad length rejected, and random bytes only
// ever raising DkvError.
import { deepStrictEqual } from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { DkvError } from '../../src/lib/errors.js';
import { limits } from '../../src/lib/limits.js';
import {
  RESP_EMPTY_ARRAY,
  RESP_NIL,
  RESP_OK,
  RESP_PONG,
  RespParser,
  RespProtocolError,
  respArrayHeader,
  respBulk,
  respBulkArray,
  respBulkString,
  respError,
  respInteger,
  respSimple,
  leadingKeys,
  splitInline,
  type RespArgs,
} from '../../src/wire/resp.js';
import { bytewise, chunksAt, cutsArbitrary, run, type Outcome } from '../helpers/chunks.js';

// Arguments as latin1 strings: one character per byte, so binary arguments compare exactly.
type Command = string[];

function argsOf(args: RespArgs): Command {
  const out: Command = [];
  for (let i = 0; i < args.count; i++) out.push(args.bytes.toString('latin1', args.starts[i], args.ends[i]));
  return out;
}

function describe(error: unknown): string {
  if (!(error instanceof DkvError)) throw error;
  return `${error.code}: ${error.message}`;
}

function parse(chunks: readonly Buffer[]): Outcome<Command> {
  return run((items: Command[]) => new RespParser({ onCommand: (args) => items.push(argsOf(args)) }), chunks, describe);
}

function parseText(text: string): Outcome<Command> {
  return parse([Buffer.from(text, 'latin1')]);
}

function multibulk(args: readonly string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a, 'latin1')}\r\n${a}\r\n`).join('');
}

// What the split must not change: the same commands, error and leftover bytes.
function splitsAgree(input: Buffer, cuts: readonly number[], withBytewise: boolean): void {
  const whole = parse([input]);
  deepStrictEqual(parse(chunksAt(input, cuts)), whole);
  if (withBytewise) deepStrictEqual(parse(bytewise(input)), whole);
}

t.test('multibulk commands, binary-safe', async (t) => {
  t.same(parseText('*2\r\n$3\r\nGET\r\n$1\r\na\r\n'), { items: [['GET', 'a']], error: null, bufferedBytes: 0 });
  t.same(parseText('*3\r\n$3\r\nSET\r\n$4\r\na\r\nb\r\n$0\r\n\r\n').items, [['SET', 'a\r\nb', '']]);
  const binary = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
  t.same(parseText(multibulk(['ECHO', binary])).items, [['ECHO', binary]]);
  // Pipelined, and a leftover partial command is kept.
  const two = multibulk(['PING']) + multibulk(['GET', 'k']) + '*2\r\n$3\r\nGET';
  t.same(parseText(two), { items: [['PING'], ['GET', 'k']], error: null, bufferedBytes: 11 });
});

t.test('*0 and *-1 are ignored, as Redis ignores them', async (t) => {
  t.same(parseText('*0\r\n*-1\r\n*-1000\r\n' + multibulk(['PING'])), { items: [['PING']], error: null, bufferedBytes: 0 });
});

t.test('inline commands: blanks, CRLF or LF, empty lines', async (t) => {
  t.same(parseText('GET a\r\nSET  k\t v\n\r\n   \nPING\n').items, [['GET', 'a'], ['SET', 'k', 'v'], ['PING']]);
  t.same(parseText('GET a'), { items: [], error: null, bufferedBytes: 5 }, 'no newline yet: incomplete');
});

t.test('inline quotes and escapes follow Redis (sdssplitargs)', async (t) => {
  const cases: Array<[string, Command | null]> = [
    [`SET "a b" 'c d'`, ['SET', 'a b', 'c d']],
    [`ECHO "\\x41\\n"`, ['ECHO', 'A\n']],
    [`ECHO "\\t\\r\\b\\a\\\\\\""`, ['ECHO', '\t\r\b\x07\\"']],
    [`ECHO "\\q\\x4g\\xZZ"`, ['ECHO', 'qx4gxZZ']],
    [`ECHO "\\xff\\x00"`, ['ECHO', '\xff\x00']],
    [`ECHO 'it\\'s' 'a\\nb'`, ['ECHO', "it's", 'a\\nb']],
    [`ECHO "" ''`, ['ECHO', '', '']],
    [`ECHO a"b c"d`, null], // a closing quote must be followed by a blank
    [`ECHO a"b c"`, ['ECHO', 'ab c']], // a quote may open mid-argument
    [`ECHO "abc`, null],
    [`ECHO 'abc`, null],
    [`ECHO "abc"def`, null],
    [`ECHO 'abc'def`, null],
    [`ECHO "abc\\"`, null],
  ];
  for (const [line, expected] of cases) {
    const outcome = parseText(`${line}\r\n`);
    if (expected === null) {
      t.equal(outcome.error, 'BAD_REQUEST: Protocol error: unbalanced quotes in request', line);
    } else {
      t.same(outcome.items, [expected], line);
    }
    t.same(naiveSplit(line), expected, `the naive splitter agrees on ${line}`);
  }
});

t.test('inline splitting matches a naive port of sdssplitargs on random lines', async (t) => {
  const alphabet = fc.constantFrom(...'ab x4F"\'\\\t\r\v\0nq'.split(''));
  fc.assert(
    fc.property(fc.array(alphabet, { maxLength: 40 }), (chars) => {
      const line = chars.join('');
      const scratch = Buffer.alloc(limits.respInlineBytesMax);
      const args: RespArgs = { bytes: scratch, starts: new Int32Array(64), ends: new Int32Array(64), count: 0 };
      const bytes = Buffer.from(line, 'latin1');
      const count = splitInline(bytes, 0, bytes.length, scratch, args);
      const actual = count === null ? null : argsOf({ ...args, count });
      deepStrictEqual(actual, naiveSplit(line));
    }),
    { numRuns: 5000 },
  );
  t.pass('5000 random lines');
});

t.test('reply encoders: exact bytes, and arrays parse back to the same items', async (t) => {
  t.equal(RESP_OK.toString(), '+OK\r\n');
  t.equal(RESP_PONG.toString(), '+PONG\r\n');
  t.equal(RESP_NIL.toString(), '$-1\r\n');
  t.equal(RESP_EMPTY_ARRAY.toString(), '*0\r\n');
  t.equal(respSimple('QUEUED').toString(), '+QUEUED\r\n');
  t.equal(respError('ERR bad\r\nthing\nhere').toString(), '-ERR bad thing here\r\n');
  t.equal(respInteger(-12).toString(), ':-12\r\n');
  t.equal(respArrayHeader(3).toString(), '*3\r\n');
  t.equal(respBulkString('').toString(), '$0\r\n\r\n');
  t.equal(respBulk(Buffer.from('xhelloy'), 1, 6).toString(), '$5\r\nhello\r\n');
  t.equal(respBulk(new Uint8Array([104, 105])).toString(), '$2\r\nhi\r\n', 'a plain Uint8Array');
  t.equal(respBulkArray(['a', null, Buffer.from('bc')]).toString(), '*3\r\n$1\r\na\r\n$-1\r\n$2\r\nbc\r\n');
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 1200 }), { minLength: 1, maxLength: 6 }), (items) => {
      const encoded = respBulkArray(items);
      const expected = items.map((i) => Buffer.from(i).toString('latin1'));
      deepStrictEqual(parse([encoded]).items, [expected]);
      // The length prefix is exact for every size (digits counted without toString).
      deepStrictEqual(respBulk(items[0]!).toString('latin1'), `$${items[0]!.length}\r\n${expected[0]}\r\n`);
    }),
    { numRuns: 500 },
  );
  t.pass('500 random arrays');
});

t.test('huge, negative and malformed lengths are rejected', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['*99999999999\r\n', /invalid multibulk length/],
    [`*${limits.respArgsMax + 1}\r\n`, /invalid multibulk length/],
    ['*1234567890123456789\r\n', /invalid multibulk length/], // 19 digits: past any safe integer
    ['*\r\n', /invalid multibulk length/],
    ['*-\r\n', /invalid multibulk length/],
    ['*+1\r\n', /invalid multibulk length/],
    ['*1x\r\n', /invalid multibulk length/],
    [`*${'1'.repeat(40)}`, /multibulk count is too long/],
    ['*2\r\n$-5\r\n', /invalid bulk length/],
    ['*2\r\n$-1\r\n', /invalid bulk length/],
    ['*2\r\n$999999999\r\n', /invalid bulk length/],
    [`*1\r\n$${limits.respBulkBytesMax + 1}\r\n`, /invalid bulk length/],
    ['*1\r\n$\r\n', /invalid bulk length/],
    ['*1\r\n$abc\r\n', /invalid bulk length/],
    [`*1\r\n$${'9'.repeat(40)}`, /bulk length is too long/],
    ['*1\r\nGET\r\n', /expected '\$', got 'G'/],
    ['*1\rX', /multibulk count not terminated by CRLF/],
    ['*1\r\n$3\rX', /bulk length not terminated by CRLF/],
    ['*1\r\n$3\r\nGETXX', /bulk string not terminated by CRLF/],
    ['*1\r\n$3\r\nGET\rX', /bulk string not terminated by CRLF/],
  ];
  for (const [input, message] of cases) {
    for (const chunks of [[Buffer.from(input)], bytewise(Buffer.from(input))]) {
      const outcome = parse(chunks);
      t.same(outcome.items, [], JSON.stringify(input));
      t.match(outcome.error, /^BAD_REQUEST: Protocol error: /);
      t.match(outcome.error, message, JSON.stringify(input));
    }
  }
  t.ok(new RespProtocolError('x') instanceof DkvError);
});

t.test('a command may not carry more than respCommandBytesMax, even in lengths not yet sent', async (t) => {
  // Regression: *2001 bulks of 4 MiB each were buffered, up to 8 GiB for one command.
  const bulk = limits.respBulkBytesMax - 100;
  const head = `*3\r\n$3\r\nSET\r\n$${bulk}\r\n`;
  const parser = new RespParser({ onCommand: () => t.fail('no command') });
  parser.push(Buffer.from(head));
  parser.push(Buffer.alloc(bulk, 0x61));
  t.throws(() => parser.push(Buffer.from('\r\n$200\r\n')), { code: 'BAD_REQUEST', message: /command of more than/ });
  // The largest SET a client can send fits.
  const set = multibulk(['SET', 'k'.repeat(limits.keyBytesMax), 'v'.repeat(limits.valueBytesMax)]);
  t.equal(parseText(set).items.length, 1);
});

t.test('inline lines: exactly respInlineBytesMax bytes is fine, one more is not', async (t) => {
  const max = limits.respInlineBytesMax;
  const longest = 'a'.repeat(max);
  for (const line of [longest + '\n', longest.slice(1) + '\r\n']) {
    const input = Buffer.from(line);
    t.same(parse([input]).items, [[line.trim()]]);
    // Regression: split before the newline, the same line was rejected.
    t.same(parse([input.subarray(0, input.length - 1), input.subarray(input.length - 1)]).items, [[line.trim()]]);
  }
  for (const line of ['a'.repeat(max + 1) + '\n', 'a'.repeat(max) + '\r\n', 'a'.repeat(max + 1)]) {
    const input = Buffer.from(line);
    t.equal(parse([input]).error, 'BAD_REQUEST: Protocol error: too big inline request');
    t.equal(parse(chunksAt(input, [1000, 40_000])).error, 'BAD_REQUEST: Protocol error: too big inline request');
  }
});

t.test('inline commands with more arguments than a multibulk may carry are rejected', async (t) => {
  const pairs = (n: number): string => 'MSET' + ' k v'.repeat(n) + '\n';
  t.equal(parseText(pairs(1000)).items[0]!.length, limits.respArgsMax);
  // Regression: the arguments past respArgsMax were silently dropped.
  t.equal(parseText(pairs(1001)).error, 'BAD_REQUEST: Protocol error: too many arguments in inline request');
});

t.test('stop: nothing after QUIT is handed out', async (t) => {
  const seen: Command[] = [];
  const parser: RespParser = new RespParser({
    onCommand: (args) => {
      seen.push(argsOf(args));
      if (seen.length === 1) parser.stop();
    },
  });
  parser.push(Buffer.from('QUIT\r\nGET a\r\n*1\r\n$4\r\nPING\r\n'));
  parser.push(Buffer.from('garbage that would be an error: "'));
  t.same(seen, [['QUIT']]);
});

t.test('hold and release: held commands stay as bytes and come out in order', async (t) => {
  const seen: string[] = [];
  let holdOn = 'b';
  const parser: RespParser = new RespParser({
    onCommand: (args) => {
      const name = argsOf(args)[1]!;
      seen.push(name);
      if (name === holdOn) parser.hold();
    },
  });
  parser.push(Buffer.from('GET a\r\nGET b\r\n' + multibulk(['GET', 'c']) + 'GET d\r\nGET e\r\n'));
  t.same(seen, ['a', 'b']);
  parser.push(Buffer.from('GET f\r\n"\r\n'));
  t.same(seen, ['a', 'b']);
  holdOn = 'd';
  parser.release();
  t.same(seen, ['a', 'b', 'c', 'd']);
  t.throws(() => parser.release(), { code: 'BAD_REQUEST' }, 'the unbalanced quote, once reached');
  t.same(seen, ['a', 'b', 'c', 'd', 'e', 'f']);
});

// Commands as bytes: multibulk with binary arguments, or inline lines from a small alphabet.
const multibulkArbitrary = fc
  .array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 5 })
  .map((args) => multibulk(args.map((a) => Buffer.from(a).toString('latin1'))));
const inlineArbitrary = fc
  .array(fc.constantFrom(...'GET ab"\'\\x41\t\r'.split('')), { maxLength: 30 })
  .map((chars) => chars.join('') + (chars.length % 2 === 0 ? '\r\n' : '\n'));
const streamArbitrary = fc
  .tuple(
    fc.array(fc.oneof(multibulkArbitrary, inlineArbitrary, fc.constantFrom('*0\r\n', '*-1\r\n')), { maxLength: 6 }),
    fc.oneof(fc.constant(''), fc.string({ unit: 'binary-ascii', maxLength: 20 })),
    fc.nat(),
    fc.nat(255),
  )
  .map(([commands, noise, at, value]) => {
    const bytes = Buffer.from(commands.join('') + noise, 'latin1');
    if (bytes.length > 0 && value % 4 === 0) bytes[at % bytes.length] = value;
    return bytes;
  });

t.test('any stream gives the same commands and error whole, byte by byte and split', async (t) => {
  fc.assert(
    fc.property(streamArbitrary, cutsArbitrary, (input, cuts) => splitsAgree(input, cuts, true)),
    { numRuns: 2000 },
  );
  t.pass('2000 streams');
});

t.test('hold and release in any pattern yield the same commands and error as plain parsing', async (t) => {
  fc.assert(
    fc.property(streamArbitrary, cutsArbitrary, fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }), (input, cuts, holds) => {
      const expected = parse([input]);
      const items: Command[] = [];
      let n = 0;
      const parser: RespParser = new RespParser({
        onCommand: (args) => {
          items.push(argsOf(args));
          if (holds[n++ % holds.length]) parser.hold();
        },
      });
      let error: string | null = null;
      try {
        for (const chunk of chunksAt(input, cuts)) parser.push(chunk);
        for (let i = 0; i < 40; i++) parser.release();
      } catch (e) {
        error = describe(e);
      }
      deepStrictEqual({ items, error }, { items: expected.items, error: expected.error });
    }),
    { numRuns: 1000 },
  );
  t.pass('1000 hold patterns');
});

// leadingKeys: the keys of a chunk's first GETs and SETs, for prefetching. Whatever the bytes,
// the spans it gives are the keys of the first commands the parser hands over, each a GET or SET.
const keyedArbitrary = fc.oneof(
  fc
    .tuple(fc.constantFrom('GET', 'get', 'Get', 'gET'), fc.uint8Array({ maxLength: 40 }))
    .map(([name, key]) => multibulk([name, Buffer.from(key).toString('latin1')])),
  fc
    .tuple(fc.constantFrom('SET', 'set', 'sEt'), fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 200 }))
    .map(([name, key, value]) => multibulk([name, Buffer.from(key).toString('latin1'), Buffer.from(value).toString('latin1')])),
);
const keyedFirstArbitrary = fc
  .tuple(
    fc.array(keyedArbitrary, { maxLength: 20 }),
    fc.array(fc.oneof(keyedArbitrary, multibulkArbitrary, inlineArbitrary), { maxLength: 4 }),
    fc.oneof(fc.constant(''), fc.string({ unit: 'binary-ascii', maxLength: 20 })),
  )
  .map(([keyed, rest, noise]) => ({ keyed: keyed.length, bytes: Buffer.from(keyed.join('') + rest.join('') + noise, 'latin1') }));

// The keys found, each with "w " before it when leadingKeys marked it written.
function scanned(bytes: Buffer, max: number): Command {
  const starts = new Int32Array(max);
  const ends = new Int32Array(max);
  const writes = new Uint8Array(max).fill(7);
  const count = leadingKeys(bytes, starts, ends, writes);
  return Array.from({ length: count }, (_, i) => (writes[i] === 1 ? 'w ' : writes[i] === 0 ? '' : '? ') + bytes.toString('latin1', starts[i], ends[i]));
}

t.test('leadingKeys finds the keys of the leading GETs and SETs, up to its room', async (t) => {
  const pipeline = Buffer.from(
    multibulk(['GET', 'a']) + multibulk(['set', 'key:1', 'value']) + multibulk(['GET', '']) + multibulk(['SET', 'b', '1', 'EX', '9']) + multibulk(['GET', 'c']),
  );
  t.same(scanned(pipeline, 8), ['a', 'w key:1', ''], 'up to the first other command (a SET with options is one); a SET\'s key is written');
  t.same(scanned(pipeline, 2), ['a', 'w key:1'], 'no more than it has room for');
  t.same(scanned(Buffer.from(multibulk(['DEL', 'a']) + multibulk(['GET', 'b'])), 8), [], 'other commands end it');
  t.same(scanned(Buffer.from('GET a\r\nGET b\r\n'), 8), [], 'inline commands are not scanned');
  t.same(scanned(pipeline.subarray(3), 8), [], 'nothing from a chunk that starts mid-command');
  t.same(scanned(pipeline.subarray(0, 20), 8), ['a'], 'a GET cut short is not taken');
  t.same(scanned(pipeline.subarray(0, 45), 8), ['a'], 'nor a SET whose value is cut short');
  const long = 'k'.repeat(limits.keyBytesMax + 1);
  t.same(scanned(Buffer.from(multibulk(['GET', long]) + multibulk(['GET', 'a'])), 8), [], 'nor a key longer than a key may be');
  t.same(scanned(Buffer.from('*2\r\n$3\r\nGET\r\n$1\r\nab\r\n'), 8), [], 'nor a key whose length is wrong');

  // The parser hands over, first, a GET or SET of each key found, in order: a SET for each key
  // marked written.
  const parsedFirst = (bytes: Buffer, keys: Command): void => {
    const first = parse([bytes]).items.slice(0, keys.length);
    deepStrictEqual(
      first.map((command) => (command[0]!.toLowerCase() === 'set' ? 'w ' : '') + command[1]),
      keys,
    );
    for (const command of first) {
      const name = command[0]!.toLowerCase();
      deepStrictEqual((name === 'get' && command.length === 2) || (name === 'set' && command.length === 3), true, command.join(' '));
    }
  };
  fc.assert(
    fc.property(keyedFirstArbitrary, fc.integer({ min: 1, max: 64 }), ({ keyed, bytes }, max) => {
      const keys = scanned(bytes, max);
      deepStrictEqual(keys.length >= Math.min(keyed, max), true, 'every leading GET and SET, as far as there is room');
      parsedFirst(bytes, keys);
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(keyedFirstArbitrary, fc.nat(), fc.nat(255), ({ bytes }, at, value) => {
      if (bytes.length > 0) bytes[at % bytes.length] = value;
      parsedFirst(bytes, scanned(bytes, 16));
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (input) => parsedFirst(Buffer.from(input), scanned(Buffer.from(input), 16))),
    { numRuns: 3000 },
  );
  t.pass('3000 pipelines, 3000 with a byte changed, 3000 random inputs');
});

t.test('fuzz: random bytes only ever raise DkvError, whole or split', async (t) => {
  const started = performance.now();
  let commands = 0;
  let errors = 0;
  const check = (chunks: Buffer[]): boolean => {
    const parser = new RespParser({
      onCommand: (args) => {
        if (args.count < 1 || args.count > limits.respArgsMax) throw new Error(`count ${args.count}`);
        for (let i = 0; i < args.count; i++) {
          if (args.starts[i]! < 0 || args.ends[i]! > args.bytes.length || args.starts[i]! > args.ends[i]!) {
            throw new Error('argument outside its buffer');
          }
        }
        commands++;
      },
    });
    try {
      for (const chunk of chunks) parser.push(chunk);
    } catch (error) {
      if (!(error instanceof RespProtocolError) || error.code !== 'BAD_REQUEST') return false;
      errors++;
    }
    return true;
  };
  // Raw bytes, and bytes that start like a multibulk command so the parser gets further in.
  const starred = fc
    .tuple(fc.nat(5), fc.uint8Array({ maxLength: 100 }))
    .map(([count, tail]): Uint8Array => Buffer.concat([Buffer.from(`*${count}\r\n$`), tail]));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), starred), cutsArbitrary, (input, cuts) =>
      check([Buffer.from(input)]) && check(chunksAt(input, cuts)),
    ),
    { numRuns: 40_000 },
  );
  t.ok(errors > 0 && commands > 0, `${commands} commands, ${errors} errors`);
  t.ok(performance.now() - started < 120_000, 'bounded time');
});

// A direct port of Redis's sdssplitargs, over a latin1 string: the reference for splitInline.
// (dkv also treats \v, \f and NUL as blanks inside an argument; Redis keeps \v and \f there.)
function naiveSplit(line: string): Command | null {
  const blank = (c: string | undefined): boolean => c !== undefined && ' \t\r\n\v\f\0'.includes(c);
  const hex = (c: string | undefined): boolean => c !== undefined && /^[0-9a-fA-F]$/.test(c);
  const escapes: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', a: '\x07' };
  const out: Command = [];
  let p = 0;
  for (;;) {
    while (p < line.length && blank(line[p])) p++;
    if (p >= line.length) return out;
    let current = '';
    let inDouble = false;
    let inSingle = false;
    let done = false;
    while (!done) {
      const c = line[p];
      if (inDouble) {
        if (c === undefined) return null;
        if (c === '\\' && line[p + 1] === 'x' && hex(line[p + 2]) && hex(line[p + 3])) {
          current += String.fromCharCode(parseInt(line.slice(p + 2, p + 4), 16));
          p += 3;
        } else if (c === '\\' && p + 1 < line.length) {
          p++;
          current += escapes[line[p]!] ?? line[p];
        } else if (c === '"') {
          if (p + 1 < line.length && !blank(line[p + 1])) return null;
          done = true;
        } else {
          current += c;
        }
      } else if (inSingle) {
        if (c === undefined) return null;
        if (c === '\\' && line[p + 1] === "'") {
          p++;
          current += "'";
        } else if (c === "'") {
          if (p + 1 < line.length && !blank(line[p + 1])) return null;
          done = true;
        } else {
          current += c;
        }
      } else if (c === undefined || blank(c)) {
        done = true;
      } else if (c === '"') {
        inDouble = true;
      } else if (c === "'") {
        inSingle = true;
      } else {
        current += c;
      }
      if (p < line.length) p++;
    }
    out.push(current);
  }
}
