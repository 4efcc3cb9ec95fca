// Real dkvd processes for end-to-end tests: ephemeral loopback ports, stopped by PID, every wait
// bounded.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DKVD_NODE_FLAGS } from '../../src/cli/node-flags.js';

// The repository: the nearest directory above this file with bin/dkvd (this file also runs
// compiled, from dist/test/helpers).
export const REPO_ROOT = findRepoRoot(dirname(fileURLToPath(import.meta.url)));

function findRepoRoot(start: string): string {
  let dir = start;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'bin', 'dkvd'))) return dir;
    dir = dirname(dir);
  }
  throw new Error(`no bin/dkvd above ${start}`);
}

// Log lines kept per process: a long fuzz run must not keep them all.
const LOG_LINES_MAX = 100_000;
export const DKVD = join(REPO_ROOT, 'bin', 'dkvd');
export const DKV_CLI = join(REPO_ROOT, 'bin', 'dkv-cli');

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

export interface DkvdOptions {
  dataDir?: string;
  // A fixed port, to restart a node where its clients expect it; default: an ephemeral one.
  tcpPort?: number;
  storage?: 'lmdb' | 'memory';
  args?: string[];
}

export interface Dkvd {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly tcpPort: number;
  readonly udpPort: number;
  readonly nodeId: string;
  readonly dataDir: string;
  readonly logLines: string[];
  // SIGTERM and wait for the exit; SIGKILL if it takes too long. Resolves with the exit code.
  stop(): Promise<number | null>;
  // SIGKILL and wait for the exit.
  kill(): Promise<void>;
  // Resolves with the exit code once the process has exited (null if a signal ended it).
  readonly exited: Promise<number | null>;
}

export function tempDir(prefix = 'dkv-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

export async function startDkvd(options: DkvdOptions = {}): Promise<Dkvd> {
  const dataDir = options.dataDir ?? tempDir();
  const args = [
    ...DKVD_NODE_FLAGS,
    DKVD,
    '--tcp',
    String(options.tcpPort ?? 0),
    '--udp',
    '0',
    '--data',
    dataDir,
    '--storage',
    options.storage ?? 'lmdb',
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: childEnv() });
  const logLines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const listening = await new Promise<Record<string, unknown>>((resolveStart, rejectStart) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rejectStart(new Error(`dkvd did not start within ${START_TIMEOUT_MS} ms:\n${logLines.join('\n')}`));
    }, START_TIMEOUT_MS);
    const lines = createInterface({ input: child.stderr! });
    lines.on('line', (line) => {
      if (logLines.length < LOG_LINES_MAX) logLines.push(line);
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (typeof entry.tcp === 'string' && typeof entry.msg === 'string' && entry.msg.includes('listening')) {
          clearTimeout(timer);
          resolveStart(entry);
        }
      } catch {
        // not JSON: an error line before exit
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      rejectStart(new Error(`dkvd exited with ${code} before listening:\n${logLines.join('\n')}`));
    });
  });
  const portOf = (address: unknown): number => Number(String(address).split(':').pop());
  const stopWith = async (signal: NodeJS.Signals): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  return {
    child,
    pid: child.pid!,
    tcpPort: portOf(listening.tcp),
    udpPort: portOf(listening.udp),
    nodeId: String(listening.node),
    dataDir,
    logLines,
    exited,
    stop: () => stopWith('SIGTERM'),
    kill: async () => {
      await stopWith('SIGKILL');
    },
  };
}

// The environment for child processes: without the test runner's loader hooks, which would
// otherwise load the compiled dkvd through tap's TypeScript loader.
export function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  for (const name of Object.keys(env)) if (/TAP|^TS_NODE_/.test(name)) delete env[name];
  return env;
}

// Makes sure a Debian package's program is here, installing the package if it is not.
export function ensureTool(binary: string, debianPackage: string): boolean {
  const which = (): boolean => spawnSync('sh', ['-c', `command -v ${binary}`]).status === 0;
  if (which()) return true;
  spawnSync('sh', ['-c', `(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${debianPackage}`], {
    stdio: 'ignore',
    timeout: 300_000,
  });
  return which();
}
