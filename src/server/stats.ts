// Counters a node keeps about itself, for STATS and INFO. Plain numbers, bumped on hot paths.
export class ServerStats {
  readonly startedAtMs: number;
  connectionsCurrent = 0;
  connectionsTotal = 0;
  connectionsRejected = 0;
  connectionsNative = 0;
  connectionsResp = 0;
  bytesIn = 0;
  bytesOut = 0;
  // Native requests by opcode name, RESP commands by name.
  readonly requests = new Map<string, RequestCounter>();
  // Error replies by code name (native) or prefix (RESP).
  readonly errors = new Map<string, number>();
  protocolErrors = 0;
  readsPaused = 0;
  // Replies that told a client its ring checksum was stale.
  staleRingReplies = 0;

  constructor(nowMs: number) {
    this.startedAtMs = nowMs;
  }

  countRequest(name: string): void {
    this.requestCounter(name).count++;
  }

  // `name`'s counter, for a hot path to bump without looking it up per request (a map lookup and
  // store per GET were 1% of dkvd's time at pipeline 16, perf).
  requestCounter(name: string): RequestCounter {
    let counter = this.requests.get(name);
    if (counter === undefined) {
      counter = { count: 0 };
      this.requests.set(name, counter);
    }
    return counter;
  }

  countError(name: string): void {
    this.errors.set(name, (this.errors.get(name) ?? 0) + 1);
  }
}

export interface RequestCounter {
  count: number;
}
