// Members over their lives, on the in-memory network: a quiet cluster, a crash found and
// forgotten, a graceful leave, push-pull (joining, merging, a remote DEAD taken as a suspicion,
// malformed state refused), restarts at a higher incarnation, and convergence under loss.
import t from 'tap';
import { limits } from '../../src/lib/limits.js';
import { encodeAlive, encodeDead, encodeLeft, encodeSuspect } from '../../src/wire/swim-codec.js';
import { SwimMessageType } from '../../src/wire/codes.js';
import { Harness, hostOf, idOf, messagesOf, snapshotOf, Solo, TCP_PORT, UDP_PORT } from '../helpers/swim-harness.js';

const aliveOf = (i: number, incarnation: number): Buffer => encodeAlive(incarnation, idOf(i), hostOf(i), UDP_PORT, TCP_PORT);
const unhex = (text: string): Buffer => Buffer.from(text.replace(/ /g, ''), 'hex');

// Runs in steps until `done` or `budgetMs` passes; returns the time it took, or -1.
function runUntilTrue(h: Harness, done: () => boolean, budgetMs: number, stepMs = 50): number {
  const start = h.nowMs;
  while (h.nowMs - start <= budgetMs) {
    if (done()) return h.nowMs - start;
    h.run(stepMs);
  }
  return -1;
}

t.test('a formed cluster with a perfect network stays quiet', async (t) => {
  const h = new Harness({ count: 5, formed: true, seed: 11 });
  h.run(6000);
  t.same(h.observed, [], 'no membership change');
  for (const core of h.nodes) {
    t.ok(core.stats.probes >= 50, `${core.id}: ${core.stats.probes} probes`);
    t.equal(core.stats.probesFailed, 0);
    t.equal(core.awareness.score, 0);
    t.equal(core.stats.packetsDropped, 0);
    t.equal(core.memberCount, 5);
  }
  t.end();
});

t.test('a crashed member is found dead by everyone, then forgotten after deadRetentionMs', async (t) => {
  const h = new Harness({ count: 5, formed: true, seed: 12 });
  h.run(500);
  h.crash(4);
  const crashedAt = h.nowMs;
  const took = runUntilTrue(h, () => h.agree({ 4: 'dead' }), 6000);
  t.ok(took >= 0, `dead everywhere after ${took} ms`);
  // Probed within a round (400 ms), suspected after a probe interval, dead by the longest
  // suspicion timeout (6 · 4 · 100 ms).
  t.ok(took <= 400 + 100 + 2400 + 100, 'within the bound');
  for (const i of [0, 1, 2, 3]) t.equal(h.node(i).memberCount, 4, `${idOf(i)} counts 4 live`);
  const deaths = h.eventsAbout(4, 'dead');
  t.equal(deaths.length, 4, 'one death event per observer');
  t.ok(deaths.every((d) => d.atMs > crashedAt));
  t.ok(h.nodes.slice(0, 4).reduce((n, c) => n + c.stats.deathsDeclared, 0) >= 1, 'someone declared it');
  // Nobody alive was ever suspected.
  t.same(h.observed.filter((o) => o.event.id !== idOf(4)), []);
  h.run(h.config.deadRetentionMs + 500);
  const forgotten = h.eventsAbout(4, 'forgotten');
  t.equal(forgotten.length, 4, 'forgotten everywhere');
  for (const f of forgotten) {
    const death = deaths.find((d) => d.by === f.by)!;
    t.equal(f.atMs, death.atMs + h.config.deadRetentionMs, `${f.by}: exactly deadRetentionMs after the death`);
  }
  t.ok(h.agree({ 4: undefined }), 'no longer listed');
  t.notOk(h.nodes.slice(0, 4).some((c) => c.localState().includes(Buffer.from(idOf(4)))), 'nor in push-pull state');
  t.end();
});

