// The membership worker thread: runs the UDP shell on its own event loop and talks to the main
// thread (membership.ts) by messages. Started only by Membership.start.

import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { assert } from '../lib/assert.js';
import { isDkvError } from '../lib/errors.js';
import { createRootLogger, type LogLevel } from '../lib/log.js';
import type { MembershipEvent } from './core.js';
import { errorMessage, UdpShell, type UdpShellOptions } from './udp-shell.js';

export interface WorkerData {
  options: UdpShellOptions;
  logLevel: LogLevel;
  logPretty: boolean;
  sharedStats: SharedArrayBuffer;
}

// Main → worker.
export type WorkerRequest =
  | { type: 'pushPull'; requestId: number; state: Uint8Array; to: string | undefined; cluster: string | undefined }
  | { type: 'members'; requestId: number }
  | { type: 'leave'; requestId: number; waitMs: number }
  | { type: 'stop'; requestId: number };

// Worker → main.
export type WorkerReply =
  | { type: 'ready'; udpPort: number }
  | { type: 'bindFailed'; code: string; message: string }
  | { type: 'events'; events: (MembershipEvent & { wallMs: number })[] }
  | { type: 'reply'; requestId: number; result?: unknown; error?: { code: string; message: string } };

assert(parentPort !== null, 'worker.ts runs as a worker thread');
const port: MessagePort = parentPort;
const data = workerData as WorkerData;
const log = createRootLogger(data.logLevel, data.logPretty).child({ component: 'swim', node: data.options.nodeId });
const post = (message: WorkerReply): void => port.postMessage(message);

async function main(): Promise<void> {
  let shell: UdpShell;
  try {
    shell = await UdpShell.bind(data.options, log, new Float64Array(data.sharedStats), (events) => {
      const wallNow = Date.now();
      const monoNow = performance.now();
      post({ type: 'events', events: events.map((e) => ({ ...e, wallMs: Math.round(wallNow - (monoNow - e.atMs)) })) });
    });
  } catch (error) {
    post({ type: 'bindFailed', code: String((error as NodeJS.ErrnoException).code ?? ''), message: errorMessage(error) });
    return;
  }
  post({ type: 'ready', udpPort: shell.udpPort });
  port.on('message', (request: WorkerRequest) => {
    const answer = (result: unknown): void => post({ type: 'reply', requestId: request.requestId, result });
    const fail = (error: unknown): void =>
      post({
        type: 'reply',
        requestId: request.requestId,
        error: { code: isDkvError(error) ? error.code : 'INTERNAL', message: errorMessage(error) },
      });
    try {
      switch (request.type) {
        case 'pushPull':
          answer(shell.answerPushPull(request.state, request.to, request.cluster));
          return;
        case 'members':
          answer(shell.members());
          return;
        case 'leave':
          shell.leave(request.waitMs).then(() => answer(null), fail);
          return;
        case 'stop':
          shell.close().then(() => {
            answer(null);
            port.close();
          }, fail);
          return;
      }
    } catch (error) {
      fail(error);
    }
  });
  shell.join().catch((error: unknown) => log.error({ err: error }, 'join failed'));
}

void main();
