// dkvd: one dkv node.
import { randomInt } from 'node:crypto';
import sade from 'sade';
import { isDkvError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { createRootLogger, LOG_LEVELS, type LogLevel } from '../lib/log.js';
import { DKV_VERSION, DkvNode } from '../server/node.js';
import { LAN_CONFIG, swimConfig, type SwimConfig } from '../swim/config.js';

interface Flags {
  host: string;
  udp: number;
  tcp: number;
  data: string;
  'node-id'?: string;
  storage: string;
  'cache-mb': number;
  'log-level': string;
  join?: string;
  advertise?: string;
  seed?: string;
  'probe-interval': number;
  'probe-timeout': number;
  'suspicion-mult': number;
  'indirect-checks': number;
  'gossip-interval': number;
  'push-pull-interval': number;
  'dead-removal': number;
  'reconnect-timeout': number;
  'cluster-label'?: string;
  replicas: number;
  'read-quorum': number;
  'write-quorum': number;
  'write-wait': number;
  'request-timeout': number;
}

function fail(message: string): never {
  process.stderr.write(`dkvd: ${message}\n`);
  process.exit(1);
}

function port(value: unknown, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) fail(`--${flag} must be a port number 0-65535, not "${value}"`);
  return n;
}

// One arena Buffer holds the cache; Node's largest is 4 GiB.
const CACHE_MIB_MAX = 2048;

function integer(value: unknown, flag: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) fail(`--${flag} must be an integer of at least ${min}, not "${value}"`);
  return n;
}

