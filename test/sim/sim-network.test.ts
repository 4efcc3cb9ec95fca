// The simulated network: loss near its rate, per-link loss, partitions both ways and one way,
// duplication, delays within bounds, and the same draws from the same seed.
import t from 'tap';
import { SeededRandom } from '../../src/lib/random.js';
import { networkOptions, SimNetwork, type NetworkOptions } from '../../src/sim/sim-network.js';

interface Delivery {
  atMs: number;
  source: number;
  target: number;
  bytes: Uint8Array;
}

function network(options: Partial<NetworkOptions>, seed = 1): { net: SimNetwork; deliveries: Delivery[] } {
  const deliveries: Delivery[] = [];
  const net = new SimNetwork(networkOptions(options), new SeededRandom(seed), {
    schedulePacket: (atMs, source, target, bytes) => deliveries.push({ atMs, source, target, bytes }),
  });
  return { net, deliveries };
}

const PACKET = Buffer.from([1, 2, 3]);

t.test('uniform loss: close to its rate, counted', async (t) => {
  const { net, deliveries } = network({ lossRate: 0.05 });
  const sent = 100_000;
  for (let i = 0; i < sent; i++) net.send(0, 1, PACKET, 0);
  const lost = sent - deliveries.length;
  t.equal(net.stats.lost, lost);
  t.equal(net.stats.sent, sent);
  t.equal(net.stats.bytesSent, sent * PACKET.length);
  // Binomial: sd = sqrt(n p (1-p)) ≈ 69; allow 5 sd.
  t.ok(Math.abs(lost - 5000) < 350, `${lost} lost of ${sent}`);
});

t.test('delay: within [min, min + jitter), reordering adds up to reorderDelayMs', async (t) => {
  const { net, deliveries } = network({ delayMinMs: 1, delayJitterMs: 4 });
  for (let i = 0; i < 1000; i++) net.send(0, 1, PACKET, 10);
  t.ok(deliveries.every((d) => d.atMs >= 11 && d.atMs < 15), 'every delay in range');
  const reordered = network({ delayMinMs: 1, delayJitterMs: 0, reorderRate: 0.5, reorderDelayMs: 50 });
  for (let i = 0; i < 1000; i++) reordered.net.send(0, 1, PACKET, i);
  const late = reordered.deliveries.filter((d, i) => d.atMs > i + 1).length;
  t.equal(late, reordered.net.stats.reordered);
  t.ok(late > 400 && late < 600, `${late} held back`);
  let overtaken = 0;
  for (let i = 1; i < reordered.deliveries.length; i++) if (reordered.deliveries[i]!.atMs < reordered.deliveries[i - 1]!.atMs) overtaken++;
  t.ok(overtaken > 100, `${overtaken} datagrams arrive before an earlier one`);
});

t.test('duplication: a second copy with its own delay', async (t) => {
  const { net, deliveries } = network({ duplicateRate: 0.1 });
  for (let i = 0; i < 10_000; i++) net.send(0, 1, PACKET, 0);
  t.equal(deliveries.length, 10_000 + net.stats.duplicated);
  t.ok(net.stats.duplicated > 800 && net.stats.duplicated < 1200, `${net.stats.duplicated} duplicated`);
});

t.test('per-link loss: only that direction of that link', async (t) => {
  const { net, deliveries } = network({});
  net.setLinkLoss(0, 1, 1);
  net.setLinkLoss(2, 3, 0.5);
  for (let i = 0; i < 1000; i++) {
    net.send(0, 1, PACKET, 0);
    net.send(1, 0, PACKET, 0);
    net.send(2, 3, PACKET, 0);
  }
  const count = (source: number, target: number): number => deliveries.filter((d) => d.source === source && d.target === target).length;
  t.equal(count(0, 1), 0, 'a dead link delivers nothing');
  t.equal(count(1, 0), 1000, 'the other direction works');
  t.ok(count(2, 3) > 400 && count(2, 3) < 600, `${count(2, 3)} of 1000 through a half-lossy link`);
  t.notOk(net.canConnect(0, 1), 'TCP needs both directions');
  t.ok(net.canConnect(2, 3));
  net.setLinkLoss(0, 1, 0);
  t.ok(net.canConnect(0, 1), 'restored');
});

t.test('partitions: groups cut both ways, the rest on a side of its own; one-way cuts; heal', async (t) => {
  const { net, deliveries } = network({});
  const reach = (source: number, target: number): boolean => {
    const before = deliveries.length;
    net.send(source, target, PACKET, 0);
    return deliveries.length > before;
  };
  net.partition([[0, 1], [2, 3]]);
  t.ok(reach(0, 1) && reach(3, 2), 'inside a group');
  t.notOk(reach(0, 2) || reach(2, 0) || reach(1, 3), 'across groups');
  t.notOk(reach(0, 4) || reach(4, 0), 'to and from the unlisted rest');
  t.ok(reach(4, 5), 'within the unlisted rest');
  t.notOk(net.canConnect(1, 2));
  net.blockOneWay([0], [1, 2]);
  t.notOk(reach(0, 1) || reach(0, 2), 'one way cut');
  t.ok(reach(1, 0) && reach(2, 0), 'the other way open');
  t.ok(reach(0, 3) && reach(1, 2), 'others untouched (the earlier partition is replaced)');
  t.notOk(net.canConnect(0, 1), 'TCP needs both ways');
  net.healPartitions();
  t.ok(reach(0, 1) && reach(0, 2) && reach(2, 0));
  t.ok(net.stats.cut > 0);
});

t.test('addresses: registered hosts map to nodes; unknown ones are unroutable', async (t) => {
  const { net, deliveries } = network({});
  net.register('10.0.0.1', 7946, 1);
  t.equal(net.nodeAt('10.0.0.1', 7946), 1);
  t.equal(net.nodeAt('10.0.0.1', 7000), -1, 'the port must match');
  t.equal(net.nodeAt('10.0.0.9', 7946), -1);
  net.endpoint(0, { nowMs: 3 }).send('10.0.0.1', 7946, PACKET);
  net.sendTo(0, '10.0.0.9', 7946, PACKET, 3);
  t.equal(deliveries.length, 1);
  t.equal(deliveries[0]!.target, 1);
  t.equal(net.stats.unroutable, 1);
});

t.test('the same seed draws the same fate for every datagram', async (t) => {
  const fates = (seed: number): string => {
    const { net, deliveries } = network({ lossRate: 0.2, duplicateRate: 0.1, reorderRate: 0.1 }, seed);
    for (let i = 0; i < 500; i++) net.send(i % 7, (i + 1) % 7, PACKET, i);
    return deliveries.map((d) => `${d.source}>${d.target}@${d.atMs}`).join(',');
  };
  t.equal(fates(9), fates(9));
  t.not(fates(9), fates(10));
});
