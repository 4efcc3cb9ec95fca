// redis-cli, redis-benchmark and netcat against a real dkvd.
import { spawn } from 'node:child_process';
import t from 'tap';
import { DkvClient } from '../../src/client/client.js';
import { childEnv, ensureTool, startDkvd } from '../helpers/dkvd.js';
import { run, waitForOutput } from '../helpers/run.js';

const haveRedis = ensureTool('redis-cli', 'redis-tools') && ensureTool('redis-benchmark', 'redis-tools');
const haveNc = ensureTool('nc', 'netcat-openbsd');

const node = await startDkvd();
t.teardown(() => node.stop());
const port = String(node.tcpPort);

async function cli(...args: string[]): Promise<string> {
  const result = await run('redis-cli', ['-p', port, ...args]);
  if (result.code !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${result.stderr}`);
  return result.stdout.trimEnd();
}

t.test('redis-cli commands', { skip: !haveRedis && 'redis-tools cannot be installed' }, async (t) => {
  t.equal(await cli('PING'), 'PONG');
  t.equal(await cli('PING', 'hi'), 'hi');
  t.equal(await cli('ECHO', 'hello world'), 'hello world');
  t.equal(await cli('SET', 'greeting', 'hello'), 'OK');
  t.equal(await cli('GET', 'greeting'), 'hello');
  t.equal(await cli('GET', 'missing'), '');
  t.equal(await cli('MSET', 'a', '1', 'b', '2'), 'OK');
  t.equal(await cli('MGET', 'a', 'b', 'missing'), '1\n2');
  t.equal(await cli('EXISTS', 'a', 'b', 'missing', 'a'), '3');
  t.equal(await cli('DEL', 'a', 'missing'), '1');
  t.equal(await cli('EXISTS', 'a'), '0');
  t.equal(await cli('DBSIZE'), '2');
  t.equal(await cli('SELECT', '0'), 'OK');
  t.match(await cli('SELECT', '1'), /DB index is out of range/);
  t.match(await cli('INFO'), /redis_version:7\.0\.0[\s\S]*dkv_version:[\s\S]*db0:keys=2/);
  t.match(await cli('INFO', 'keyspace'), /^# Keyspace\s+db0:keys=2/);
  t.match(await cli('HELLO', '3'), /NOPROTO/);
  t.match(await cli('HELLO', '2'), /server\ndkv\nversion/);
  t.equal(await cli('COMMAND', 'COUNT'), '16');
  t.match(await cli('COMMAND', 'INFO', 'get'), /^get\n2\n/);
  t.match(await cli('SET', 'k', 'v', 'EX', '10'), /no expiry/);
  t.match(await cli('FOO', 'bar'), /ERR unknown command 'FOO', with args beginning with: 'bar'/);
  t.match(await cli('GET'), /wrong number of arguments for 'get'/);
  t.match(await cli('PING', 'a', 'b'), /wrong number of arguments for 'ping'/);
  t.match(await cli('SELECT', 'x'), /value is not an integer/);
  t.match(await cli('SET', 'x'.repeat(2000), 'v'), /KEY_TOO_LARGE/);
  t.match(await cli('GET', 'x'.repeat(2000)), /KEY_TOO_LARGE/);
  // Binary-safe values.
  const binary = await run('redis-cli', ['-p', port, '-x', 'SET', 'bin'], { input: Buffer.from([0, 1, 2, 255, 13, 10]) });
  t.equal(binary.stdout.trim(), 'OK');
  t.equal(await cli('--no-raw', 'GET', 'bin'), '"\\x00\\x01\\x02\\xff\\r\\n"');
});

t.test('CLIENT SETNAME and GETNAME on one connection', { skip: !haveRedis && 'no redis-cli' }, async (t) => {
  const result = await run('redis-cli', ['-p', port], { input: 'CLIENT SETNAME worker-1\nCLIENT GETNAME\nCLIENT SETNAME "bad name"\n' });
  t.match(result.stdout, /^OK\nworker-1\n.*cannot contain spaces/s);
});

t.test('a pipeline of writes and reads answers in order', { skip: !haveRedis && 'no redis-cli' }, async (t) => {
  const lines: string[] = [];
  for (let i = 0; i < 200; i++) lines.push(`SET p${i} ${i}`, `GET p${i}`);
  const result = await run('redis-cli', ['-p', port, '--pipe'], { input: `${lines.join('\r\n')}\r\n` });
  t.match(result.stdout, /errors: 0, replies: 400/);
  t.equal(await cli('GET', 'p199'), '199');
});

t.test('redis-benchmark runs unchanged', { skip: !haveRedis && 'no redis-benchmark' }, async (t) => {
  const result = await run(
    'redis-benchmark',
    ['-p', port, '-t', 'set,get', '-n', '2000', '-c', '10', '-d', '100', '-P', '4', '-q'],
    { timeoutMs: 60_000 },
  );
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /SET: [\d.]+ requests per second/);
  t.match(result.stdout, /GET: [\d.]+ requests per second/);
});

t.test('netcat: the README example', { skip: !haveNc && 'netcat cannot be installed' }, async (t) => {
  const result = await run('nc', ['-q1', '127.0.0.1', port], { input: 'SET a 1\r\nGET a\r\n' });
  t.equal(result.stdout, '+OK\r\n$1\r\n1\r\n');
});

t.test('netcat: an interactive session, line by line', { skip: !haveNc && 'no netcat' }, async (t) => {
  const nc = spawn('nc', ['127.0.0.1', port], { env: childEnv(), stdio: ['pipe', 'pipe', 'ignore'] });
  t.teardown(() => {
    nc.kill();
  });
  nc.stdin.write('SET session "two words"\n');
  t.match(await waitForOutput(nc, '+OK\r\n'), '+OK');
  nc.stdin.write('GET session\n');
  t.match(await waitForOutput(nc, 'two words\r\n'), '$9\r\ntwo words');
  nc.stdin.write('NOSUCH thing\n');
  t.match(await waitForOutput(nc, '\r\n'), /-ERR unknown command 'NOSUCH'/);
  nc.stdin.write('PING\n');
  t.match(await waitForOutput(nc, '+PONG\r\n'), 'PONG');
  const client = await DkvClient.connect({ port: node.tcpPort });
  t.teardown(() => client.close());
  const before = Number((await client.stats()).connectionsCurrent);
  nc.stdin.write('QUIT\n');
  t.match(await waitForOutput(nc, '+OK\r\n'), 'OK');
  let after = before;
  for (let i = 0; i < 50 && after === before; i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = Number((await client.stats()).connectionsCurrent);
  }
  t.equal(after, before - 1, 'the server closed the connection after QUIT');
});

t.test('redis-cli starts cleanly in a terminal', { skip: !(haveRedis && ensureTool('tmux', 'tmux')) && 'no tmux' }, async (t) => {
  const session = `dkv-test-${process.pid}`;
  await run('tmux', ['new-session', '-d', '-s', session, '-x', '120', '-y', '20', `redis-cli -p ${port}`]);
  t.teardown(() => run('tmux', ['kill-session', '-t', session]));
  const screen = async (): Promise<string> => (await run('tmux', ['capture-pane', '-t', session, '-p'])).stdout;
  const waitScreen = async (pattern: RegExp): Promise<string> => {
    for (let i = 0; i < 50; i++) {
      const text = await screen();
      if (pattern.test(text)) return text;
      await new Promise((r) => setTimeout(r, 100));
    }
    return screen();
  };
  t.match(await waitScreen(/127\.0\.0\.1:\d+> $/m), /127\.0\.0\.1:\d+>/, 'prompt shown');
  await run('tmux', ['send-keys', '-t', session, 'set tty yes', 'Enter']);
  // Typed ahead, the next line could reach redis-cli before it is ready to read one.
  await waitScreen(/^OK$/m);
  await run('tmux', ['send-keys', '-t', session, 'get tty', 'Enter']);
  const text = await waitScreen(/"yes"/);
  t.match(text, /OK[\s\S]*"yes"/);
  t.notMatch(text, /error/i);
});