t.test('forgetting: a member that came back, or went down again later, is not forgotten early', async (t) => {
  const solo = new Solo();
  solo.feed(1, aliveOf(1, 0), aliveOf(2, 0), aliveOf(3, 0));
  solo.feed(2, encodeDead(0, idOf(1), idOf(2)), encodeDead(0, idOf(2), idOf(3)));
  solo.runTo(1000, true);
  solo.feed(1, aliveOf(1, 1)); // n1 came back
  solo.feed(2, encodeLeft(0, idOf(2))); // n2: DEAD then LEFT at 1000
  solo.runTo(2999, true);
  t.same(solo.events.filter((e) => e.status === 'forgotten'), [], 'nothing forgotten before its time');
  solo.runTo(3000, true);
  t.same(solo.events.filter((e) => e.status === 'forgotten').map((e) => e.id), [], 'not the DEAD entries of n1 (alive) or n2 (left since)');
  solo.runTo(4000, true);
  t.same(
    solo.events.filter((e) => e.status === 'forgotten').map((e) => [e.id, e.atMs]),
    [[idOf(2), 4000]],
    'n2 forgotten deadRetentionMs after it left',
  );
  t.equal(solo.statusOf(1), 'alive');
  // A forgotten member is unknown again: any ALIVE adds it, even at its old incarnation.
  solo.feed(3, aliveOf(2, 0));
  t.equal(solo.statusOf(2), 'alive');
  t.end();
});

t.test('push-pull: a forgotten member listed as dead stays forgotten; listed alive, it comes back', async (t) => {
  const solo = new Solo();
  solo.feed(1, aliveOf(1, 0), aliveOf(2, 0), aliveOf(3, 0));
  solo.feed(2, encodeDead(0, idOf(2), idOf(3)));
  solo.runTo(3000, true);
  t.same(solo.events.filter((e) => e.status === 'forgotten').map((e) => e.id), [idOf(2)], 'n2 forgotten');
  // A peer that has yet to forget n2 lists it as its ALIVE followed by its DEAD.
  const staleList = Buffer.concat([aliveOf(3, 0), aliveOf(2, 0), encodeDead(0, idOf(2), idOf(3)), aliveOf(1, 0)]);
  t.ok(solo.core.mergeState(staleList, solo.nowMs), 'merged');
  t.equal(solo.statusOf(2), undefined, 'n2 stays forgotten: its death is old news here');
  t.equal(solo.statusOf(1), 'alive', 'the records after the pair still apply');
  // A member never heard of, listed as dead, is learned (with its address, for the ring) and
  // suspected, as a node joining after a crash must.
  t.ok(solo.core.mergeState(Buffer.concat([aliveOf(5, 0), encodeDead(0, idOf(5), idOf(3))]), solo.nowMs));
  t.equal(solo.statusOf(5), 'suspect', 'n5 learned, and suspected');
  // Listed alive (the peer sees it up), the forgotten member comes back.
  t.ok(solo.core.mergeState(Buffer.concat([aliveOf(3, 0), aliveOf(2, 0)]), solo.nowMs));
  t.equal(solo.statusOf(2), 'alive', 'n2 back');
  t.end();
});

t.test('leave: LEFT everywhere, never suspected or dead, and the leaver stops probing', async (t) => {
  const h = new Harness({ count: 5, formed: true, seed: 13 });
  h.run(500);
  const leaver = h.node(3);
  leaver.leave(h.nowMs);
  t.ok(leaver.hasLeft);
  t.equal(leaver.members()[0]!.status, 'left');
  h.flush(3);
  const probes = leaver.stats.probes;
  const took = runUntilTrue(h, () => h.agree({ 3: 'left' }), 1000, 10);
  t.ok(took >= 0 && took <= 200, `LEFT everywhere after ${took} ms`);
  t.same(
    h.eventsAbout(3).map((o) => [o.event.status, o.event.incarnation]),
    [
      ['left', 0],
      ['left', 0],
      ['left', 0],
      ['left', 0],
    ],
  );
  const leftAt = h.nowMs;
  h.run(2000);
  t.equal(leaver.stats.probes, probes, 'the leaver probes no more');
  t.equal(leaver.gossipPending, 0, 'its LEFT went out');
  t.notOk(
    h.packets.some((p) => p.to === 3 && p.atMs > leftAt + 50 && messagesOf(p.bytes)![0]!.type === SwimMessageType.PING),
    'nobody probes a member that left',
  );
  t.same(h.eventsAbout(3, 'suspect'), []);
  t.same(h.eventsAbout(3, 'dead'), []);
  for (const i of [0, 1, 2, 4]) t.equal(h.node(i).memberCount, 4);
  t.end();
});

