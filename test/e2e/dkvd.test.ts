// dkvd's command line: flags, start line, errors, signals, identity.
import { readFileSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { DkvClient } from '../../src/client/client.js';
import { DKVD_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { DKVD, removeDir, startDkvd, tempDir } from '../helpers/dkvd.js';
import { run } from '../helpers/run.js';

t.test("dkvd's Node flags: bin/dkvd's first line carries them, and a started dkvd runs with them", async (t) => {
  const [shebang] = readFileSync(DKVD, 'utf8').split('\n');
  t.equal(shebang, `#!/usr/bin/env -S node ${DKVD_NODE_FLAGS.join(' ')}`);
  // Run as a program, through that line.
  const help = await run(DKVD, ['--help']);
  t.equal(help.code, 0, help.stderr);
  const node = await startDkvd({ storage: 'memory' });
  t.teardown(() => node.kill());
  const argv = readFileSync(`/proc/${node.pid}/cmdline`, 'utf8').split('\0');
  for (const flag of DKVD_NODE_FLAGS) t.ok(argv.includes(flag), `runs with ${flag}`);
});

t.test('--help lists every flag', async (t) => {
  const result = await run(process.execPath, [DKVD, '--help']);
  t.equal(result.code, 0);
  for (const flag of [
    '--host',
    '--udp',
    '--tcp',
    '--data',
    '--node-id',
    '--storage',
    '--log-level',
    '--join',
    '--advertise',
    '--probe-interval',
    '--probe-timeout',
    '--suspicion-mult',
    '--indirect-checks',
    '--gossip-interval',
    '--push-pull-interval',
    '--seed',
    '--dead-removal',
    '--replicas',
    '--read-quorum',
    '--write-quorum',
    '--write-wait',
    '--request-timeout',
  ]) {
    t.match(result.stdout, flag);
  }
});

t.test('the start line says where it listens; SIGTERM stops cleanly', async (t) => {
  const node = await startDkvd();
  const line = node.logLines.find((l) => l.includes('listening'))!;
  t.match(line, new RegExp(`tcp 127\\.0\\.0\\.1:${node.tcpPort} udp 127\\.0\\.0\\.1:${node.udpPort}`));
  t.equal(await node.stop(), 0);
  t.ok(node.logLines.some((l) => l.includes('"stopped"')), 'logged its stop');
  removeDir(node.dataDir);
});

t.test('a taken port: one line on stderr and a non-zero exit', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const dataDir = tempDir();
  t.teardown(() => removeDir(dataDir));
  const result = await run(process.execPath, [DKVD, '--tcp', String(port), '--udp', '0', '--data', dataDir]);
  t.not(result.code, 0);
  t.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
  t.match(result.stderr, `cannot listen on tcp 127.0.0.1:${port}: the address is in use`);
});

t.test('a taken UDP port: one line on stderr and a non-zero exit', async (t) => {
  const blocker = createSocket('udp4');
  await new Promise<void>((resolve) => blocker.bind(0, '127.0.0.1', resolve));
  t.teardown(() => blocker.close());
  const port = blocker.address().port;
  const dataDir = tempDir();
  t.teardown(() => removeDir(dataDir));
  const result = await run(process.execPath, [DKVD, '--tcp', '0', '--udp', String(port), '--data', dataDir]);
  t.not(result.code, 0);
  t.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
  t.match(result.stderr, `cannot listen on udp 127.0.0.1:${port}: the address is in use`);
});

t.test('bad membership flags: one line naming the flag, and a non-zero exit', async (t) => {
  const cases: Array<[string[], string]> = [
    [['--probe-interval', '0'], '--probe-interval must be an integer of at least 1'],
    [['--probe-interval', '100', '--probe-timeout', '200'], 'must not exceed the probe interval'],
    [['--join', 'nohost'], '--join: "nohost" is not host:port'],
    [['--seed', 'x'], '--seed must be a non-negative integer'],
  ];
  for (const [args, message] of cases) {
    const result = await run(process.execPath, [DKVD, '--tcp', '0', '--udp', '0', '--storage', 'memory', ...args]);
    t.equal(result.code, 1, args.join(' '));
    t.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    t.match(result.stderr, message);
  }
});

t.test('an unusable data directory: one line on stderr and a non-zero exit', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const file = join(dir, 'not-a-directory');
  writeFileSync(file, 'x');
  const result = await run(process.execPath, [DKVD, '--tcp', '0', '--udp', '0', '--data', join(file, 'data')]);
  t.not(result.code, 0);
  t.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
  t.match(result.stderr, /^dkvd: cannot open data directory/);
});

