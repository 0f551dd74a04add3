/** The alert rules (pure): fire once past the threshold, recover once, never storm */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QUIET, evaluate, type AlertState, type Observation } from '../../src/alerts/rules.js';

const T0 = new Date('2026-11-26T10:00:00Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const obs = (over: Partial<Observation>): Observation => ({
  now: T0,
  failingSince: null,
  failingForMs: 15 * 60_000,
  queueDepth: 0,
  queueThreshold: 100,
  dailyUsage: [],
  dailyCapPercent: 90,
  ...over,
});

function run(observations: Observation[]): string[] {
  let state: AlertState = QUIET;
  const seen: string[] = [];
  for (const o of observations) {
    const result = evaluate(state, o);
    state = result.state;
    seen.push(...result.transitions.map((t) => `${t.kind}:${t.change}`));
  }
  return seen;
}

test('upstream: nothing before the threshold, one alert after, no repeats, one recovery', () => {
  const failing = { failingSince: T0, failingForMs: 60_000 };
  assert.deepEqual(run([obs({ ...failing, now: at(30) }), obs({ ...failing, now: at(59) })]), []);
  assert.deepEqual(
    run([
      obs({ ...failing, now: at(30) }),
      obs({ ...failing, now: at(60) }),
      obs({ ...failing, now: at(61) }),
      obs({ ...failing, now: at(3600) }),
      obs({ now: at(3601) }),
      obs({ now: at(3602) }),
    ]),
    ['upstream:firing', 'upstream:recovered'],
  );
});

test('upstream: a success before the threshold means no alert at all', () => {
  assert.deepEqual(
    run([
      obs({ failingSince: T0, failingForMs: 60_000, now: at(50) }),
      obs({ now: at(55) }),
      obs({ failingSince: at(56), failingForMs: 60_000, now: at(100) }),
    ]),
    [],
  );
});

test('queue: fires above the threshold, recovers only at half of it (no flapping)', () => {
  const depths = [50, 101, 99, 101, 60, 51, 50, 120];
  assert.deepEqual(run(depths.map((queueDepth, i) => obs({ queueDepth, now: at(i) }))), [
    'queue:firing',
    'queue:recovered',
    'queue:firing',
  ]);
});

test('queue: threshold 0 turns the alert off (and a firing alert recovers)', () => {
  assert.deepEqual(run([obs({ queueDepth: 5000, queueThreshold: 0 })]), []);
  assert.deepEqual(
    run([
      obs({ queueDepth: 500, queueThreshold: 100 }),
      obs({ queueDepth: 500, queueThreshold: 0 }),
    ]),
    ['queue:firing', 'queue:recovered'],
  );
});

test('the state records since when an alert fires', () => {
  const { state } = evaluate(QUIET, obs({ queueDepth: 200, now: at(5) }));
  assert.equal(state.queue.since, at(5).toISOString());
  assert.equal(evaluate(state, obs({ queueDepth: 0, now: at(9) })).state.queue.since, null);
});

test('daily cap: fires once an upstream reaches the share of its daily limit, recovers 10 points below, off at 0', () => {
  const sent = (sentToday: number, seconds: number, dailyCapPercent = 90) =>
    obs({
      now: at(seconds),
      dailyCapPercent,
      dailyUsage: [
        { label: 'smtp.office365.com:587', sentToday, dayLimit: 100 },
        { label: 'unlimited', sentToday: 5000, dayLimit: 0 },
      ],
    });
  assert.deepEqual(
    run([sent(89, 1), sent(90, 2), sent(95, 3), sent(81, 4), sent(80, 5), sent(79, 6)]),
    ['dailyCap:firing', 'dailyCap:recovered'],
  );
  assert.deepEqual(run([sent(100, 1, 0)]), []);
});
