// The SWIM failure detector and membership protocol with the Lifeguard refinements. Pure: time
// comes in as nowMs, randomness from the Random it is given, packets in as bytes; packets out
// go to `outbox`, membership changes to `events`, push-pull requests to `pushPulls`. The shell
// (udp-shell.ts) or the simulator (src/sim) empties them after every call and calls `tick` by
// `nextDeadlineMs`.
//
// Per member the core keeps a state (alive, suspect, dead, left), an incarnation and the time of
// its last change, in typed arrays indexed by the member's directory index.
//
// Precedence between messages about member j with incarnation i (j's own word wins ties
// only where said):
//   ALIVE i    applies if j is unknown, or i > the incarnation we hold (whatever j's state).
//   SUSPECT i  applies to an alive j if i ≥ ours; to a suspect j it is a confirmation if i is
//              ours, and a new suspicion if i > ours (j refuted the old one, as SWIM's
//              "Suspect i overrides Suspect j, i > j" says).
//   DEAD i     applies to an alive or suspect j if i ≥ ours.
//   LEFT i     applies to an alive, suspect or dead j if i ≥ ours.
// A SUSPECT or DEAD about this node (or a LEFT it did not send) is refuted: it takes an
// incarnation above both its own and the accusation's and gossips ALIVE.

import { assert } from '../lib/assert.js';
import { sameBytes } from '../lib/bytes.js';
import { limits } from '../lib/limits.js';
import type { Random } from '../lib/random.js';
import { DATAGRAM_MAGIC, DATAGRAM_VERSION, MemberState, SwimMessageType } from '../wire/codes.js';
import { encodeDatagramHeader } from '../wire/datagram.js';
import {
  encodeDead,
  encodeLeft,
  encodeSuspect,
  SwimReader,
  SwimWriter,
} from '../wire/swim-codec.js';
import { Awareness } from './awareness.js';
import type { SwimConfig } from './config.js';
import type { MemberDirectory } from './directory.js';
import { GossipQueue } from './gossip-queue.js';
import { Suspicion, suspicionTimeoutMinMs } from './suspicion.js';

// 0 marks a directory entry this core does not know (never heard of, or forgotten).
const UNKNOWN = 0;
const { ALIVE, SUSPECT, DEAD, LEFT } = MemberState;

export type MemberStatus = 'alive' | 'suspect' | 'dead' | 'left';
const STATUS_NAMES: readonly (MemberStatus | 'forgotten')[] = ['forgotten', 'alive', 'suspect', 'dead', 'left'];

export interface SelfAddress {
  id: string;
  host: string;
  udpPort: number;
  tcpPort: number;
}

export interface Outgoing {
  host: string;
  port: number;
  bytes: Buffer;
}

// A member's state changed, as this node sees it. 'forgotten': a dead or left member's retention
// ran out.
export interface MembershipEvent {
  id: string;
  status: MemberStatus | 'forgotten';
  incarnation: number;
  host: string;
  udpPort: number;
  tcpPort: number;
  atMs: number;
}

export interface PushPullRequest {
  id: string;
  host: string;
  tcpPort: number;
}

export interface MemberView {
  id: string;
  host: string;
  udpPort: number;
  tcpPort: number;
  status: MemberStatus;
  incarnation: number;
  changedMs: number;
}

export class SwimStats {
  packetsIn = 0;
  packetsOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  // Malformed, other protocol version, other cluster label.
  packetsDropped = 0;
  // A PING for an id that is not this node's (an old address of a restarted member).
  packetsMisdirected = 0;
  probes = 0;
  probesFailed = 0;
  indirectProbes = 0;
  nacksIn = 0;
  pingRequestsRelayed = 0;
  pingRequestsDropped = 0;
  // Suspicions this node raised after a failed probe, and accusations against it that it refuted.
  suspicionsRaised = 0;
  suspicionsRefuted = 0;
  // Suspicions this node raised and withdrew before announcing them: the suspect answered the
  // recheck.
  suspicionsWithdrawn = 0;
  // Members this node declared dead when their suspicion timed out.
  deathsDeclared = 0;
  // Suspicions that ran out unconfirmed, after which the suspect was asked once more.
  lastChanceProbes = 0;
  // Push-pulls begun with a dead member, in case it is up on the far side of a partition.
  reconnectPushPulls = 0;
  gossipPackets = 0;
  lateTicks = 0;
}

// A PING_REQ this node is carrying out: it NACKs the requester if the target is silent at
// nackAtMs, and forwards a target's ACK until expireAtMs.
interface Relay {
  host: string;
  port: number;
  seq: number;
  nackAtMs: number;
  expireAtMs: number;
  nacked: boolean;
}

// Lifeguard sends the NACK at 80% of the probe timeout, so that it reaches the requester before
// the requester's own deadline (which began a network hop earlier); a NACK that arrives after
// the probe ended would count against the requester's health instead of for it.
const NACK_FRACTION = 0.8;

// Every core without a cluster label begins its datagrams with the same header, and a core
// reads one datagram or member list at a time and keeps nothing in the reader between calls:
// one of each per process serves every core, where one per core put two more cold objects in
// the path of each datagram when the simulator ran ten thousand cores.
const HEADER = encodeDatagramHeader(null, false);
const READER = new SwimReader();

export class SwimCore {
  readonly outbox: Outgoing[] = [];
  outboxCount = 0;
  readonly events: MembershipEvent[] = [];
  readonly pushPulls: PushPullRequest[] = [];
  readonly stats = new SwimStats();
  readonly selfIndex: number;
  readonly awareness: Awareness;

  private incarnation: number;
  private leaving = false;
  private lastNowMs: number;

  private state = new Uint8Array(16);
  private incarnations = new Uint32Array(16);
  private changedMs = new Float64Array(16);
  private inProbeOrder = new Uint8Array(16);
  // Alive and suspect members, this one included: the N of the timeouts and retransmit limits.
  private liveCount = 1;

  // Every known member but this one, shuffled; probing walks it round-robin.
  private probeOrder = new Int32Array(16);
  private probeCount = 0;
  private probeCursor = 0;

