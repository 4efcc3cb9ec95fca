// SWIM across real dkvd processes on loopback: eight nodes started in an order where the seed
// comes last, then a crash, a node joining after it, a pause shorter than the suspicion timeout,
// a restart and a graceful leave. Probes every 200 ms (memberlist's LAN profile with every time divided by 5)
// keep it quick.
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';
import t from 'tap';
import { DkvClient, type Member } from '../../src/client/client.js';
import { isDkvError } from '../../src/lib/errors.js';
import { Opcode } from '../../src/wire/codes.js';
import { encodeAlive } from '../../src/wire/swim-codec.js';
import { DKV_CLI, removeDir, startDkvd, tempDir, type Dkvd } from '../helpers/dkvd.js';
import { run } from '../helpers/run.js';

const NODES = 8;
const SWIM_FLAGS = ['--probe-interval', '200', '--probe-timeout', '100', '--gossip-interval', '40', '--push-pull-interval', '6000'];
const WAIT_MS = 15_000;
const POLL_MS = 100;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function membersOf(node: Dkvd): Promise<Member[]> {
  const client = new DkvClient({ port: node.tcpPort, timeoutMs: 2000, connectTimeoutMs: 2000 });
  try {
    return await client.members();
  } finally {
    await client.close();
  }
}

async function ringChecksumOf(node: Dkvd): Promise<number> {
  const client = new DkvClient({ port: node.tcpPort, timeoutMs: 2000, connectTimeoutMs: 2000 });
  try {
    return Number((await client.stats()).ringChecksum);
  } finally {
    await client.close();
  }
}

