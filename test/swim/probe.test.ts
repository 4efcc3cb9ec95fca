// Probing: PING and ACK, the indirect path through PING_REQ (an ACK forwarded, a NACK when the
// target is silent), the SUSPECT a PING to a suspect carries, and Lifeguard's local health
// (awareness) rising on missed NACKs, falling on ACKs and stretching the probe interval.
import t from 'tap';
import { limits } from '../../src/lib/limits.js';
import { SwimMessageType } from '../../src/wire/codes.js';
import { encodeAlive, encodeSuspect } from '../../src/wire/swim-codec.js';
import {
  ack,
  Harness,
  HEADER,
  hostOf,
  idOf,
  messagesOf,
  nack,
  ping,
  pingReq,
  type Sent,
  Solo,
  TCP_PORT,
  UDP_PORT,
} from '../helpers/swim-harness.js';

const { PING, PING_REQ, ACK, NACK, SUSPECT } = SwimMessageType;
const aliveOf = (i: number, incarnation: number): Buffer => encodeAlive(incarnation, idOf(i), hostOf(i), UDP_PORT, TCP_PORT);

// n0 knowing n1..n`count` alive.
function soloKnowing(count: number, config = {}): Solo {
  const solo = new Solo(config);
  solo.feed(1, ...Array.from({ length: count }, (_, i) => aliveOf(i + 1, 0)));
  solo.drain();
  solo.events.length = 0;
  solo.sent.length = 0;
  return solo;
}

// The first PING in `sent`, as [its packet, its message].
function firstPing(sent: Sent[]): [Sent, { number: number; id?: string }] | undefined {
  for (const packet of sent) {
    const m = packet.messages.find((x) => x.type === PING);
    if (m !== undefined) return [packet, m];
  }
  return undefined;
}

// Runs the core to its next probe; returns the PING's packet and message. (A failed probe's
// recheck sends a PING in the same tick, before the next probe's.)
function nextProbe(solo: Solo): [Sent, { number: number; id?: string }] {
  for (let i = 0; i < 100; i++) {
    const probes = solo.core.stats.probes;
    const sent = solo.runTo(solo.core.nextDeadlineMs());
    if (solo.core.stats.probes === probes) continue;
    const host = solo.core.directory.hosts[solo.core.probeTargetIndex]!;
    const found = firstPing(sent.filter((p) => p.host === host).reverse());
    if (found !== undefined) return found;
  }
  throw new Error('no probe');
}

t.test('a PING is answered with an ACK of its seq to the sender', async (t) => {
  const solo = soloKnowing(2);
  solo.feed(2, ping(0xdeadbeef, idOf(0)));
  const { out } = solo.drain();
  t.same(out.map((p) => [p.host, p.port, p.messages[0]]), [[hostOf(2), UDP_PORT, { type: ACK, number: 0xdeadbeef }]]);
  // An unknown sender is answered too (a joining node probes before anyone knows it).
  solo.feed(9, ping(1, idOf(0)));
  t.same(solo.drain().out.map((p) => [p.host, p.messages[0]]), [[hostOf(9), { type: ACK, number: 1 }]]);
  t.end();
});

t.test('a probe ACKed in time: no indirect probe, no suspicion', async (t) => {
  const solo = soloKnowing(3);
  const sent = solo.runTo(5000, true);
  const pings = sent.filter((p) => p.messages.some((m) => m.type === PING));
  t.ok(pings.length >= 45, `${pings.length} probes in 5 s at 100 ms`);
  t.equal(sent.filter((p) => p.messages.some((m) => m.type === PING_REQ)).length, 0);
  t.same(solo.events, []);
  t.equal(solo.core.stats.probesFailed, 0);
  t.equal(solo.core.awareness.score, 0);
  // Round robin: each member probed in every round of three.
  const targets = pings.map((p) => p.messages.find((m) => m.type === PING)!.id);
  for (let round = 0; round + 3 <= targets.length; round += 3) {
    t.same([...targets.slice(round, round + 3)].sort(), [idOf(1), idOf(2), idOf(3)], `round ${round / 3}`);
  }
  t.end();
});