  private seq = 0;
  private probeTarget = -1;
  private probeSeq = 0;
  private probeAcked = false;
  private probeTimeoutAtMs = Infinity;
  private nacksExpected = 0;
  private nacksReceived = 0;
  private nextProbeAtMs: number;
  private nextGossipAtMs: number;
  private nextPushPullAtMs: number;

  private readonly relays = new Map<number, Relay>();
  private readonly suspicions = new Map<number, Suspicion>();
  // Dead and left members in the order they went down, to forget after deadRetentionMs.
  private graveyard: number[] = [];
  private graveyardTimes: number[] = [];
  private graveyardHead = 0;
  // Members forgotten while dead: reconnects try them for reconnectRetentionMs after they were
  // forgotten (changedMs).
  private readonly forgottenDead = new Set<number>();

  private readonly gossip = new GossipQueue(limits.gossipQueueMessagesMax);
  private readonly reader = READER;
  private readonly writer: SwimWriter;
  private readonly header: Buffer;
  private readonly picks: Int32Array;

  constructor(
    readonly config: SwimConfig,
    readonly directory: MemberDirectory,
    self: SelfAddress,
    private readonly random: Random,
    nowMs: number,
    initialIncarnation = 0,
  ) {
    const index = directory.intern(self.id, self.host, self.udpPort, self.tcpPort);
    assert(index >= 0, 'directory has room for this node');
    directory.setAddress(index, self.host, self.udpPort, self.tcpPort);
    this.selfIndex = index;
    this.incarnation = initialIncarnation >>> 0;
    this.awareness = new Awareness(config.awarenessMax);
    this.writer = new SwimWriter(config.packetBytesMax);
    this.header = config.clusterLabel === null ? HEADER : encodeDatagramHeader(config.clusterLabel, false);
    this.picks = new Int32Array(Math.max(config.indirectChecks, config.gossipNodes, 1));
    this.lastNowMs = nowMs;
    this.grow(directory.size);
    this.state[index] = ALIVE;
    this.incarnations[index] = this.incarnation;
    this.changedMs[index] = nowMs;
    // Start at a random point of the first interval so that nodes started together do not probe
    // in lock step.
    this.nextProbeAtMs = nowMs + Math.floor(random.next() * config.probeIntervalMs);
    this.nextGossipAtMs = nowMs;
    // A random first push-pull, so that nodes started together do not exchange in lock step (as
    // memberlist staggers its push-pull timer). In lock step, ten thousand simulated nodes all
    // exchanged full member lists in the same instant, every interval.
    this.nextPushPullAtMs = nowMs + Math.floor(random.next() * config.pushPullIntervalMs);
    this.gossip.enqueue(index, this.selfAlive());
  }

  get id(): string {
    return this.directory.ids[this.selfIndex]!;
  }

  get currentIncarnation(): number {
    return this.incarnation;
  }

  get memberCount(): number {
    return this.liveCount;
  }

  get hasLeft(): boolean {
    return this.leaving;
  }

  // The directory index of the member the probe in flight is for, or -1. (The simulator measures
  // probes by it.)
  get probeTargetIndex(): number {
    return this.probeTarget;
  }

  // Whether news is still waiting to be gossiped (a leave waits for its LEFT to go out).
  get gossipPending(): number {
    return this.gossip.length;
  }

  // For the simulator: start with member `index` known alive, without news or events, as if
  // the cluster had formed long ago.
  seedMember(index: number, incarnation: number, nowMs: number): void {
    assert(index >= 0 && index < this.directory.size, 'seeded member is in the directory');
    if (index === this.selfIndex) return;
    this.grow(this.directory.size);
    if (this.state[index] === UNKNOWN) this.addToProbeOrder(index, false);
    if (this.state[index] !== ALIVE && this.state[index] !== SUSPECT) this.liveCount++;
    this.state[index] = ALIVE;
    this.incarnations[index] = incarnation;
    this.changedMs[index] = nowMs;
  }

  clearOutbox(): void {
    for (let i = 0; i < this.outboxCount; i++) this.outbox[i]!.bytes = EMPTY;
    this.outboxCount = 0;
  }

  // The earliest time at which `tick` has work to do.
  nextDeadlineMs(): number {
    let deadline = this.leaving ? Infinity : this.nextProbeAtMs;
    if (!this.leaving && this.probeTarget >= 0 && !this.probeAcked && this.nacksExpected === 0 && this.probeTimeoutAtMs < deadline) {
      deadline = this.probeTimeoutAtMs;
    }
    if (this.gossip.length > 0 && this.nextGossipAtMs < deadline) deadline = this.nextGossipAtMs;
    if (!this.leaving && this.nextPushPullAtMs < deadline) deadline = this.nextPushPullAtMs;
    for (const relay of this.relays.values()) {
      const at = relay.nacked ? relay.expireAtMs : relay.nackAtMs;
      if (at < deadline) deadline = at;
    }
    for (const suspicion of this.suspicions.values()) {
      if (suspicion.deadlineMs < deadline) deadline = suspicion.deadlineMs;
      if (suspicion.recheckUntilMs < deadline) deadline = suspicion.recheckUntilMs;
    }
    if (this.graveyardHead < this.graveyard.length) {
      const forgetAt = this.graveyardTimes[this.graveyardHead]! + this.config.deadRetentionMs;
      if (forgetAt < deadline) deadline = forgetAt;
    }
    return deadline;
  }

  tick(nowMs: number): void {
    this.advance(nowMs);
    if (!this.leaving) {
      if (this.probeTarget >= 0 && !this.probeAcked && this.nacksExpected === 0 && nowMs >= this.probeTimeoutAtMs) {
        this.probeIndirectly();
      }
      if (nowMs >= this.nextProbeAtMs) {
        this.finishProbe(nowMs);
        this.startProbe(nowMs);
      }
    }
    if (this.relays.size > 0) this.expireRelays(nowMs);
    if (this.suspicions.size > 0) this.expireSuspicions(nowMs);
    if (this.graveyardHead < this.graveyard.length) this.forgetDead(nowMs);
    if (nowMs >= this.nextGossipAtMs && this.gossip.length > 0) {
      this.gossipRound();
      this.nextGossipAtMs = nowMs + this.config.gossipIntervalMs;
    }
    if (!this.leaving && nowMs >= this.nextPushPullAtMs) {
      this.schedulePushPull(nowMs);
      this.nextPushPullAtMs = nowMs + this.pushPullIntervalMs();
    }
  }

