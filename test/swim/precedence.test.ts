// The precedence rules at the top of core.ts, message by message against every state, and the
// refutation of accusations against this node. One core fed crafted datagrams; nothing sleeps.
import t from 'tap';
import { SwimMessageType } from '../../src/wire/codes.js';
import { encodeAlive, encodeDead, encodeLeft, encodeSuspect } from '../../src/wire/swim-codec.js';
import { hostOf, idOf, Solo, TCP_PORT, UDP_PORT } from '../helpers/swim-harness.js';

const aliveOf = (i: number, incarnation: number): Buffer => encodeAlive(incarnation, idOf(i), hostOf(i), UDP_PORT, TCP_PORT);

type Status = 'alive' | 'suspect' | 'dead' | 'left';
type Kind = 'ALIVE' | 'SUSPECT' | 'DEAD' | 'LEFT';

// Member n1 brought to `status` at incarnation 5 (n2 is the accuser where one is needed).
function soloWith(status: Status): Solo {
  const solo = new Solo();
  solo.feed(1, aliveOf(1, 5));
  solo.feed(2, aliveOf(2, 0));
  if (status === 'suspect') solo.feed(2, encodeSuspect(5, idOf(1), idOf(2)));
  if (status === 'dead') solo.feed(2, encodeDead(5, idOf(1), idOf(2)));
  if (status === 'left') solo.feed(1, encodeLeft(5, idOf(1)));
  solo.drain();
  return solo;
}

function messageOf(kind: Kind, incarnation: number): Buffer {
  switch (kind) {
    case 'ALIVE':
      return aliveOf(1, incarnation);
    case 'SUSPECT':
      return encodeSuspect(incarnation, idOf(1), idOf(3));
    case 'DEAD':
      return encodeDead(incarnation, idOf(1), idOf(3));
    case 'LEFT':
      return encodeLeft(incarnation, idOf(1));
  }
}

// [state held, message, its incarnation, status after, incarnation after]. Held incarnation is 5.
const TABLE: Array<[Status, Kind, number, Status, number]> = [
  // ALIVE applies only above the incarnation held, whatever the state.
  ['alive', 'ALIVE', 4, 'alive', 5],
  ['alive', 'ALIVE', 5, 'alive', 5],
  ['alive', 'ALIVE', 6, 'alive', 6],
  ['suspect', 'ALIVE', 4, 'suspect', 5],
  ['suspect', 'ALIVE', 5, 'suspect', 5],
  ['suspect', 'ALIVE', 6, 'alive', 6],
  ['dead', 'ALIVE', 4, 'dead', 5],
  ['dead', 'ALIVE', 5, 'dead', 5],
  ['dead', 'ALIVE', 6, 'alive', 6],
  ['left', 'ALIVE', 4, 'left', 5],
  ['left', 'ALIVE', 5, 'left', 5],
  ['left', 'ALIVE', 6, 'alive', 6],
  // SUSPECT: to an alive member at ≥ ours; to a suspect one at ours a confirmation (state
  // unchanged), above ours a new suspicion at that incarnation.
  ['alive', 'SUSPECT', 4, 'alive', 5],
  ['alive', 'SUSPECT', 5, 'suspect', 5],
  ['alive', 'SUSPECT', 6, 'suspect', 6],
  ['suspect', 'SUSPECT', 4, 'suspect', 5],
  ['suspect', 'SUSPECT', 5, 'suspect', 5],
  ['suspect', 'SUSPECT', 6, 'suspect', 6],
  ['dead', 'SUSPECT', 5, 'dead', 5],
  ['dead', 'SUSPECT', 6, 'dead', 5],
  ['left', 'SUSPECT', 6, 'left', 5],
  // DEAD: to an alive or suspect member at ≥ ours. Never over dead or left.
  ['alive', 'DEAD', 4, 'alive', 5],
  ['alive', 'DEAD', 5, 'dead', 5],
  ['alive', 'DEAD', 6, 'dead', 6],
  ['suspect', 'DEAD', 4, 'suspect', 5],
  ['suspect', 'DEAD', 5, 'dead', 5],
  ['suspect', 'DEAD', 6, 'dead', 6],
  ['dead', 'DEAD', 6, 'dead', 5],
  ['left', 'DEAD', 5, 'left', 5],
  ['left', 'DEAD', 6, 'left', 5],
  // LEFT: to an alive, suspect or dead member at ≥ ours. DEAD → LEFT is allowed.
  ['alive', 'LEFT', 4, 'alive', 5],
  ['alive', 'LEFT', 5, 'left', 5],
  ['suspect', 'LEFT', 4, 'suspect', 5],
  ['suspect', 'LEFT', 6, 'left', 6],
  ['dead', 'LEFT', 4, 'dead', 5],
  ['dead', 'LEFT', 5, 'left', 5],
  ['dead', 'LEFT', 6, 'left', 6],
  ['left', 'LEFT', 6, 'left', 5],
];