t.test('a silent target: PING_REQ to indirectChecks other alive members, then suspicion', async (t) => {
  const solo = soloKnowing(5);
  // Make n5 a suspect first: indirect probes go only through alive members.
  solo.feed(2, encodeSuspect(0, idOf(5), idOf(2)));
  solo.drain();
  const sent = solo.runTo(1000);
  const [first, probe] = firstPing(sent)!;
  const target = first.host;
  const requests = sent.filter((p) => p.atMs === first.atMs + 40 && p.messages[0]!.type === PING_REQ);
  t.equal(requests.length, 3, 'indirectChecks PING_REQs after the probe timeout');
  for (const r of requests) {
    t.same(r.messages[0], { type: PING_REQ, number: probe.number, id: probe.id }, 'same seq, the target');
    t.not(r.host, target, 'not through the target');
    t.not(r.host, hostOf(5), 'not through a suspect');
  }
  t.equal(new Set(requests.map((r) => r.host)).size, 3, 'through three different members');
  t.ok(solo.core.stats.indirectProbes >= 3);
  t.ok(solo.core.stats.suspicionsRaised >= 1);
  const status = solo.core.members().find((m) => m.host === target)!.status;
  t.ok(status === 'suspect' || status === 'dead', `the silent target is ${status}`);
  t.end();
});

// Lets n0's next probe go unanswered until its recheck is sent (when the next probe starts);
// returns the failed target and the recheck's packets.
function failProbe(solo: Solo): { target: number; recheck: Sent[] } {
  const [packet] = nextProbe(solo);
  const target = solo.indexOfHost(packet.host);
  // The interval, stretched by the health score at the probe's start.
  const sent = solo.runTo(packet.atMs + 100 * (solo.core.awareness.score + 1));
  const ping = sent.find((p) => p.host === packet.host && p.messages[0]!.type === PING)!;
  const seq = ping.messages[0]!.number;
  return { target, recheck: sent.filter((p) => p.atMs === ping.atMs && p.messages[0]!.number === seq) };
}

const suspectsIn = (messages: Array<{ type: number; id?: string }>, i: number): boolean => messages.some((m) => m.type === SUSPECT && m.id === idOf(i));
const pushPullState = (solo: Solo) => messagesOf(Buffer.concat([HEADER, solo.core.localState()]))!;

t.test('a failed probe is rechecked before anyone hears of the suspicion; an answer withdraws it', async (t) => {
  const solo = soloKnowing(5);
  const { target, recheck } = failProbe(solo);
  t.equal(solo.statusOf(target), 'suspect', 'suspected here at once');
  t.equal(solo.core.stats.suspicionsRaised, 1);
  t.same(
    recheck.map((p) => [p.messages[0]!.type, p.messages[0]!.id, p.host === hostOf(target)]),
    [[PING, idOf(target), true], ...Array.from({ length: 3 }, () => [PING_REQ, idOf(target), false])],
    'a PING to the suspect and PING_REQs through three others, under one seq',
  );
  t.notOk(recheck.some((p) => suspectsIn(p.messages, target)), 'the recheck accuses nobody');
  t.notOk(suspectsIn(pushPullState(solo), target), 'nor does the push-pull state');
  solo.feed(target, ping(5, idOf(0)));
  t.notOk(suspectsIn(solo.drain().out[0]!.messages, target), 'nor the ACK to the suspect');
  // The suspect answers through a relay, in time.
  solo.nowMs += 30;
  solo.feed(solo.indexOfHost(recheck[1]!.host), ack(recheck[0]!.messages[0]!.number));
  t.equal(solo.statusOf(target), 'alive', 'withdrawn');
  t.equal(solo.incarnationOf(target), 0);
  t.equal(solo.core.stats.suspicionsWithdrawn, 1);
  solo.drain();
  t.same(
    solo.events.filter((e) => e.id === idOf(target)).map((e) => e.status),
    ['suspect', 'alive'],
  );
  solo.runTo(solo.nowMs + 1000, true);
  t.notOk(solo.sent.some((p) => suspectsIn(p.messages, target)), 'no SUSPECT ever sent');
  t.end();
});

t.test('a recheck unanswered within the probe timeout announces the suspicion', async (t) => {
  const solo = soloKnowing(5);
  const { target, recheck } = failProbe(solo);
  const startMs = recheck[0]!.atMs;
  // The failed probe raised this node's health score (no NACKs came), which stretches the timeout.
  const timeoutMs = 40 * (solo.core.awareness.score + 1);
  const sent = solo.runTo(startMs + 2 * timeoutMs);
  const first = sent.find((p) => suspectsIn(p.messages, target));
  t.ok(first !== undefined, 'the SUSPECT went out');
  t.equal(first!.atMs, startMs + timeoutMs, 'when the recheck timed out');
  t.same(first!.messages.find((m) => m.type === SUSPECT), { type: SUSPECT, number: 0, id: idOf(target), from: idOf(0) });
  t.ok(suspectsIn(pushPullState(solo), target), 'and is in the push-pull state');
  // A late answer to the recheck changes nothing now: the suspect must refute in public.
  solo.feed(target, ack(recheck[0]!.messages[0]!.number));
  t.equal(solo.statusOf(target), 'suspect');
  t.equal(solo.core.stats.suspicionsWithdrawn, 0);
  t.end();
});

