// dkvd: one dkv node.
import sade from 'sade';
import { isDkvError } from '../lib/errors.js';
import { createRootLogger, LOG_LEVELS, type LogLevel } from '../lib/log.js';
import { DKV_VERSION, DkvNode } from '../server/node.js';

interface Flags {
  host: string;
  udp: number;
  tcp: number;
  data: string;
  'node-id'?: string;
  storage: string;
  'log-level': string;
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

sade('dkvd', true)
  .version(DKV_VERSION)
  .describe('Run one dkv node: the client port speaks dkv frames and RESP; the UDP port is for membership.')
  .option('--host', 'Address to bind and advertise', '127.0.0.1')
  .option('--udp', 'UDP port for membership (0 picks a free one)', 7000)
  .option('--tcp', 'TCP port for clients and peers (0 picks a free one)', 7001)
  .option('--data', 'Data directory (lmdb storage)', './dkv-data')
  .option('--node-id', 'Node id; kept in the data directory on first start (default: random)')
  .option('--storage', 'Storage engine: lmdb or memory', 'lmdb')
  .option('--log-level', `Log level: ${LOG_LEVELS.join(', ')}`, 'info')
  .example('--tcp 7001 --udp 7000 --data ./dkv-data')
  .action(async (flags: Flags) => {
    if (flags.storage !== 'lmdb' && flags.storage !== 'memory') fail(`--storage must be lmdb or memory, not "${flags.storage}"`);
    if (!(LOG_LEVELS as readonly string[]).includes(flags['log-level'])) {
      fail(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
    }
    const log = createRootLogger(flags['log-level'] as LogLevel);
    let node: DkvNode;
    try {
      node = await DkvNode.start(
        {
          host: String(flags.host),
          tcpPort: port(flags.tcp, 'tcp'),
          udpPort: port(flags.udp, 'udp'),
          dataDir: String(flags.data),
          storage: flags.storage,
          nodeId: flags['node-id'] === undefined ? undefined : String(flags['node-id']),
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
      { node: node.nodeId, tcp: `${tcp.host}:${tcp.port}`, udp: `${udp.host}:${udp.port}`, data: where },
      `dkvd ${DKV_VERSION} node ${node.nodeId} listening on tcp ${tcp.host}:${tcp.port} udp ${udp.host}:${udp.port}, data ${where}`,
    );
    let signals = 0;
    const shutdown = (signal: string): void => {
      if (++signals > 1) {
        log.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      log.info({ signal }, 'shutting down');
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
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGTERM', () => shutdown('SIGTERM'));
  })
  .parse(process.argv);
