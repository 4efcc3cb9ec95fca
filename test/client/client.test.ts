// The client library against a real dkvd: pipelining, timeouts, reconnection, typed errors.
import t from 'tap';
import { DkvClient, parseAddress } from '../../src/client/client.js';
import { DkvError } from '../../src/lib/errors.js';
import { removeDir, startDkvd, tempDir } from '../helpers/dkvd.js';

const dataDir = tempDir();
t.teardown(() => removeDir(dataDir));

t.test('many requests in flight on one connection', async (t) => {
  const node = await startDkvd({ dataDir });
  t.teardown(() => node.stop());
  const client = await DkvClient.connect({ port: node.tcpPort });
  t.teardown(() => client.close());
  const count = 5000;
  const puts = await Promise.all(Array.from({ length: count }, (_, i) => client.put(`k${i}`, `v${i}`)));
  t.equal(puts.length, count);
  const gets = await Promise.all(Array.from({ length: count }, (_, i) => client.get(`k${i}`)));
  t.ok(gets.every((g, i) => g?.values[0]?.toString() === `v${i}`), 'every reply matched its request');
  t.equal(client.inFlight, 0);
  const many = await client.mget(['k1', 'nope', 'k2']);
  t.same(many.map((r) => r?.values[0]?.toString() ?? null), ['v1', null, 'v2']);
  const contexts = await client.mput([
    { key: 'm1', value: 'a' },
    { key: 'm2', value: 'b' },
  ]);
  t.equal(contexts.length, 2);
  t.equal((await client.del('m1')).existed, true);
  t.equal(await client.get('m1'), null);
  t.type(await client.ping(), 'number');
  t.equal((await client.hello()).server, 'dkv');
});

t.test('typed errors carry codes', async (t) => {
  const node = await startDkvd({ storage: 'memory' });
  t.teardown(() => node.stop());
  const client = await DkvClient.connect({ port: node.tcpPort });
  t.teardown(() => client.close());
  await t.rejects(client.put('x'.repeat(2000), 'v'), { name: 'DkvError', code: 'KEY_TOO_LARGE' });
  await t.rejects(client.get('x'.repeat(2000)), { name: 'DkvError', code: 'KEY_TOO_LARGE' });
  await t.rejects(client.put('k', Buffer.alloc(1024 * 1024 + 1)), { name: 'DkvError', code: 'VALUE_TOO_LARGE' });
  await t.rejects(client.request(0x42, null), { name: 'DkvError', code: 'UNKNOWN_OPCODE' });
  // A body already encoded (as a coordinator sends REPLICA_PUT) is held to the frame limit too.
  await t.rejects(client.request(0x42, Buffer.alloc(4 * 1024 * 1024)), { name: 'DkvError', code: 'VALUE_TOO_LARGE' });
  await t.rejects(client.put('k', 'v', { context: Buffer.from('junk') }), { code: 'BAD_REQUEST' });
  t.equal((await client.get('still-works')), null, 'the connection survived the errors');
  // Siblings together must fit one reply: with 1 MiB values the fourth is refused.
  const base = await client.put('big', 'x');
  const megabyte = Buffer.alloc(1024 * 1024, 7);
  for (let i = 0; i < 3; i++) await client.put('big', megabyte, { context: base.context });
  await t.rejects(client.put('big', megabyte, { context: base.context }), { code: 'VALUE_TOO_LARGE' });
  t.equal((await client.get('big'))?.values.length, 3, 'the key still answers with its siblings');
  await t.rejects(DkvClient.connect({ port: 1, connectTimeoutMs: 1000 }), { code: 'CANNOT_CONNECT' });
  t.throws(() => parseAddress('no-port'), DkvError);
});

t.test('a request times out when the server does not answer', async (t) => {
  const node = await startDkvd({ storage: 'memory' });
  t.teardown(async () => {
    process.kill(node.pid, 'SIGCONT');
    await node.stop();
  });
  const client = await DkvClient.connect({ port: node.tcpPort, timeoutMs: 300 });
  t.teardown(() => client.close());
  process.kill(node.pid, 'SIGSTOP');
  const started = performance.now();
  await t.rejects(client.get('k'), { name: 'DkvError', code: 'TIMEOUT' });
  const elapsed = performance.now() - started;
  t.ok(elapsed >= 250 && elapsed < 5000, `timed out after ${elapsed.toFixed(0)} ms`);
  process.kill(node.pid, 'SIGCONT');
  t.equal(await client.get('k', { timeoutMs: 5000 }), null, 'works again once the server answers');
});

t.test('the client reconnects after the server restarts', async (t) => {
  const node = await startDkvd({ dataDir });
  const client = new DkvClient({ port: node.tcpPort, timeoutMs: 5000 });
  t.teardown(() => client.close());
  await client.put('survivor', 'yes');
  // A request in flight when the connection drops fails with CONNECTION_CLOSED (or finished).
  const inFlight = client.get('survivor').then(
    (r) => r?.values[0]?.toString(),
    (e: DkvError) => e.code,
  );
  await node.kill();
  t.match(await inFlight, /^(yes|CONNECTION_CLOSED)$/);
  // With no server, a request fails fast: CONNECTION_CLOSED if it raced the close, else
  // CANNOT_CONNECT.
  const failure = await client.get('survivor').then(
    () => 'answered',
    (e: DkvError) => e.code,
  );
  t.match(failure, /^(CANNOT_CONNECT|CONNECTION_CLOSED)$/);
  const again = await startDkvd({ dataDir, tcpPort: node.tcpPort });
  t.teardown(() => again.stop());
  let result = null;
  for (let i = 0; i < 50 && result === null; i++) {
    result = await client.get('survivor').catch(() => null);
    if (result === null) await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(result?.values[0]?.toString(), 'yes', 'the next request reconnected');
});
