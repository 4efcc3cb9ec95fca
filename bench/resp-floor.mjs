// The floor under any Node RESP server: one that counts the commands in each chunk (a '*' at a
// line start) and answers each with the same 100-byte bulk string, parsing and storing nothing.
// What redis-benchmark gets from it is what Node's networking allows on this machine:
//
//   node bench/resp-floor.mjs 18301 &
//   redis-benchmark -p 18301 -t get -n 2000000 -c 50 -d 100 -P 16 -r 100000 --csv
import net from 'node:net';
const value = Buffer.from('$100\r\n' + 'x'.repeat(100) + '\r\n');
const replies = Buffer.alloc(value.length * 64);
for (let i = 0; i < 64; i++) value.copy(replies, i * value.length);
net.createServer((s) => {
  s.setNoDelay(true);
  s.on('data', (chunk) => {
    let n = 0;
    if (chunk[0] === 42) n++;
    for (let i = 1; i < chunk.length; i++) if (chunk[i] === 42 && chunk[i - 1] === 10) n++;
    while (n > 0) { const k = Math.min(n, 64); s.write(replies.subarray(0, k * value.length)); n -= k; }
  });
  s.on('error', () => {});
}).listen(Number(process.argv[2] ?? 18301), '127.0.0.1');
