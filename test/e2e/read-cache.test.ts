// dkvd's read cache, end to end: writes file their records in it, reads are answered from it
// once lmdb has a key, and a write is never hidden behind an older cached record.
import t from 'tap';
import { DkvClient } from '../../src/client/client.js';
import { removeDir, startDkvd, tempDir } from '../helpers/dkvd.js';
import { until } from '../helpers/until.js';

const dataDir = tempDir();
t.teardown(() => removeDir(dataDir));

const stat = async (client: DkvClient, field: string): Promise<number> => Number((await client.stats())[field]);

// lmdb gets the pending writes within a few seconds (storeCommitDelayMs).
const untilCommitted = (client: DkvClient): Promise<void> =>
  until('the pending writes reach lmdb', async () => (await stat(client, 'pendingWrites')) === 0, 10_000);

t.test('writes file their records; reads hit them once lmdb has the key; later writes replace them', async (t) => {
  const node = await startDkvd({ dataDir });
  t.teardown(() => node.stop());
  const client = await DkvClient.connect({ port: node.tcpPort });
  t.teardown(() => client.close());
  const keys = 200;
  await Promise.all(Array.from({ length: keys }, (_, i) => client.put(`c${i}`, `one-${i}`)));
  // They wait for lmdb's next batch (seconds away): STATS counts them and the memory they take.
  t.equal(await stat(client, 'pendingWrites'), keys);
  t.ok((await stat(client, 'pendingBytes')) >= keys * 20, 'pendingBytes counts their log entries');
  await untilCommitted(client);
  const read = async (): Promise<string[]> =>
    (await Promise.all(Array.from({ length: keys }, (_, i) => client.get(`c${i}`)))).map((r) => r?.values.join('|') ?? '(none)');
  const fills = await stat(client, 'cacheFills');
  t.ok(fills >= keys, `the writes filed their records (${fills})`);
  t.same(await read(), Array.from({ length: keys }, (_, i) => `one-${i}`));
  const hits = await stat(client, 'cacheHits');
  t.ok(hits >= keys * 0.9, `reads once lmdb has the writes are answered from it (${hits} hits)`);
  t.equal(await stat(client, 'cacheFills'), fills, 'and fill nothing more');

  // Overwrite half and delete a quarter: from pending writes first, then from lmdb via the cache.
  await Promise.all(Array.from({ length: keys / 2 }, (_, i) => client.put(`c${i}`, `two-${i}`)));
  await Promise.all(Array.from({ length: keys / 4 }, (_, i) => client.del(`c${keys - 1 - i}`)));
  const expected = Array.from({ length: keys }, (_, i) => (i < keys / 2 ? `two-${i}` : i >= keys - keys / 4 ? '(none)' : `one-${i}`));
  t.same(await read(), expected, 'while the writes are pending');
  await untilCommitted(client);
  t.same(await read(), expected, 'once lmdb has them');
  t.same(await read(), expected, 'and from the cache');
});

t.test('with --cache-mb 0 there is no cache', async (t) => {
  const node = await startDkvd({ dataDir, args: ['--cache-mb', '0'] });
  t.teardown(() => node.stop());
  const client = await DkvClient.connect({ port: node.tcpPort });
  t.teardown(() => client.close());
  t.equal((await client.get('c0'))?.values.join('|'), 'two-0', 'the data from before the restart');
  t.equal((await client.get('c0'))?.values.join('|'), 'two-0');
  t.equal(await stat(client, 'cacheHits'), 0);
  t.equal(await stat(client, 'cacheFills'), 0);
});