t.test('precedence: every message against every state', async (t) => {
  for (const [held, kind, incarnation, status, after] of TABLE) {
    const name = `${held}@5 + ${kind}@${incarnation}`;
    const solo = soloWith(held);
    t.equal(solo.statusOf(1), held, `${name}: set up`);
    const liveBefore = solo.core.memberCount;
    solo.feed(2, messageOf(kind, incarnation));
    const { events } = solo.drain();
    t.equal(solo.statusOf(1), status, `${name} → ${status}`);
    t.equal(solo.incarnationOf(1), after, `${name} → incarnation ${after}`);
    // An event exactly when the state changed; a confirmation is not a change.
    const changed = status !== held || after !== 5;
    t.same(
      events.map((e) => [e.id, e.status, e.incarnation]),
      changed ? [[idOf(1), status, after]] : [],
      `${name}: events`,
    );
    const live = (s: Status): number => (s === 'alive' || s === 'suspect' ? 1 : 0);
    t.equal(solo.core.memberCount, liveBefore - live(held) + live(status), `${name}: live count`);
    t.equal(solo.core.stats.packetsDropped, 0);
  }
  t.end();
});

t.test('news that applies is gossiped on; news that does not is not', async (t) => {
  const solo = soloWith('alive');
  // Let the queue run dry first: the ALIVEs of the set-up go out their transmit limit.
  for (let at = 20; at <= 2000 && solo.core.gossipPending > 0; at += 20) solo.tickAnswering(at);
  t.equal(solo.core.gossipPending, 0, 'queue drained');
  solo.drain();
  solo.feed(2, encodeDead(4, idOf(1), idOf(3)));
  t.equal(solo.core.gossipPending, 0, 'stale DEAD not queued');
  solo.feed(2, encodeDead(5, idOf(1), idOf(3)));
  t.equal(solo.core.gossipPending, 1, 'DEAD queued');
  solo.tick(solo.nowMs + 20);
  const { out } = solo.drain();
  t.ok(out.length > 0, 'a gossip packet went out');
  for (const packet of out) {
    t.same(packet.messages, [{ type: SwimMessageType.DEAD, number: 5, id: idOf(1), from: idOf(3) }], `to ${packet.host}`);
  }
  t.end();
});

t.test('messages about members never heard of are ignored, but ALIVE adds them', async (t) => {
  const solo = new Solo();
  solo.feed(2, encodeSuspect(1, idOf(7), idOf(2)), encodeDead(1, idOf(8), idOf(2)), encodeLeft(1, idOf(9)));
  t.same(solo.core.members().map((m) => m.id), [idOf(0)]);
  t.same(solo.drain().events, []);
  solo.feed(2, aliveOf(7, 0));
  t.equal(solo.statusOf(7), 'alive', 'any incarnation adds an unknown member');
  const view = solo.core.members().find((m) => m.id === idOf(7))!;
  t.same([view.host, view.udpPort, view.tcpPort], [hostOf(7), UDP_PORT, TCP_PORT]);
  // A newer ALIVE at another address moves it.
  solo.feed(2, encodeAlive(1, idOf(7), '192.168.0.7', 9000, 9001));
  const moved = solo.core.members().find((m) => m.id === idOf(7))!;
  t.same([moved.host, moved.udpPort, moved.tcpPort, moved.incarnation], ['192.168.0.7', 9000, 9001, 1]);
  // An equal one at yet another address does not.
  solo.feed(2, encodeAlive(1, idOf(7), '192.168.0.8', 9000, 9001));
  t.equal(solo.core.members().find((m) => m.id === idOf(7))!.host, '192.168.0.7');
  t.end();
});

