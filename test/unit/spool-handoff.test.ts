/** DeliveryHandoff: new messages go to delivery as the card starts its next flush, or after a bounded wait */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeliveryHandoff } from '../../src/spool/handoff.js';
import { eventually } from '../support/wait.js';

/** The journal's side: listeners called once when the next flush is issued */
function flushSignal() {
  let listeners: Array<() => void> = [];
  return {
    onNextFlush: (listener: () => void) => void listeners.push(listener),
    issueFlush() {
      const now = listeners;
      listeners = [];
      now.forEach((listener) => listener());
    },
  };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

test('messages that heard 250 are handed over together in the turn after the next flush is issued', async () => {
  const flush = flushSignal();
  const handed: string[] = [];
  const handoff = new DeliveryHandoff<string>(flush.onNextFlush, (m) => handed.push(m), 60_000);
  handoff.add('a');
  handoff.add('b');
  await nextTurn();
  assert.deepEqual(handed, [], 'nothing before a flush (the wait bound is a minute here)');
  flush.issueFlush();
  assert.deepEqual(handed, [], 'not inside the journal call that issues the flush');
  await nextTurn();
  assert.deepEqual(handed, ['a', 'b']);
  handoff.add('c');
  flush.issueFlush();
  await nextTurn();
  assert.deepEqual(handed, ['a', 'b', 'c'], 'each message exactly once');
  handoff.stop();
});

test('with no flush coming, a message is handed over after the wait bound, once', async () => {
  const flush = flushSignal();
  const handed: string[] = [];
  const handoff = new DeliveryHandoff<string>(flush.onNextFlush, (m) => handed.push(m), 30);
  handoff.add('lone');
  await eventually('the lone message is handed over', () => handed.length === 1, {
    timeoutMs: 2_000,
  });
  // The flush that comes later finds nothing left to hand over
  flush.issueFlush();
  await nextTurn();
  assert.deepEqual(handed, ['lone']);
  handoff.add('next');
  flush.issueFlush();
  await nextTurn();
  assert.deepEqual(handed, ['lone', 'next']);
  handoff.stop();
});

test('stop: what waits is not handed over (it is durable; the next start finds it)', async () => {
  const flush = flushSignal();
  const handed: string[] = [];
  const handoff = new DeliveryHandoff<string>(flush.onNextFlush, (m) => handed.push(m), 60_000);
  handoff.add('at stop');
  handoff.stop();
  flush.issueFlush();
  await nextTurn();
  assert.deepEqual(handed, []);
});
