// The replicated data path across five real dkvd processes (N=3, R=2, W=2): a write with a
// preference-list node killed, hinted handoff to it once it is back, siblings from concurrent
// writes and their resolution, read repair of an emptied replica, and read-your-writes over
// thousands of operations.
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import t from 'tap';
import { ClusterClient } from '../../src/client/cluster-client.js';
import { DkvClient } from '../../src/client/client.js';
import { Opcode } from '../../src/wire/codes.js';
import { decodeVersionsBody, encodeBody } from '../../src/wire/messages.js';
import { removeDir, startDkvd, tempDir, type Dkvd } from '../helpers/dkvd.js';
import { until } from '../helpers/until.js';

const NODES = 5;
const SWIM_FLAGS = ['--probe-interval', '200', '--probe-timeout', '100', '--gossip-interval', '40', '--push-pull-interval', '6000'];

async function onNode<T>(node: Dkvd, work: (client: DkvClient) => Promise<T>): Promise<T> {
  const client = new DkvClient({ port: node.tcpPort, timeoutMs: 5000, connectTimeoutMs: 2000 });
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}

// What one node holds for the key itself (no quorum): REPLICA_GET.
async function replicaValues(node: Dkvd, key: string): Promise<string[]> {
  const body = await onNode(node, (c) => c.requestRaw(Opcode.REPLICA_GET, { key: Buffer.from(key) }));
  const versions = decodeVersionsBody(body);
  return (versions?.siblings ?? []).filter((s) => s.value !== null).map((s) => Buffer.from(s.value!).toString());
}

// One inline RESP command (as nc sends it); resolves with the whole reply.
function inline(node: Dkvd, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(node.tcpPort, '127.0.0.1', () => socket.end(`${command}\r\n`));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
    socket.setTimeout(8000, () => socket.destroy(new Error(`no reply to ${command}`)));
  });
}

async function stat(node: Dkvd, name: string): Promise<number> {
  return Number((await onNode(node, (c) => c.stats()))[name]);
}

