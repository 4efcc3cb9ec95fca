// Pure modules (the SWIM core, the codecs, the simulator) never import sockets, files or timers,
// and never read the wall clock or global randomness: a simulated run must replay from its seed.
// The simulator's CLI (src/sim/main.ts) may time the run with performance.now, nothing more.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PURE_DIRS = ['src/swim', 'src/sim', 'src/wire'];
// Shells: the only files in those directories allowed to do I/O (the UDP socket, the worker
// thread that runs it, the main thread's handle on that worker). A new shell is added here on
// purpose; every other file is held to purity.
const SHELLS = new Set(['src/swim/udp-shell.ts', 'src/swim/worker.ts', 'src/swim/membership.ts']);
// The data-path simulator runs the real (asynchronous) coordinator on virtual timers: it names
// setTimeout as the Timers interface does and lets promise reactions run with setImmediate
// between virtual events. It reads no clock and no global randomness; it is held to that below.
const ASYNC_SIMULATORS = new Set(['src/sim/data-cluster.ts']);
const FORBIDDEN_IMPORTS = /^(node:)?(net|dgram|fs|fs\/promises|timers|timers\/promises|child_process|worker_threads|pino)$/;

function sources(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...sources(path));
    else if (entry.name.endsWith('.ts')) found.push(path);
  }
  return found;
}

// Comments may name what the code must not use.
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

t.test('pure modules import no I/O and read no clock or global randomness', async (t) => {
  const files = PURE_DIRS.flatMap(sources).filter((file) => !SHELLS.has(file));
  t.ok(files.length >= 15, `${files.length} files scanned`);
  for (const file of files) {
    const text = code(readFileSync(join(root, file), 'utf8'));
    const name = relative('.', file);
    for (const match of text.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*)['"]([^'"]+)['"]/g)) {
      if (FORBIDDEN_IMPORTS.test(match[1]!)) t.fail(`${name} imports ${match[1]}`);
    }
    if (/\bDate\b/.test(text)) t.fail(`${name} uses Date`);
    if (/\bMath\.random\b/.test(text)) t.fail(`${name} uses Math.random`);
    if (!ASYNC_SIMULATORS.has(file)) {
      for (const timer of ['setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask', 'process.hrtime']) {
        if (text.includes(timer)) t.fail(`${name} uses ${timer}`);
      }
    }
    if (file !== 'src/sim/main.ts' && /\bperformance\b/.test(text)) t.fail(`${name} reads performance`);
  }
  t.pass('scanned');
});

t.test('the scan catches what it looks for', async (t) => {
  const bad = code(`import { readFileSync } from 'node:fs';\nconst x = Date.now(); // Date in a comment\n`);
  t.match(bad, /from 'node:fs'/);
  t.match(bad, /\bDate\b/);
  t.notMatch(code('// only Date and Math.random in a comment\n'), /Date|Math\.random/);
});
