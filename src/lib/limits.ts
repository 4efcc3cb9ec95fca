// Every queue, buffer and size in dkv has a named limit here. The unit is the last word of the
// name. protocol.md's limits table lists the ones a client can run into.

const KiB = 1024;
const MiB = 1024 * KiB;

export const limits = {
  // A frame's length field counts the header after it plus the body. 4 MiB leaves room for an
  // MPUT of a few large values while keeping a connection's worst-case buffer small. It also
  // keeps the first byte of every native frame 0x00, which is how a connection's dialect is told.
  frameBytesMax: 4 * MiB,
  // lmdb's largest key is 1978 bytes; a stored key is a 6-byte token prefix plus the key.
  keyBytesMax: 1024,
  // Values past 1 MiB belong in a blob store; Riak and memcached draw the same line.
  valueBytesMax: 1 * MiB,
  // Keys in one MGET / MPUT / RESP MGET, MSET, DEL or EXISTS.
  multiKeysMax: 1000,
  // Concurrent versions of one key. A client that keeps writing without a context could grow
  // them without bound; past this the write fails with SIBLINGS_EXCEEDED.
  siblingsMax: 64,
  // A connection stops reading while it has this many requests in flight (native frames or RESP
  // commands whose replies are not yet written) and resumes at half.
  connectionInFlightMax: 1024,
  // ... or while this many reply bytes wait in the socket for a client that does not read.
  connectionWriteBytesHighWater: 1 * MiB,
  // Replies up to this size are gathered in a per-connection slab of the next size and written
  // together; larger ones are written as they are (copying them would cost more than it saves).
  replyCopyBytesMax: 4 * KiB,
  connectionOutputSlabBytes: 16 * KiB,
  // Open client connections; past this the server closes new ones at once.
  connectionsMax: 10_000,
  // A RESP inline command (the netcat dialect) ends at a newline within this many bytes, as in
  // Redis.
  respInlineBytesMax: 64 * KiB,
  // RESP bulk strings carry keys or values; a frame is the most any command can carry.
  respBulkBytesMax: 4 * MiB,
  // RESP arrays: MSET of multiKeysMax pairs plus the command name.
  respArgsMax: 2 * 1000 + 1,
  // All the bulk strings of one RESP command: no more than a native frame carries, so that a
  // client cannot make the server buffer respArgsMax × respBulkBytesMax (8 GiB) for one command.
  respCommandBytesMax: 4 * MiB,
  // Nesting of arrays and maps in a msgpack body. The deepest message, an MGET reply
  // ({results: [{versions: [[node, counter, tsMs]]}]}), nests five deep. Without a bound, 4 MiB of
  // nested one-element arrays decode into gigabytes of objects.
  bodyDepthMax: 8,
  // Keys whose newest write is durable in the log but not yet committed to lmdb (the open batch
  // and the one being committed), and the memory their writes take (pending-writes.ts). Past
  // either, the open batch is committed at once and its writers wait for it; the log segments
  // they are in are kept meanwhile. Twice the batch bounds below, so that a batch can fill while
  // the one before commits.
  storePendingWritesMax: 200_000,
  storePendingBytesMax: 192 * MiB,
  // How long acknowledged writes wait to be committed to lmdb together. lmdb rewrites a whole
  // 4 KiB page for every key it changes, and its background syncs compete with the log's for the
  // disk (at 20 ms, each commit of ~700 random keys rewrites ~700 pages). With redis-benchmark SET,
  // 50 clients, 100k keys: pipeline 1 went 31k -> 36k -> 40k/s and pipeline 16 90k -> 111k ->
  // 122k/s for 20 -> 200 -> 1000 ms. Later (2026-11-22), with the batch bound below at 60,000:
  // 3 nodes, writes only, 51 in flight: 31.0k / 31.7k puts/s at 1000 ms, 32.7k / 32.4k at 3000.
  // Reads find waiting writes in the read cache or the pending index meanwhile, and
  // storePendingWritesMax bounds them.
  storeCommitDelayMs: 3000,
  // ... or sooner, once this many keys wait (rewrites of a waiting key do not count): handing lmdb
  // a batch costs the main thread about 0.4 µs a key, while every commit rewrites a page per
  // changed key (with 100k keys, a batch of a few thousand random keys rewrites most of the data
  // file, and lmdb's thread writing those pages back took 12% of dkvd's CPU under SET load, perf).
  // So keys written over and over (a hot set that fits the bound) reach lmdb every
  // storeCommitDelayMs, once each. Against 60,000 writes (not keys) and a pending bound of
  // 120,000, alternating on 2026-11-22: 3M redis-benchmark SETs at pipeline 16 on 100k keys,
  // 240k SETs/s (median of 4) against 220k, at 5.1 µs of dkvd's CPU a SET against 6.2 (4 commits
  // against 50); 2M SETs on 1M keys, 136k-147k against 121k-134k; 3 nodes with 51 puts in flight,
  // 29.4k-31.0k puts/s against 26.0k-28.7k. Earlier, redis-benchmark SET, 100k keys:
  // batches of up to 50,000 gave p99 106 ms at pipeline 16 (before commits went in slices);
  // 5,000 gave 95-102k/s, p99 18-25 ms (pipeline 1: 37k/s); 20,000 gave 138-147k/s, p99 20-25 ms
  // (pipeline 1: 42-43k/s). Against 20,000 on 2026-11-22, alternating, 60,000 (with the pending
  // bound at 120,000 and the delay at 3 s) gave 174k-187k SETs/s at pipeline 16 against
  // 158k-176k, and 3 nodes with 51 puts in flight 32.4k-32.7k puts/s against 29.3k-30.6k:
  // fewer commits rewrite fewer pages, and lmdb's flushes leave the disk to the log's syncs.
  storeCommitBatchMax: 100_000,
  // ... or once the open batch's writes take this much memory (rewrites of a key count here).
  storeCommitBatchBytesMax: 64 * MiB,
  // The read cache's size unless dkvd's --cache-mb says (record-cache.ts): 100k keys of 100-byte
  // values take about 17 MiB of it.
  cacheBytesDefault: 64 * MiB,
  // The read cache (record-cache.ts) keeps records up to this size: hot keys with small values
  // are what it is for, and a hit copies the record once more.
  cacheRecordBytesMax: 16 * KiB,
  // Keys of one chunk's pipelined GETs whose reads are prefetched together (RecordCache.prefetch).
  // redis-benchmark at pipeline 16 sends 16 a chunk; 64 keys' lines (about 5 each) are a few
  // percent of the level-1 data cache, so none is evicted before its GET runs.
  readPrefetchKeysMax: 64,
  // Puts handed to lmdb per event-loop turn while committing a batch (versioned-store.ts).
  storeCommitSlice: 256,
  // A GET short of R answers this long after it began asks one more replica (coordinator.ts).
  // Replica reads answer in well under a millisecond when idle and under 15 ms at the p99 of a
  // saturated 3-node cluster here, so this fires for a replica that is stopped or stuck, rarely
  // otherwise.
  speculativeReadMs: 50,
  // A write-ahead log segment holds this much; it is zero-filled to this size before use, and
  // retired once lmdb has flushed it. Replay at start reads about one or two segments (well
  // under a second), a node keeps two on disk, and each start prepares one in the background.
  walSegmentBytesMax: 16 * MiB,
  // Log syncs running at once. Overlapping them lets a batch that arrives during a sync start its
  // own at once instead of waiting for the one before it. 1 and 2 measured alike on replicated
  // writes (3 nodes, 50 in flight: 11-14k puts/s either way, about 23 records per sync), so 2.
  walSyncsInFlightMax: 2,
  // A log sync of fewer than walSyncBatchMin records starts at least walSyncGapMs after the one
  // before. Each fdatasync costs the node about 50 us of CPU here (thread-pool hand-off, the
  // virtio disk's write and flush, wake-ups) however few records it holds: at half of YCSB-B's
  // maximum, syncs started as soon as a write came held 2 records each and took about a quarter
  // of the cluster's CPU. Waiting lets the writes of the next millisecond share one. A write on
  // an idle log syncs at once, and so does a batch of walSyncBatchMin: where clients wait for
  // each write (redis-benchmark SET at pipeline 1: 14 records a sync), the gap alone cut
  // throughput by 45%.
  walSyncGapMs: 1,
  walSyncBatchMin: 8,
  // Bytes of one UDP datagram: fits a 1500-byte Ethernet MTU with IP and UDP headers.
  datagramBytesMax: 1400,
  // Cluster label in a datagram header.
  clusterLabelBytesMax: 255,
  // Members one node tracks (alive, suspect, and dead or left until forgotten). Per-member
  // state is a few typed-array slots; the simulator runs 10,000 nodes.
  membersMax: 65_536,
  // Membership news waiting to be gossiped. Each is under 300 bytes; a join storm of a whole
  // large cluster fits, and past the bound the most-sent news (the best known) is dropped.
  gossipQueueMessagesMax: 4096,
  // PING_REQs this node is relaying at once. Each lives one probe timeout; a flood of them is
  // dropped rather than turned into a flood of pings.
  swimRelaysMax: 256,
  // Replicas of a key (N) and so the largest R or W a request may ask for.
  replicasMax: 7,
  // The longest per-request timeout a client may ask a coordinator for.
  requestTimeoutMsMax: 60_000,
  // Hints a node holds for replicas that were down. Each holds one key's versions; past the bound
  // new hints are refused (the write still needs W other acknowledgements) and counted, and
  // anti-entropy must repair what they would have carried.
  hintsMax: 100_000,
  // A hint older than this is dropped: a replica down for longer needs a full repair anyway
  // (Cassandra's max_hint_window is also 3 hours).
  hintAgeMsMax: 3 * 60 * 60 * 1000,
} as const;