t.test('however unhealthy the node, the recheck takes at most half of the suspicion timeout', async (t) => {
  // Three members: no confirmations expected, so the timer is its minimum, 4 · 1 · 100 = 400 ms.
  const solo = soloKnowing(2);
  for (let i = 0; i < 20; i++) solo.core.noteLateTick(1000);
  t.equal(solo.core.awareness.score, 7, 'the probe timeout is stretched 8 times: 320 ms');
  const { target, recheck } = failProbe(solo);
  const startMs = recheck[0]!.atMs;
  const first = solo.runTo(startMs + 400).find((p) => suspectsIn(p.messages, target));
  t.equal(first?.atMs, startMs + 200, 'announced at half of the 400 ms, not at 320 ms');
  t.end();
});

t.test('a suspicion others confirmed while it was rechecked is not withdrawn by an answer', async (t) => {
  const solo = soloKnowing(5);
  const { target, recheck } = failProbe(solo);
  const other = [1, 2, 3, 4, 5].find((i) => i !== target)!;
  solo.feed(other, encodeSuspect(0, idOf(target), idOf(other)));
  solo.feed(target, ack(recheck[0]!.messages[0]!.number));
  t.equal(solo.statusOf(target), 'suspect', 'another member accuses it in public: the suspect must refute that');
  t.equal(solo.core.stats.suspicionsWithdrawn, 0);
  t.end();
});

t.test('an ACK forwarded through the indirect path saves the target', async (t) => {
  const solo = soloKnowing(4);
  solo.runTo(200, true);
  const before = solo.core.stats.probesFailed;
  // A fresh probe: let it time out, and answer through a relay with the probe's seq.
  const [packet, probe] = nextProbe(solo);
  const more = solo.runTo(packet.atMs + 40);
  const request = more.find((p) => p.messages[0]!.type === PING_REQ)!;
  t.ok(request !== undefined, 'PING_REQ sent');
  solo.feed(solo.indexOfHost(request.host), ack(probe.number));
  solo.runTo(packet.atMs + 100);
  t.equal(solo.core.stats.probesFailed, before, 'the forwarded ACK counts as the probe answered');
  t.notOk(solo.events.some((e) => e.status === 'suspect' && e.host === packet.host), 'no suspicion');
  t.end();
});

t.test('relay: PING_REQ pings the target; its ACK is forwarded with the requester seq', async (t) => {
  const solo = soloKnowing(3);
  solo.feed(1, pingReq(77, idOf(2)));
  const { out } = solo.drain();
  t.equal(out.length, 1);
  t.equal(out[0]!.host, hostOf(2), 'PING to the target at the address this node knows');
  const relayed = out[0]!.messages[0]!;
  t.same([relayed.type, relayed.id], [PING, idOf(2)]);
  t.not(relayed.number, 77, 'with a seq of its own');
  t.equal(solo.core.stats.pingRequestsRelayed, 1);
  solo.nowMs = 10;
  solo.feed(2, ack(relayed.number));
  t.same(
    solo.drain().out.map((p) => [p.host, p.messages[0]]),
    [[hostOf(1), { type: ACK, number: 77 }]],
    'ACK forwarded to the requester',
  );
  // Once only: a duplicate ACK is not forwarded again, and no NACK follows.
  solo.feed(2, ack(relayed.number));
  const later = solo.runTo(1000, true);
  t.equal(later.filter((p) => p.host === hostOf(1) && p.messages.some((m) => m.number === 77)).length, 0);
  t.end();
});

