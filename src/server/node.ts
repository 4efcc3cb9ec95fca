// The composition root of a dkv node: storage, the client port (native frames and RESP) and
// membership (SWIM, in its own worker thread with the UDP port).

import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { DkvError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import type { Logger, LogLevel } from '../lib/log.js';
import type { StorageEngine } from '../store/engine.js';
import { LmdbEngine } from '../store/lmdb-engine.js';
import { MemoryEngine } from '../store/memory-engine.js';
import { VersionedStore, type WriteResult } from '../store/versioned-store.js';
import type { Clock } from '../version/dvv.js';
import type { QuorumOptions } from '../wire/messages.js';
import { WriteAheadLog } from '../store/wal.js';
import { RecordCache } from '../store/record-cache.js';
import type { SwimConfig } from '../swim/config.js';
import { Membership } from '../swim/membership.js';
import type { MembershipEvent } from '../swim/core.js';
import { ClusterView } from '../coordinator/cluster-view.js';
import { Coordinator } from '../coordinator/coordinator.js';
import { HintedHandoff } from '../coordinator/hinted-handoff.js';
import { PeerPool } from '../coordinator/peer-pool.js';
import { Connection } from './connection.js';
import { NativeSession } from './dispatch.js';
import { RespSession } from './resp-session.js';
import type { Service } from './service.js';
import { ServerStats } from './stats.js';

export const DKV_VERSION = '0.1.0';

export interface NodeOptions {
  host: string;
  tcpPort: number;
  udpPort: number;
  dataDir: string;
  storage: 'lmdb' | 'memory';
  // Bytes of read cache in front of lmdb (0: none).
  cacheBytes: number;
  nodeId?: string | undefined;
  // The address peers reach this node at (default: host).
  advertiseHost?: string | undefined;
  // Peers' TCP addresses (host:port) to join the cluster through.
  join?: string[] | undefined;
  swim: SwimConfig;
  // Replicas per key (N), and the R and W a request gets unless it names its own.
  replicas: number;
  readQuorum: number;
  writeQuorum: number;
  requestTimeoutMs: number;
  writeWaitMs: number;
  // Seeds membership's random choices; logged at start.
  seed: number;
  logLevel: LogLevel;
  logPretty: boolean;
}

// Connections still open this long after shutdown begins are cut.
const SHUTDOWN_GRACE_MS = 5000;
const NODE_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
// Virtual nodes per member: the largest member's share stays within 1.16x the mean for 3 to 100
// members, and a lookup costs about 0.2 us (npm run bench:ring; protocol.md, "Ring").
export const RING_VNODES = 256;

export class DkvNode implements Service {
  readonly version = DKV_VERSION;
  readonly stats: ServerStats;
  private readonly connections = new Set<Connection>();
  private nextConnectionId = 1;
  private stopping = false;
  private tcpServer: Server | null = null;
  private membershipHandle: Membership | null = null;
  private clusterView: ClusterView | null = null;
  private coordinatorHandle: Coordinator | null = null;
  private peers: PeerPool | null = null;
  private hints: HintedHandoff | null = null;
  // Called when a fatal fault (the membership worker failing) or a LEAVE asks the node to stop.
  onStopRequested: (why: string) => void = () => undefined;

  private constructor(
    readonly options: NodeOptions,
    readonly nodeId: string,
    readonly store: VersionedStore,
    private readonly wal: WriteAheadLog | null,
    readonly log: Logger,
  ) {
    this.stats = new ServerStats(this.nowMs());
  }

  nowMs(): number {
    return Date.now();
  }

  get shuttingDown(): boolean {
    return this.stopping;
  }

  static async start(options: NodeOptions, rootLog: Logger): Promise<DkvNode> {
    const engine: StorageEngine = options.storage === 'lmdb' ? LmdbEngine.open(options.dataDir) : new MemoryEngine();
    let node: DkvNode | undefined;
    let wal: WriteAheadLog | null = null;
    try {
      const nodeId = await nodeIdentity(engine, options.nodeId);
      const log = rootLog.child({ component: 'server', node: nodeId });
      if (options.storage === 'lmdb') {
        wal = await WriteAheadLog.open(join(options.dataDir, 'wal'), engine, log.child({ component: 'wal' }));
      }
      const cache = options.storage === 'lmdb' && options.cacheBytes > 0 ? new RecordCache(options.cacheBytes, limits.cacheRecordBytesMax) : null;
      const store = new VersionedStore(engine, nodeId, Date.now, wal, cache);
      node = new DkvNode(options, nodeId, store, wal, log);
      await node.listenTcp();
      node.startCluster();
      await node.startMembership();
      return node;
    } catch (error) {
      if (node !== undefined) await node.closeSockets();
      await wal?.close();
      await engine.close();
      throw error;
    }
  }

  get tcpAddress(): { host: string; port: number } {
    const address = this.tcpServer!.address();
    if (address === null || typeof address === 'string') throw new DkvError('INTERNAL', 'no TCP address');
    return { host: address.address, port: address.port };
  }

  get udpAddress(): { host: string; port: number } {
    return { host: this.options.host, port: this.membership.udpPort };
  }

  get cluster(): ClusterView {
    const view = this.clusterView;
    if (view === null) throw new DkvError('SHUTTING_DOWN', 'the node is starting');
    return view;
  }

  get coordinator(): Coordinator {
    const coordinator = this.coordinatorHandle;
    if (coordinator === null) throw new DkvError('SHUTTING_DOWN', 'the node is starting');
    return coordinator;
  }

  write(key: Uint8Array, value: Uint8Array | null, context: Clock | undefined, options: QuorumOptions): Promise<WriteResult> {
    if (this.cluster.size === 1) return this.store.write(key, value, context);
    return this.coordinator.write(key, value, context, options);
  }

  acknowledgedWrite(key: Uint8Array, value: Uint8Array, options: QuorumOptions): Promise<unknown> {
    if (this.cluster.size === 1) return this.store.writeDurable(key, value);
    return this.coordinator.write(key, value, undefined, options);
  }

  get membership(): Membership {
    const membership = this.membershipHandle;
    if (membership === null) throw new DkvError('SHUTTING_DOWN', 'membership is not running');
    return membership;
  }

  // Gossips LEFT, waits for it to spread, then asks for the node to stop.
  async leave(): Promise<void> {
    await this.membership.leave();
    // After the LEAVE reply has been written.
    setImmediate(() => this.onStopRequested('left the cluster'));
  }

  private listenTcp(): Promise<void> {
    const server = createServer({ noDelay: true, allowHalfOpen: true }, this.accept);
    server.maxConnections = limits.connectionsMax;
    server.on('drop', () => this.stats.connectionsRejected++);
    this.tcpServer = server;
    return new Promise((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => reject(listenError('tcp', this.options, error)));
      server.listen(this.options.tcpPort, this.options.host, () => {
        server.removeAllListeners('error');
        server.on('error', (error) => this.log.error({ err: error }, 'tcp server error'));
        resolve();
      });
    });
  }

  // The data path's side of the cluster: the ring and health view, connections to peers, hints
  // and the coordinator. Membership events keep the view current.
  private startCluster(): void {
    const o = this.options;
    const view = new ClusterView(this.nodeId, { host: o.advertiseHost ?? o.host, tcpPort: this.tcpAddress.port }, o.replicas, RING_VNODES);
    const peers = new PeerPool(view);
    const hints = new HintedHandoff(this.store.engine, view, peers, this.log.child({ component: 'hints' }), () => this.nowMs());
    this.clusterView = view;
    this.peers = peers;
    this.hints = hints;
    this.coordinatorHandle = new Coordinator(
      view,
      this.store,
      peers,
      hints,
      {
        readQuorum: o.readQuorum,
        writeQuorum: o.writeQuorum,
        requestTimeoutMs: o.requestTimeoutMs,
        speculativeReadMs: limits.speculativeReadMs,
        writeWaitMs: o.writeWaitMs,
      },
      this.log.child({ component: 'coordinator' }),
    );
    hints.start();
  }

  private readonly onMemberEvent = (event: MembershipEvent): void => {
    const view = this.clusterView;
    if (view === null) return;
    view.update(event.id, event.status, { host: event.host, tcpPort: event.tcpPort });
    if (event.status === 'alive') this.hints?.deliver(event.id);
    else if (event.status !== 'suspect') this.peers?.drop(event.id);
  };

  private async startMembership(): Promise<void> {
    const o = this.options;
    const swimLog = this.log.child({ component: 'swim' });
    try {
      this.membershipHandle = await Membership.start(
        {
          nodeId: this.nodeId,
          bindHost: o.host,
          advertiseHost: o.advertiseHost ?? o.host,
          udpPort: o.udpPort,
          tcpPort: this.tcpAddress.port,
          config: o.swim,
          join: o.join ?? [],
          seed: o.seed,
          // An incarnation above any this node had before a restart: seconds since 2025.
          initialIncarnation: Math.max(0, Math.floor((Date.now() - Date.UTC(2025, 0, 1)) / 1000)),
        },
        o.logLevel,
        o.logPretty,
        swimLog,
        this.onMemberEvent,
        (error) => this.onStopRequested(`membership failed: ${error.message}`),
      );
    } catch (error) {
      throw listenError('udp', this.options, error as NodeJS.ErrnoException);
    }
  }

  private readonly accept = (socket: Socket): void => {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const id = this.nextConnectionId++;
    const connection = new Connection(id, socket, this.stats, this.log, this.sessionOf, this.onConnectionClosed);
    this.connections.add(connection);
    this.stats.connectionsCurrent++;
    this.stats.connectionsTotal++;
  };

  // The first byte of a connection chooses its dialect: a native frame always starts with 0x00
  // (its length is under 16 MiB); anything else is RESP or an inline command.
  private readonly sessionOf = (connection: Connection, firstByte: number) => {
    if (firstByte === 0) {
      this.stats.connectionsNative++;
      return new NativeSession(connection, this);
    }
    this.stats.connectionsResp++;
    return new RespSession(connection, this);
  };

  private readonly onConnectionClosed = (connection: Connection): void => {
    if (this.connections.delete(connection)) this.stats.connectionsCurrent--;
  };

  statsSnapshot(): Record<string, string | number> {
    const s = this.stats;
    const cpu = process.cpuUsage();
    const snapshot: Record<string, string | number> = {
      nodeId: this.nodeId,
      version: this.version,
      storage: this.store.engine.kind,
      uptimeMs: this.nowMs() - s.startedAtMs,
      keys: this.store.liveKeys,
      pendingWrites: this.store.pendingWrites,
      pendingBytes: this.store.pendingBytes,
      storeCommits: this.store.commits,
      storeCommittedWrites: this.store.committedWrites,
      walSyncs: this.store.walStats?.syncs ?? 0,
      walRecords: this.store.walStats?.records ?? 0,
      walBytes: this.store.walStats?.bytes ?? 0,
      walSyncMicros: this.store.walStats?.syncMicros ?? 0,
      cacheHits: this.store.cacheStats?.hits ?? 0,
      cacheMisses: this.store.cacheStats?.misses ?? 0,
      cacheFills: this.store.cacheStats?.fills ?? 0,
      connectionsCurrent: s.connectionsCurrent,
      connectionsTotal: s.connectionsTotal,
      connectionsRejected: s.connectionsRejected,
      connectionsNative: s.connectionsNative,
      connectionsResp: s.connectionsResp,
      bytesIn: s.bytesIn,
      bytesOut: s.bytesOut,
      protocolErrors: s.protocolErrors,
      readsPaused: s.readsPaused,
      memoryRssBytes: process.memoryUsage.rss(),
      cpuUserMicros: cpu.user,
      cpuSystemMicros: cpu.system,
    };
    if (this.membershipHandle !== null) Object.assign(snapshot, this.membershipHandle.statsSnapshot());
    if (this.clusterView !== null) {
      snapshot.ringMembers = this.clusterView.size;
      snapshot.ringChecksum = this.clusterView.checksum;
      snapshot.staleRingReplies = s.staleRingReplies;
    }
    if (this.peers !== null) {
      snapshot.peerConnections = this.peers.size;
      snapshot.replicaWriteBatchesSent = this.peers.replicaPutBatchesSent;
    }
    const c = this.coordinatorHandle?.stats;
    if (c !== undefined) {
      snapshot.coordinatorGets = c.gets;
      snapshot.coordinatorWrites = c.writes;
      snapshot.replicaReadsSent = c.replicaReadsSent;
      snapshot.replicaWritesSent = c.replicaWritesSent;
      snapshot.hintedWritesSent = c.hintedWritesSent;
      snapshot.forwards = c.forwards;
      snapshot.readRepairs = c.readRepairs;
      snapshot.quorumFailures = c.quorumFailures;
      snapshot.replicaTimeouts = c.replicaTimeouts;
      snapshot.speculativeReads = c.speculativeReads;
    }
    const h = this.hints?.stats;
    if (h !== undefined) {
      snapshot.hintsStored = h.stored;
      snapshot.hintsDelivered = h.delivered;
      snapshot.hintsDropped = h.dropped;
      snapshot.hintsPending = h.pending;
    }
    for (const [name, counter] of s.requests) snapshot[`requests.${name}`] = counter.count;
    for (const [name, count] of s.errors) snapshot[`errors.${name}`] = count;
    return snapshot;
  }

  // Stop accepting, let in-flight requests finish (their writes are durable when answered),
  // then close the store.
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const connection of this.connections) connection.end();
    const deadline = Date.now() + SHUTDOWN_GRACE_MS;
    while (this.connections.size > 0 && Date.now() < deadline) await sleep(20);
    for (const connection of this.connections) connection.destroy();
    await this.closeSockets();
    await this.store.flush();
    await this.wal?.close();
    await this.store.engine.close();
  }

  private async closeSockets(): Promise<void> {
    const server = this.tcpServer;
    if (server !== null && server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    await this.membershipHandle?.stop();
    this.hints?.stop();
    await this.peers?.close();
  }
}

