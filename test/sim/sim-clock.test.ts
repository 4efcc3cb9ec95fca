// The simulator's queues against naive versions on random input: the event heap pops in (time,
// scheduling order), and the timer heap always yields the earliest deadline, lowest node first.
import t from 'tap';
import { SeededRandom } from '../../src/lib/random.js';
import { EventHeap, SimClock, TimerHeap } from '../../src/sim/sim-clock.js';

t.test('the clock only moves forward', async (t) => {
  const clock = new SimClock();
  clock.advanceTo(5);
  clock.advanceTo(5);
  t.equal(clock.nowMs, 5);
  t.throws(() => clock.advanceTo(4), /backwards/);
});

t.test('event heap: pops by time, ties in scheduling order, through growth', async (t) => {
  for (const seed of [1, 2, 3]) {
    const random = new SeededRandom(seed);
    const heap = new EventHeap(2);
    const naive: Array<{ timeMs: number; order: number; handle: number }> = [];
    let order = 0;
    const popped: number[] = [];
    const expected: number[] = [];
    for (let step = 0; step < 5000; step++) {
      if (random.next() < 0.6 || naive.length === 0) {
        // Few distinct times, so that ties are common.
        const timeMs = random.int(50);
        const handle = random.int(1_000_000);
        heap.push(timeMs, handle);
        naive.push({ timeMs, order: order++, handle });
      } else {
        naive.sort((a, b) => a.timeMs - b.timeMs || a.order - b.order);
        if (heap.peekTimeMs() !== naive[0]!.timeMs) t.fail(`step ${step}: earliest ${heap.peekTimeMs()}`);
        expected.push(naive.shift()!.handle);
        popped.push(heap.pop());
      }
      if (heap.size !== naive.length) t.fail('sizes differ');
    }
    t.same(popped, expected, `seed ${seed}: same order as a stable sort`);
  }
  const empty = new EventHeap();
  t.equal(empty.peekTimeMs(), Infinity);
  t.throws(() => empty.pop());
  t.throws(() => empty.push(Infinity, 1), /finite/);
});

t.test('timer heap: one deadline per key, moved in place, removed by Infinity', async (t) => {
  for (const seed of [4, 5, 6]) {
    const random = new SeededRandom(seed);
    const keys = 40;
    const heap = new TimerHeap(keys);
    const naive = new Array<number>(keys).fill(Infinity);
    for (let step = 0; step < 5000; step++) {
      const key = random.int(keys);
      const r = random.next();
      naive[key] = r < 0.15 ? Infinity : random.int(30);
      heap.set(key, naive[key]!);
      let bestKey = -1;
      let best = Infinity;
      for (let k = 0; k < keys; k++) {
        if (naive[k]! < best) {
          best = naive[k]!;
          bestKey = k;
        }
      }
      if (heap.peekTimeMs() !== best) t.fail(`step ${step}: earliest ${heap.peekTimeMs()} not ${best}`);
      if (bestKey >= 0 && heap.peekKey() !== bestKey) t.fail(`step ${step}: key ${heap.peekKey()} not ${bestKey}`);
      if (heap.timeOf(key) !== naive[key]) t.fail('timeOf disagrees');
      if (heap.size !== naive.filter((x) => x < Infinity).length) t.fail('size disagrees');
    }
    t.pass(`seed ${seed}: 5000 random updates agree with a linear scan`);
  }
});
