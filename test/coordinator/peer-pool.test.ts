// PeerPool keeps one connection per member and lets go of it when the member goes or moves.
// The peers here are bare TCP servers that accept and never answer: the test watches
// connections open and close.
import { createServer, type Server, type Socket } from 'node:net';
import t from 'tap';
import { ClusterView } from '../../src/coordinator/cluster-view.js';
import { PeerPool } from '../../src/coordinator/peer-pool.js';
import { Opcode } from '../../src/wire/codes.js';
import { until as untilWithin } from '../helpers/until.js';

interface Peer {
  server: Server;
  port: number;
  open: Set<Socket>;
}

async function silentPeer(): Promise<Peer> {
  const open = new Set<Socket>();
  const server = createServer((socket) => {
    open.add(socket);
    socket.resume();
    socket.on('error', () => undefined);
    socket.on('end', () => socket.end());
    socket.on('close', () => open.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, open };
}

const until = (what: string, check: () => boolean): Promise<void> => untilWithin(what, check, 2000, 10);

t.test('one connection per member, closed when the member is dropped, replaced when it moves', async (t) => {
  const a = await silentPeer();
  const b = await silentPeer();
  const view = new ClusterView('self', { host: '127.0.0.1', tcpPort: 1 }, 3, 16);
  const pool = new PeerPool(view);
  t.teardown(async () => {
    await pool.close();
    a.server.close();
    b.server.close();
  });
  const ask = (timeoutMs = 100) => pool.request('p', Opcode.PING, null, timeoutMs).catch((error: Error) => error);

  view.update('p', 'alive', { host: '127.0.0.1', tcpPort: a.port });
  await Promise.all([ask(), ask(), ask()]);
  await until('one connection to p', () => a.open.size === 1);
  t.equal(a.open.size, 1, 'requests to a member share one connection');
  t.equal(pool.size, 1);

  const waiting = ask(5_000);
  pool.drop('p');
  t.match(await waiting, { code: 'CONNECTION_CLOSED' }, 'a request waiting on a dropped member fails at once');
  await until('the connection to p closed', () => a.open.size === 0);
  t.equal(pool.size, 0, 'the pool holds nothing for a dropped member');
  pool.drop('p');
  t.equal(pool.size, 0, 'dropping twice is harmless');

  await ask();
  await until('a new connection after a drop', () => a.open.size === 1);
  view.update('p', 'alive', { host: '127.0.0.1', tcpPort: b.port });
  await ask();
  await until('connected at the new address, not the old', () => b.open.size === 1 && a.open.size === 0);
  t.equal(pool.size, 1, 'a member that moved has one connection, at its new address');
  t.end();
});