  // The shell measured its event loop running lateMs behind a deadline: Lifeguard counts that
  // against this node's health, since its probes and answers are late too.
  noteLateTick(lateMs: number): void {
    if (lateMs * 2 < this.config.probeTimeoutMs) return;
    this.stats.lateTicks++;
    this.awareness.apply(1);
  }

  receive(host: string, port: number, bytes: Uint8Array, nowMs: number): void {
    this.advance(nowMs);
    this.stats.packetsIn++;
    this.stats.bytesIn += bytes.length;
    const header = this.header;
    if (bytes.length <= header.length || bytes.length > limits.datagramBytesMax || bytes[0] !== DATAGRAM_MAGIC || bytes[1] !== DATAGRAM_VERSION) {
      this.stats.packetsDropped++;
      return;
    }
    for (let i = 2; i < header.length; i++) {
      if (bytes[i] !== header[i]) {
        this.stats.packetsDropped++;
        return;
      }
    }
    // Check the whole packet before acting on any of it: a bad packet changes nothing.
    const reader = this.reader;
    reader.reset(bytes, header.length, bytes.length);
    let type: number;
    while ((type = reader.next()) > 0);
    if (type < 0) {
      this.stats.packetsDropped++;
      return;
    }
    reader.reset(bytes, header.length, bytes.length, true);
    while ((type = reader.next()) > 0) this.apply(type, host, port, nowMs, false);
  }

  // Graceful leave: gossip LEFT and stop probing. The shell keeps the socket open until
  // `gossipPending` is 0 or its patience runs out.
  leave(nowMs: number): void {
    this.advance(nowMs);
    if (this.leaving) return;
    this.leaving = true;
    const left = encodeLeft(this.incarnation, this.id);
    this.gossip.enqueue(this.selfIndex, left);
    this.changedMs[this.selfIndex] = nowMs;
    // A departure is rare and every member should hear it: besides gossip, one datagram to each
    // member that is up, so a member that gossip happens to miss does not take the silence for
    // a crash.
    const d = this.directory;
    for (let i = 0; i < this.probeCount; i++) {
      const index = this.probeOrder[i]!;
      const state = this.state[index];
      if (state !== ALIVE && state !== SUSPECT) continue;
      this.writer.begin(this.header);
      this.writer.append(left);
      this.sendPacket(d.hosts[index]!, d.udpPorts[index]!);
    }
    this.gossipRound();
    this.nextGossipAtMs = nowMs + this.config.gossipIntervalMs;
  }

  // The full member list for a push-pull exchange, records back to back: an ALIVE for each
  // member, followed by its SUSPECT or DEAD when it is down or in doubt (so that a receiver
  // that never heard of it, such as a node joining after a crash, learns its address and places
  // it on the ring as the others do), or a LEFT alone.
  localState(): Buffer {
    const records: Buffer[] = [];
    const d = this.directory;
    records.push(this.leaving ? encodeLeft(this.incarnation, this.id) : this.selfAlive());
    for (let i = 0; i < this.probeCount; i++) {
      const index = this.probeOrder[i]!;
      const state = this.state[index]!;
      const incarnation = this.incarnations[index]!;
      const id = d.ids[index]!;
      if (state === ALIVE || state === SUSPECT || state === DEAD) {
        records.push(d.aliveRecord(index, incarnation));
      }
      // A suspicion goes out under its accuser's name: a push-pull is not a failed probe, and
      // counted as one it confirmed suspicions that nobody else shared (with push-pulls spread
      // over time, one fell inside most suspicions of a 1,000-node simulation).
      // (One still being rechecked is this node's alone: the member goes out alive.)
      if (state === SUSPECT) {
        const suspicion = this.suspicions.get(index);
        if (suspicion === undefined || !suspicion.isPrivate) records.push(encodeSuspect(incarnation, id, suspicion?.accuser ?? this.id));
      } else if (state === DEAD) records.push(encodeDead(incarnation, id, this.id));
      else if (state === LEFT) records.push(encodeLeft(incarnation, id));
    }
    return Buffer.concat(records);
  }

  // Merges a peer's member list. A peer's DEAD is taken as a suspicion (this node may know
  // better and the member may yet refute it), as memberlist does. A member this node has
  // forgotten, listed as dead (its ALIVE followed by its DEAD), stays forgotten: its death is
  // old news here, and learning it again from a peer that has yet to forget it would make this
  // node suspect, declare and remember it once more, and teach it back to the peer later, over
  // and over. Returns false, changing nothing, if the bytes are malformed or hold anything but
  // member records.
  mergeState(bytes: Uint8Array, nowMs: number): boolean {
    this.advance(nowMs);
    const reader = this.reader;
    reader.reset(bytes, 0, bytes.length);
    let type: number;
    let records = 0;
    while ((type = reader.next()) > 0) {
      if (type < SwimMessageType.ALIVE || ++records > 2 * limits.membersMax) return false;
    }
    if (type < 0) return false;
    reader.reset(bytes, 0, bytes.length, true);
    let at = 0;
    while ((type = reader.next()) > 0) {
      if (type !== SwimMessageType.ALIVE) {
        this.apply(type, '', 0, nowMs, true);
        at = reader.position;
        continue;
      }
      const { idStart, idBytes } = reader;
      const index = this.directory.findBytes(bytes, idStart, idBytes);
      if (this.isForgotten(index)) {
        if (reader.next() === SwimMessageType.DEAD && reader.idBytes === idBytes && sameBytes(bytes, idStart, bytes, reader.idStart, idBytes)) {
          at = reader.position;
          continue;
        }
        reader.reset(bytes, at, bytes.length, true);
        reader.next();
      }
      this.applyAlive(index, nowMs);
      at = reader.position;
    }
    return true;
  }

  // Whether directory entry `index` (-1: none) was known here once and has been forgotten (as
  // against never heard of).
  private isForgotten(index: number): boolean {
    return index >= 0 && index < this.state.length && this.state[index] === UNKNOWN && this.changedMs[index]! > 0;
  }

