/** The queue manager's schedule: order, limits, waiting messages, and a cost that doesn't grow with the backlog (pure) */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Schedule } from '../../src/queue/schedule.js';

const NOW = 1_000_000;

/** A schedule whose messages go where `routes` says (default: the smarthost) */
function scheduleWith(routes: Map<string, string[]> = new Map()) {
  let asked = 0;
  const schedule = new Schedule<string>((id) => {
    asked++;
    return routes.get(id) ?? ['smarthost'];
  });
  return { schedule, asked: () => asked };
}

const always = () => true;
const never = () => false;

function drain(schedule: Schedule<string>, now = NOW, hasRoom: (d: string[]) => boolean = always): string[] {
  const order: string[] = [];
  for (let next = schedule.take(now, never, hasRoom); next; next = schedule.take(now, never, hasRoom)) order.push(next.id);
  return order;
}

test('due messages start oldest first; waiting ones only once their time has come', () => {
  const { schedule } = scheduleWith();
  schedule.set('a', NOW - 10, NOW);
  schedule.set('later', NOW + 5_000, NOW);
  schedule.set('b', NOW, NOW);
  assert.equal(schedule.size, 3);
  assert.equal(schedule.nextAt(NOW), NOW + 5_000);
  assert.deepEqual(drain(schedule), ['a', 'b']);
  assert.equal(schedule.take(NOW + 4_999, never, always), undefined);
  assert.deepEqual(schedule.take(NOW + 5_000, never, always), { id: 'later', destinations: ['smarthost'] });
  assert.equal(schedule.size, 0);
  assert.equal(schedule.nextAt(NOW), Infinity);
});

test('a full destination waits while messages to other destinations start', () => {
  const routes = new Map([
    ['slow-1', ['mx:slow.example']],
    ['slow-2', ['mx:slow.example']],
    ['fast-1', ['mx:fast.example']],
    ['both', ['mx:fast.example', 'mx:slow.example']],
  ]);
  const { schedule } = scheduleWith(routes);
  for (const id of ['slow-1', 'slow-2', 'fast-1', 'both']) schedule.set(id, NOW, NOW);
  const slowIsFull = (destinations: string[]) => !destinations.includes('mx:slow.example');
  assert.deepEqual(drain(schedule, NOW, slowIsFull), ['fast-1']);
  assert.deepEqual(drain(schedule), ['slow-1', 'slow-2', 'both']);
});

test('a message whose attempt is still running is passed over, not lost', () => {
  const { schedule } = scheduleWith();
  schedule.set('running', NOW, NOW);
  schedule.set('next', NOW, NOW);
  assert.equal(schedule.take(NOW, (id) => id === 'running', always)?.id, 'next');
  assert.equal(schedule.take(NOW, (id) => id === 'running', always), undefined);
  assert.equal(schedule.take(NOW, never, always)?.id, 'running');
});

test('nextAt is always in the future: what fell due moves to ready, a removed message no longer counts', () => {
  const { schedule } = scheduleWith();
  schedule.set('soon', NOW + 100, NOW);
  schedule.set('later', NOW + 5_000, NOW);
  schedule.delete('soon');
  assert.equal(schedule.nextAt(NOW + 200), NOW + 5_000);
  schedule.set('later', NOW + 9_000, NOW);
  assert.equal(schedule.nextAt(NOW + 200), NOW + 9_000);
  // Fallen due while every slot was busy: ready for the next free slot, and no timer for the past
  assert.equal(schedule.nextAt(NOW + 9_000), Infinity);
  assert.equal(schedule.take(NOW + 9_000, never, always)?.id, 'later');
});

test('a time that is not a number means now, and does not hold up the others', () => {
  const { schedule } = scheduleWith();
  schedule.set('damaged', Number.NaN, NOW);
  schedule.set('later', NOW + 1_000, NOW);
  assert.equal(schedule.nextAt(NOW), NOW + 1_000);
  assert.deepEqual(drain(schedule, NOW + 1_000), ['damaged', 'later']);
});

test('clear can keep the messages a caller still knows better than the spool', () => {
  const { schedule } = scheduleWith();
  schedule.set('kept', NOW + 1_000, NOW);
  schedule.set('ready-kept', NOW, NOW);
  schedule.set('gone', NOW, NOW);
  schedule.clear((id) => id.includes('kept'));
  assert.equal(schedule.size, 2);
  assert.deepEqual(drain(schedule, NOW + 1_000), ['ready-kept', 'kept']);
});

test('rescheduling moves a message; delete and clear forget it', () => {
  const { schedule } = scheduleWith();
  schedule.set('a', NOW, NOW);
  schedule.set('a', NOW + 60_000, NOW);
  assert.equal(schedule.take(NOW, never, always), undefined);
  assert.equal(schedule.size, 1);
  schedule.delete('a');
  assert.equal(schedule.size, 0);
  assert.equal(schedule.take(NOW + 60_000, never, always), undefined);
  schedule.set('b', NOW, NOW);
  schedule.set('c', NOW + 1, NOW);
  schedule.clear();
  assert.equal(schedule.size, 0);
  assert.equal(schedule.nextAt(NOW), Infinity);
});

test('allDueNow (retry --all, a settings change) makes every waiting message due', () => {
  const { schedule } = scheduleWith();
  schedule.set('a', NOW + 60_000, NOW);
  schedule.set('b', NOW + 3_600_000, NOW);
  schedule.allDueNow();
  assert.equal(schedule.nextAt(NOW), Infinity);
  assert.deepEqual(drain(schedule), ['a', 'b']);
});

test('regroup asks again where each due message goes', () => {
  const routes = new Map([['a', ['smarthost']]]);
  const { schedule } = scheduleWith(routes);
  schedule.set('a', NOW, NOW);
  routes.set('a', ['mx:example.com']);
  schedule.regroup();
  assert.deepEqual(schedule.take(NOW, never, always), { id: 'a', destinations: ['mx:example.com'] });
});

test('with 20,000 messages for a full destination, finding the one that may start costs a step per destination', () => {
  const routes = new Map([['other', ['mx:other.example']]]);
  const { schedule, asked } = scheduleWith(routes);
  for (let i = 0; i < 20_000; i++) schedule.set(`backlog-${String(i).padStart(5, '0')}`, NOW, NOW);
  schedule.set('other', NOW, NOW);
  assert.equal(asked(), 20_001, 'each message is routed once, when it becomes due');
  let roomChecks = 0;
  let runningChecks = 0;
  const smarthostFull = (destinations: string[]) => (roomChecks++, destinations[0] !== 'smarthost');
  const isRunning = () => (runningChecks++, false);
  for (let i = 0; i < 1_000; i++) assert.equal(schedule.take(NOW, isRunning, smarthostFull)?.id ?? 'none', i === 0 ? 'other' : 'none');
  // Two groups looked at per call, and only the group with room is opened
  assert.ok(roomChecks <= 2_000, `room checked ${roomChecks} times`);
  assert.equal(runningChecks, 1);
  assert.equal(schedule.size, 20_000);
});
