// The invariants of membership, checked on a simulated cluster. Pure.
//
// Safety: no member declares a live node DEAD or LEFT. Live means running (not crashed, not
// paused) and not leaving; a slow node is live, since Lifeguard's promise is exactly that a busy
// node is not declared dead. News about an earlier life of a restarted node (an incarnation
// below the one its current life began with) is not false: that life did end.
//
// Liveness: once faults stop, membership converges: every live node sees every other live node
// alive at its current incarnation, and no crashed or departed node as alive or suspect.

import type { MembershipEvent } from '../swim/core.js';
import { SeededRandom } from '../lib/random.js';
import { NodeStatus, type SimCluster, type SimObserver } from './cluster.js';

export interface FalseDeath {
  atMs: number;
  observer: number;
  subject: number;
  status: string;
  incarnation: number;
  // What the subject was doing: 'up' or 'slow'.
  subjectState: string;
}

// Keep the first few in full; count the rest.
const FALSE_DEATHS_KEPT = 100;

export class FalseDeathChecker implements SimObserver {
  falseDeaths = 0;
  readonly examples: FalseDeath[] = [];
  // DEAD or LEFT about a paused node (not false by the definition, but worth a number), and
  // about an earlier life of a restarted node.
  deathsOfPausedNodes = 0;
  deathsOfEarlierLives = 0;

  constructor(private readonly cluster: SimCluster) {}

  membership(observer: number, subject: number, event: MembershipEvent, nowMs: number): void {
    if (event.status !== 'dead' && event.status !== 'left') return;
    const cluster = this.cluster;
    if (cluster.status[subject] === NodeStatus.PAUSED) {
      this.deathsOfPausedNodes++;
      return;
    }
    if (!cluster.isLive(subject)) return;
    if (event.incarnation < cluster.lifeIncarnation[subject]!) {
      this.deathsOfEarlierLives++;
      return;
    }
    this.falseDeaths++;
    if (this.examples.length < FALSE_DEATHS_KEPT) {
      this.examples.push({
        atMs: nowMs,
        observer,
        subject,
        status: event.status,
        incarnation: event.incarnation,
        subjectState: cluster.lagMs[subject]! > 0 ? 'slow' : 'up',
      });
    }
  }
}

export interface ConvergenceResult {
  converged: boolean;
  observersChecked: number;
  // Observer-subject pairs that disagree with the truth (the first few described).
  disagreements: number;
  examples: string[];
}

const DISAGREEMENTS_DESCRIBED = 20;

// Compares views with the truth. With observersMax below the number of live nodes, checks that
// many observers drawn with `sampleSeed` (so the check itself does not move the run's random
// streams). Costs one members() per observer checked.
export function checkConvergence(cluster: SimCluster, observersMax = Infinity, sampleSeed = 1): ConvergenceResult {
  const live: number[] = [];
  for (let node = 0; node < cluster.size; node++) if (cluster.isLive(node)) live.push(node);
  let observers = live;
  if (live.length > observersMax) {
    const random = new SeededRandom(sampleSeed);
    const pool = live.slice();
    for (let i = 0; i < observersMax; i++) {
      const j = i + random.int(pool.length - i);
      const swap = pool[i]!;
      pool[i] = pool[j]!;
      pool[j] = swap;
    }
    observers = pool.slice(0, observersMax);
  }
  const result: ConvergenceResult = { converged: true, observersChecked: observers.length, disagreements: 0, examples: [] };
  const note = (text: string): void => {
    result.converged = false;
    result.disagreements++;
    if (result.examples.length < DISAGREEMENTS_DESCRIBED) result.examples.push(text);
  };
  const seen = new Uint8Array(cluster.size);
  for (const observer of observers) {
    const core = cluster.cores[observer]!;
    seen.fill(0);
    for (const view of core.members()) {
      const subject = cluster.directory.find(view.id)!;
      seen[subject] = 1;
      if (subject === observer) continue;
      const status = cluster.status[subject];
      if (status === NodeStatus.PAUSED || cluster.leaving[subject] === 1) continue;
      if (cluster.isLive(subject)) {
        const incarnation = cluster.cores[subject]!.currentIncarnation;
        if (view.status !== 'alive' || view.incarnation !== incarnation) {
          note(`${cluster.idOf(observer)} sees ${view.id} ${view.status} ${view.incarnation}, it is alive ${incarnation}`);
        }
      } else if (view.status === 'alive' || view.status === 'suspect') {
        note(`${cluster.idOf(observer)} sees ${view.id} ${view.status}, it is down`);
      }
    }
    for (const subject of live) {
      if (subject !== observer && seen[subject] === 0) note(`${cluster.idOf(observer)} does not know ${cluster.idOf(subject)}`);
    }
  }
  return result;
}

// Runs until membership has converged, checking every checkEveryMs, for at most budgetMs.
// Returns the virtual time it took, or -1 if the budget ran out.
export function runUntilConverged(cluster: SimCluster, budgetMs: number, checkEveryMs = 1000, observersMax = Infinity): number {
  const startMs = cluster.nowMs;
  const checksMax = Math.ceil(budgetMs / checkEveryMs);
  for (let check = 0; check <= checksMax; check++) {
    if (checkConvergence(cluster, observersMax).converged) return cluster.nowMs - startMs;
    if (check < checksMax) cluster.runFor(checkEveryMs);
  }
  return -1;
}
