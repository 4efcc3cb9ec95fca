// Heap bytes a piece of code allocates per operation, for tests that guard a hot path against
// allocating: `run` does `ops` operations; it runs three times to warm, then eight times
// between forced GCs, and the least growth counts. Code not yet optimized allocates what
// optimized code does not (boxed numbers, for one), and on a busy machine the optimizing
// compiler, which works in the background, may finish only during the measured runs.
import { runInNewContext } from 'node:vm';
import v8 from 'node:v8';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

export function heapBytesPerOp(ops: number, run: () => void): number {
  for (let warm = 0; warm < 3; warm++) run();
  let best = Infinity;
  for (let attempt = 0; attempt < 8; attempt++) {
    gc();
    const before = process.memoryUsage().heapUsed;
    run();
    const grown = process.memoryUsage().heapUsed - before;
    if (grown >= 0 && grown < best) best = grown;
  }
  return best / ops;
}
