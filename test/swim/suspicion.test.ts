// Lifeguard's suspicion timer: the timeout formulas, the timer shrinking with independent
// confirmations (and not with repeated ones), and the core declaring death at the deadline.
import t from 'tap';
import { AssertionError } from '../../src/lib/assert.js';
import { Suspicion, suspicionTimeoutMinMs, suspicionTimeoutMs } from '../../src/swim/suspicion.js';
import { SwimMessageType } from '../../src/wire/codes.js';
import { encodeAlive, encodeSuspect } from '../../src/wire/swim-codec.js';
import { hostOf, idOf, Solo, TCP_PORT, UDP_PORT } from '../helpers/swim-harness.js';

const aliveOf = (i: number, incarnation: number): Buffer => encodeAlive(incarnation, idOf(i), hostOf(i), UDP_PORT, TCP_PORT);

t.test('suspicionTimeoutMinMs: multiplier × max(1, log10 n) × probe interval', async (t) => {
  const cases: Array<[number, number, number, number]> = [
    // multiplier, members, interval, expected
    [4, 0, 1000, 4000],
    [4, 1, 1000, 4000],
    [4, 5, 1000, 4000],
    [4, 10, 1000, 4000],
    [4, 100, 1000, 8000],
    [4, 1000, 1000, 12000],
    [4, 50, 1000, Math.floor(4 * Math.log10(50) * 1000)],
    [5, 100, 200, 2000],
  ];
  for (const [multiplier, members, interval, expected] of cases) {
    t.equal(suspicionTimeoutMinMs(multiplier, members, interval), expected, `${multiplier}, ${members} members, ${interval} ms`);
  }
  t.equal(suspicionTimeoutMinMs(4, 50, 1000), 6795);
  t.end();
});

t.test('suspicionTimeoutMs: max − (max − min) · log(c + 1) / log(k + 1), never below min', async (t) => {
  t.equal(suspicionTimeoutMs(0, 0, 4000, 24000), 4000, 'no confirmations expected: the minimum');
  t.equal(suspicionTimeoutMs(0, 2, 4000, 24000), 24000, 'none yet: the maximum');
  t.equal(suspicionTimeoutMs(1, 2, 4000, 24000), 11381, 'one of two: 24000 − 20000·log 2/log 3');
  t.equal(suspicionTimeoutMs(2, 2, 4000, 24000), 4000, 'all: the minimum');
  t.equal(suspicionTimeoutMs(5, 2, 4000, 24000), 4000, 'more than expected: still the minimum');
  t.equal(suspicionTimeoutMs(1, 3, 1000, 6000), 3500, 'one of three: 6000 − 5000·log 2/log 4 = 3500');
  // Monotone: each confirmation shortens it.
  let last = Infinity;
  for (let c = 0; c <= 10; c++) {
    const ms = suspicionTimeoutMs(c, 10, 100, 10_000);
    t.ok(ms < last && ms >= 100, `${c}: ${ms}`);
    last = ms;
  }
  t.end();
});

t.test('Suspicion: duplicate confirmers and the original accuser do not count', async (t) => {
  const s = new Suspicion('a', 1000, 2, 4000, 24000);
  t.equal(s.deadlineMs, 25_000, 'starts at the maximum');
  t.notOk(s.confirm('a'), 'the accuser itself');
  t.equal(s.deadlineMs, 25_000);
  t.ok(s.confirm('b'));
  t.equal(s.deadlineMs, 1000 + 11381, 'counted from the start, not from the confirmation');
  t.notOk(s.confirm('b'), 'b again');
  t.equal(s.deadlineMs, 1000 + 11381);
  t.ok(s.confirm('c'));
  t.equal(s.deadlineMs, 5000, 'at the minimum');
  t.notOk(s.confirm('d'), 'past the expected count: nothing to shorten');
  const lone = new Suspicion('a', 0, 0, 4000, 24000);
  t.equal(lone.deadlineMs, 4000, 'no confirmations expected: the minimum at once');
  t.notOk(lone.confirm('b'));
  t.throws(() => new Suspicion('a', 0, 1, 0, 10), AssertionError);
  t.throws(() => new Suspicion('a', 0, 1, 20, 10), AssertionError);
  t.end();
});

// n0 knowing n1..n`count`; probes are answered, so only the suspicions fed in run.
function soloKnowing(count: number): Solo {
  const solo = new Solo();
  solo.feed(1, ...Array.from({ length: count }, (_, i) => aliveOf(i + 1, 0)));
  solo.drain();
  solo.events.length = 0;
  return solo;
}

function deathOf(solo: Solo, i: number): number | undefined {
  return solo.events.find((e) => e.id === idOf(i) && e.status === 'dead')?.atMs;
}