t.test('push-pull: two clusters joined by one exchange converge', async (t) => {
  const h = new Harness({ count: 6, seed: 14 });
  for (const group of [
    [0, 1, 2],
    [3, 4, 5],
  ]) {
    for (const i of group) for (const j of group) h.introduce(i, j);
  }
  h.run(1000);
  t.same(h.observed, [], 'each group quiet');
  t.equal(h.node(0).memberCount, 3);
  h.pushPull(0, 3);
  t.equal(h.node(0).memberCount, 6, 'n0 learned the other group at once');
  t.equal(h.node(3).memberCount, 6, 'and n3 this one');
  // Gossip sends each ALIVE a few times (4 here) and may miss a member (with this seed n5 hears
  // of none of n0, n1, n2); the periodic push-pull is the backstop that reaches everyone.
  const took = runUntilTrue(
    h,
    () => h.agree({ 0: 'alive', 1: 'alive', 2: 'alive', 3: 'alive', 4: 'alive', 5: 'alive' }),
    h.config.pushPullIntervalMs * 2,
  );
  t.ok(took >= 0, `everyone knows everyone after ${took} ms`);
  t.same(h.observed.filter((o) => o.event.status !== 'alive'), [], 'no suspicion on the way');
  t.end();
});

t.test('push-pull: a node that knows nobody joins through one member', async (t) => {
  const h = new Harness({ count: 5, seed: 15 });
  for (const i of [0, 1, 2, 3]) for (const j of [0, 1, 2, 3]) h.introduce(i, j);
  h.run(300);
  h.pushPull(4, 2);
  const took = runUntilTrue(h, () => h.agree({ 0: 'alive', 1: 'alive', 2: 'alive', 3: 'alive', 4: 'alive' }), 3000);
  t.ok(took >= 0, `joined everywhere after ${took} ms`);
  t.end();
});

// n0 holding n1..n4 alive, suspect, dead and left, at incarnation 2.
function soloInEveryState(): Solo {
  const solo = new Solo();
  solo.feed(1, aliveOf(1, 2), aliveOf(2, 2), aliveOf(3, 2), aliveOf(4, 2));
  solo.feed(1, encodeSuspect(2, idOf(2), idOf(1)), encodeDead(2, idOf(3), idOf(1)), encodeLeft(2, idOf(4)));
  solo.drain();
  return solo;
}

t.test('localState: every member with its address, and a fresh node merging it holds the same members', async (t) => {
  const solo = soloInEveryState();
  const state = solo.core.localState();
  const records = messagesOf(Buffer.concat([unhex('d7 01 00'), state]))!;
  t.same(records[0], { type: SwimMessageType.ALIVE, number: 0, id: idOf(0), host: hostOf(0), udpPort: UDP_PORT, tcpPort: TCP_PORT }, 'itself first');
  const byId = new Map<string, unknown[]>();
  for (const r of records.slice(1)) byId.set(r.id!, [...(byId.get(r.id!) ?? []), r]);
  const alive = (i: number) => ({ type: SwimMessageType.ALIVE, number: 2, id: idOf(i), host: hostOf(i), udpPort: UDP_PORT, tcpPort: TCP_PORT });
  t.same(byId.get(idOf(1)), [alive(1)]);
  t.same(
    byId.get(idOf(2)),
    [alive(2), { type: SwimMessageType.SUSPECT, number: 2, id: idOf(2), from: idOf(1) }],
    'a suspect: its ALIVE, then the SUSPECT, from the accuser it was heard from (not the sender: a push-pull confirms nothing)',
  );
  t.same(byId.get(idOf(3)), [alive(3), { type: SwimMessageType.DEAD, number: 2, id: idOf(3), from: idOf(0) }], 'a dead member: its ALIVE, then the DEAD');
  t.same(byId.get(idOf(4)), [{ type: SwimMessageType.LEFT, number: 2, id: idOf(4) }], 'a left member: the LEFT alone');
  t.equal(records.length, 7);

  // A fresh node (n5) knows none of them. It learns every member that is not gone, with its
  // address: a node joining after a crash must place the dead member on its ring as the others
  // do. A remote DEAD is taken as a suspicion, which its own timer turns into a death.
  const fresh = new Solo({}, 2, 0, 5);
  t.ok(fresh.core.mergeState(state, 0));
  t.same(
    fresh.core.members().map((m) => [m.id, m.status, m.incarnation]).sort(),
    [
      [idOf(0), 'alive', 0],
      [idOf(1), 'alive', 2],
      [idOf(2), 'suspect', 2],
      [idOf(3), 'suspect', 2],
      [idOf(5), 'alive', 0],
    ],
  );
  t.same(fresh.core.members().find((m) => m.id === idOf(3))?.host, hostOf(3), 'with its address');
  const gossiped = fresh.runTo(1_000).flatMap((sent) => sent.messages);
  t.ok(gossiped.some((m) => m.type === SwimMessageType.SUSPECT && m.id === idOf(3)), 'it gossips the suspicion');
  t.notOk(
    gossiped.some((m) => m.type === SwimMessageType.ALIVE && (m.id === idOf(2) || m.id === idOf(3))),
    'it does not gossip the ALIVE of a member it learned was down (the SUSPECT replaced it)',
  );
  // A node (n6) that holds them all alive at incarnation 2 takes the suspicion, the death (as a
  // suspicion) and the leave.
  const peer = new Solo({}, 3, 0, 6);
  peer.feed(1, aliveOf(1, 2), aliveOf(2, 2), aliveOf(3, 2), aliveOf(4, 2));
  t.ok(peer.core.mergeState(state, 0));
  t.same(
    [0, 1, 2, 3, 4].map((i) => peer.statusOf(i)),
    ['alive', 'alive', 'suspect', 'suspect', 'left'],
    'a remote DEAD is taken as a suspicion',
  );
  t.end();
});

