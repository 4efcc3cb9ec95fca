// SWIM timing and sizes. The defaults are memberlist's LAN profile, which has years of
// production behind it; every interval can be changed by a dkvd flag.

import { DkvError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';

export interface SwimConfig {
  // One member is probed per interval; an ACK must come within the timeout or indirect probes
  // (PING_REQ through indirectChecks other members) start. Both stretch with local health.
  probeIntervalMs: number;
  probeTimeoutMs: number;
  indirectChecks: number;
  // Suspicion timeout: suspicionMult · max(1, log10 N) · probeIntervalMs at least, and
  // suspicionMaxTimeoutMult times that before any other member confirms the suspicion.
  suspicionMult: number;
  suspicionMaxTimeoutMult: number;
  // Each piece of news is sent retransmitMult · ⌈log10(N + 1)⌉ times.
  retransmitMult: number;
  // News also goes out on its own, to gossipNodes random members every gossipIntervalMs.
  gossipIntervalMs: number;
  gossipNodes: number;
  // The full member list is exchanged with one random member this often (doubling past 32
  // members per doubling of the cluster, as memberlist does).
  pushPullIntervalMs: number;
  // Dead and left members are remembered (and their news kept) this long, then forgotten. A
  // forgotten member also leaves the ring (its keys move to other nodes), so this is how long a
  // crashed node keeps its place: long enough for a restart or a short outage, which hinted
  // handoff covers (memberlist forgets after 30 s, but it places no data).
  deadRetentionMs: number;
  // A member forgotten while dead is still tried, now and then, for this long after: a partition
  // longer than deadRetentionMs leaves each side with nothing of the other to reconnect to
  // otherwise (Serf keeps failed members 24 h for the same reason).
  reconnectRetentionMs: number;
  // The cluster's name, carried by every datagram and push-pull: nodes drop datagrams and refuse
  // push-pulls of another label (or of none, when they have one), so clusters that share a
  // network never merge. null: no label (then only unlabelled traffic is accepted).
  clusterLabel: string | null;
  // Local health scores run from 0 to awarenessMax − 1.
  awarenessMax: number;
  packetBytesMax: number;
}

export const LAN_CONFIG: Readonly<SwimConfig> = {
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  retransmitMult: 4,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  pushPullIntervalMs: 30_000,
  deadRetentionMs: 600_000,
  reconnectRetentionMs: 86_400_000,
  clusterLabel: null,
  awarenessMax: 8,
  packetBytesMax: limits.datagramBytesMax,
};

export function swimConfig(overrides: Partial<SwimConfig> = {}): SwimConfig {
  const config = { ...LAN_CONFIG, ...overrides };
  const positive = (name: Exclude<keyof SwimConfig, 'clusterLabel'>, min = 1): void => {
    const value = config[name];
    if (!Number.isInteger(value) || value < min) {
      throw new DkvError('BAD_REQUEST', `${name} must be an integer of at least ${min}, not ${value}`);
    }
  };
  positive('probeIntervalMs');
  positive('probeTimeoutMs');
  positive('indirectChecks', 0);
  positive('suspicionMult');
  positive('suspicionMaxTimeoutMult');
  positive('retransmitMult');
  positive('gossipIntervalMs');
  positive('gossipNodes', 0);
  positive('pushPullIntervalMs');
  positive('deadRetentionMs');
  positive('reconnectRetentionMs', 0);
  positive('awarenessMax');
  // The largest member record (an ALIVE with a 255-byte id and host) is 523 bytes; behind a
  // datagram header it must fit one packet, or it could never be gossiped. 576 is also the
  // datagram size every IPv4 host must accept.
  positive('packetBytesMax', 576);
  if (config.clusterLabel !== null) {
    const bytes = Buffer.byteLength(config.clusterLabel, 'utf8');
    if (bytes === 0 || bytes > limits.clusterLabelBytesMax) {
      throw new DkvError('BAD_REQUEST', `the cluster label must be 1 to ${limits.clusterLabelBytesMax} bytes, not ${bytes}`);
    }
  }
  if (config.probeTimeoutMs > config.probeIntervalMs) {
    throw new DkvError(
      'BAD_REQUEST',
      `the probe timeout (${config.probeTimeoutMs} ms) must not exceed the probe interval (${config.probeIntervalMs} ms)`,
    );
  }
  if (config.packetBytesMax > limits.datagramBytesMax) {
    throw new DkvError('BAD_REQUEST', `packets are at most ${limits.datagramBytesMax} bytes`);
  }
  return config;
}
