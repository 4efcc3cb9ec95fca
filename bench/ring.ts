// Ring placement and lookup cost, for choosing V (virtual nodes per member).
//
//   npm run bench:ring
//
// For V in {64, 128, 256} and 3..100 members (ids "node-0", "node-1", ...): the largest member's
// share over the mean, as primary owner and as one of N=3 replicas; and the time of one
// preference-list lookup (N=3, 100 members) with tinybench.
import { Bench } from 'tinybench';
import { Ring } from '../src/ring/ring.js';

const SIZES = [3, 5, 10, 20, 50, 100];
const VNODES = [64, 128, 256];
const REPLICAS = 3;

function ratios(n: number, vnodes: number): { primary: number; replica: number } {
  const ring = new Ring(Array.from({ length: n }, (_, i) => `node-${i}`), vnodes);
  return {
    primary: Math.max(...ring.primaryShares()) * n,
    replica: (Math.max(...ring.replicaShares(REPLICAS)) * n) / Math.min(REPLICAS, n),
  };
}

console.log(`largest member's share / mean: primary owner, and replica (N=${REPLICAS})`);
console.log(['V', ...SIZES.map((n) => `${n} members`), 'worst of 3..100'].join(' | '));
for (const vnodes of VNODES) {
  const cells = SIZES.map((n) => {
    const r = ratios(n, vnodes);
    return `${r.primary.toFixed(2)} / ${r.replica.toFixed(2)}`;
  });
  let worstPrimary = 0;
  let worstReplica = 0;
  for (let n = 3; n <= 100; n++) {
    const r = ratios(n, vnodes);
    worstPrimary = Math.max(worstPrimary, r.primary);
    worstReplica = Math.max(worstReplica, r.replica);
  }
  console.log([vnodes, ...cells, `${worstPrimary.toFixed(2)} / ${worstReplica.toFixed(2)}`].join(' | '));
}

const bench = new Bench({ time: 500 });
for (const vnodes of VNODES) {
  const ring = new Ring(Array.from({ length: 100 }, (_, i) => `node-${i}`), vnodes);
  const out = new Int32Array(REPLICAS);
  let token = 0;
  bench.add(`preference list, 100 members, V=${vnodes}`, () => {
    token = (token + 0x9e3779b97f4a) % 2 ** 48;
    ring.preferenceIndices(token, REPLICAS, out);
  });
}
await bench.run();
for (const task of bench.tasks) {
  console.log(`${task.name}: ${Math.round((task.result?.latency?.mean ?? NaN) * 1e6)} ns`);
}
