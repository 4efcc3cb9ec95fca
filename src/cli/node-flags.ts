// The Node flags every dkvd runs with. bin/dkvd's first line passes them when it is run as a
// program; whatever starts it as `node bin/dkvd` (dkv-cli cluster, the tests) passes these.
//
// V8 starts a process's old generation small and, while it stays small, runs a full mark-compact
// each time it grows by a few megabytes. Under a mixed load (YCSB-B, 5% writes) objects of the
// request path get promoted at several megabytes a second, and each node of a three-node cluster
// ran about two mark-compacts a second, pausing 2-18 ms each, while it held about 10 MB. Starting
// the old generation at 64 MB: 15 mark-compacts in 10 s across the three nodes instead of 48, and
// p99 at half of B's maximum 4.5 against 5.1 ms (medians of 6 alternating pairs of fresh
// clusters, same throughput); a lone dkvd under redis-benchmark did no worse within the spread.
export const DKVD_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=64'];