t.test('relay: a silent target gets the requester a NACK within the probe timeout', async (t) => {
  const solo = soloKnowing(3, { probeIntervalMs: 100_000, probeTimeoutMs: 50_000 });
  solo.feed(1, pingReq(78, idOf(2)));
  const relayed = solo.drain().out[0]!.messages[0]!;
  const sent = solo.runTo(50_000);
  const nacks = sent.filter((p) => p.messages.some((m) => m.type === NACK));
  t.equal(nacks.length, 1, 'one NACK');
  t.equal(nacks[0]!.host, hostOf(1));
  t.same(nacks[0]!.messages[0], { type: NACK, number: 78 });
  t.ok(nacks[0]!.atMs <= 50_000, `sent at ${nacks[0]!.atMs} ms, within the probe timeout`);
  // The target answers after the relay gave up: nothing is forwarded.
  solo.nowMs = 60_000;
  solo.feed(2, ack(relayed.number));
  t.equal(solo.drain().out.length, 0, 'a late ACK is not forwarded');
  t.end();
});

t.test('relay: PING_REQ for an unknown member, for this node, or past the relay limit is dropped', async (t) => {
  const solo = soloKnowing(2);
  solo.feed(1, pingReq(1, idOf(9)), pingReq(2, idOf(0)));
  t.equal(solo.core.stats.pingRequestsDropped, 2);
  t.equal(solo.drain().out.length, 0);
  for (let i = 0; i < limits.swimRelaysMax + 10; i++) solo.feed(1, pingReq(100 + i, idOf(2)));
  t.equal(solo.core.stats.pingRequestsRelayed, limits.swimRelaysMax);
  t.equal(solo.core.stats.pingRequestsDropped, 12);
  solo.drain();
  // All expire, each with a NACK, and the table is free again.
  const sent = solo.runTo(2000, true);
  t.equal(sent.filter((p) => p.messages.some((m) => m.type === NACK)).length, limits.swimRelaysMax);
  solo.feed(1, pingReq(9999, idOf(2)));
  t.equal(solo.core.stats.pingRequestsRelayed, limits.swimRelaysMax + 1);
  t.end();
});

t.test('a PING to a suspect carries the SUSPECT, so it can refute at once', async (t) => {
  const solo = soloKnowing(2);
  solo.feed(2, encodeSuspect(0, idOf(1), idOf(2)));
  solo.drain();
  const sent = solo.runTo(600, true);
  const toSuspect = sent.filter((p) => p.host === hostOf(1) && p.messages[0]!.type === PING);
  t.ok(toSuspect.length >= 1, 'the suspect is still probed');
  for (const p of toSuspect) {
    t.same(p.messages.slice(0, 2), [
      { type: PING, number: p.messages[0]!.number, id: idOf(1) },
      { type: SUSPECT, number: 0, id: idOf(1), from: idOf(0) },
    ]);
  }
  // PINGs to an alive member carry no accusation of it.
  for (const p of sent.filter((x) => x.host === hostOf(2) && x.messages[0]!.type === PING)) {
    t.notOk(p.messages.some((m) => m.type === SUSPECT && m.id === idOf(2)));
  }
  t.end();
});

t.test('the ACK to a suspect, and gossip sent to it, carry the SUSPECT (after a partition heals, they reach it first)', async (t) => {
  const solo = soloKnowing(3);
  solo.feed(2, encodeSuspect(0, idOf(1), idOf(2)));
  solo.drain();
  solo.feed(1, ping(77, idOf(0)));
  const ack = solo.drain().out.find((p) => p.host === hostOf(1))!;
  t.same(ack.messages.slice(0, 2), [
    { type: ACK, number: 77 },
    { type: SUSPECT, number: 0, id: idOf(1), from: idOf(0) },
  ], 'the ACK to the suspect accuses it');
  solo.feed(3, ping(78, idOf(0)));
  const toAlive = solo.drain().out.find((p) => p.host === hostOf(3))!;
  t.notOk(toAlive.messages.some((m) => m.type === SUSPECT && m.id === idOf(3)), 'an ACK to an alive member accuses nobody of it');
  const gossipToSuspect = solo.runTo(2_000).filter((p) => p.host === hostOf(1) && p.messages[0]!.type !== PING);
  t.ok(gossipToSuspect.length >= 1, 'gossip went to the suspect');
  for (const p of gossipToSuspect) {
    t.same(p.messages[0], { type: SUSPECT, number: 0, id: idOf(1), from: idOf(0) }, 'and led with the accusation');
  }
  t.end();
});

