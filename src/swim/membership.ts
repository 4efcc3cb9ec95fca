// The main thread's handle on membership: starts the SWIM worker thread, relays push-pull
// requests that arrive on the TCP port, answers MEMBERS and LEAVE, and reads the worker's
// counters from shared memory for STATS.

import { Worker } from 'node:worker_threads';
import { DkvError, type ErrorCodeName } from '../lib/errors.js';
import type { Logger, LogLevel } from '../lib/log.js';
import type { MembershipEvent } from './core.js';
import { SHARED_STAT_NAMES, type MemberInfo, type UdpShellOptions } from './udp-shell.js';
import type { WorkerData, WorkerReply, WorkerRequest } from './worker.js';

const REQUEST_TIMEOUT_MS = 10_000;
// How long a leave waits for its LEFT to be gossiped the full number of times.
export const LEAVE_WAIT_MS = 5000;

interface Waiter {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class Membership {
  private readonly waiters = new Map<number, Waiter>();
  private nextRequestId = 1;
  private readonly stats: Float64Array;
  private exited = false;

  private constructor(
    private readonly worker: Worker,
    readonly udpPort: number,
    sharedStats: SharedArrayBuffer,
    private readonly log: Logger,
    onEvent: (event: MembershipEvent) => void,
    onFatal: (error: Error) => void,
  ) {
    this.stats = new Float64Array(sharedStats);
    worker.on('message', (message: WorkerReply) => {
      if (message.type === 'events') {
        for (const event of message.events) onEvent(event);
      } else if (message.type === 'reply') {
        const waiter = this.waiters.get(message.requestId);
        if (waiter === undefined) return;
        this.waiters.delete(message.requestId);
        clearTimeout(waiter.timer);
        if (message.error === undefined) waiter.resolve(message.result);
        else waiter.reject(new DkvError(message.error.code as ErrorCodeName, message.error.message));
      }
    });
    worker.on('error', (error) => {
      this.log.fatal({ err: error }, 'membership worker failed');
      onFatal(error);
    });
    worker.on('exit', () => {
      this.exited = true;
      for (const waiter of this.waiters.values()) {
        clearTimeout(waiter.timer);
        waiter.reject(new DkvError('SHUTTING_DOWN', 'membership has stopped'));
      }
      this.waiters.clear();
    });
  }

  // Starts the worker and waits until its UDP socket is bound. A bind failure rejects with the
  // socket's errno code in `code` (EADDRINUSE, ...).
  static start(
    options: UdpShellOptions,
    logLevel: LogLevel,
    logPretty: boolean,
    log: Logger,
    // Every change of another member's state, as the worker applies it.
    onEvent: (event: MembershipEvent) => void,
    onFatal: (error: Error) => void,
  ): Promise<Membership> {
    const sharedStats = new SharedArrayBuffer(SHARED_STAT_NAMES.length * 8);
    const data: WorkerData = { options, logLevel, logPretty, sharedStats };
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: data });
    return new Promise((resolve, reject) => {
      const onMessage = (message: WorkerReply): void => {
        if (message.type === 'ready') {
          worker.off('message', onMessage);
          worker.off('error', reject);
          resolve(new Membership(worker, message.udpPort, sharedStats, log, onEvent, onFatal));
        } else if (message.type === 'bindFailed') {
          worker.off('message', onMessage);
          void worker.terminate();
          reject(Object.assign(new Error(message.message), { code: message.code }));
        }
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
  }

  // `to`: the member the sender meant this for, if it named one; `cluster`: its cluster label.
  pushPull(state: Uint8Array, to: string | undefined, cluster: string | undefined): Promise<Uint8Array> {
    return this.request({ type: 'pushPull', state, to, cluster }) as Promise<Uint8Array>;
  }

  members(): Promise<MemberInfo[]> {
    return this.request({ type: 'members' }) as Promise<MemberInfo[]>;
  }

  async leave(): Promise<void> {
    await this.request({ type: 'leave', waitMs: LEAVE_WAIT_MS }, LEAVE_WAIT_MS + REQUEST_TIMEOUT_MS);
  }

  // Counters for STATS, named swim<Counter>.
  statsSnapshot(): Record<string, number> {
    const snapshot: Record<string, number> = {};
    SHARED_STAT_NAMES.forEach((name, i) => {
      snapshot[`swim${name[0]!.toUpperCase()}${name.slice(1)}`] = this.stats[i]!;
    });
    return snapshot;
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    try {
      await this.request({ type: 'stop' }, 2000);
    } catch {
      // the worker is gone or stuck: terminate it below
    }
    await this.worker.terminate();
  }

  private request(message: DistributiveOmit<WorkerRequest, 'requestId'>, timeoutMs = REQUEST_TIMEOUT_MS): Promise<unknown> {
    if (this.exited) return Promise.reject(new DkvError('SHUTTING_DOWN', 'membership has stopped'));
    const requestId = this.nextRequestId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(requestId);
        reject(new DkvError('TIMEOUT', `membership did not answer ${message.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(requestId, { resolve, reject, timer });
      this.worker.postMessage({ ...message, requestId } as WorkerRequest);
    });
  }
}