// Polls until `check` holds for what every node in `observers` reports; bounded by WAIT_MS.
async function waitFor(observers: Dkvd[], what: string, check: (members: Member[]) => boolean): Promise<number> {
  const started = performance.now();
  let last = '';
  for (let i = 0; i < WAIT_MS / POLL_MS; i++) {
    const views = await Promise.all(observers.map((o) => membersOf(o).catch(() => null)));
    if (views.every((v) => v !== null && check(v))) return performance.now() - started;
    last = JSON.stringify(views.map((v) => v?.map((m) => `${m.id}:${m.state}`)));
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error(`not every node saw ${what} within ${WAIT_MS} ms; last views: ${last}`);
}

function stateOf(members: Member[], id: string): Member | undefined {
  return members.find((m) => m.id === id);
}

function deadLines(node: Dkvd, member: string): string[] {
  return node.logLines.filter((line) => line.includes('"member dead"') && line.includes(`"member":"${member}"`));
}

t.test('eight dkvd processes: converge, crash, a late joiner, pause, restart, leave', async (t) => {
  const seedPort = await freePort();
  const join = ['--join', `127.0.0.1:${seedPort}`];
  const nodes: Dkvd[] = [];
  const dirs: string[] = [];
  t.teardown(async () => {
    for (const node of nodes) {
      try {
        node.child.kill('SIGCONT');
      } catch {
        // already gone
      }
      await node.kill();
    }
    for (const dir of dirs) removeDir(dir);
  });
  const start = async (i: number, tcpPort?: number): Promise<Dkvd> => {
    const dataDir = dirs[i] ?? tempDir();
    dirs[i] = dataDir;
    return startDkvd({
      dataDir,
      storage: 'memory',
      ...(tcpPort === undefined ? {} : { tcpPort }),
      args: ['--node-id', `m${i}`, ...SWIM_FLAGS, ...join],
    });
  };
  // The seed starts last: the others keep retrying their join until it answers.
  for (let i = 1; i < NODES; i++) nodes[i] = await start(i);
  nodes[0] = await start(0, seedPort);
  const ids = nodes.map((n) => n.nodeId);
  const converged = await waitFor(nodes, 'all eight alive', (members) =>
    ids.every((id) => stateOf(members, id)?.state === 'alive'),
  );
  t.pass(`all ${NODES} nodes see ${NODES} alive members after ${Math.round(converged)} ms`);

  // SIGKILL: DEAD everywhere else.
  const victim = nodes[7]!;
  const before = stateOf(await membersOf(nodes[0]!), victim.nodeId)!;
  await victim.kill();
  const others = nodes.slice(0, 7);
  const detected = await waitFor(others, `${victim.nodeId} dead`, (members) => stateOf(members, victim.nodeId)?.state === 'dead');
  t.pass(`a SIGKILLed node is dead at all ${others.length} others after ${Math.round(detected)} ms`);

  // A node that joins after the crash learns of the dead member through push-pull (as a
  // suspicion it then confirms) and builds the same ring as the others: the dead member keeps its
  // place on every ring until it is forgotten.
  const joiner = (nodes[NODES] = await start(NODES));
  await waitFor([joiner], `${victim.nodeId} dead at the joiner`, (members) => stateOf(members, victim.nodeId)?.state === 'dead');
  // The joiner knows the others from its join; they learn of it by gossip, a little later.
  await waitFor(others, `${joiner.nodeId} alive at the others`, (members) => stateOf(members, joiner.nodeId)?.state === 'alive');
  const checksums = await Promise.all([...others, joiner].map(ringChecksumOf));
  t.same(new Set(checksums).size, 1, `the joiner's ring is the others' (checksums ${[...new Set(checksums)].join(', ')})`);

  // SIGSTOP for 400 ms, well under the suspicion timeout (0.8 s at least for 7 members): it may
  // be suspected, but refutes on waking and nobody declares it dead.
  const sleeper = nodes[6]!;
  sleeper.child.kill('SIGSTOP');
  await new Promise((resolve) => setTimeout(resolve, 400));
  sleeper.child.kill('SIGCONT');
  await waitFor(others, `${sleeper.nodeId} alive after its pause`, (members) => stateOf(members, sleeper.nodeId)?.state === 'alive');
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.same(
    others.flatMap((node) => deadLines(node, sleeper.nodeId)),
    [],
    'a node paused for less than its suspicion timeout is never declared dead',
  );

  // Restart the crashed node under the same id: it is alive again everywhere, with a higher
  // incarnation than before.
  nodes[7] = await start(7);
  const restarted = await waitFor(others, `${victim.nodeId} alive again`, (members) => {
    const member = stateOf(members, victim.nodeId);
    return member?.state === 'alive' && member.incarnation > before.incarnation;
  });
  t.pass(`the restarted node is alive at all others with a higher incarnation after ${Math.round(restarted)} ms`);

  // Graceful leave through dkv-cli: LEFT at all others within a few probe periods; the node
  // stops by itself.
  const leaver = nodes[5]!;
  const left = await run(process.execPath, [DKV_CLI, '--server', `127.0.0.1:${leaver.tcpPort}`, 'leave']);
  t.equal(left.code, 0, left.stderr);
  const stayers = nodes.filter((n) => n !== leaver);
  const leftAfter = await waitFor(stayers, `${leaver.nodeId} left`, (members) => stateOf(members, leaver.nodeId)?.state === 'left');
  t.ok(leftAfter < 2000, `LEFT at all others after ${Math.round(leftAfter)} ms (after the leave returned)`);
  t.equal(await leaver.exited, 0, 'the node that left stopped cleanly');

  // No node was ever declared dead except the one that was killed.
  for (const node of nodes) {
    const falseDeaths = node.logLines.filter(
      (line) => line.includes('"member dead"') && !line.includes(`"member":"${victim.nodeId}"`),
    );
    t.same(falseDeaths, [], `${node.nodeId}: no false DEAD`);
  }

  const json = await run(process.execPath, [DKV_CLI, '--server', `127.0.0.1:${nodes[0]!.tcpPort}`, 'members', '--json']);
  t.equal(json.code, 0, json.stderr);
  const listed = JSON.parse(json.stdout) as Member[];
  t.equal(listed.length, NODES + 1, 'dkv-cli members --json lists every member, the late joiner too');
  for (const member of listed) {
    t.match(member, { id: String, address: /^127\.0\.0\.1:\d+$/, state: /^(alive|suspect|dead|left)$/, incarnation: Number });
  }
  const table = await run(process.execPath, [DKV_CLI, '--server', `127.0.0.1:${nodes[0]!.tcpPort}`, 'members']);
  t.match(table.stdout, /^ID\s+ADDRESS\s+TCP\s+STATE\s+INCARNATION\s+SINCE$/m);
  t.match(table.stdout, new RegExp(`^${leaver.nodeId}\\s.*\\sleft\\s`, 'm'));

  const client = new DkvClient({ port: nodes[0]!.tcpPort });
  const stats = await client.stats();
  await client.close();
  for (const name of ['swimProbes', 'swimSuspicionsRaised', 'swimSuspicionsRefuted', 'swimPacketsIn', 'swimPacketsOut', 'swimBytesIn', 'swimBytesOut', 'swimPacketsDropped', 'swimHealth', 'swimMembersAlive']) {
    t.type(stats[name], 'number', `STATS has ${name}`);
  }
  t.ok(Number(stats.swimProbes) > 0, 'probes counted');

  // RESP INFO membership, inline as nc would send it.
  const info = await new Promise<string>((resolve, reject) => {
    const socket = connect(nodes[0]!.tcpPort, '127.0.0.1', () => socket.end('INFO membership\r\n'));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('no INFO reply within 5 s')));
  });
  t.match(info, /# Membership\r\n/);
  t.match(info, new RegExp(`swimMembersAlive:${NODES}\\r\\n`), 'INFO membership counts the alive members: all but the one that left, with the late joiner');
});

