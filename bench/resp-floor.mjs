// The floor under any Node RESP server: one that counts the commands in each chunk (a '*' at a
// line start) and answers each with the same 100-byte bulk string, parsing and storing nothing.
// What redis-benchmark gets from it is what Node's networking allows on this machine:
//
//   node bench/resp-floor.mjs 18301 &
//   redis-benchmark -p 18301 -t get -n 2000000 -c 50 -d 100 -P 16 -r 100000 --csv
//
// With --fsync DIR it is the floor under a Node server that acknowledges a write only once it is
// on disk, as dkv does: each chunk's bytes are appended to DIR/floor.log, and its commands are
// answered +OK once an fdatasync that started after the append has finished. The writes of one
// event-loop turn share a sync, and up to two syncs overlap (dkv's write-ahead log does the same).
// It keeps nothing else: no index, no versions, no second copy.
//
//   node bench/resp-floor.mjs 18301 --fsync /tmp/floor &
//   redis-benchmark -p 18301 -t set -n 400000 -c 50 -d 100 -P 1 -r 100000 --csv
import net from 'node:net';
import { fdatasync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const port = Number(process.argv[2] ?? 18301);
const fsyncAt = process.argv.indexOf('--fsync');
const value = Buffer.from('$100\r\n' + 'x'.repeat(100) + '\r\n');
const ok = Buffer.from('+OK\r\n');

function repeated(reply, count) {
  const bytes = Buffer.alloc(reply.length * count);
  for (let i = 0; i < count; i++) reply.copy(bytes, i * reply.length);
  return bytes;
}

function commandsIn(chunk) {
  let n = chunk[0] === 42 ? 1 : 0;
  for (let i = 1; i < chunk.length; i++) if (chunk[i] === 42 && chunk[i - 1] === 10) n++;
  return n;
}

function answer(socket, replies, size, n) {
  while (n > 0) {
    const k = Math.min(n, 64);
    socket.write(replies.subarray(0, k * size));
    n -= k;
  }
}

let onChunk;
if (fsyncAt < 0) {
  const replies = repeated(value, 64);
  onChunk = (socket, chunk) => answer(socket, replies, value.length, commandsIn(chunk));
} else {
  const dir = process.argv[fsyncAt + 1] ?? '/tmp/resp-floor';
  mkdirSync(dir, { recursive: true });
  const fd = openSync(join(dir, 'floor.log'), 'w');
  const replies = repeated(ok, 64);
  let waiting = []; // [socket, commands] appended since the last sync started
  let syncing = 0;
  let scheduled = false;
  const sync = () => {
    scheduled = false;
    if (waiting.length === 0 || syncing >= 2) return;
    const batch = waiting;
    waiting = [];
    syncing++;
    fdatasync(fd, (error) => {
      if (error) throw error;
      syncing--;
      for (let i = 0; i < batch.length; i += 2) answer(batch[i], replies, ok.length, batch[i + 1]);
      if (waiting.length > 0 && !scheduled) sync();
    });
  };
  onChunk = (socket, chunk) => {
    writeSync(fd, chunk);
    waiting.push(socket, commandsIn(chunk));
    if (!scheduled) {
      scheduled = true;
      setImmediate(sync);
    }
  };
}

net.createServer((s) => {
  s.setNoDelay(true);
  s.on('data', (chunk) => onChunk(s, chunk));
  s.on('error', () => {});
}).listen(port, '127.0.0.1');