t.test('five nodes, N=3 R=2 W=2', async (t) => {
  const nodes = new Map<string, Dkvd>();
  const dirs = new Map<string, string>();
  const ports = new Map<string, number>();
  t.teardown(async () => {
    for (const node of nodes.values()) await node.kill();
    for (const dir of dirs.values()) removeDir(dir);
  });
  const seedPort = { value: 0 };
  const start = async (id: string): Promise<Dkvd> => {
    const dataDir = dirs.get(id) ?? tempDir();
    dirs.set(id, dataDir);
    const node = await startDkvd({
      dataDir,
      ...(ports.has(id) ? { tcpPort: ports.get(id)! } : {}),
      args: ['--node-id', id, ...SWIM_FLAGS, ...(seedPort.value === 0 ? [] : ['--join', `127.0.0.1:${seedPort.value}`])],
    });
    ports.set(id, node.tcpPort);
    nodes.set(id, node);
    if (seedPort.value === 0) seedPort.value = node.tcpPort;
    return node;
  };
  for (let i = 1; i <= NODES; i++) await start(`r${i}`);
  const first = nodes.get('r1')!;
  await until('the ring has five alive members everywhere', async () => {
    for (const node of nodes.values()) {
      const routing = (await onNode(node, (c) => c.request(Opcode.ROUTING, null))) as { members: Array<{ state: string }> };
      if (routing.members.filter((m) => m.state === 'alive').length !== NODES) return false;
    }
    return true;
  });
  const client = await ClusterClient.connect(`127.0.0.1:${first.tcpPort}`, { timeoutMs: 8000 });
  t.teardown(() => client.close());

  await t.test('a write with one preference-list node killed succeeds and leaves a hint; the node gets it back', async (t) => {
    const key = 'handoff-key';
    const [, victimMember] = client.where(key).replicas;
    const victim = nodes.get(victimMember!.id)!;
    await victim.kill();
    // Straight away, before membership has noticed: the coordinator's copy to the victim is
    // refused and goes to a fallback with a hint.
    await client.put(key, 'v1');
    t.same((await client.get(key))?.values.map(String), ['v1'], 'readable at R=2 with a replica down');
    // The write is answered once W copies are durable; the refused copy's hint is stored on a
    // fallback at about the same time, not necessarily before.
    let hints = 0;
    await until('a hint is held for the killed replica', async () => {
      hints = 0;
      for (const [id, node] of nodes) if (id !== victimMember!.id) hints += await stat(node, 'hintsPending');
      return hints >= 1;
    });
    t.ok(hints >= 1, `a hint is held for the killed replica (${hints})`);

    await start(victimMember!.id);
    await until('the restarted replica holds the value', async () => (await replicaValues(nodes.get(victimMember!.id)!, key)).includes('v1'));
    let pending = 0;
    await until('every hint is delivered', async () => {
      pending = 0;
      for (const [id, node] of nodes) if (id !== victimMember!.id) pending += await stat(node, 'hintsPending');
      return pending === 0;
    });
    t.equal(pending, 0, 'the hints are removed once delivered');
  });

  await t.test('two writers with the same context make siblings; a write with the merged context resolves them', async (t) => {
    const key = 'sibling-key';
    await client.put(key, 'base');
    const read = await client.get(key);
    const other = await ClusterClient.connect(`127.0.0.1:${nodes.get('r3')!.tcpPort}`);
    t.teardown(() => other.close());
    await client.put(key, 'from-a', { context: read!.context });
    await other.put(key, 'from-b', { context: read!.context });
    const both = await client.get(key);
    t.same(both?.values.map(String).sort(), ['from-a', 'from-b'], 'both concurrent writes are kept');
    await client.put(key, 'merged', { context: both!.context });
    t.same((await other.get(key))?.values.map(String), ['merged'], 'the merged write supersedes both');
  });

  await t.test('a replica that lost its copy is repaired by a read', async (t) => {
    const key = 'repair-key';
    await client.put(key, 'kept', { w: 3 });
    const [, stale] = client.where(key).replicas;
    const node = nodes.get(stale!.id)!;
    await node.kill();
    rmSync(dirs.get(stale!.id)!, { recursive: true, force: true });
    await start(stale!.id);
    t.same(await replicaValues(nodes.get(stale!.id)!, key), [], 'the restarted replica is empty');
    const repairsBefore = await Promise.all([...nodes.values()].map((n) => stat(n, 'readRepairs')));
    t.same((await client.get(key, { r: 3 }))?.values.map(String), ['kept']);
    await until('read repair reached the empty replica', async () => (await replicaValues(nodes.get(stale!.id)!, key)).includes('kept'));
    const repairsAfter = await Promise.all([...nodes.values()].map((n) => stat(n, 'readRepairs')));
    t.ok(
      repairsAfter.reduce((a, b) => a + b, 0) > repairsBefore.reduce((a, b) => a + b, 0),
      'counted in readRepairs',
    );
  });

  await t.test('with no failures, a read after an acknowledged write sees it', async (t) => {
    const entries = [...nodes.values()];
    const direct = entries.map((n) => new DkvClient({ port: n.tcpPort, timeoutMs: 8000 }));
    t.teardown(() => Promise.all(direct.map((c) => c.close())));
    const latest = new Map<string, string>();
    let checked = 0;
    let stale = 0;
    const deadline = performance.now() + 60_000;
    for (let i = 0; i < 3000 && performance.now() < deadline; i++) {
      const key = `ryw-${i % 100}`;
      const value = `v${i}`;
      // Writes and reads enter through any node: routed by key, or through a coordinator that
      // is not a replica.
      const writer = i % 3 === 0 ? client : direct[i % direct.length]!;
      await writer.put(key, value);
      latest.set(key, value);
      const reader = i % 2 === 0 ? client : direct[(i + 2) % direct.length]!;
      const got = await reader.get(key);
      checked++;
      if (got === null || !got.values.map(String).includes(latest.get(key)!)) stale++;
    }
    t.ok(checked >= 1000, `${checked} write-then-read pairs`);
    t.equal(stale, 0, 'every read saw the write acknowledged before it');
  });

  await t.test('concurrent writes go to each replica in REPLICA_PUTS batches, answered entry by entry', async (t) => {
    const all = [...nodes.values()];
    const sum = async (name: string): Promise<number> =>
      (await Promise.all(all.map((n) => stat(n, name)))).reduce((a, b) => a + b, 0);
    const [writesBefore, batchesBefore] = [await sum('replicaWritesSent'), await sum('replicaWriteBatchesSent')];
    await Promise.all(Array.from({ length: 200 }, (_, i) => client.put(`batched-${i}`, `v${i}`)));
    const writes = (await sum('replicaWritesSent')) - writesBefore;
    const batches = (await sum('replicaWriteBatchesSent')) - batchesBefore;
    t.equal(writes, 400, 'two replica writes per put (N=3, the coordinator is a replica)');
    t.ok(batches > 0 && batches < writes, `${writes} replica writes went in ${batches} requests`);

    // A REPLICA_PUTS by hand: a good entry, one that is not a REPLICA_PUT body, a good one.
    const versions = await onNode(first, (c) => c.requestRaw(Opcode.REPLICA_GET, { key: Buffer.from('batched-1') }));
    const entry = (k: string): Buffer => Buffer.from(encodeBody({ key: Buffer.from(k), versions }));
    const reply = await onNode(first, (c) =>
      c.request(Opcode.REPLICA_PUTS, Buffer.from(encodeBody([entry('by-hand-1'), Buffer.from(encodeBody({ key: 7 })), entry('by-hand-2')]))),
    );
    t.match(reply, [null, { name: 'BAD_REQUEST' }, null], 'each entry has its own result');
    t.same(await replicaValues(first, 'by-hand-2'), ['v1'], 'the good entries are merged');
    const refused = await onNode(first, (c) => c.request(Opcode.REPLICA_PUTS, Buffer.from(encodeBody({ not: 'an array' }))).catch((e: Error) => e));
    t.match(refused, { code: 'BAD_REQUEST' }, 'a body that is not an array of bins is refused with ERROR');
  });

  await t.test('RESP on any node reads and writes any key; GET answers one winner', async (t) => {
    const [a, b] = [nodes.get('r2')!, nodes.get('r4')!];
    t.equal(await inline(a, 'SET resp-key hello'), '+OK\r\n');
    t.equal(await inline(b, 'GET resp-key'), '$5\r\nhello\r\n', 'read through another node');
    const read = await client.get('resp-key');
    await client.put('resp-key', 'left', { context: read!.context });
    const other = await ClusterClient.connect(`127.0.0.1:${nodes.get('r5')!.tcpPort}`);
    t.teardown(() => other.close());
    await other.put('resp-key', 'right', { context: read!.context });
    const winner = await inline(a, 'GET resp-key');
    t.ok(winner === '$4\r\nleft\r\n' || winner === '$5\r\nright\r\n', `one of the siblings: ${JSON.stringify(winner)}`);
    t.equal(await inline(b, 'GET resp-key'), winner, 'the same winner through every node');
    t.equal(await inline(b, 'DEL resp-key'), ':1\r\n');
    t.equal(await inline(a, 'GET resp-key'), '$-1\r\n');
  });

  await t.test('a GET routed by key costs R-1 replica reads and no forward', async (t) => {
    const key = 'counted-key';
    await client.put(key, 'x');
    const before = await Promise.all([...nodes.values()].map((n) => onNode(n, (c) => c.stats())));
    for (let i = 0; i < 100; i++) await client.get(key);
    const after = await Promise.all([...nodes.values()].map((n) => onNode(n, (c) => c.stats())));
    const delta = (name: string): number => after.reduce((sum, s, i) => sum + Number(s[name]) - Number(before[i]![name]), 0);
    t.equal(delta('coordinatorGets'), 100, 'one coordinator per GET');
    // A replica read slower than the speculative delay (a stall on a busy machine) adds one.
    t.equal(delta('replicaReadsSent') - delta('speculativeReads'), 100, 'one replica read per GET (R - 1 = 1)');
    t.equal(delta('forwards'), 0, 'no forwarding');
  });

  await t.test('a GET whose replica is stopped answers after the speculative delay, not the timeout', async (t) => {
    const key = 'stopped-replica-key';
    await client.put(key, 'x', { w: 3 });
    const [first, second] = client.where(key).replicas;
    const coordinator = nodes.get(first!.id)!;
    const stopped = nodes.get(second!.id)!;
    const before = await stat(coordinator, 'speculativeReads');
    stopped.child.kill('SIGSTOP');
    try {
      // At once, before membership suspects the stopped node: it is still the healthy replica
      // the coordinator asks first.
      const startedMs = performance.now();
      const result = await onNode(coordinator, (c) => c.get(key));
      const tookMs = performance.now() - startedMs;
      t.same(result?.values.map(String), ['x']);
      t.ok(tookMs < 1000, `answered in ${Math.round(tookMs)} ms (request timeout 5000 ms)`);
    } finally {
      stopped.child.kill('SIGCONT');
    }
    t.ok((await stat(coordinator, 'speculativeReads')) > before, 'through a speculative read');
  });
});