  members(): MemberView[] {
    const views: MemberView[] = [this.view(this.selfIndex)];
    for (let i = 0; i < this.probeCount; i++) {
      const index = this.probeOrder[i]!;
      if (this.state[index] !== UNKNOWN) views.push(this.view(index));
    }
    return views;
  }

  private view(index: number): MemberView {
    const d = this.directory;
    return {
      id: d.ids[index]!,
      host: d.hosts[index]!,
      udpPort: d.udpPorts[index]!,
      tcpPort: d.tcpPorts[index]!,
      status: index === this.selfIndex && this.leaving ? 'left' : (STATUS_NAMES[this.state[index]!] as MemberStatus),
      incarnation: this.incarnations[index]!,
      changedMs: this.changedMs[index]!,
    };
  }

  private advance(nowMs: number): void {
    assert(nowMs >= this.lastNowMs, 'monotonic clock went backwards');
    this.lastNowMs = nowMs;
  }

  // ---- probing ----

  private startProbe(nowMs: number): void {
    const interval = this.awareness.scaleMs(this.config.probeIntervalMs);
    this.nextProbeAtMs = nowMs + interval;
    const target = this.nextProbeTarget();
    if (target < 0) return;
    this.probeTarget = target;
    this.probeSeq = this.nextSeq();
    this.probeAcked = false;
    this.nacksExpected = 0;
    this.nacksReceived = 0;
    this.probeTimeoutAtMs = nowMs + this.awareness.scaleMs(this.config.probeTimeoutMs);
    this.stats.probes++;
    const d = this.directory;
    const writer = this.writer;
    writer.begin(this.header);
    writer.ping(this.probeSeq, d.idBytes[target]!);
    // Lifeguard: a suspect hears the accusation with the probe, so it can refute at once.
    if (this.state[target] === SUSPECT) this.appendAccusation(target);
    this.send(d.hosts[target]!, d.udpPorts[target]!);
  }

  // Lifeguard's rule that a suspect should hear the accusation from whoever reaches it, applied
  // to the ACK: a member this node suspects that probes it learns of the suspicion in the answer
  // and refutes at once. After a partition heals, the gossip of the suspicion is often spent
  // (each record goes out a bounded number of times), and the probes of this side may not reach
  // the suspect before its timer runs out; the suspect's own probes across then do.
  private accuseSender(host: string, port: number): void {
    if (this.suspicions.size === 0) return;
    const d = this.directory;
    for (const index of this.suspicions.keys()) {
      if (d.udpPorts[index] === port && d.hosts[index] === host) {
        this.appendAccusation(index);
        return;
      }
    }
  }

  // Puts this node's SUSPECT about `index` into the packet being written, if it fits; returns
  // whether it did.
  private appendAccusation(index: number): boolean {
    // A suspicion still being rechecked is not an accusation yet: the suspect would refute it in
    // public, news for every member, where answering the recheck keeps it between the two.
    if (this.suspicions.get(index)?.isPrivate === true) return false;
    const accusation = this.ownSuspect(index);
    if (accusation.length > this.writer.remaining) return false;
    this.writer.append(accusation);
    return true;
  }

  // This node's SUSPECT of member `index` at the incarnation held for it.
  private ownSuspect(index: number): Buffer {
    return encodeSuspect(this.incarnations[index]!, this.directory.ids[index]!, this.id);
  }

  private probeIndirectly(): void {
    const count = this.askIndirectly(this.probeTarget, this.probeSeq);
    this.stats.indirectProbes += count;
    // With nobody to ask, mark the indirect stage done so the tick does not retry it.
    this.nacksExpected = count === 0 ? -1 : count;
  }

  // Sends PING_REQ(seq, target) to up to indirectChecks random alive members other than the
  // target; returns how many.
  private askIndirectly(target: number, seq: number): number {
    const count = this.pickMembers(this.config.indirectChecks, target, true);
    const d = this.directory;
    for (let i = 0; i < count; i++) {
      const via = this.picks[i]!;
      this.writer.begin(this.header);
      this.writer.pingReq(seq, d.idBytes[target]!);
      this.send(d.hosts[via]!, d.udpPorts[via]!);
    }
    return count;
  }

  private finishProbe(nowMs: number): void {
    const target = this.probeTarget;
    if (target < 0) return;
    this.probeTarget = -1;
    if (this.probeAcked) return;
    this.stats.probesFailed++;
    // Lifeguard: members asked to probe indirectly answer NACK if the target is silent. Missing
    // NACKs mean this node's own packets are not getting through: it is the likely culprit.
    if (this.nacksExpected > 0) {
      if (this.nacksReceived < this.nacksExpected) this.awareness.apply(this.nacksExpected - this.nacksReceived);
    } else {
      this.awareness.apply(1);
    }
    const state = this.state[target]!;
    // A failed probe of a suspect is one more accuser, news for the others as any confirmation.
    if (state === SUSPECT) this.applySuspect(target, this.incarnations[target]!, this.id, nowMs);
    if (state !== ALIVE) return;
    this.stats.suspicionsRaised++;
    this.recheck(target, this.beginSuspicion(target, this.incarnations[target]!, this.id, nowMs), nowMs);
  }

  // A suspicion this node raises begins as its own: the suspect is probed once more, directly and
  // through indirectChecks others at once, under one sequence number. An answer within the probe
  // timeout withdraws the suspicion (onRecheckAck) before anyone else hears of it; silence
  // announces it (expireSuspicions). The timer runs from the failed probe all the same, so a
  // crashed member is declared dead no later for it. Without the recheck, each false suspicion
  // (a probe of a live member fails with SWIM's probability (1−Δ²)(1−Δ⁴)^K) and its refutation
  // were news for all n members, so a cluster's gossip per member grew with n; a live member
  // fails the recheck too only with about that probability again.
  private recheck(index: number, suspicion: Suspicion, nowMs: number): void {
    const seq = this.nextSeq();
    suspicion.recheckSeq = seq;
    // At most half of the suspicion's time, however unhealthy this node (its health stretches the
    // probe timeout up to awarenessMax times): an announced suspect must have time to refute.
    const timeoutMs = this.awareness.scaleMs(this.config.probeTimeoutMs);
    suspicion.recheckUntilMs = nowMs + Math.min(timeoutMs, Math.floor((suspicion.deadlineMs - nowMs) / 2));
    const d = this.directory;
    this.writer.begin(this.header);
    this.writer.ping(seq, d.idBytes[index]!);
    this.send(d.hosts[index]!, d.udpPorts[index]!);
    this.askIndirectly(index, seq);
  }

