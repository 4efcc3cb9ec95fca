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
  readonly requests = new Map<string, number>();
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
    this.requests.set(name, (this.requests.get(name) ?? 0) + 1);
  }

  countError(name: string): void {
    this.errors.set(name, (this.errors.get(name) ?? 0) + 1);
  }
}