t.test('mergeState: records about this node are refuted; newer ALIVEs win', async (t) => {
  const solo = soloInEveryState();
  t.ok(solo.core.mergeState(Buffer.concat([encodeDead(0, idOf(0), idOf(9)), aliveOf(3, 3), aliveOf(7, 0)]), 0));
  t.equal(solo.core.currentIncarnation, 1, 'a DEAD about this node, taken as a suspicion, is refuted');
  t.equal(solo.core.stats.suspicionsRefuted, 1);
  t.equal(solo.statusOf(3), 'alive', 'a dead member at a newer incarnation is alive');
  t.equal(solo.statusOf(7), 'alive', 'a stranger is added');
  t.ok(solo.core.mergeState(Buffer.alloc(0), 0), 'an empty state is valid and changes nothing');
  t.end();
});

t.test('mergeState: malformed state is refused without any change', async (t) => {
  const solo = soloInEveryState();
  const good = Buffer.concat([aliveOf(7, 0), encodeLeft(5, idOf(1)), encodeDead(5, idOf(2), idOf(9))]);
  const notUtf8 = unhex('08 0006 00000009 01 ff');
  const tooMany = Buffer.concat(Array.from({ length: 2 * limits.membersMax + 1 }, () => encodeLeft(0, 'x')));
  const cases: Array<[string, Buffer]> = [
    ['truncated', good.subarray(0, good.length - 1)],
    ['a PING record', Buffer.concat([good, unhex('01 0007 00000001 02 6e30')])],
    ['a PING_REQ record', Buffer.concat([unhex('02 0007 00000001 02 6e30'), good])],
    ['an ACK record', Buffer.concat([good, unhex('03 0004 00000001')])],
    ['a NACK record', Buffer.concat([good, unhex('04 0004 00000001')])],
    ['an unknown type', Buffer.concat([good, unhex('09 0004 00000001')])],
    ['trailing garbage', Buffer.concat([good, unhex('ff')])],
    ['a datagram header in front', Buffer.concat([unhex('d7 01 00'), good])],
    ['an id that is not UTF-8', Buffer.concat([good, notUtf8])],
    [`${2 * limits.membersMax + 1} records`, tooMany],
  ];
  for (const [name, bytes] of cases) {
    const before = snapshotOf(solo.core);
    let result: boolean | undefined;
    t.doesNotThrow(() => {
      result = solo.core.mergeState(bytes, 0);
    }, name);
    t.equal(result, false, `${name}: refused`);
    t.same(snapshotOf(solo.core), before, `${name}: nothing changed`);
  }
  t.ok(solo.core.mergeState(good, 0), 'the good part alone is accepted');
  t.equal(solo.statusOf(1), 'left');
  t.end();
});

t.test('restart: a quick restart at a higher incarnation is taken as alive everywhere', async (t) => {
  const h = new Harness({ count: 4, formed: true, seed: 16 });
  h.run(500);
  h.crash(2);
  h.run(20);
  const reborn = h.restart(2, 1);
  h.pushPull(2, 0);
  const took = runUntilTrue(
    h,
    () => h.agree({ 0: 'alive', 1: 'alive', 2: 'alive', 3: 'alive' }) && h.nodes.every((c) => c.members().find((m) => m.id === idOf(2))!.incarnation === 1),
    3000,
  );
  t.ok(took >= 0, `alive at incarnation 1 everywhere after ${took} ms`);
  t.equal(reborn.currentIncarnation, 1, 'no refutation was needed');
  t.same(h.eventsAbout(2, 'dead'), []);
  t.end();
});