  // An ACK under a recheck's sequence number: the suspect is up. The suspicion is withdrawn unless
  // others have accused the suspect too (theirs are public, and the suspect will refute them).
  private onRecheckAck(seq: number, nowMs: number): void {
    for (const [index, suspicion] of this.suspicions) {
      if (!suspicion.isPrivate || suspicion.recheckSeq !== seq) continue;
      suspicion.recheckUntilMs = Infinity;
      if (suspicion.confirmationCount > 0) return;
      this.suspicions.delete(index);
      this.state[index] = ALIVE;
      this.changedMs[index] = nowMs;
      this.stats.suspicionsWithdrawn++;
      this.emit(index, 'alive', nowMs);
      return;
    }
  }

  private nextProbeTarget(): number {
    // Two passes at most: the rest of this round, then a freshly shuffled one.
    for (let pass = 0; pass < 2; pass++) {
      while (this.probeCursor < this.probeCount) {
        const index = this.probeOrder[this.probeCursor++]!;
        const state = this.state[index];
        if (state === ALIVE || state === SUSPECT) return index;
      }
      this.reshuffle();
    }
    return -1;
  }

  // Starts a new round: drops forgotten members from the order and shuffles (Fisher–Yates).
  private reshuffle(): void {
    let kept = 0;
    const order = this.probeOrder;
    for (let i = 0; i < this.probeCount; i++) {
      const index = order[i]!;
      if (this.state[index] === UNKNOWN) this.inProbeOrder[index] = 0;
      else order[kept++] = index;
    }
    this.probeCount = kept;
    for (let i = kept - 1; i > 0; i--) {
      const j = this.random.int(i + 1);
      const swap = order[i]!;
      order[i] = order[j]!;
      order[j] = swap;
    }
    this.probeCursor = 0;
  }

  private addToProbeOrder(index: number, randomPlace: boolean): void {
    if (this.inProbeOrder[index] === 1) return;
    this.inProbeOrder[index] = 1;
    if (this.probeCount === this.probeOrder.length) {
      const bigger = new Int32Array(this.probeOrder.length * 2);
      bigger.set(this.probeOrder);
      this.probeOrder = bigger;
    }
    const order = this.probeOrder;
    const at = this.probeCount++;
    order[at] = index;
    // A newcomer takes a random place in the rest of this round (memberlist does the same), so
    // it is probed within a round without pushing everyone else back.
    if (randomPlace && at > this.probeCursor) {
      const j = this.probeCursor + this.random.int(at - this.probeCursor + 1);
      order[at] = order[j]!;
      order[j] = index;
    }
  }

  // Picks up to `count` distinct random live members other than this node and `except` into
  // `this.picks`; returns how many. With `aliveOnly`, suspects are skipped.
  private pickMembers(count: number, except: number, aliveOnly: boolean): number {
    let picked = 0;
    const n = this.probeCount;
    if (count <= 0 || n === 0) return 0;
    // Random draws; past a bound of attempts, a sweep from a random start finds the rest.
    const attemptsMax = 4 * count + 8;
    for (let attempt = 0; attempt < attemptsMax && picked < count; attempt++) {
      this.tryPick(this.probeOrder[this.random.int(n)]!, except, aliveOnly, picked) && picked++;
    }
    if (picked < count) {
      const start = this.random.int(n);
      for (let i = 0; i < n && picked < count; i++) {
        this.tryPick(this.probeOrder[(start + i) % n]!, except, aliveOnly, picked) && picked++;
      }
    }
    return picked;
  }

  private tryPick(index: number, except: number, aliveOnly: boolean, picked: number): boolean {
    if (index === except) return false;
    const state = this.state[index];
    if (state !== ALIVE && (aliveOnly || state !== SUSPECT)) return false;
    for (let i = 0; i < picked; i++) if (this.picks[i] === index) return false;
    this.picks[picked] = index;
    return true;
  }

  private expireRelays(nowMs: number): void {
    for (const [seq, relay] of this.relays) {
      if (!relay.nacked && relay.nackAtMs <= nowMs) {
        relay.nacked = true;
        this.writer.begin(this.header);
        this.writer.nack(relay.seq);
        this.send(relay.host, relay.port);
      }
      if (relay.expireAtMs <= nowMs) this.relays.delete(seq);
    }
  }

  // ---- suspicion, death, forgetting ----

  private expireSuspicions(nowMs: number): void {
    for (const [index, suspicion] of this.suspicions) {
      if (suspicion.recheckUntilMs <= nowMs) {
        suspicion.recheckUntilMs = Infinity;
        this.gossip.enqueue(index, this.ownSuspect(index));
      }
      if (suspicion.deadlineMs > nowMs) continue;
      // A suspicion nobody confirmed, in a cluster where confirmations were expected, rests on
      // one accuser: before declaring a death on it, this node asks the suspect itself once,
      // with the accusation attached. A live suspect answers with its ALIVE (refuting, or
      // repeating a refutation this node missed: with 5% loss, gossip misses a node now and
      // then), which clears the suspicion before the extended deadline.
      if (suspicion.confirmationsExpected > 0 && suspicion.confirmationCount === 0 && !suspicion.lastChanceSent) {
        suspicion.lastChanceSent = true;
        suspicion.deadlineMs = nowMs + this.awareness.scaleMs(this.config.probeTimeoutMs);
        this.stats.lastChanceProbes++;
        const d = this.directory;
        this.writer.begin(this.header);
        this.writer.ping(this.nextSeq(), d.idBytes[index]!);
        this.appendAccusation(index);
        this.send(d.hosts[index]!, d.udpPorts[index]!);
        continue;
      }
      this.stats.deathsDeclared++;
      const incarnation = this.incarnations[index]!;
      this.markDown(index, DEAD, incarnation, nowMs);
      this.gossip.enqueue(index, encodeDead(incarnation, this.directory.ids[index]!, this.id));
    }
  }