t.test('a PING that carries a SUSPECT of its target is ACKed and the suspicion refuted', async (t) => {
  const solo = soloKnowing(2);
  solo.feed(1, ping(41, idOf(0)), encodeSuspect(0, idOf(0), idOf(1)));
  t.equal(solo.core.currentIncarnation, 1);
  t.equal(solo.core.stats.suspicionsRefuted, 1);
  const { out } = solo.drain();
  t.same(out[0]!.messages[0], { type: ACK, number: 41 }, 'ACKed');
  const gossip = solo.runTo(solo.nowMs + 20).flatMap((p) => p.messages);
  t.ok(gossip.some((m) => m.type === SwimMessageType.ALIVE && m.id === idOf(0) && m.number === 1), 'ALIVE 1 gossiped');
  t.end();
});

// Whether any packet so far carried a SUSPECT about member `i`.
const announced = (h: Harness, i: number): boolean =>
  h.packets.some((p) => messagesOf(p.bytes)!.some((m) => m.type === SUSPECT && m.id === idOf(i)));

t.test('cluster: a suspect that answers the recheck is cleared without a word to anyone else', async (t) => {
  const h = new Harness({ count: 4, formed: true, seed: 3 });
  const suspected = (): boolean => h.eventsAbout(1, 'suspect').length > 0;
  // n1's ACKs are lost until someone suspects it.
  h.drops.push((p) => p.from === 1 && !suspected() && messagesOf(p.bytes)!.some((m) => m.type === ACK));
  h.run(2000);
  const accuser = h.eventsAbout(1, 'suspect')[0]?.by;
  t.ok(accuser !== undefined, 'n1 suspected');
  const core = h.nodes.find((n) => n.id === accuser)!;
  t.equal(core.stats.suspicionsRaised, 1);
  t.equal(core.stats.suspicionsWithdrawn, 1, 'withdrawn when n1 answered the recheck');
  t.notOk(announced(h, 1), 'no SUSPECT about n1 was ever sent');
  t.same(
    h.observed.filter((o) => o.event.id === idOf(1)).map((o) => [o.by, o.event.status, o.event.incarnation]),
    [
      [accuser, 'suspect', 0],
      [accuser, 'alive', 0],
    ],
    'only the accuser ever saw a change, and n1 kept its incarnation',
  );
  t.equal(h.node(1).stats.suspicionsRefuted, 0);
  t.ok(h.agree({ 0: 'alive', 1: 'alive', 2: 'alive', 3: 'alive' }), 'alive everywhere');
  t.end();
});

t.test('cluster: a suspect silent to the recheck is announced; it hears the SUSPECT, refutes it and is alive again everywhere', async (t) => {
  const h = new Harness({ count: 4, formed: true, seed: 3 });
  // n1's ACKs are lost until someone announces a suspicion of it.
  h.drops.push((p) => p.from === 1 && !announced(h, 1) && messagesOf(p.bytes)!.some((m) => m.type === ACK));
  h.run(2000);
  const first = h.eventsAbout(1, 'suspect')[0]!;
  const accuser = h.nodes.find((n) => n.id === first.by)!;
  const announcement = h.packets.find((p) => messagesOf(p.bytes)!.some((m) => m.type === SUSPECT && m.id === idOf(1)))!;
  t.equal(announcement.atMs - first.atMs, h.config.probeTimeoutMs, 'announced when the recheck timed out');
  t.equal(accuser.stats.suspicionsWithdrawn, 0);
  const heard = h.packets.filter((p) => p.to === 1 && messagesOf(p.bytes)!.some((m) => m.type === SUSPECT && m.id === idOf(1)));
  t.ok(heard.length >= 1, 'the SUSPECT reached n1 (piggybacked on a PING or gossiped)');
  t.ok(h.node(1).stats.suspicionsRefuted >= 1, 'n1 refuted');
  t.ok(h.node(1).currentIncarnation >= 1);
  h.run(2000);
  t.ok(h.agree({ 0: 'alive', 1: 'alive', 2: 'alive', 3: 'alive' }), 'alive everywhere');
  for (const i of [0, 2, 3]) {
    t.equal(h.node(i).members().find((m) => m.id === idOf(1))!.incarnation, h.node(1).currentIncarnation, `${idOf(i)} has the refutation`);
  }
  t.same(h.eventsAbout(1, 'dead'), [], 'never declared dead');
  t.end();
});

t.test('cluster: the indirect path keeps a member alive when the direct path is cut', async (t) => {
  const h = new Harness({ count: 3, formed: true, seed: 5 });
  h.drops.push((p) => (p.from === 0 && p.to === 2) || (p.from === 2 && p.to === 0));
  h.run(3000);
  t.ok(h.node(0).stats.indirectProbes > 0, 'n0 probed n2 indirectly');
  t.ok(h.node(1).stats.pingRequestsRelayed > 0, 'n1 relayed');
  t.equal(h.node(0).stats.probesFailed, 0, 'every probe answered');
  t.equal(h.node(2).stats.probesFailed, 0);
  t.same(h.observed, [], 'no membership change at all');
  t.end();
});

