// The server's PUT path: a body PutScan reads in place and the same request decoded make the
// same write with the same options, and get the same reply (with the node's ring checksum when
// the client routed by another) or the same error.
import t from 'tap';
import { ClusterView } from '../../src/coordinator/cluster-view.js';
import { createRootLogger } from '../../src/lib/log.js';
import type { Connection } from '../../src/server/connection.js';
import { NativeSession } from '../../src/server/dispatch.js';
import type { Service } from '../../src/server/service.js';
import { ServerStats } from '../../src/server/stats.js';
import type { WriteResult } from '../../src/store/versioned-store.js';
import { FrameFlag, Opcode } from '../../src/wire/codes.js';
import { encodeFrame, FrameDecoder } from '../../src/wire/frame.js';
import { decodeBody, encodeBody, encodeContext, PutScan, type QuorumOptions } from '../../src/wire/messages.js';

interface Reply {
  opcode: number;
  flags: number;
  requestId: number;
  body: unknown;
}

// Replies as Connection takes them (in its output slab, or as frames of their own), decoded.
class CapturingConnection {
  readonly id = 1;
  name: string | null = null;
  outputSlab = Buffer.alloc(1 << 16);
  private end = 0;
  private readonly frames: Buffer[] = [];
  reserve(bytes: number): number {
    const at = this.end;
    this.end += bytes;
    return at;
  }
  send(bytes: Buffer): void {
    this.frames.push(Buffer.from(bytes));
  }
  requestStarted(): void {}
  requestFinished(): void {}
  replies(): Reply[] {
    const out: Reply[] = [];
    const decoder = new FrameDecoder({
      onFrame: (opcode, flags, requestId, bytes, start, end) => out.push({ opcode, flags, requestId, body: decodeBody(bytes, start, end) }),
    });
    decoder.push(Buffer.concat([this.outputSlab.subarray(0, this.end), ...this.frames]));
    this.end = 0;
    this.frames.length = 0;
    return out;
  }
}

const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value, (_, v: unknown) => (v instanceof Uint8Array ? `bin:${Buffer.from(v).toString('hex')}` : v)));

t.test('PUT: read in place or decoded, the same write, reply and errors', async (t) => {
  const cluster = new ClusterView('n1', { host: '127.0.0.1', tcpPort: 0 }, 3, 16);
  const checksum = cluster.checksum;
  const writes: unknown[] = [];
  const stats = new ServerStats(0);
  const service = {
    nodeId: 'n1',
    stats,
    log: createRootLogger('silent'),
    shuttingDown: false,
    cluster,
    store: { prefetchReads: () => undefined },
    write(key: Uint8Array, value: Uint8Array | null, context: unknown, options: QuorumOptions): Promise<WriteResult> {
      writes.push(plain({ key, value, context, options }));
      return Promise.resolve({ context: Buffer.from(`ctx-${Buffer.from(key).toString()}`), existed: false });
    },
  } as unknown as Service;
  const connection = new CapturingConnection();
  const session = new NativeSession(connection as unknown as Connection, service);
  const scan = new PutScan();

  // Each request twice: as encodeBody writes it, and with a field the in-place path leaves to the
  // decoder (an explicit nil context, which means no context), so that one goes each way.
  const send = async (requestId: number, fields: Record<string, unknown>): Promise<{ inPlace: unknown; decoded: unknown; write: unknown[] }> => {
    const inPlaceBody = Buffer.from(encodeBody(fields));
    const decodedBody = Buffer.from(encodeBody({ ...fields, context: null }));
    t.ok(scan.scan(inPlaceBody, 0, inPlaceBody.length), 'the in-place path takes the plain body');
    t.notOk(scan.scan(decodedBody, 0, decodedBody.length), 'the decoder takes the one with a context field');
    writes.length = 0;
    session.push(encodeFrame(Opcode.PUT, 0, requestId, inPlaceBody));
    session.push(encodeFrame(Opcode.PUT, 0, requestId, decodedBody));
    await new Promise((resolve) => setImmediate(resolve));
    const [inPlace, decoded] = connection.replies();
    return { inPlace: plain(inPlace), decoded: plain(decoded), write: [...writes] };
  };

  const key = Buffer.from('k');
  const value = Buffer.from('v');
  const fresh = await send(7, { key, value, ring: checksum, w: 2, timeoutMs: 900 });
  t.same(fresh.inPlace, fresh.decoded);
  t.same(fresh.inPlace, plain({ opcode: Opcode.PUT, flags: FrameFlag.REPLY, requestId: 7, body: { context: Buffer.from('ctx-k') } }));
  t.equal(fresh.write.length, 2);
  t.same(fresh.write[0], fresh.write[1], 'both paths write the same');
  t.same(fresh.write[0], plain({ key, value, options: { w: 2, timeoutMs: 900, ring: checksum, forwarded: false } }));

  const before = stats.staleRingReplies;
  const stale = await send(8, { key, value, ring: (checksum + 1) >>> 0 });
  t.same(stale.inPlace, stale.decoded);
  t.same(stale.inPlace, plain({ opcode: Opcode.PUT, flags: FrameFlag.REPLY, requestId: 8, body: { context: Buffer.from('ctx-k'), ring: checksum } }));
  t.equal(stats.staleRingReplies - before, 2, 'both replies counted as stale-ring replies');

  for (const [what, fields] of [
    ['w of 0', { key, value, w: 0 }],
    ['a timeout beyond the bound', { key, value, timeoutMs: 0xffffffff }],
    ['a key too large', { key: Buffer.alloc(5000), value }],
  ] as const) {
    const bad = await send(9, fields);
    t.same(bad.inPlace, bad.decoded, `${what}: the same error`);
    t.equal((bad.inPlace as Reply).opcode, Opcode.ERROR, what);
    t.equal(bad.write.length, 0, `${what}: nothing written`);
  }

  // A context goes through the decoder, and reaches the write.
  writes.length = 0;
  session.push(encodeFrame(Opcode.PUT, 0, 10, Buffer.from(encodeBody({ key, value, context: encodeContext([['n1', 3]]) }))));
  await new Promise((resolve) => setImmediate(resolve));
  t.same(plain(connection.replies()[0]!.body), plain({ context: Buffer.from('ctx-k') }));
  t.same((writes[0] as { context: unknown }).context, [['n1', 3]]);
});