t.test('garbage on the UDP port is dropped and counted; the node keeps serving', async (t) => {
  const node = await startDkvd({ storage: 'memory', args: SWIM_FLAGS });
  t.teardown(async () => {
    await node.kill();
    removeDir(node.dataDir);
  });
  const datagrams = [
    Buffer.from('hello'), // not a dkv datagram
    Buffer.from([0xd7]), // truncated header
    Buffer.from([0xd7, 0x02, 0x00, 0x01, 0x00, 0x04, 0, 0, 0, 1]), // unknown version
    Buffer.from([0xd7, 0x01, 0x00, 0x63, 0x00, 0x04, 0, 0, 0, 1]), // unknown message type
    Buffer.from([0xd7, 0x01, 0x00, 0x03, 0x00, 0x09, 0, 0, 0, 1]), // body longer than the datagram
    Buffer.alloc(1401, 0xd7), // over 1,400 bytes
  ];
  const socket = createSocket('udp4');
  t.teardown(() => socket.close());
  for (const datagram of datagrams) {
    await new Promise<void>((resolve, reject) => socket.send(datagram, node.udpPort, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
  }
  const client = new DkvClient({ port: node.tcpPort });
  t.teardown(() => client.close());
  let dropped = 0;
  for (let i = 0; i < 50 && dropped < datagrams.length; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    dropped = Number((await client.stats()).swimPacketsDropped);
  }
  t.equal(dropped, datagrams.length, 'every bad datagram counted in swimPacketsDropped');
  const members = await client.members();
  t.same(members.map((m) => [m.id, m.state]), [[node.nodeId, 'alive']], 'membership unchanged');
  await client.put('k', 'v');
  t.equal((await client.get('k'))?.values[0]?.toString(), 'v', 'still serving');
});

t.test('a push-pull meant for another member is refused and merges nothing; one for this member merges', async (t) => {
  const node = await startDkvd({ storage: 'memory', args: SWIM_FLAGS });
  t.teardown(async () => {
    await node.kill();
    removeDir(node.dataDir);
  });
  const client = new DkvClient({ port: node.tcpPort });
  t.teardown(() => client.close());
  // A member of some other cluster at an address that once belonged to a member of this node's.
  const state = encodeAlive(3, 'stranger', '127.0.0.1', 9, 9);
  const refused = await client.request(Opcode.PUSH_PULL, { state, to: 'someone-else' }).catch((error: unknown) => error);
  t.ok(isDkvError(refused, 'WRONG_MEMBER'), `refused with WRONG_MEMBER (${String(refused)})`);
  t.same((await client.members()).map((m) => m.id), [node.nodeId], 'nothing merged');
  const reply = (await client.request(Opcode.PUSH_PULL, { state, to: node.nodeId })) as { state?: unknown };
  t.ok(reply.state instanceof Uint8Array, 'named rightly: answered with its state');
  t.same((await client.members()).map((m) => m.id).sort(), [node.nodeId, 'stranger'].sort(), 'and merged');
});

t.test('cluster labels: a node joins a node of its own label, and is refused by one of another', async (t) => {
  const blue = await startDkvd({ storage: 'memory', args: [...SWIM_FLAGS, '--cluster-label', 'blue'] });
  const green = await startDkvd({ storage: 'memory', args: [...SWIM_FLAGS, '--cluster-label', 'green', '--join', `127.0.0.1:${blue.tcpPort}`] });
  const blue2 = await startDkvd({ storage: 'memory', args: [...SWIM_FLAGS, '--cluster-label', 'blue', '--join', `127.0.0.1:${blue.tcpPort}`] });
  t.teardown(async () => {
    for (const node of [blue, green, blue2]) {
      await node.kill();
      removeDir(node.dataDir);
    }
  });
  await waitFor([blue, blue2], 'the blue nodes together', (members) => members.filter((m) => m.state === 'alive').length === 2);
  const client = new DkvClient({ port: green.tcpPort });
  t.teardown(() => client.close());
  let failures = 0;
  for (let i = 0; i < 50 && failures < 2; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    failures = Number((await client.stats()).swimPushPullFailures);
  }
  t.ok(failures >= 2, `green's joins were refused (${failures} failed push-pulls)`);
  t.equal(green.logLines.filter((line) => line.includes('another cluster label')).length, 1, 'green says why, once');
  t.same((await membersOf(green)).map((m) => m.id), [green.nodeId], 'green is alone');
  t.same((await membersOf(blue)).map((m) => m.id).sort(), [blue.nodeId, blue2.nodeId].sort(), 'blue never heard of green');
  const refused = await client.request(Opcode.PUSH_PULL, { state: encodeAlive(1, 'x', '127.0.0.1', 9, 9) }).catch((error: unknown) => error);
  t.ok(isDkvError(refused, 'WRONG_CLUSTER'), `an unlabelled push-pull is refused with WRONG_CLUSTER (${String(refused)})`);
});
