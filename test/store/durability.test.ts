// A node killed with SIGKILL right after acknowledging writes has all of them after restart.
import t from 'tap';
import { DkvClient } from '../../src/client/client.js';
import { removeDir, startDkvd, tempDir } from '../helpers/dkvd.js';

const ROUNDS = 3;
const WRITES_PER_ROUND = 3000;

t.test('acknowledged writes survive SIGKILL', async (t) => {
  const dataDir = tempDir();
  t.teardown(() => removeDir(dataDir));
  const acknowledged = new Map<string, string>();
  for (let round = 0; round < ROUNDS; round++) {
    const node = await startDkvd({ dataDir });
    t.teardown(() => node.kill());
    // Everything acknowledged in earlier rounds is here.
    const reader = await DkvClient.connect({ port: node.tcpPort });
    let missing = 0;
    for (const [key, value] of acknowledged) {
      const result = await reader.get(key);
      if (result === null || result.values[0]!.toString() !== value) missing++;
    }
    t.equal(missing, 0, `round ${round}: all ${acknowledged.size} acknowledged writes are there`);
    await reader.close();

    // Many writes in flight; kill the node as soon as the last acknowledgement of a batch
    // arrives, while later writes are still in flight.
    const writer = await DkvClient.connect({ port: node.tcpPort, timeoutMs: 20_000 });
    const writes: Array<Promise<unknown>> = [];
    let killed = false;
    for (let i = 0; i < WRITES_PER_ROUND; i++) {
      const key = `r${round}-k${i}`;
      const value = `v${round}-${i}-${'x'.repeat(i % 200)}`;
      writes.push(
        writer.put(key, value).then(
          () => {
            if (!killed) acknowledged.set(key, value);
          },
          () => undefined,
        ),
      );
    }
    await Promise.race([writes[Math.floor(WRITES_PER_ROUND / 2)], new Promise((r) => setTimeout(r, 20_000))]);
    killed = true;
    process.kill(node.pid, 'SIGKILL');
    await node.kill();
    await Promise.all(writes);
    await writer.close();
    t.ok(acknowledged.size > 0, `round ${round}: ${acknowledged.size} writes acknowledged before the kill`);
  }
  const last = await startDkvd({ dataDir });
  t.teardown(() => last.stop());
  const reader = await DkvClient.connect({ port: last.tcpPort });
  const results = await reader.mget([...acknowledged.keys()].slice(0, 1000));
  t.ok(results.every((r) => r !== null), 'the first 1000 acknowledged keys read back through MGET');
  let missing = 0;
  for (const [key, value] of acknowledged) {
    const result = await reader.get(key);
    if (result === null || result.values[0]!.toString() !== value) missing++;
  }
  t.equal(missing, 0, `all ${acknowledged.size} acknowledged writes survived ${ROUNDS} kills`);
  await reader.close();
});
