// The floor under replicated durable writes with three Node processes on this machine: what a
// 3-node store that acknowledges a put once 2 of its 3 replicas have it on disk (N=3, W=2) could
// reach if it did nothing else. Each node appends every put it gets to its own log and fdatasyncs
// it (the writes of one event-loop turn share a sync, up to two syncs overlap, as dkv's log does),
// and the node a client sent the put to forwards it to the other two and answers once its own sync
// and one of theirs are done. No storage engine, no versions, no routing, no checksums; frames
// are a u32 length and a u32 id ahead of the bytes. The load generator keeps IN_FLIGHT puts of
// 100-byte values in flight, spread over the three nodes, as `dkv-cli bench --cluster` does.
//
//   node bench/cluster-floor.mjs                 # 50 in flight, 10 s
//   IN_FLIGHT=50 DURATION=10 node bench/cluster-floor.mjs
//
// It prints puts/s and the CPU time of the nodes per put. Compare with bench/vs-etcd.sh's dkv
// figure (same in-flight count).
import { fork } from 'node:child_process';
import { fdatasync, mkdtempSync, openSync, readFileSync, rmSync, writevSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const VALUE_BYTES = 100;
const KEY_BYTES = 16;

// Frames: u32 BE length of what follows ‖ u32 BE id ‖ payload. Calls onFrame(id, bytes, start, end).
function framer(onFrame) {
  let pending = null;
  return (chunk) => {
    let bytes = pending === null ? chunk : Buffer.concat([pending, chunk]);
    let at = 0;
    while (bytes.length - at >= 8) {
      const length = bytes.readUInt32BE(at);
      if (bytes.length - at - 4 < length) break;
      onFrame(bytes.readUInt32BE(at + 4), bytes, at + 8, at + 4 + length);
      at += 4 + length;
    }
    pending = at === bytes.length ? null : bytes.subarray(at);
  };
}

function frame(id, payload) {
  const out = Buffer.allocUnsafe(8 + payload.length);
  out.writeUInt32BE(4 + payload.length, 0);
  out.writeUInt32BE(id, 4);
  payload.copy(out, 8);
  return out;
}

// A log with group commit: append() keeps the bytes, and calls `done` after an fdatasync that
// started once they were written. The appends of one event-loop turn go out in one writev.
function groupLog(path) {
  const fd = openSync(path, 'w');
  let buffers = [];
  let waiting = [];
  let syncing = 0;
  let scheduled = false;
  const sync = () => {
    scheduled = false;
    if (waiting.length === 0 || syncing >= 2) return;
    writevSync(fd, buffers);
    const batch = waiting;
    buffers = [];
    waiting = [];
    syncing++;
    fdatasync(fd, (error) => {
      if (error) throw error;
      syncing--;
      for (const done of batch) done();
      if (waiting.length > 0 && !scheduled) sync();
    });
  };
  return (bytes, start, end, done) => {
    buffers.push(bytes.subarray(start, end));
    waiting.push(done);
    if (!scheduled) {
      scheduled = true;
      setImmediate(sync);
    }
  };
}

// Frames written to a socket in one event-loop turn go out in one write, as dkv's do.
function batchedWriter(socket) {
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  return (bytes) => {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    socket.write(bytes);
  };
}

async function node() {
  const { index, dir } = JSON.parse(process.env.FLOOR_NODE);
  const append = groupLog(join(dir, `node${index}.log`));
  const peers = [];
  let nextId = 1;
  const waitingPeers = new Map(); // id -> callback when a peer acks
  // Peer and client connections share one server: the first byte of a frame's payload says which
  // (1: a client's put, 2: a peer's replicate, 3: a peer's ack).
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => {});
    const reply = batchedWriter(socket);
    socket.on(
      'data',
      framer((id, bytes, start, end) => {
        const kind = bytes[start];
        if (kind === 2) {
          append(bytes, start, end, () => reply(frame(id, Buffer.from([3]))));
        } else if (kind === 1) {
          // Done once this node's sync and one peer's have finished.
          let acks = 0;
          const one = () => {
            if (++acks === 2) reply(frame(id, Buffer.from([0])));
          };
          append(bytes, start, end, one);
          const replicate = Buffer.from(bytes.subarray(start, end));
          replicate[0] = 2;
          const peerId = nextId++;
          waitingPeers.set(peerId, { count: 0, one });
          const out = frame(peerId, replicate);
          for (const peer of peers) peer(out);
        }
      }),
    );
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.send({ port: server.address().port });
  const { peerPorts } = await new Promise((resolve) => process.once('message', resolve));
  for (const port of peerPorts) {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    socket.on(
      'data',
      framer((id) => {
        const waiting = waitingPeers.get(id);
        if (waiting === undefined) return;
        // The first peer ack completes the quorum; the second only retires the entry.
        if (++waiting.count === 1) waiting.one();
        else waitingPeers.delete(id);
      }),
    );
    await new Promise((resolve) => socket.once('connect', resolve));
    peers.push(batchedWriter(socket));
  }
  process.send({ ready: true });
}

async function main() {
  const inFlight = Number(process.env.IN_FLIGHT ?? 50);
  const durationMs = Number(process.env.DURATION ?? 10) * 1000;
  const dir = mkdtempSync(join(tmpdir(), 'cluster-floor-'));
  const children = [];
  try {
    const ports = [];
    for (let index = 0; index < 3; index++) {
      const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, FLOOR_NODE: JSON.stringify({ index, dir }) } });
      children.push(child);
      ports.push(await new Promise((resolve) => child.once('message', (m) => resolve(m.port))));
    }
    await Promise.all(
      children.map(
        (child, i) =>
          new Promise((resolve) => {
            child.once('message', resolve);
            child.send({ peerPorts: ports.filter((_, j) => j !== i) });
          }),
      ),
    );
    const sockets = await Promise.all(
      ports.map(
        (port) =>
          new Promise((resolve) => {
            const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
            socket.setNoDelay(true);
          }),
      ),
    );
    const payload = Buffer.alloc(1 + KEY_BYTES + VALUE_BYTES, 0x78);
    payload[0] = 1;
    let done = 0;
    let stopAt = 0;
    let id = 0;
    let outstanding = inFlight;
    const writers = new Map(sockets.map((socket) => [socket, batchedWriter(socket)]));
    const send = (socket) => writers.get(socket)(frame(++id, payload));
    const finished = new Promise((resolve) => {
      for (const socket of sockets) {
        socket.on(
          'data',
          framer(() => {
            done++;
            if (stopAt === 0 || performance.now() < stopAt) send(socket);
            else if (--outstanding === 0) resolve();
          }),
        );
      }
    });
    const cpu0 = children.map((c) => cpuTicks(c.pid));
    const started = performance.now();
    stopAt = started + durationMs;
    for (let i = 0; i < inFlight; i++) send(sockets[i % 3]);
    await finished;
    const elapsed = (performance.now() - started) / 1000;
    const cpu = children.reduce((sum, c, i) => sum + cpuTicks(c.pid) - cpu0[i], 0) / 100; // seconds
    console.log(
      `${inFlight} in flight: ${Math.round(done / elapsed)} puts/s, nodes' CPU ${((cpu * 1e6) / done).toFixed(1)} µs per put (all three)`,
    );
    for (const socket of sockets) socket.destroy();
  } finally {
    for (const child of children) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

// User and system CPU of a process so far, in clock ticks (1/100 s): fields 14 and 15 of
// /proc/PID/stat, counted after the command name (which may hold spaces) as fields 3 on.
function cpuTicks(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

if (process.env.FLOOR_NODE) await node();
else await main();