t.test('core: six members, two confirmations expected; timer from max to min', async (t) => {
  // n = 6: k = suspicionMult − 2 = 2; min = 4 · 1 · 100 = 400 ms; max = 6 · 400 = 2400 ms.
  const lone = soloKnowing(5);
  lone.feed(2, encodeSuspect(0, idOf(1), idOf(2)));
  lone.runTo(3000, true);
  // Unconfirmed at the maximum: one last PING to the suspect with the accusation, then the
  // death a probe timeout (40 ms) later, since the harness's suspect never refutes.
  t.equal(deathOf(lone, 1), 2440, 'an unconfirmed suspicion runs to the maximum, plus one last probe');
  t.equal(lone.core.stats.lastChanceProbes, 1);
  t.equal(lone.core.stats.deathsDeclared, 1);

  const once = soloKnowing(5);
  once.feed(2, encodeSuspect(0, idOf(1), idOf(2)));
  once.runTo(100, true);
  once.feed(3, encodeSuspect(0, idOf(1), idOf(3)));
  // Repeats change nothing: the same confirmer, the first accuser.
  once.feed(3, encodeSuspect(0, idOf(1), idOf(3)));
  once.feed(2, encodeSuspect(0, idOf(1), idOf(2)));
  once.runTo(3000, true);
  t.equal(deathOf(once, 1), 1138, 'one confirmation: 2400 − 2000·log 2/log 3, from the start');

  // A suspicion at a higher incarnation is not a confirmation of the old one: the member refuted
  // it (this node missed the ALIVE) and is suspected anew, with a timer from now. As a
  // confirmation it would have ended a timer that began before the refutation.
  const anew = soloKnowing(5);
  anew.feed(2, encodeSuspect(0, idOf(1), idOf(2)));
  anew.runTo(1500, true);
  anew.feed(3, encodeSuspect(1, idOf(1), idOf(3)));
  t.equal(anew.incarnationOf(1), 1, 'suspect at the new incarnation');
  anew.runTo(6000, true);
  t.equal(deathOf(anew, 1), 1500 + 2440, 'an unconfirmed suspicion from 1500 ms: the maximum and one last probe');

  const twice = soloKnowing(5);
  twice.feed(2, encodeSuspect(0, idOf(1), idOf(2)));
  twice.runTo(100, true);
  twice.feed(3, encodeSuspect(0, idOf(1), idOf(3)));
  twice.runTo(200, true);
  twice.feed(4, encodeSuspect(0, idOf(1), idOf(4)));
  twice.runTo(3000, true);
  t.equal(deathOf(twice, 1), 400, 'two confirmations: the minimum');

  const late = soloKnowing(5);
  late.feed(2, encodeSuspect(0, idOf(1), idOf(2)));
  late.runTo(500, true);
  late.feed(3, encodeSuspect(0, idOf(1), idOf(3)));
  late.feed(4, encodeSuspect(0, idOf(1), idOf(4)));
  late.runTo(3000, true);
  t.equal(deathOf(late, 1), 500, 'a deadline already past: dead at the next tick');
  t.end();
});

t.test('core: three members expect no confirmations; the timeout is the minimum', async (t) => {
  const solo = soloKnowing(2);
  solo.feed(2, encodeSuspect(0, idOf(1), idOf(2)));
  solo.runTo(1000, true);
  t.equal(deathOf(solo, 1), 400);
  t.end();
});

t.test('core: a new confirmation is gossiped on, a repeated one is not', async (t) => {
  const solo = soloKnowing(5);
  solo.feed(2, encodeSuspect(0, idOf(1), idOf(2)));
  // Drain the queue: every piece of news sent its transmit limit.
  for (let i = 0; i < 100 && solo.core.gossipPending > 0; i++) solo.runTo(solo.nowMs + 20, true);
  t.equal(solo.core.gossipPending, 0);
  solo.feed(2, encodeSuspect(0, idOf(1), idOf(2)));
  t.equal(solo.core.gossipPending, 0, 'the first accuser again: not news');
  solo.feed(3, encodeSuspect(0, idOf(1), idOf(3)));
  t.equal(solo.core.gossipPending, 1, 'a new confirmer: news');
  const sent = solo.runTo(solo.nowMs + 20, true).flatMap((p) => p.messages);
  t.ok(sent.some((m) => m.type === SwimMessageType.SUSPECT && m.id === idOf(1) && m.from === idOf(3)), 'SUSPECT from n3 passed on');
  for (let i = 0; i < 100 && solo.core.gossipPending > 0; i++) solo.runTo(solo.nowMs + 20, true);
  solo.feed(3, encodeSuspect(0, idOf(1), idOf(3)));
  t.equal(solo.core.gossipPending, 0, 'n3 again: not news');
  t.end();
});

t.test('core: an ALIVE above the suspicion ends it; the death is gossiped when it comes', async (t) => {
  const solo = soloKnowing(5);
  solo.feed(2, encodeSuspect(0, idOf(1), idOf(2)), encodeSuspect(0, idOf(3), idOf(2)));
  solo.runTo(1000, true);
  solo.feed(1, aliveOf(1, 1));
  const sent = solo.runTo(3000, true);
  t.equal(deathOf(solo, 1), undefined, 'refuted: never dead');
  t.equal(solo.events.find((e) => e.id === idOf(1) && e.status === 'alive')?.incarnation, 1);
  t.equal(deathOf(solo, 3), 2440, 'the other suspicion ran on (to its maximum and one last probe)');
  const deads = sent.flatMap((p) => p.messages).filter((m) => m.type === SwimMessageType.DEAD);
  t.ok(deads.length > 0, 'DEAD gossiped');
  t.same(deads[0], { type: SwimMessageType.DEAD, number: 0, id: idOf(3), from: idOf(0) });
  t.end();
});

t.test('core: an unconfirmed suspicion asks the suspect once more; its ALIVE in time saves it', async (t) => {
  const solo = soloKnowing(5);
  solo.feed(2, encodeSuspect(0, idOf(1), idOf(2)));
  const sent = solo.runTo(2400, true);
  const lastChance = sent.filter((p) => p.host === hostOf(1) && p.messages.some((m) => m.type === SwimMessageType.SUSPECT && m.id === idOf(1)));
  t.ok(lastChance.length >= 1, 'a PING carrying the accusation went to the suspect');
  t.equal(solo.core.stats.lastChanceProbes, 1);
  solo.feed(1, aliveOf(1, 1));
  solo.runTo(3000, true);
  t.equal(deathOf(solo, 1), undefined, 'never declared dead');
  t.equal(solo.core.members().find((m) => m.id === idOf(1))?.status, 'alive');
});