  private forgetDead(nowMs: number): void {
    const retention = this.config.deadRetentionMs;
    while (this.graveyardHead < this.graveyard.length) {
      const at = this.graveyardTimes[this.graveyardHead]!;
      if (at + retention > nowMs) break;
      const index = this.graveyard[this.graveyardHead++]!;
      const state = this.state[index];
      // A member that came back (or went down again later) is not this entry's to forget.
      if ((state === DEAD || state === LEFT) && this.changedMs[index] === at) {
        if (state === DEAD && this.config.reconnectRetentionMs > 0) this.forgottenDead.add(index);
        this.state[index] = UNKNOWN;
        this.changedMs[index] = nowMs;
        this.emit(index, 'forgotten', nowMs);
      }
    }
    if (this.graveyardHead > 1024 && this.graveyardHead * 2 > this.graveyard.length) {
      this.graveyard = this.graveyard.slice(this.graveyardHead);
      this.graveyardTimes = this.graveyardTimes.slice(this.graveyardHead);
      this.graveyardHead = 0;
    }
  }

  private markDown(index: number, state: typeof DEAD | typeof LEFT, incarnation: number, nowMs: number): void {
    const previous = this.state[index];
    assert(previous === ALIVE || previous === SUSPECT || (previous === DEAD && state === LEFT), 'only a member that is up goes down');
    if (previous !== DEAD) this.liveCount--;
    this.suspicions.delete(index);
    this.state[index] = state;
    this.incarnations[index] = incarnation;
    this.changedMs[index] = nowMs;
    this.graveyard.push(index);
    this.graveyardTimes.push(nowMs);
    this.emit(index, state === DEAD ? 'dead' : 'left', nowMs);
  }

  // A SUSPECT, DEAD or LEFT about this node. At or above its incarnation it is refuted with a
  // higher one. Below it, the accuser missed an earlier refutation: the ALIVE it missed is
  // gossiped again. Either way the accuser, when the message names it, also gets the ALIVE
  // straight away: gossip reaches almost everyone, but a lone accuser that gossip misses would
  // otherwise let its suspicion run out on a live node (the simulator showed it: 1,000 nodes at
  // 5% loss).
  private answerAccusation(incarnation: number, from: string | null, nowMs: number): void {
    if (this.leaving) return;
    if (incarnation >= this.incarnation) this.refute(incarnation, nowMs);
    else if (!this.gossip.has(this.selfIndex)) this.gossip.enqueue(this.selfIndex, this.selfAlive());
    const accuser = from === null ? undefined : this.known(from);
    if (accuser === undefined || accuser === this.selfIndex) return;
    const d = this.directory;
    this.writer.begin(this.header);
    this.writer.append(this.selfAlive());
    this.sendPacket(d.hosts[accuser]!, d.udpPorts[accuser]!);
  }

  private refute(accusedIncarnation: number, nowMs: number): void {
    // Nothing outbids the largest u32: ignore it rather than let a packet trip the assertion below.
    if (accusedIncarnation >= 0xffffffff) return;
    this.incarnation = Math.max(this.incarnation, accusedIncarnation) + 1;
    assert(this.incarnation <= 0xffffffff, 'incarnation fits u32');
    this.incarnations[this.selfIndex] = this.incarnation;
    this.changedMs[this.selfIndex] = nowMs;
    this.stats.suspicionsRefuted++;
    this.awareness.apply(1);
    this.gossip.enqueue(this.selfIndex, this.selfAlive());
  }

  // ---- messages ----

  private apply(type: number, host: string, port: number, nowMs: number, fromPushPull: boolean): void {
    const r = this.reader;
    switch (type) {
      case SwimMessageType.PING:
        if (!r.idEquals(this.directory.idBytes[this.selfIndex]!)) {
          this.stats.packetsMisdirected++;
          return;
        }
        this.writer.begin(this.header);
        this.writer.ack(r.number);
        this.accuseSender(host, port);
        this.send(host, port);
        return;
      case SwimMessageType.PING_REQ:
        this.relayPing(this.knownAt(r.idStart, r.idBytes), r.number, host, port, nowMs);
        return;
      case SwimMessageType.ACK:
        this.onAck(r.number, nowMs);
        return;
      case SwimMessageType.NACK:
        if (this.probeTarget >= 0 && r.number === this.probeSeq && !this.probeAcked) {
          this.nacksReceived++;
          this.stats.nacksIn++;
          // Every member asked has answered that the target is silent: the probe has failed,
          // and waiting out the interval would only delay the suspicion.
          if (this.nacksReceived === this.nacksExpected) this.finishProbe(nowMs);
        }
        return;
      // Most records repeat what this node already holds (gossip reaches each node many times),
      // so a record's member is found by its id's bytes, and strings are decoded only for a
      // record that may change something: the checks before each call below are the callee's
      // own first checks.
      case SwimMessageType.ALIVE:
        this.applyAlive(this.directory.findBytes(r.bytes, r.idStart, r.idBytes), nowMs);
        return;
      case SwimMessageType.SUSPECT: {
        const index = this.knownAt(r.idStart, r.idBytes);
        if (index === undefined || !this.accusationApplies(index, r.number, true)) return;
        this.applySuspect(index, r.number, r.from(), nowMs);
        return;
      }
      case SwimMessageType.DEAD: {
        const index = this.knownAt(r.idStart, r.idBytes);
        if (index === undefined || !this.accusationApplies(index, r.number, fromPushPull)) return;
        if (fromPushPull) this.applySuspect(index, r.number, r.from(), nowMs);
        else this.applyDead(index, r.number, r.from(), nowMs);
        return;
      }
      case SwimMessageType.LEFT: {
        const index = this.knownAt(r.idStart, r.idBytes);
        if (index !== undefined) this.applyLeft(index, r.number, nowMs);
        return;
      }
      default:
        assert(false, 'validated message types only');
    }
  }

