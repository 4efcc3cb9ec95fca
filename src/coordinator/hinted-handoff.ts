// Hinted handoff: versions a node holds for a replica that could not take them, delivered when
// membership sees that replica alive again, then deleted. Hints live in the storage engine's
// hint table, durable before a hinted write is acknowledged, one per (replica, key): a second
// hint for the same pair merges into the first.
//
// A hint is stored under   replica id (UTF-8) ‖ 0x00 ‖ key
// with the value           u64 created (ms since the epoch, big-endian) ‖ GET reply body

import { DkvError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import type { Logger } from '../lib/log.js';
import type { StorageEngine } from '../store/engine.js';
import { mergeVersions, type Versioned } from '../version/dvv.js';
import { Opcode } from '../wire/codes.js';
import { decodeBody, decodeGetReply, encodeBody, getReplyOf, versionedFromReply } from '../wire/messages.js';
import type { ClusterView } from './cluster-view.js';
import type { Peers } from './peer-pool.js';

const CREATED_BYTES = 8;
// Delivery retries for replicas that are alive but did not take their hints.
export const HINT_SWEEP_MS = 5000;
const DELIVERY_TIMEOUT_MS = 5000;

export class HintStats {
  stored = 0;
  delivered = 0;
  dropped = 0;
  pending = 0;
}

export class HintedHandoff {
  readonly stats = new HintStats();
  private readonly delivering = new Set<string>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly engine: StorageEngine,
    private readonly view: ClusterView,
    private readonly peers: Peers,
    private readonly log: Logger,
    private readonly nowMs: () => number,
  ) {
    for (const _ of engine.hints()) this.stats.pending++;
  }

  start(): void {
    this.timer = setInterval(() => this.sweep(), HINT_SWEEP_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  // Holds `versions` of `key` for `replica`; resolves once the hint is on disk.
  async hold(replica: string, key: Uint8Array, versions: Versioned): Promise<void> {
    const hintKey = Buffer.concat([Buffer.from(replica, 'utf8'), Buffer.from([0]), key]);
    const existing = this.find(hintKey);
    if (existing === undefined && this.stats.pending >= limits.hintsMax) {
      this.stats.dropped++;
      throw new DkvError('OVERLOADED', `this node already holds ${limits.hintsMax} hints`);
    }
    const merged = mergeVersions(existing?.versions, versions)!;
    const body = encodeBody(getReplyOf(merged));
    const value = Buffer.allocUnsafe(CREATED_BYTES + body.length);
    value.writeBigUInt64BE(BigInt(existing?.createdMs ?? Math.floor(this.nowMs())), 0);
    value.set(body, CREATED_BYTES);
    await this.engine.putHint(hintKey, value);
    if (existing === undefined) this.stats.pending++;
    this.stats.stored++;
  }

  // Delivers every hint held for `replica` (called when it is seen alive).
  deliver(replica: string): void {
    if (this.delivering.has(replica) || this.stats.pending === 0) return;
    this.delivering.add(replica);
    this.deliverAll(replica)
      .catch((error: unknown) => this.log.warn({ replica, err: error }, 'hint delivery stopped; retrying later'))
      .finally(() => this.delivering.delete(replica));
  }

  private async deliverAll(replica: string): Promise<void> {
    const prefix = Buffer.concat([Buffer.from(replica, 'utf8'), Buffer.from([0])]);
    let delivered = 0;
    for (const [hintKey, value] of this.engine.hints()) {
      if (!this.view.isHealthy(replica)) break;
      if (hintKey.length <= prefix.length || !hintKey.subarray(0, prefix.length).equals(prefix)) continue;
      const key = hintKey.subarray(prefix.length);
      await this.peers.request(
        replica,
        Opcode.REPLICA_PUT,
        { key, versions: value.subarray(CREATED_BYTES) },
        DELIVERY_TIMEOUT_MS,
      );
      await this.engine.deleteHint(hintKey);
      this.stats.pending--;
      this.stats.delivered++;
      delivered++;
    }
    if (delivered > 0) this.log.info({ replica, delivered }, 'hints delivered');
  }

  // Drops hints past their age; delivers to replicas that are alive.
  private sweep(): void {
    if (this.stats.pending === 0) return;
    const oldest = this.nowMs() - limits.hintAgeMsMax;
    const owners = new Set<string>();
    for (const [hintKey, value] of this.engine.hints()) {
      const owner = hintKey.subarray(0, hintKey.indexOf(0)).toString('utf8');
      if (Number(value.readBigUInt64BE(0)) < oldest) {
        void this.engine.deleteHint(hintKey);
        this.stats.pending--;
        this.stats.dropped++;
        continue;
      }
      owners.add(owner);
    }
    for (const owner of owners) if (this.view.isHealthy(owner)) this.deliver(owner);
  }

  private find(hintKey: Buffer): { createdMs: number; versions: Versioned } | undefined {
    const value = this.engine.getHint(hintKey);
    if (value === undefined) return undefined;
    const body = value.subarray(CREATED_BYTES);
    return {
      createdMs: Number(value.readBigUInt64BE(0)),
      versions: versionedFromReply(decodeGetReply(decodeBody(body, 0, body.length))),
    };
  }
}