t.test('a data directory serves one node at a time; the lock of a killed node is taken over', async (t) => {
  const first = await startDkvd();
  t.teardown(() => removeDir(first.dataDir));
  const second = await run(process.execPath, [DKVD, '--tcp', '0', '--udp', '0', '--data', first.dataDir]);
  t.not(second.code, 0);
  t.equal(second.stderr.trim().split('\n').length, 1, second.stderr);
  t.match(second.stderr, `is in use by process ${first.pid}`);
  await first.kill();
  const again = await startDkvd({ dataDir: first.dataDir });
  t.equal(again.nodeId, first.nodeId, 'a stale lock does not stop a restart');
  t.equal(await again.stop(), 0);
});

t.test('bad flag values are refused', async (t) => {
  for (const args of [['--storage', 'rocks'], ['--tcp', '70000'], ['--log-level', 'loud']]) {
    const result = await run(process.execPath, [DKVD, ...args]);
    t.not(result.code, 0, args.join(' '));
    t.match(result.stderr, /^dkvd: /);
  }
});

t.test('the node id is kept in the data directory', async (t) => {
  const dataDir = tempDir();
  t.teardown(() => removeDir(dataDir));
  const first = await startDkvd({ dataDir, args: ['--node-id', 'alpha'] });
  t.equal(first.nodeId, 'alpha');
  await first.stop();
  const again = await startDkvd({ dataDir });
  t.equal(again.nodeId, 'alpha', 'remembered without the flag');
  await again.stop();
  const other = await run(process.execPath, [DKVD, '--tcp', '0', '--udp', '0', '--data', dataDir, '--node-id', 'beta']);
  t.not(other.code, 0);
  t.match(other.stderr, /belongs to node "alpha"/);
});

t.test('--storage memory serves and keeps nothing', async (t) => {
  const node = await startDkvd({ storage: 'memory' });
  t.teardown(() => removeDir(node.dataDir));
  const client = await DkvClient.connect({ port: node.tcpPort });
  await client.put('k', 'v');
  t.equal((await client.get('k'))!.values[0]!.toString(), 'v');
  t.equal((await client.stats()).storage, 'memory');
  await client.close();
  t.equal(await node.stop(), 0);
});

t.test('SIGINT stops cleanly too, and in-flight writes are answered first', async (t) => {
  const node = await startDkvd();
  t.teardown(() => removeDir(node.dataDir));
  const client = await DkvClient.connect({ port: node.tcpPort });
  const writes = Array.from({ length: 200 }, (_, i) => client.put(`k${i}`, `v${i}`).then(() => true, () => false));
  const acknowledged = writes.slice(0, 1);
  await Promise.all(acknowledged);
  node.child.kill('SIGINT');
  const outcomes = await Promise.all(writes);
  t.ok(outcomes.filter(Boolean).length >= 1, 'writes sent before the signal were answered');
  const code = await Promise.race([node.exited, new Promise((r) => setTimeout(() => r('timeout'), 10_000))]);
  t.equal(code, 0, 'exit code 0');
  await node.kill();
  await client.close();
  // Everything acknowledged is there after a restart.
  const again = await startDkvd({ dataDir: node.dataDir });
  const reader = await DkvClient.connect({ port: again.tcpPort });
  for (let i = 0; i < outcomes.length; i++) {
    if (outcomes[i]) t.equal((await reader.get(`k${i}`))?.values[0]?.toString(), `v${i}`);
  }
  await reader.close();
  await again.stop();
});