  // The ALIVE the reader holds, about directory entry `index` (-1: none yet).
  private applyAlive(index: number, nowMs: number): void {
    const r = this.reader;
    const known = index < 0 ? undefined : this.ifKnown(index);
    if (known !== undefined && known !== this.selfIndex && r.number <= this.incarnations[known]!) return;
    this.onAlive(index, r.number, r.id(), r.host(), r.udpPort, r.tcpPort, nowMs);
  }

  // The directory index of a member this node knows (in any state), or undefined. In the
  // simulator the shared directory may hold ids this core has never heard of.
  private known(id: string): number | undefined {
    const index = this.directory.find(id);
    return index === undefined ? undefined : this.ifKnown(index);
  }

  // The same for the id at reader bytes [start, start + length).
  private knownAt(start: number, length: number): number | undefined {
    const index = this.directory.findBytes(this.reader.bytes, start, length);
    return index < 0 ? undefined : this.ifKnown(index);
  }

  private ifKnown(index: number): number | undefined {
    return index >= this.state.length || this.state[index] === UNKNOWN ? undefined : index;
  }

  // Whether the SUSPECT (`asSuspicion`) or DEAD the reader holds, at `incarnation` about a known
  // member, can change anything: it is about this node (to refute), or about a member that is
  // up, at or above the incarnation held; a suspicion of a suspect counts only while
  // confirmations may still come, and only from an accuser not counted yet (compared as bytes:
  // most such records repeat an accuser, and decode nothing).
  private accusationApplies(index: number, incarnation: number, asSuspicion: boolean): boolean {
    if (index === this.selfIndex) return true;
    const state = this.state[index];
    if ((state !== ALIVE && state !== SUSPECT) || incarnation < this.incarnations[index]!) return false;
    if (!asSuspicion || state !== SUSPECT || incarnation > this.incarnations[index]!) return true;
    const suspicion = this.suspicions.get(index);
    const r = this.reader;
    return (
      suspicion !== undefined &&
      suspicion.confirmationCount < suspicion.confirmationsExpected &&
      !suspicion.hasConfirmer(r.bytes, r.fromStart, r.fromBytes)
    );
  }

  private onAck(seq: number, nowMs: number): void {
    if (this.probeTarget >= 0 && seq === this.probeSeq) {
      if (!this.probeAcked) {
        this.probeAcked = true;
        this.awareness.apply(-1);
      }
      return;
    }
    const relay = this.relays.get(seq);
    if (relay === undefined) {
      if (this.suspicions.size > 0) this.onRecheckAck(seq, nowMs);
      return;
    }
    this.relays.delete(seq);
    this.writer.begin(this.header);
    this.writer.ack(relay.seq);
    this.send(relay.host, relay.port);
  }

  private relayPing(target: number | undefined, requesterSeq: number, host: string, port: number, nowMs: number): void {
    // Only members this node knows, at the address it knows: a PING_REQ cannot aim our pings
    // at arbitrary addresses.
    if (target === undefined || target === this.selfIndex || this.relays.size >= limits.swimRelaysMax) {
      this.stats.pingRequestsDropped++;
      return;
    }
    const seq = this.nextSeq();
    const timeoutMs = this.awareness.scaleMs(this.config.probeTimeoutMs);
    this.relays.set(seq, {
      host,
      port,
      seq: requesterSeq,
      nackAtMs: nowMs + Math.floor(timeoutMs * NACK_FRACTION),
      expireAtMs: nowMs + timeoutMs,
      nacked: false,
    });
    this.stats.pingRequestsRelayed++;
    const d = this.directory;
    this.writer.begin(this.header);
    this.writer.ping(seq, d.idBytes[target]!);
    this.send(d.hosts[target]!, d.udpPorts[target]!);
  }

  // `index`: the id's place in the directory, -1 if it has none yet.
  private onAlive(index: number, incarnation: number, id: string, host: string, udpPort: number, tcpPort: number, nowMs: number): void {
    const d = this.directory;
    if (index === this.selfIndex) {
      // News of an earlier life of this node (it restarted): outbid it.
      if (incarnation > this.incarnation && !this.leaving) this.refute(incarnation, nowMs);
      return;
    }
    if (index < 0) {
      index = d.intern(id, host, udpPort, tcpPort);
      if (index < 0) return;
    }
    this.grow(d.size);
    const state = this.state[index]!;
    if (state !== UNKNOWN && incarnation <= this.incarnations[index]!) return;
    if (d.hosts[index] !== host || d.udpPorts[index] !== udpPort || d.tcpPorts[index] !== tcpPort) {
      d.setAddress(index, host, udpPort, tcpPort);
    }
    if (state === UNKNOWN) this.addToProbeOrder(index, true);
    if (state !== ALIVE && state !== SUSPECT) this.liveCount++;
    this.suspicions.delete(index);
    this.state[index] = ALIVE;
    this.incarnations[index] = incarnation;
    this.changedMs[index] = nowMs;
    this.emit(index, 'alive', nowMs);
    this.gossip.enqueue(index, d.aliveRecord(index, incarnation));
  }

  private applySuspect(index: number, incarnation: number, from: string, nowMs: number): void {
    if (index === this.selfIndex) {
      this.answerAccusation(incarnation, from, nowMs);
      return;
    }
    const state = this.state[index];
    if ((state !== ALIVE && state !== SUSPECT) || incarnation < this.incarnations[index]!) return;
    const id = this.directory.ids[index]!;
    // A suspicion at a higher incarnation is news of a refutation this node missed followed by a
    // new suspicion: its timer starts now. (Taken as a confirmation of the old one, as memberlist
    // does, it cut short a timer that had run since before the refutation: a false DEAD in the
    // 1,000-node simulation.)
    if (state === SUSPECT && incarnation === this.incarnations[index]) {
      const suspicion = this.suspicions.get(index);
      // A new confirmation is news: pass it on so that others' timers shrink too.
      if (suspicion !== undefined && suspicion.confirm(from)) this.gossip.enqueue(index, encodeSuspect(incarnation, id, from));
      return;
    }
    this.beginSuspicion(index, incarnation, from, nowMs);
    this.gossip.enqueue(index, encodeSuspect(incarnation, id, from));
  }