t.test('restart: after being declared dead, a higher incarnation brings it back', async (t) => {
  const h = new Harness({ count: 4, formed: true, seed: 17 });
  h.run(500);
  h.crash(2);
  t.ok(runUntilTrue(h, () => h.agree({ 2: 'dead' }), 5000) >= 0, 'dead everywhere');
  h.restart(2, 7);
  h.pushPull(2, 1);
  const took = runUntilTrue(h, () => h.agree({ 0: 'alive', 1: 'alive', 2: 'alive', 3: 'alive' }), 3000);
  t.ok(took >= 0, `alive everywhere after ${took} ms`);
  for (const i of [0, 1, 3]) t.equal(h.node(i).members().find((m) => m.id === idOf(2))!.incarnation, 7);
  t.end();
});

t.test('restart: at the same incarnation, it learns of its death by push-pull and refutes it', async (t) => {
  const h = new Harness({ count: 4, formed: true, seed: 18 });
  h.run(500);
  h.crash(2);
  t.ok(runUntilTrue(h, () => h.agree({ 2: 'dead' }), 5000) >= 0, 'dead everywhere');
  const reborn = h.restart(2, 0);
  h.pushPull(2, 1);
  t.equal(reborn.currentIncarnation, 1, 'refuted the DEAD (taken as a suspicion) it was told of');
  const took = runUntilTrue(h, () => h.agree({ 0: 'alive', 1: 'alive', 2: 'alive', 3: 'alive' }), 3000);
  t.ok(took >= 0, `alive everywhere after ${took} ms`);
  t.end();
});

t.test('loss: with 5% of packets lost a crash is still found, and the rest agree once healed', async (t) => {
  const h = new Harness({ count: 6, formed: true, seed: 19 });
  h.lossRate = 0.05;
  h.run(3000);
  h.crash(5);
  h.run(6000);
  h.lossRate = 0;
  const took = runUntilTrue(
    h,
    () => h.agree({ 0: 'alive', 1: 'alive', 2: 'alive', 3: 'alive', 4: 'alive' }) && [0, 1, 2, 3, 4].every((i) => h.statusOf(i, 5) !== 'alive' && h.statusOf(i, 5) !== 'suspect'),
    10_000,
  );
  t.ok(took >= 0, `converged ${took} ms after the loss stopped`);
  t.ok(h.packets.some((p) => p.lost), 'packets were lost');
  t.end();
});

t.test('mergeState: a suspicion in a push-pull is not a confirmation by the sender', async (t) => {
  const sender = new Solo();
  sender.feed(1, aliveOf(1, 0), aliveOf(2, 0), aliveOf(3, 0));
  sender.feed(1, encodeSuspect(0, idOf(2), idOf(1)));
  sender.drain();
  // n6 heard the same suspicion from n1 and expects confirmations (4 members and more).
  const peer = new Solo({}, 3, 0, 6);
  peer.feed(1, aliveOf(0, 0), aliveOf(1, 0), aliveOf(2, 0), aliveOf(3, 0), aliveOf(4, 0));
  peer.feed(1, encodeSuspect(0, idOf(2), idOf(1)));
  peer.drain();
  t.ok(peer.core.mergeState(sender.core.localState(), 0));
  t.equal(peer.statusOf(2), 'suspect');
  const gossiped = peer.runTo(1_000).flatMap((p) => p.messages);
  t.notOk(
    gossiped.some((m) => m.type === SwimMessageType.SUSPECT && m.id === idOf(2) && m.from === idOf(0)),
    'no confirmation in the sender’s name is gossiped',
  );
  // A suspicion from an accuser the peer had not heard is one.
  const other = new Solo({}, 4, 0, 7);
  other.feed(3, aliveOf(1, 0), aliveOf(2, 0), aliveOf(3, 0));
  other.feed(3, encodeSuspect(0, idOf(2), idOf(3)));
  other.drain();
  t.ok(peer.core.mergeState(other.core.localState(), peer.nowMs));
  const confirmed = peer.runTo(2_000).flatMap((p) => p.messages);
  t.ok(confirmed.some((m) => m.type === SwimMessageType.SUSPECT && m.id === idOf(2) && m.from === idOf(3)), 'a new accuser confirms');
  t.end();
});
