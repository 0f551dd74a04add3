/** The queue manager's schedule: phases, order, limits, waiting messages, and a cost that doesn't grow with the backlog (pure) */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Schedule, type Routing } from '../../src/queue/schedule.js';

const NOW = 1_000_000;

/** A schedule whose messages go where `routes` says (by their first recipient; default: the smarthost) */
function scheduleWith(routes: Map<string, string[]> = new Map()) {
  let asked = 0;
  const schedule = new Schedule<string>((recipients): Routing => {
    asked++;
    return { groups: [], destinations: routes.get(recipients[0] ?? '') ?? ['smarthost'] };
  });
  /** Schedules message `id` (its one recipient is the id too) for `at` */
  const set = (id: string, at: number, now = NOW) => schedule.wait(id, [id], at, now);
  return { schedule, set, asked: () => asked };
}

const always = () => true;

/** Starts every message that may start, in order; each attempt stays running */
function drain(
  schedule: Schedule<string>,
  now = NOW,
  hasRoom: (d: string[]) => boolean = always,
): string[] {
  const order: string[] = [];
  for (let next = schedule.startable(now, hasRoom); next; next = schedule.startable(now, hasRoom)) {
    schedule.start(next.id, Promise.resolve());
    order.push(next.id);
  }
  return order;
}

test('due messages start oldest first; waiting ones only once their time has come', () => {
  const { schedule, set } = scheduleWith();
  set('a', NOW - 10);
  set('later', NOW + 5_000);
  set('b', NOW);
  assert.equal(schedule.size, 3);
  assert.equal(schedule.nextAt(NOW), NOW + 5_000);
  assert.deepEqual(drain(schedule), ['a', 'b']);
  assert.equal(schedule.startable(NOW + 4_999, always), undefined);
  assert.deepEqual(schedule.startable(NOW + 5_000, always), {
    id: 'later',
    routing: { groups: [], destinations: ['smarthost'] },
  });
  assert.equal(schedule.get('later')?.phase.name, 'due');
  assert.equal(schedule.nextAt(NOW), Infinity);
});

test('each message is in one phase; running ones count per destination and are never offered again', () => {
  const routes = new Map([['slow', ['mx:slow.example']]]);
  const { schedule, set } = scheduleWith(routes);
  set('slow', NOW);
  set('held', NOW);
  schedule.hold('held', ['held']);
  set('next', NOW);
  assert.deepEqual(drain(schedule), ['slow', 'next']);
  assert.deepEqual(
    ['slow', 'held', 'next'].map((id) => schedule.get(id)?.phase.name),
    ['running', 'held', 'running'],
  );
  assert.deepEqual(
    [...schedule.runningPerDestination()],
    [
      ['mx:slow.example', 1],
      ['smarthost', 1],
    ],
  );
  assert.equal(schedule.inFlight, 2);
  assert.equal(schedule.attempts().length, 2);
  // The attempt is over: it waits for its next try, and its slot is free
  set('slow', NOW + 60_000);
  assert.equal(schedule.inFlight, 1);
  assert.deepEqual([...schedule.runningPerDestination()], [['smarthost', 1]]);
  assert.throws(() => schedule.start('held', Promise.resolve()), /not due/);
});

test('a full destination waits while messages to other destinations start', () => {
  const routes = new Map([
    ['slow-1', ['mx:slow.example']],
    ['slow-2', ['mx:slow.example']],
    ['fast-1', ['mx:fast.example']],
    ['both', ['mx:fast.example', 'mx:slow.example']],
  ]);
  const { schedule, set } = scheduleWith(routes);
  for (const id of ['slow-1', 'slow-2', 'fast-1', 'both']) set(id, NOW);
  const slowIsFull = (destinations: string[]) => !destinations.includes('mx:slow.example');
  assert.deepEqual(drain(schedule, NOW, slowIsFull), ['fast-1']);
  assert.deepEqual(drain(schedule), ['slow-1', 'slow-2', 'both']);
});

