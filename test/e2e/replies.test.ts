// Replies of every size through the output slab and around it: many in one turn, values on both
// sides of the size up to which replies are gathered, native and RESP.
import { connect } from 'node:net';
import t from 'tap';
import { DkvClient } from '../../src/client/client.js';
import { limits } from '../../src/lib/limits.js';
import { removeDir, startDkvd } from '../helpers/dkvd.js';

const node = await startDkvd();
t.teardown(async () => {
  await node.stop();
  removeDir(node.dataDir);
});

const sizes = [0, 1, 100, limits.replyCopyBytesMax - 200, limits.replyCopyBytesMax, limits.replyCopyBytesMax + 1, 70_000, limits.valueBytesMax];
const valueOf = (size: number, seed: number): Buffer => {
  const value = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) value[i] = (i * 31 + seed) & 0xff;
  return value;
};

t.test('native: pipelined GETs of mixed sizes all come back intact', async (t) => {
  const client = await DkvClient.connect({ port: node.tcpPort, timeoutMs: 30_000 });
  t.teardown(() => client.close());
  await Promise.all(sizes.map((size, i) => client.put(`n${i}`, valueOf(size, i))));
  // Many rounds in flight at once, so that slabs fill, overflow and interleave with large replies.
  const reads: Array<Promise<boolean>> = [];
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < sizes.length; i++) {
      reads.push(client.get(`n${i}`).then((r) => r !== null && r.values[0]!.equals(valueOf(sizes[i]!, i))));
    }
    reads.push(client.get(`missing${round}`).then((r) => r === null));
  }
  const results = await Promise.all(reads);
  t.equal(results.filter((ok) => !ok).length, 0, `${results.length} replies intact`);
});

t.test('RESP: pipelined GETs of mixed sizes come back intact and in order', async (t) => {
  const socket = connect({ host: '127.0.0.1', port: node.tcpPort });
  t.teardown(() => socket.destroy());
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  const command = (...args: Buffer[]): Buffer =>
    Buffer.concat([
      Buffer.from(`*${args.length}\r\n`),
      ...args.flatMap((a) => [Buffer.from(`$${a.length}\r\n`), a, Buffer.from('\r\n')]),
    ]);
  const expected: Buffer[] = [];
  const requests: Buffer[] = [];
  for (let i = 0; i < sizes.length; i++) {
    requests.push(command(Buffer.from('SET'), Buffer.from(`r${i}`), valueOf(sizes[i]!, i)));
    expected.push(Buffer.from('+OK\r\n'));
  }
  for (let round = 0; round < 30; round++) {
    for (let i = 0; i < sizes.length; i++) {
      requests.push(command(Buffer.from('GET'), Buffer.from(`r${i}`)));
      const value = valueOf(sizes[i]!, i);
      expected.push(Buffer.concat([Buffer.from(`$${value.length}\r\n`), value, Buffer.from('\r\n')]));
    }
    requests.push(command(Buffer.from('GET'), Buffer.from('missing')));
    expected.push(Buffer.from('$-1\r\n'));
  }
  socket.write(Buffer.concat(requests));
  const want = Buffer.concat(expected);
  const deadline = Date.now() + 30_000;
  while (Buffer.concat(received).length < want.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const got = Buffer.concat(received);
  t.equal(got.length, want.length, 'every reply arrived');
  t.ok(got.equals(want), 'byte for byte, in order');
});
