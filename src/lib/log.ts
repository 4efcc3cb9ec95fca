import pino, { type Logger } from 'pino';
import pinoPretty from 'pino-pretty';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

// The process's root logger, on stderr: JSON lines, or pino-pretty's colour lines when stderr is
// a terminal. Components take a child: `log.child({ component: 'server' })`. A worker thread
// writes to fd 2 itself (its process.stderr would pass through the main thread's event loop),
// so it is told whether that is a terminal.
export function createRootLogger(level: LogLevel, pretty = process.stderr.isTTY === true): Logger {
  const stream = pretty
    ? pinoPretty({ destination: 2, sync: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' })
    : pino.destination({ fd: 2, sync: true });
  return pino({ level, base: { pid: process.pid } }, stream);
}
