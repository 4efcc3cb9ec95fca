// `dkv-cli bench` against real dkvd processes: it counts exactly what the server served, a seed
// replays the same requests, and a server that dies or is absent ends the run with an exit code,
// never a hang.
//
// Needs the compiled CLI and server: run `npx tsc -p .` first.
import { execFile } from 'node:child_process';
import t from 'tap';
import type { LoadReport } from '../../src/cli/load.js';
import { DkvClient } from '../../src/client/client.js';
import { DKV_CLI, removeDir, startDkvd } from '../helpers/dkvd.js';

// Every CLI run is killed after this long: a hang fails the test instead of stalling it.
const RUN_TIMEOUT_MS = 30_000;

interface Run {
  code: number | null;
  report: LoadReport | null;
  stderr: string;
  elapsedMs: number;
}

function bench(port: number, args: string[]): Promise<Run> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [DKV_CLI, 'bench', '--server', `127.0.0.1:${port}`, '--json', ...args],
      { timeout: RUN_TIMEOUT_MS, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        const report = stdout.trim() === '' ? null : (JSON.parse(stdout) as LoadReport);
        resolve({ code, report, stderr, elapsedMs: performance.now() - started });
      },
    );
  });
}

async function requestCounts(port: number): Promise<{ get: number; put: number }> {
  const client = await DkvClient.connect({ port, timeoutMs: 5000 });
  const stats = await client.stats();
  await client.close();
  return { get: Number(stats['requests.GET'] ?? 0), put: Number(stats['requests.PUT'] ?? 0) };
}

t.test('a counted run: every request answered, as the server counted them, and replayable', async (t) => {
  const dkvd = await startDkvd({ storage: 'memory' });
  t.teardown(async () => {
    await dkvd.stop();
    removeDir(dkvd.dataDir);
  });
  const args = ['--requests', '3000', '--keys', '500', '--read-ratio', '0.7', '--pipeline', '16', '--seed', '7'];
  const before = await requestCounts(dkvd.tcpPort);
  const first = await bench(dkvd.tcpPort, args);
  const after = await requestCounts(dkvd.tcpPort);
  t.equal(first.code, 0, first.stderr);
  const report = first.report!;
  t.same(report.preload?.ops, 500, 'the preload wrote every key once');
  t.same(
    { requests: report.run.requests, ops: report.run.ops, misses: report.run.misses, errors: report.run.errors },
    { requests: 3000, ops: 3000, misses: 0, errors: {} },
  );
  t.equal(report.run.reads + report.run.writes, 3000);
  t.same(
    { get: after.get - before.get, put: after.put - before.put },
    { get: report.run.reads, put: report.run.writes + 500 },
    'the server served exactly what the bench counted',
  );
  t.ok(report.run.latencyUs !== null && report.run.latencyUs.p50 <= report.run.latencyUs.max);
  t.ok(report.serverCpuMicrosPerOp !== null && report.serverCpuMicrosPerOp > 0);

  const again = await bench(dkvd.tcpPort, args);
  t.equal(again.code, 0, again.stderr);
  t.same(
    { reads: again.report!.run.reads, writes: again.report!.run.writes },
    { reads: report.run.reads, writes: report.run.writes },
    'the same seed sends the same requests',
  );
});

t.test('a warm-up runs the workload first, and only what follows it is measured', async (t) => {
  const dkvd = await startDkvd({ storage: 'memory' });
  t.teardown(async () => {
    await dkvd.stop();
    removeDir(dkvd.dataDir);
  });
  const before = await requestCounts(dkvd.tcpPort);
  const run = await bench(dkvd.tcpPort, ['--requests', '2000', '--warmup', '0.3', '--read-ratio', '0', '--keys', '100', '--pipeline', '8']);
  const after = await requestCounts(dkvd.tcpPort);
  t.equal(run.code, 0, run.stderr);
  const report = run.report!;
  t.equal(report.preload, null, 'writes alone need no preload');
  t.ok(report.warmup !== null && report.warmup.ops > 0, `the warm-up answered ${report.warmup?.ops} requests`);
  // Node's timers run by the event loop's millisecond clock, which can trail performance.now()
  // by as long as the loop has been busy in its turn: 300 ms asked may measure a little less.
  t.ok(report.warmup!.elapsedMs >= 250, `for about the time asked (${report.warmup!.elapsedMs.toFixed(1)} ms)`);
  t.equal(report.run.ops, 2000, 'the measured run counts only its own');
  t.equal(after.put - before.put, report.warmup!.ops + 2000, 'the server served both');

  const refused = await bench(dkvd.tcpPort, ['--requests', '10', '--warmup=-1']);
  t.equal(refused.code, 2, 'a negative warm-up is a usage error');
  t.match(refused.stderr, /--warmup must be a number of seconds/);
});

t.test('a server killed mid-run ends the run with exit code 3 and the loss counted', async (t) => {
  const dkvd = await startDkvd({ storage: 'memory' });
  t.teardown(() => removeDir(dkvd.dataDir));
  const running = bench(dkvd.tcpPort, ['--duration', '60', '--no-preload', '--timeout', '2000']);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await dkvd.kill();
  const run = await running;
  t.equal(run.code, 3, run.stderr);
  t.ok(run.elapsedMs < 15_000, `ended ${Math.round(run.elapsedMs)} ms after it started, not at the 60 s duration`);
  t.same(run.report?.connectionsFailed, { CONNECTION_CLOSED: 4 });
  t.equal(run.report?.serverCpuMicrosPerOp, null);

  const refused = await bench(dkvd.tcpPort, ['--requests', '10']);
  t.equal(refused.code, 3, 'no server: cannot connect');
  t.match(refused.stderr, /CANNOT_CONNECT/);
});

t.test('a server that stops answering ends the run with exit code 5 after the timeout', async (t) => {
  const dkvd = await startDkvd({ storage: 'memory' });
  t.teardown(async () => {
    dkvd.child.kill('SIGCONT');
    await dkvd.stop();
    removeDir(dkvd.dataDir);
  });
  const running = bench(dkvd.tcpPort, ['--duration', '60', '--no-preload', '--timeout', '1000']);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  dkvd.child.kill('SIGSTOP');
  const run = await running;
  t.equal(run.code, 5, run.stderr);
  t.ok(run.elapsedMs < 15_000, `ended ${Math.round(run.elapsedMs)} ms after it started, not at the 60 s duration`);
  t.same(run.report?.connectionsFailed, { TIMEOUT: 4 });
  t.ok((run.report?.run.errors.TIMEOUT ?? 0) > 0, 'what was in flight counted as TIMEOUT');
});
