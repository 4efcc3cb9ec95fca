// The SWIM shell: the UDP socket, the timer and the clock around a SwimCore, plus the TCP
// push-pull exchanges it asks for. It runs in its own worker thread (worker.ts), so a main
// thread busy with clients never delays an ACK. The only SWIM file that imports node:dgram.

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { DkvClient } from '../client/client.js';
import { DkvError, isDkvError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { SeededRandom } from '../lib/random.js';
import { Opcode } from '../wire/codes.js';
import type { SwimConfig } from './config.js';
import { SwimCore, SwimStats, type MembershipEvent, type MemberView, type PushPullRequest } from './core.js';
import { MemberDirectory } from './directory.js';

export interface UdpShellOptions {
  nodeId: string;
  bindHost: string;
  advertiseHost: string;
  udpPort: number;
  // The node's TCP port: where peers push-pull and where clients connect.
  tcpPort: number;
  config: SwimConfig;
  // Peers' TCP addresses (host:port) to join through.
  join: string[];
  seed: number;
  initialIncarnation: number;
}

// Counters shared with the main thread, in this order, in a Float64Array over a
// SharedArrayBuffer: the main thread reads them for STATS without a round trip.
export const SHARED_STAT_NAMES = [
  ...(Object.keys(new SwimStats()) as (keyof SwimStats)[]),
  'sendErrors',
  'pushPulls',
  'pushPullFailures',
  'health',
  'incarnation',
  'membersAlive',
  'membersSuspect',
  'membersDead',
  'membersLeft',
] as const;

// A member as MEMBERS reports it; sinceMs is the time since its state last changed.
export interface MemberInfo {
  id: string;
  address: string;
  tcpAddress: string;
  state: MemberView['status'];
  incarnation: number;
  sinceMs: number;
}

const PUSH_PULL_TIMEOUT_MS = 5000;
const JOIN_BACKOFF_MIN_MS = 200;
const JOIN_BACKOFF_MAX_MS = 5000;
const STATS_INTERVAL_MS = 100;

export class UdpShell {
  private readonly core: SwimCore;
  private readonly random: SeededRandom;
  private timer: NodeJS.Timeout | null = null;
  private timerAtMs = Infinity;
  private readonly statsTimer: NodeJS.Timeout;
  private stopped = false;
  private sendErrors = 0;
  private pushPullsDone = 0;
  private pushPullFailures = 0;
  private readonly selfTcp: string;

  private constructor(
    private readonly options: UdpShellOptions,
    private readonly socket: UdpSocket,
    private readonly log: Logger,
    private readonly sharedStats: Float64Array,
    private readonly onEvents: (events: MembershipEvent[]) => void,
  ) {
    const address = socket.address();
    this.random = new SeededRandom(options.seed);
    this.core = new SwimCore(
      options.config,
      new MemberDirectory(),
      { id: options.nodeId, host: options.advertiseHost, udpPort: address.port, tcpPort: options.tcpPort },
      this.random,
      performance.now(),
      options.initialIncarnation,
    );
    this.selfTcp = `${options.advertiseHost}:${options.tcpPort}`;
    socket.on('message', this.onDatagram);
    socket.on('error', (error) => this.log.error({ err: error }, 'udp socket error'));
    this.statsTimer = setInterval(() => this.publishStats(), STATS_INTERVAL_MS);
    this.schedule();
    this.publishStats();
  }

  static bind(
    options: UdpShellOptions,
    log: Logger,
    sharedStats: Float64Array,
    onEvents: (events: MembershipEvent[]) => void,
  ): Promise<UdpShell> {
    const socket = createSocket({ type: options.bindHost.includes(':') ? 'udp6' : 'udp4' });
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(options.udpPort, options.bindHost, () => {
        socket.removeListener('error', reject);
        resolve(new UdpShell(options, socket, log, sharedStats, onEvents));
      });
    });
  }

  get udpPort(): number {
    return this.socket.address().port;
  }

  // Joins through the seeds, retrying with backoff until one answers or another node has
  // joined us (nodes may start in any order).
  async join(): Promise<void> {
    const seeds = this.options.join.filter((seed) => seed !== this.selfTcp);
    if (seeds.length === 0) return;
    this.log.info({ seeds }, 'joining');
    let backoffMs = JOIN_BACKOFF_MIN_MS;
    // Seeds that refused this node for its cluster label: a setting to fix, said once per seed.
    const refusedBy = new Set<string>();
    for (let attempt = 1; !this.stopped; attempt++) {
      for (const seed of seeds) {
        if (this.stopped) return;
        const [host, port] = splitHostPort(seed);
        try {
          await this.pushPull({ id: seed, host, tcpPort: port }, true);
          this.log.info({ seed, members: this.core.memberCount }, 'joined');
          return;
        } catch (error) {
          if (isDkvError(error, 'WRONG_CLUSTER') && !refusedBy.has(seed)) {
            refusedBy.add(seed);
            this.log.warn({ seed, reason: error.message }, 'seed refused the join: it belongs to another cluster label');
          } else {
            this.log.debug({ seed, attempt, err: error }, 'join attempt failed');
          }
        }
      }
      if (this.core.memberCount > 1) {
        this.log.info({ members: this.core.memberCount }, 'joined by a peer');
        return;
      }
      if (attempt === 1 || backoffMs === JOIN_BACKOFF_MAX_MS) {
        this.log.warn({ seeds, retryInMs: backoffMs }, 'no seed answered; retrying');
      }
      await new Promise((resolve) => setTimeout(resolve, backoffMs * (0.75 + 0.5 * this.random.next())));
      backoffMs = Math.min(JOIN_BACKOFF_MAX_MS, backoffMs * 2);
    }
  }

  // A peer's push-pull: merge its member list and answer with ours. One from a node of another
  // cluster label, or meant for another member (a periodic or reconnect exchange with an address
  // that now belongs to this node), changes nothing here: merging it could join two clusters.
  answerPushPull(state: Uint8Array, to: string | undefined, cluster: string | undefined): Buffer {
    const label = this.options.config.clusterLabel;
    if ((cluster ?? null) !== label) {
      throw new DkvError('WRONG_CLUSTER', `this node's cluster label is ${labelText(label)}, not ${labelText(cluster ?? null)}`);
    }
    if (to !== undefined && to !== this.core.id) {
      throw new DkvError('WRONG_MEMBER', `this is member ${this.core.id}, not ${to}`);
    }
    const mine = this.core.localState();
    const merged = this.core.mergeState(state, performance.now());
    this.flush();
    if (!merged) throw new DkvError('BAD_REQUEST', 'push-pull state is malformed');
    return mine;
  }

  members(): MemberInfo[] {
    const now = performance.now();
    return this.core.members().map((m) => ({
      id: m.id,
      address: `${m.host}:${m.udpPort}`,
      tcpAddress: `${m.host}:${m.tcpPort}`,
      state: m.status,
      incarnation: m.incarnation,
      sinceMs: Math.max(0, Math.round(now - m.changedMs)),
    }));
  }

  // Gossips LEFT and waits (at most waitMs) until it has gone out its full number of times.
  async leave(waitMs: number): Promise<void> {
    this.core.leave(performance.now());
    this.flush();
    const deadline = performance.now() + waitMs;
    while (this.core.gossipPending > 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    this.log.info({ incarnation: this.core.currentIncarnation }, 'left the cluster');
  }

  close(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    clearInterval(this.statsTimer);
    this.publishStats();
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private readonly onDatagram = (bytes: Buffer, rinfo: { address: string; port: number }): void => {
    if (this.stopped) return;
    this.core.receive(rinfo.address, rinfo.port, bytes, performance.now());
    this.flush();
  };

  private readonly onTimer = (): void => {
    this.timer = null;
    if (this.stopped) return;
    const now = performance.now();
    // Lifeguard: a timer that fires late is this thread's event loop running behind.
    const lateMs = now - this.timerAtMs;
    this.timerAtMs = Infinity;
    if (lateMs > 0) this.core.noteLateTick(lateMs);
    this.core.tick(now);
    this.flush();
  };

  private schedule(): void {
    const deadline = this.core.nextDeadlineMs();
    if (deadline === this.timerAtMs) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAtMs = deadline;
    if (deadline === Infinity) return;
    this.timer = setTimeout(this.onTimer, Math.max(0, Math.ceil(deadline - performance.now())));
  }

  private flush(): void {
    const core = this.core;
    for (let i = 0; i < core.outboxCount; i++) {
      const out = core.outbox[i]!;
      this.socket.send(out.bytes, out.port, out.host, this.onSent);
    }
    core.clearOutbox();
    if (core.events.length > 0) {
      const events = core.events.splice(0);
      this.logEvents(events);
      this.onEvents(events);
    }
    if (core.pushPulls.length > 0) {
      for (const request of core.pushPulls.splice(0)) {
        this.pushPull(request, false).catch((error: unknown) => {
          this.log.debug({ peer: request.id, err: error }, 'push-pull failed');
        });
      }
    }
    this.schedule();
  }

  private readonly onSent = (error: Error | null): void => {
    if (error !== null) this.sendErrors++;
  };

  private async pushPull(peer: PushPullRequest, join: boolean): Promise<void> {
    const client = new DkvClient({ host: peer.host, port: peer.tcpPort, timeoutMs: PUSH_PULL_TIMEOUT_MS, connectTimeoutMs: PUSH_PULL_TIMEOUT_MS });
    try {
      // A join goes to a seed's address; any other exchange names the member it is for.
      const request: Record<string, unknown> = { state: this.core.localState() };
      if (join) request.join = true;
      else request.to = peer.id;
      const label = this.options.config.clusterLabel;
      if (label !== null) request.cluster = label;
      const reply = (await client.request(Opcode.PUSH_PULL, request)) as { state?: unknown };
      if (this.stopped) return;
      if (!(reply?.state instanceof Uint8Array) || !this.core.mergeState(reply.state, performance.now())) {
        throw new DkvError('PROTOCOL_VIOLATION', `push-pull reply from ${peer.host}:${peer.tcpPort} is malformed`);
      }
      this.pushPullsDone++;
      this.flush();
    } catch (error) {
      this.pushPullFailures++;
      throw error;
    } finally {
      await client.close().catch(() => undefined);
    }
  }

  private logEvents(events: MembershipEvent[]): void {
    for (const event of events) {
      const fields = { member: event.id, incarnation: event.incarnation, address: `${event.host}:${event.udpPort}` };
      const message = event.status === 'forgotten' ? 'member forgotten' : `member ${event.status}`;
      if (event.status === 'dead' || event.status === 'suspect') this.log.warn(fields, message);
      else this.log.info(fields, message);
    }
  }

  private publishStats(): void {
    const stats = this.core.stats;
    const shared = this.sharedStats;
    let i = 0;
    for (const name of Object.keys(stats) as (keyof SwimStats)[]) shared[i++] = stats[name];
    shared[i++] = this.sendErrors;
    shared[i++] = this.pushPullsDone;
    shared[i++] = this.pushPullFailures;
    shared[i++] = this.core.awareness.score;
    shared[i++] = this.core.currentIncarnation;
    const counts = { alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const member of this.core.members()) counts[member.status]++;
    shared[i++] = counts.alive;
    shared[i++] = counts.suspect;
    shared[i++] = counts.dead;
    shared[i++] = counts.left;
  }
}

export function splitHostPort(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  const port = Number(address.slice(colon + 1));
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new DkvError('BAD_REQUEST', `"${address}" is not host:port`);
  }
  return [host, port];
}

export function errorMessage(error: unknown): string {
  return isDkvError(error) ? error.message : String((error as Error)?.message ?? error);
}

function labelText(label: string | null): string {
  return label === null ? 'none' : JSON.stringify(label);
}
