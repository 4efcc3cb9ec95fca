// dkv-cli against a real dkvd: commands, value sources, JSON, exit codes.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DKV_CLI, removeDir, startDkvd, tempDir } from '../helpers/dkvd.js';
import { run } from '../helpers/run.js';

const node = await startDkvd();
t.teardown(async () => {
  await node.stop();
  removeDir(node.dataDir);
});
const server = `127.0.0.1:${node.tcpPort}`;
const cli = (args: string[], input?: string | Buffer) => run(process.execPath, [DKV_CLI, '--server', server, ...args], { input });

t.test('put, get, del and their exit codes', async (t) => {
  t.equal((await cli(['put', 'name', 'dkv'])).code, 0);
  const got = await cli(['get', 'name']);
  t.equal(got.code, 0);
  t.equal(got.stdout, 'dkv');
  const missing = await cli(['get', 'nothing']);
  t.equal(missing.code, 1, 'not found is exit code 1');
  t.match(missing.stderr, 'nothing: not found');
  t.equal((await cli(['del', 'name'])).code, 0);
  t.equal((await cli(['del', 'name'])).code, 1, 'deleting a missing key is exit code 1');
  t.equal((await cli(['get', 'name'])).code, 1);
});

t.test('values from stdin and --file, binary-safe', async (t) => {
  const bytes = Buffer.from([0, 1, 2, 254, 255, 10]);
  t.equal((await cli(['put', 'piped'], bytes)).code, 0);
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const file = join(dir, 'value.bin');
  writeFileSync(file, bytes);
  t.equal((await cli(['put', 'filed', '--file', file])).code, 0);
  for (const key of ['piped', 'filed']) {
    const got = await run(process.execPath, [DKV_CLI, '-s', server, 'get', key, '--json']);
    t.same(JSON.parse(got.stdout).values, [`base64:${bytes.toString('base64')}`]);
  }
  t.equal((await cli(['put', 'both', 'x', '--file', file])).code, 2, 'argument and --file is a usage error');
});

t.test('--json and contexts: concurrent writes become siblings, a merged write resolves them', async (t) => {
  await cli(['put', 'doc', 'v1']);
  const read = JSON.parse((await cli(['get', 'doc', '--json'])).stdout);
  t.equal(read.found, true);
  t.same(read.values, ['v1']);
  t.type(read.context, 'string');
  t.equal((await cli(['put', 'doc', 'from-a', '--context', read.context])).code, 0);
  t.equal((await cli(['put', 'doc', 'from-b', '--context', read.context])).code, 0);
  const both = await cli(['get', 'doc']);
  t.equal(both.stdout.split('\n').filter(Boolean).sort().join(','), 'from-a,from-b');
  t.match(both.stderr, '2 siblings');
  const merged = JSON.parse((await cli(['get', 'doc', '--json'])).stdout);
  await cli(['put', 'doc', 'merged', '--context', merged.context]);
  t.same(JSON.parse((await cli(['get', 'doc', '--json'])).stdout).values, ['merged']);
});

t.test('ping and stats', async (t) => {
  const ping = await cli(['ping', '--count', '2']);
  t.equal(ping.code, 0);
  t.equal(ping.stdout.match(/PONG/g)?.length, 2);
  const stats = JSON.parse((await cli(['stats', '--json'])).stdout);
  t.equal(stats.nodeId, node.nodeId);
  t.type(stats.keys, 'number');
  t.ok(stats.walSyncs >= 1 && stats.walRecords >= stats.walSyncs, 'the writes above went through the log');
});

t.test('repl: commands on stdin', async (t) => {
  const result = await cli(['repl'], 'put r "two words"\nget r\ndel r\nget r\nbogus\nhelp\nquit\n');
  t.equal(result.code, 0);
  t.match(result.stdout, /OK[\s\S]*"two words"[\s\S]*\(deleted\)[\s\S]*\(not found\)[\s\S]*unknown command 'bogus'[\s\S]*Commands:/);
});

t.test('cannot connect is exit code 3; a bad address is a usage error', async (t) => {
  const refused = await run(process.execPath, [DKV_CLI, '--server', '127.0.0.1:1', 'get', 'x']);
  t.equal(refused.code, 3);
  t.match(refused.stderr, /CANNOT_CONNECT/);
  const bad = await run(process.execPath, [DKV_CLI, '--server', 'nonsense', 'get', 'x']);
  t.equal(bad.code, 2);
});

t.test('a server error is exit code 4', async (t) => {
  const result = await cli(['put', 'x'.repeat(2000), 'v']);
  t.equal(result.code, 4);
  t.match(result.stderr, /KEY_TOO_LARGE/);
});