sade('dkvd', true)
  .version(DKV_VERSION)
  .describe('Run one dkv node: the client port speaks dkv frames and RESP; the UDP port is for membership.')
  .option('--host', 'Address to bind and advertise', '127.0.0.1')
  .option('--udp', 'UDP port for membership (0 picks a free one)', 7000)
  .option('--tcp', 'TCP port for clients and peers (0 picks a free one)', 7001)
  .option('--data', 'Data directory (lmdb storage)', './dkv-data')
  .option('--node-id', 'Node id; kept in the data directory on first start (default: random)')
  .option('--storage', 'Storage engine: lmdb or memory', 'lmdb')
  .option('--cache-mb', 'MiB of read cache in front of lmdb, for records read often (0: none)', limits.cacheBytesDefault / 2 ** 20)
  .option('--log-level', `Log level: ${LOG_LEVELS.join(', ')}`, 'info')
  .option('--join', 'Peers to join through, host:port of their TCP ports, comma-separated (retried until one answers)')
  .option('--advertise', 'Address peers reach this node at (default: --host)')
  .option('--probe-interval', 'SWIM: ms between probes', LAN_CONFIG.probeIntervalMs)
  .option('--probe-timeout', 'SWIM: ms to wait for an ACK before probing indirectly', LAN_CONFIG.probeTimeoutMs)
  .option('--suspicion-mult', 'SWIM: suspicion timeout multiplier', LAN_CONFIG.suspicionMult)
  .option('--indirect-checks', 'SWIM: members asked to probe indirectly (K)', LAN_CONFIG.indirectChecks)
  .option('--gossip-interval', 'SWIM: ms between gossip rounds', LAN_CONFIG.gossipIntervalMs)
  .option('--push-pull-interval', 'SWIM: ms between full member-list exchanges', LAN_CONFIG.pushPullIntervalMs)
  .option('--dead-removal', 'ms a dead member keeps its place in the member list and the ring', LAN_CONFIG.deadRetentionMs)
  .option('--cluster-label', 'Name of the cluster: nodes ignore membership traffic of another label (default: none)')
  .option('--reconnect-timeout', 'ms a forgotten dead member is still tried now and then, to heal long partitions (0: never)', LAN_CONFIG.reconnectRetentionMs)
  .option('--replicas', 'Replicas of each key (N)', 3)
  .option('--read-quorum', 'Replicas a GET reads (R) unless the request says', 2)
  .option('--write-quorum', 'Replicas a PUT or DELETE waits for (W) unless the request says', 2)
  .option('--write-wait', 'ms a write waits for W replicas to become reachable before it fails', 3000)
  .option('--request-timeout', 'ms a request may take across replicas unless it says', 5000)
  .option('--seed', 'Seed for membership\'s random choices (default: random; logged)')
  .example('--tcp 7001 --udp 7000 --data ./dkv-data')
  .example('--tcp 7011 --udp 7010 --data ./dkv-data-2 --join 127.0.0.1:7001')
  .action(async (flags: Flags) => {
    if (flags.storage !== 'lmdb' && flags.storage !== 'memory') fail(`--storage must be lmdb or memory, not "${flags.storage}"`);
    if (!(LOG_LEVELS as readonly string[]).includes(flags['log-level'])) {
      fail(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
    }
    let swim: SwimConfig;
    try {
      swim = swimConfig({
        probeIntervalMs: integer(flags['probe-interval'], 'probe-interval', 1),
        probeTimeoutMs: integer(flags['probe-timeout'], 'probe-timeout', 1),
        suspicionMult: integer(flags['suspicion-mult'], 'suspicion-mult', 1),
        indirectChecks: integer(flags['indirect-checks'], 'indirect-checks', 0),
        gossipIntervalMs: integer(flags['gossip-interval'], 'gossip-interval', 1),
        pushPullIntervalMs: integer(flags['push-pull-interval'], 'push-pull-interval', 1),
        deadRetentionMs: integer(flags['dead-removal'], 'dead-removal', 1),
        reconnectRetentionMs: integer(flags['reconnect-timeout'], 'reconnect-timeout', 0),
        clusterLabel: flags['cluster-label'] === undefined ? null : String(flags['cluster-label']),
      });
    } catch (error) {
      fail(isDkvError(error) ? error.message : String(error));
    }
    const replicas = integer(flags.replicas, 'replicas', 1);
    if (replicas > limits.replicasMax) fail(`--replicas must be at most ${limits.replicasMax}`);
    const readQuorum = integer(flags['read-quorum'], 'read-quorum', 1);
    const writeQuorum = integer(flags['write-quorum'], 'write-quorum', 1);
    if (readQuorum > replicas || writeQuorum > replicas) fail('--read-quorum and --write-quorum must not exceed --replicas');
    const cacheMiB = integer(flags['cache-mb'], 'cache-mb', 0);
    if (cacheMiB > CACHE_MIB_MAX) fail(`--cache-mb must be at most ${CACHE_MIB_MAX}`);
    const writeWaitMs = integer(flags['write-wait'], 'write-wait', 0);
    const requestTimeoutMs = integer(flags['request-timeout'], 'request-timeout', 1);
    if (requestTimeoutMs > limits.requestTimeoutMsMax) fail(`--request-timeout must be at most ${limits.requestTimeoutMsMax}`);
    const join = flags.join === undefined ? [] : String(flags.join).split(',').map((s) => s.trim()).filter((s) => s !== '');
    for (const peer of join) {
      if (!/^(\[[0-9a-fA-F:]+\]|[^:]+):\d{1,5}$/.test(peer)) fail(`--join: "${peer}" is not host:port`);
    }
    const seed = flags.seed === undefined ? randomInt(0x7fffffff) : Number(flags.seed);
    if (!Number.isInteger(seed) || seed < 0) fail(`--seed must be a non-negative integer, not "${flags.seed}"`);
    const logLevel = flags['log-level'] as LogLevel;
    const logPretty = process.stderr.isTTY === true;
    const log = createRootLogger(logLevel, logPretty);
    let node: DkvNode;
    try {
      node = await DkvNode.start(
        {
          host: String(flags.host),
          tcpPort: port(flags.tcp, 'tcp'),
          udpPort: port(flags.udp, 'udp'),
          dataDir: String(flags.data),
          storage: flags.storage,
          cacheBytes: cacheMiB * 2 ** 20,
          nodeId: flags['node-id'] === undefined ? undefined : String(flags['node-id']),
          advertiseHost: flags.advertise === undefined ? undefined : String(flags.advertise),
          join,
          swim,
          replicas,
          readQuorum,
          writeQuorum,
          writeWaitMs,
          requestTimeoutMs,
          seed,
          logLevel,
          logPretty,
        },
        log,
      );
    } catch (error) {
      fail(isDkvError(error) ? error.message : String((error as Error)?.message ?? error));
    }
    const tcp = node.tcpAddress;
    const udp = node.udpAddress;
    const where = flags.storage === 'lmdb' ? String(flags.data) : 'memory';
    log.info(
      { node: node.nodeId, tcp: `${tcp.host}:${tcp.port}`, udp: `${udp.host}:${udp.port}`, data: where, join, seed },
      `dkvd ${DKV_VERSION} node ${node.nodeId} listening on tcp ${tcp.host}:${tcp.port} udp ${udp.host}:${udp.port}, data ${where}`,
    );
    let signals = 0;
    const shutdown = (reason: string): void => {
      if (++signals > 1) {
        log.warn({ reason }, 'asked again: exiting now');
        process.exit(1);
      }
      log.info({ reason }, 'shutting down');
      node.stop().then(
        () => {
          log.info('stopped');
          process.exit(0);
        },
        (error: unknown) => {
          log.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    node.onStopRequested = (why) => shutdown(why);
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGTERM', () => shutdown('SIGTERM'));
  })
  .parse(process.argv);