async function nodeIdentity(engine: StorageEngine, requested: string | undefined): Promise<string> {
  if (requested !== undefined && !NODE_ID_PATTERN.test(requested)) {
    throw new DkvError('BAD_REQUEST', `node id "${requested}" must be 1-64 characters of A-Z a-z 0-9 . _ -`);
  }
  const stored = engine.getMeta('nodeId');
  if (stored !== undefined) {
    if (requested !== undefined && requested !== stored) {
      throw new DkvError(
        'BAD_REQUEST',
        `the data directory belongs to node "${stored}", not "${requested}"; use another --data or drop --node-id`,
      );
    }
    return stored;
  }
  const nodeId = requested ?? randomBytes(8).toString('hex');
  await engine.putMeta('nodeId', nodeId);
  return nodeId;
}

function listenError(kind: 'tcp' | 'udp', options: NodeOptions, error: NodeJS.ErrnoException): DkvError {
  const port = kind === 'tcp' ? options.tcpPort : options.udpPort;
  const why =
    error.code === 'EADDRINUSE'
      ? 'the address is in use'
      : error.code === 'EADDRNOTAVAIL'
        ? 'the address is not on this machine'
        : error.code === 'EACCES'
          ? 'permission denied'
          : error.message;
  return new DkvError('INTERNAL', `cannot listen on ${kind} ${options.host}:${port}: ${why}`, { cause: error });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