  // Starts suspecting member `index`, which is alive or suspect at a lower incarnation.
  private beginSuspicion(index: number, incarnation: number, from: string, nowMs: number): Suspicion {
    const n = this.liveCount;
    const expected = n - 2 < this.config.suspicionMult - 2 ? 0 : this.config.suspicionMult - 2;
    const minMs = suspicionTimeoutMinMs(this.config.suspicionMult, n, this.config.probeIntervalMs);
    const suspicion = new Suspicion(from, nowMs, expected, minMs, minMs * this.config.suspicionMaxTimeoutMult);
    this.suspicions.set(index, suspicion);
    this.state[index] = SUSPECT;
    this.incarnations[index] = incarnation;
    this.changedMs[index] = nowMs;
    this.emit(index, 'suspect', nowMs);
    return suspicion;
  }

  private applyDead(index: number, incarnation: number, from: string, nowMs: number): void {
    if (index === this.selfIndex) {
      this.answerAccusation(incarnation, from, nowMs);
      return;
    }
    const state = this.state[index];
    if ((state !== ALIVE && state !== SUSPECT) || incarnation < this.incarnations[index]!) return;
    this.markDown(index, DEAD, incarnation, nowMs);
    this.gossip.enqueue(index, encodeDead(incarnation, this.directory.ids[index]!, from));
  }

  private applyLeft(index: number, incarnation: number, nowMs: number): void {
    if (index === this.selfIndex) {
      this.answerAccusation(incarnation, null, nowMs);
      return;
    }
    const state = this.state[index];
    if (state === UNKNOWN || state === LEFT || incarnation < this.incarnations[index]!) return;
    this.markDown(index, LEFT, incarnation, nowMs);
    this.gossip.enqueue(index, encodeLeft(incarnation, this.directory.ids[index]!));
  }

  // ---- gossip and output ----

  private gossipRound(): void {
    const count = this.pickMembers(this.config.gossipNodes, -1, false);
    const d = this.directory;
    for (let i = 0; i < count && this.gossip.length > 0; i++) {
      const to = this.picks[i]!;
      this.writer.begin(this.header);
      // A suspect that gossip reaches hears the accusation too (see accuseSender).
      const accused = this.state[to] === SUSPECT && this.appendAccusation(to);
      if (this.gossip.fill(this.writer, this.transmitLimit()) === 0 && !accused) break;
      this.stats.gossipPackets++;
      this.sendPacket(d.hosts[to]!, d.udpPorts[to]!);
    }
  }

  private schedulePushPull(nowMs: number): void {
    const d = this.directory;
    if (this.pickMembers(1, -1, true) > 0) {
      const index = this.picks[0]!;
      this.pushPulls.push({ id: d.ids[index]!, host: d.hosts[index]!, tcpPort: d.tcpPorts[index]! });
    }
    // And one with a random dead member, as Serf's reconnect does: after a partition long enough
    // for each side to declare the other dead, nothing else crosses (dead members are neither
    // probed nor gossiped to), and the sides would stay apart. A member that is up answers with
    // its state, refutes its death, and the sides merge. Members forgotten while dead stay
    // candidates for reconnectRetentionMs, so that a partition outlasting deadRetentionMs heals
    // too. (The exchange names the member it is meant for; whoever else now has its address
    // refuses it.)
    let dead = -1;
    let seen = 0;
    for (let i = 0; i < this.probeCount; i++) {
      const index = this.probeOrder[i]!;
      if (this.state[index] === DEAD && this.random.int(++seen) === 0) dead = index;
    }
    for (const index of this.forgottenDead) {
      if (this.state[index] !== UNKNOWN || this.changedMs[index]! + this.config.reconnectRetentionMs <= nowMs) this.forgottenDead.delete(index);
      else if (this.random.int(++seen) === 0) dead = index;
    }
    if (dead >= 0) {
      this.stats.reconnectPushPulls++;
      this.pushPulls.push({ id: d.ids[dead]!, host: d.hosts[dead]!, tcpPort: d.tcpPorts[dead]! });
    }
  }

  private pushPullIntervalMs(): number {
    // memberlist's pushPullScale: past 32 members, one more interval per doubling.
    const n = this.liveCount;
    const scale = n <= 32 ? 1 : Math.ceil(Math.log2(n) - Math.log2(32)) + 1;
    return this.config.pushPullIntervalMs * scale;
  }

  private transmitLimit(): number {
    return this.config.retransmitMult * Math.ceil(Math.log10(this.liveCount + 1));
  }

  // Piggybacks gossip on the packet being written, then queues it.
  private send(host: string, port: number): void {
    this.gossip.fill(this.writer, this.transmitLimit());
    this.sendPacket(host, port);
  }

  private sendPacket(host: string, port: number): void {
    const bytes = this.writer.finish();
    this.stats.packetsOut++;
    this.stats.bytesOut += bytes.length;
    let entry = this.outbox[this.outboxCount];
    if (entry === undefined) {
      entry = { host, port, bytes };
      this.outbox.push(entry);
    } else {
      entry.host = host;
      entry.port = port;
      entry.bytes = bytes;
    }
    this.outboxCount++;
  }

  private emit(index: number, status: MemberStatus | 'forgotten', nowMs: number): void {
    const d = this.directory;
    this.events.push({
      id: d.ids[index]!,
      status,
      incarnation: this.incarnations[index]!,
      host: d.hosts[index]!,
      udpPort: d.udpPorts[index]!,
      tcpPort: d.tcpPorts[index]!,
      atMs: nowMs,
    });
  }

  private selfAlive(): Buffer {
    return this.directory.aliveRecord(this.selfIndex, this.incarnation);
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  private grow(size: number): void {
    if (size <= this.state.length) return;
    let capacity = this.state.length;
    while (capacity < size) capacity *= 2;
    const state = new Uint8Array(capacity);
    state.set(this.state);
    this.state = state;
    const incarnations = new Uint32Array(capacity);
    incarnations.set(this.incarnations);
    this.incarnations = incarnations;
    const changed = new Float64Array(capacity);
    changed.set(this.changedMs);
    this.changedMs = changed;
    const inOrder = new Uint8Array(capacity);
    inOrder.set(this.inProbeOrder);
    this.inProbeOrder = inOrder;
  }
}

const EMPTY = Buffer.alloc(0);
