// The ring: lookups against a naive walk on random input, placement within a justified bound,
// checksum identity, and the virtual-node token vector protocol.md shows.
import fc from 'fast-check';
import t from 'tap';
import { Ring, ringChecksum, vnodeToken } from '../../src/ring/ring.js';
import { TOKEN_SPACE } from '../../src/ring/token.js';

// The naive definition: every (token, member) pair sorted by token then id; walk from the
// first token ≥ the key's, wrapping, collecting distinct members.
function naivePreference(ids: string[], vnodes: number, token: number, n: number): string[] {
  const all: Array<[number, string]> = [];
  for (const id of new Set(ids)) for (let i = 0; i < vnodes; i++) all.push([vnodeToken(id, i), id]);
  all.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  let start = all.findIndex(([tok]) => tok >= token);
  if (start < 0) start = 0;
  const out: string[] = [];
  for (let step = 0; step < all.length && out.length < n; step++) {
    const id = all[(start + step) % all.length]![1];
    if (!out.includes(id)) out.push(id);
  }
  return out;
}

t.test('preference lists match the naive walk on random rings and tokens', async (t) => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.stringMatching(/^[a-z0-9]{1,8}$/), { minLength: 1, maxLength: 12 }),
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.integer({ min: 0, max: TOKEN_SPACE - 1 }), { minLength: 1, maxLength: 20 }),
      fc.integer({ min: 1, max: 5 }),
      (ids, vnodes, tokens, n) => {
        const ring = new Ring(ids, vnodes);
        const out = new Int32Array(n);
        for (const token of [...tokens, 0, TOKEN_SPACE - 1, ...Array.from(ring.tokens.slice(0, 3))]) {
          const found = ring.preferenceIndices(token, n, out);
          const fast = Array.from(out.subarray(0, found), (i) => ring.members[i]);
          const naive = naivePreference(ids, vnodes, token, n);
          if (JSON.stringify(fast) !== JSON.stringify(naive)) {
            throw new Error(`token ${token}: ${JSON.stringify(fast)} != ${JSON.stringify(naive)}`);
          }
        }
      },
    ),
    { numRuns: 300, seed: 7 },
  );
  t.pass('300 random rings agree');
});

t.test('the preference list of a key has min(N, members) distinct members', async (t) => {
  const ring = new Ring(['a', 'b', 'c', 'd', 'e'], 16);
  t.equal(ring.preferenceList(Buffer.from('k'), 3).length, 3);
  t.equal(new Set(ring.preferenceList(Buffer.from('k'), 5)).size, 5);
  t.equal(ring.preferenceList(Buffer.from('k'), 9).length, 5, 'never more than the members');
  t.same(new Ring([], 16).preferenceList(Buffer.from('k'), 3), [], 'an empty ring has none');
});

// With V virtual nodes a member's share of the ring is a sum of V arcs of roughly exponential
// length, so its standard deviation is about mean / sqrt(V): 6.25% at V=256. The largest of up to
// 100 members then lies about 2.5 standard deviations above the mean (measured worst case 1.16 as
// primary owner, 1.10 as one of three replicas; `npm run bench:ring`). The bounds below allow 4
// standard deviations for the primary share and 2.4 for the replica share (three arcs' worth of
// smoothing).
t.test('placement at V=256: the largest share over the mean stays within bounds for 3..100 members', async (t) => {
  let worstPrimary = 0;
  let worstReplica = 0;
  for (let n = 3; n <= 100; n += n < 20 ? 1 : 7) {
    const ring = new Ring(Array.from({ length: n }, (_, i) => `node-${i}`), 256);
    worstPrimary = Math.max(worstPrimary, Math.max(...ring.primaryShares()) * n);
    worstReplica = Math.max(worstReplica, (Math.max(...ring.replicaShares(3)) * n) / 3);
    const total = ring.primaryShares().reduce((a, b) => a + b, 0);
    if (Math.abs(total - 1) > 1e-9) t.fail(`shares of ${n} members sum to ${total}`);
  }
  t.ok(worstPrimary <= 1.25, `primary share max/mean ${worstPrimary.toFixed(3)} ≤ 1.25`);
  t.ok(worstReplica <= 1.15, `replica share max/mean ${worstReplica.toFixed(3)} ≤ 1.15`);
});

t.test('the checksum names the member set and V, whatever the order members came in', async (t) => {
  const a = new Ring(['n1', 'n2', 'n3'], 256);
  t.equal(new Ring(['n3', 'n1', 'n2', 'n1'], 256).checksum, a.checksum);
  t.not(new Ring(['n1', 'n2'], 256).checksum, a.checksum);
  t.not(new Ring(['n1', 'n2', 'n3'], 128).checksum, a.checksum);
  t.equal(a.checksum, ringChecksum(['n1', 'n2', 'n3'], 256));
  t.ok(Number.isInteger(a.checksum) && a.checksum >= 0 && a.checksum < 2 ** 32, 'a u32');
});

t.test('protocol.md shows the ring vectors this code computes', async (t) => {
  const { readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { REPO_ROOT } = await import('../helpers/dkvd.js');
  const { tokenOf } = await import('../../src/ring/token.js');
  const protocol = readFileSync(join(REPO_ROOT, 'protocol.md'), 'utf8').replace(/\s+/g, ' ');
  const ring = new Ring(['n1', 'n2', 'n3'], 256);
  t.match(protocol, `the token of \`n1#0\` is ${vnodeToken('n1', 0)}, of \`n1#255\` ${vnodeToken('n1', 255)}, of \`n2#0\` ${vnodeToken('n2', 0)}`);
  t.match(protocol, `checksum ${ring.checksum} (\`${ring.checksum.toString(16)}\`)`);
  const user = ring.preferenceList(Buffer.from('user:42'), 3);
  t.match(protocol, `\`user:42\` (token ${tokenOf(Buffer.from('user:42'))}) is ${user.map((m) => `\`${m}\``).join(', ')}`);
  t.match(protocol, `first two of \`a\` are ${ring.preferenceList(Buffer.from('a'), 2).map((m) => `\`${m}\``).join(', ')}`);
});