t.test('refutation: an accusation at or above our incarnation is outbid and ALIVE gossiped', async (t) => {
  const accusations: Array<[string, (incarnation: number) => Buffer]> = [
    ['SUSPECT', (i) => encodeSuspect(i, idOf(0), idOf(2))],
    ['DEAD', (i) => encodeDead(i, idOf(0), idOf(2))],
    ['LEFT', (i) => encodeLeft(i, idOf(0))],
    ['ALIVE of an earlier life', (i) => aliveOf(0, i)],
  ];
  for (const [name, accuse] of accusations) {
    const solo = new Solo({}, 1, 3);
    solo.feed(2, aliveOf(2, 0));
    solo.drain();
    t.equal(solo.core.currentIncarnation, 3);
    // Below our incarnation: stale, ignored. (ALIVE at an equal one is ours.)
    solo.feed(2, accuse(2));
    solo.feed(2, accuse(name.startsWith('ALIVE') ? 3 : 2));
    t.equal(solo.core.currentIncarnation, 3, `${name}: stale accusation ignored`);
    t.equal(solo.core.stats.suspicionsRefuted, 0);
    const accused = name.startsWith('ALIVE') ? 4 : 3;
    solo.feed(2, accuse(accused));
    t.equal(solo.core.currentIncarnation, accused + 1, `${name}: incarnation above the accusation`);
    t.equal(solo.core.stats.suspicionsRefuted, 1, `${name}: counted`);
    t.equal(solo.core.awareness.score, 1, `${name}: an accusation counts against local health`);
    t.equal(solo.core.members()[0]!.status, 'alive');
    t.equal(solo.core.members()[0]!.incarnation, accused + 1);
    // Far above: max(own, accused) + 1. (Packets so far carried the earlier refutations.)
    solo.drain();
    solo.feed(2, accuse(100));
    t.equal(solo.core.currentIncarnation, 101, `${name}: outbids a far higher accusation`);
    // The refutation goes out with the next packet.
    solo.tick(solo.nowMs + 20);
    const sent = solo.drain().out.flatMap((p) => p.messages);
    const aboutSelf = sent.filter((m) => m.id === idOf(0));
    t.ok(aboutSelf.length >= 1, `${name}: ALIVE gossiped`);
    for (const m of aboutSelf) {
      t.same(m, { type: SwimMessageType.ALIVE, number: 101, id: idOf(0), host: hostOf(0), udpPort: UDP_PORT, tcpPort: TCP_PORT });
    }
    t.same(solo.core.localState().subarray(0, aliveOf(0, 101).length), aliveOf(0, 101), 'push-pull state says so too');
  }
  t.end();
});

t.test('refutation: an accusation at the largest incarnation cannot be outbid and does not crash', async (t) => {
  // Regression: refute() computed 2^32 and its assertion threw on a packet from the network.
  for (const accusation of [
    encodeSuspect(0xffffffff, idOf(0), idOf(2)),
    encodeDead(0xffffffff, idOf(0), idOf(2)),
    encodeLeft(0xffffffff, idOf(0)),
    aliveOf(0, 0xffffffff),
  ]) {
    const solo = new Solo();
    solo.feed(2, aliveOf(2, 0));
    solo.drain();
    t.doesNotThrow(() => solo.feed(2, accusation));
    t.equal(solo.core.currentIncarnation, 0, 'incarnation unchanged');
    t.equal(solo.core.stats.suspicionsRefuted, 0, 'not counted as refuted');
    t.equal(solo.core.members()[0]!.status, 'alive');
  }
  // Just below the largest, it refutes to the largest.
  const solo = new Solo();
  solo.feed(2, encodeSuspect(0xfffffffe, idOf(0), idOf(2)));
  t.equal(solo.core.currentIncarnation, 0xffffffff);
  t.end();
});

t.test('a leaving node does not refute', async (t) => {
  const solo = new Solo();
  solo.feed(2, aliveOf(2, 0));
  solo.core.leave(0);
  t.ok(solo.core.hasLeft);
  solo.feed(2, encodeDead(0, idOf(0), idOf(2)), encodeSuspect(0, idOf(0), idOf(2)), aliveOf(0, 9));
  t.equal(solo.core.currentIncarnation, 0);
  t.equal(solo.core.stats.suspicionsRefuted, 0);
  t.equal(solo.core.members()[0]!.status, 'left');
  t.end();
});

t.test('the accuser named in a SUSPECT or DEAD gets the refuting ALIVE straight away', async (t) => {
  for (const [name, accuse] of [
    ['SUSPECT', (i: number) => encodeSuspect(i, idOf(0), idOf(2))],
    ['DEAD', (i: number) => encodeDead(i, idOf(0), idOf(2))],
  ] as const) {
    const solo = new Solo({}, 1, 3);
    solo.feed(2, aliveOf(2, 0));
    solo.feed(1, aliveOf(1, 0));
    solo.drain();
    // A current accusation is refuted; a stale one (the accuser missed the refutation) is
    // answered with the ALIVE it missed. Both go to the accuser at once, whoever relayed them.
    for (const [accused, expected] of [[3, 4], [2, 4]] as const) {
      solo.feed(1, accuse(accused));
      const direct = solo.drain().out.filter((p) => p.host === hostOf(2));
      t.ok(
        direct.some((p) => p.messages.some((m) => m.type === SwimMessageType.ALIVE && m.id === idOf(0) && m.number === expected)),
        `${name} at ${accused}: ALIVE ${expected} sent to the accuser`,
      );
    }
  }
});