test('nextAt is always in the future: what fell due becomes due, a removed message no longer counts', () => {
  const { schedule, set } = scheduleWith();
  set('soon', NOW + 100);
  set('later', NOW + 5_000);
  schedule.forget('soon');
  assert.equal(schedule.nextAt(NOW + 200), NOW + 5_000);
  set('later', NOW + 9_000);
  assert.equal(schedule.nextAt(NOW + 200), NOW + 9_000);
  // Fallen due while every slot was busy: ready for the next free slot, and no timer for the past
  assert.equal(schedule.nextAt(NOW + 9_000), Infinity);
  assert.equal(schedule.startable(NOW + 9_000, always)?.id, 'later');
});

test('a time that is not a number means now, and does not hold up the others', () => {
  const { schedule, set } = scheduleWith();
  set('damaged', Number.NaN);
  set('later', NOW + 1_000);
  assert.equal(schedule.nextAt(NOW), NOW + 1_000);
  assert.deepEqual(drain(schedule, NOW + 1_000), ['damaged', 'later']);
});

test('every change moves the version on, so a reader of the spool can tell what changed while it read', () => {
  const { schedule, set } = scheduleWith();
  set('before', NOW);
  const readAt = schedule.version;
  set('during', NOW);
  assert.ok(schedule.get('before')!.changed <= readAt);
  assert.ok(schedule.get('during')!.changed > readAt);
});

test('rescheduling moves a message; forget removes it', () => {
  const { schedule, set } = scheduleWith();
  set('a', NOW);
  set('a', NOW + 60_000);
  assert.equal(schedule.startable(NOW, always), undefined);
  assert.equal(schedule.size, 1);
  schedule.forget('a');
  assert.equal(schedule.size, 0);
  assert.equal(schedule.startable(NOW + 60_000, always), undefined);
  assert.equal(schedule.nextAt(NOW), Infinity);
});

test('allDueNow (retry --all, a settings change) makes every waiting message due', () => {
  const { schedule, set } = scheduleWith();
  set('a', NOW + 60_000);
  set('b', NOW + 3_600_000);
  schedule.allDueNow();
  assert.equal(schedule.nextAt(NOW), Infinity);
  assert.deepEqual(drain(schedule), ['a', 'b']);
});

test('reroute routes every due message again; a message already due to the same recipients keeps its routing', () => {
  const routes = new Map([['a', ['smarthost']]]);
  const { schedule, set, asked } = scheduleWith(routes);
  set('a', NOW);
  set('a', NOW);
  assert.equal(asked(), 1, 'due again (a rescan) without a new route');
  routes.set('a', ['mx:example.com']);
  schedule.reroute();
  assert.deepEqual(schedule.startable(NOW, always), {
    id: 'a',
    routing: { groups: [], destinations: ['mx:example.com'] },
  });
});

test('with 20,000 messages for a full destination, finding the one that may start costs a step per destination', () => {
  const routes = new Map([['other', ['mx:other.example']]]);
  const { schedule, set, asked } = scheduleWith(routes);
  for (let i = 0; i < 20_000; i++) set(`backlog-${String(i).padStart(5, '0')}`, NOW);
  set('other', NOW);
  assert.equal(asked(), 20_001, 'each message is routed once, when it becomes due');
  let roomChecks = 0;
  const smarthostFull = (destinations: string[]) => (roomChecks++, destinations[0] !== 'smarthost');
  for (let i = 0; i < 1_000; i++) {
    const next = schedule.startable(NOW, smarthostFull);
    if (next) schedule.start(next.id, Promise.resolve());
    assert.equal(next?.id ?? 'none', i === 0 ? 'other' : 'none');
  }
  // Two groups looked at per call, and only the group with room is opened
  assert.ok(roomChecks <= 2_000, `room checked ${roomChecks} times`);
  assert.equal(schedule.size, 20_001);
  assert.equal(asked(), 20_001, 'nothing was routed twice');
});