t.test('cluster: relays NACK a silent target in time for the requester to count them', async (t) => {
  // The LAN ratio of timeout to interval (1 : 2), where a NACK sent at the full timeout would
  // reach the requester after its probe had ended.
  const h = new Harness({ count: 5, formed: true, seed: 9, config: { probeIntervalMs: 100, probeTimeoutMs: 50 } });
  h.run(500);
  h.crash(4);
  h.run(400);
  const requester = h.nodes.find((n) => n.stats.indirectProbes > 0);
  t.ok(requester !== undefined, 'someone probed the crashed member indirectly');
  t.ok(requester!.stats.nacksIn > 0, `${requester!.id} counted ${requester!.stats.nacksIn} NACKs`);
  // Its peers answered: its own health is not blamed for the failed probe.
  t.ok(requester!.awareness.score <= 1, `awareness ${requester!.awareness.score}`);
  t.end();
});

t.test('awareness: missed NACKs raise it, ACKs lower it, and it stretches the probe interval', async (t) => {
  // Ten members, so that three alive ones are left to ask even after a few suspicions.
  const solo = soloKnowing(10);
  // Lets the probe time out, then answers `nacks` of its three PING_REQs with a NACK.
  const fail = ([packet, probe]: [Sent, { number: number }], nacks: number): void => {
    const sent = solo.runTo(packet.atMs + 40 * (solo.core.awareness.score + 1));
    const requests = sent.filter((p) => p.messages[0]!.type === PING_REQ);
    if (requests.length !== 3) throw new Error(`${requests.length} PING_REQs`);
    for (const r of requests.slice(0, nacks)) solo.feed(solo.indexOfHost(r.host), nack(probe.number));
  };
  const answer = ([packet, probe]: [Sent, { number: number }]): void => {
    solo.feed(solo.indexOfHost(packet.host), ack(probe.number));
  };
  // A probe's result is applied when the next one starts; an ACK counts at once.
  fail(nextProbe(solo), 1);
  let probe = nextProbe(solo);
  t.equal(solo.core.awareness.score, 2, 'a failed probe with 1 of 3 NACKs: +2');
  t.equal(solo.core.stats.nacksIn, 1);
  answer(probe);
  t.equal(solo.core.awareness.score, 1, 'an ACK: -1');
  fail(nextProbe(solo), 3);
  probe = nextProbe(solo);
  t.equal(solo.core.awareness.score, 1, 'all three NACKs came: the target is at fault, not this node (+0)');
  answer(probe);
  t.equal(solo.core.awareness.score, 0);
  fail(nextProbe(solo), 0);
  probe = nextProbe(solo);
  t.equal(solo.core.awareness.score, 3, 'no NACK came back: +3');
  // From here every probe is ACKed: the score falls by one a probe, and each probe's interval
  // is probeIntervalMs × (score + 1) at its start.
  const starts: Array<[number, number]> = [[probe[0].atMs, solo.core.awareness.score]];
  answer(probe);
  for (let i = 0; i < 4; i++) {
    probe = nextProbe(solo);
    starts.push([probe[0].atMs, solo.core.awareness.score]);
    answer(probe);
  }
  t.same(
    starts.map(([, score]) => score),
    [3, 2, 1, 0, 0],
  );
  t.same(
    starts.slice(1).map(([at], i) => at - starts[i]![0]),
    [400, 300, 200, 100],
    'probe interval stretched by score + 1',
  );
  // Never above awarenessMax − 1, never below 0.
  for (let i = 0; i < 20; i++) solo.core.noteLateTick(1000);
  t.equal(solo.core.awareness.score, 7);
  t.equal(solo.core.stats.lateTicks, 20);
  solo.core.noteLateTick(1);
  t.equal(solo.core.stats.lateTicks, 20, 'a small lateness is not counted');
  t.end();
});

t.test('awareness: a failed probe with nobody to ask indirectly costs 1', async (t) => {
  const solo = soloKnowing(1);
  nextProbe(solo);
  const sent = solo.runTo(solo.nowMs + 100);
  t.equal(sent.filter((p) => p.messages[0]!.type === PING_REQ).length, 0, 'no one to ask');
  t.equal(solo.core.awareness.score, 1);
  t.end();
});
