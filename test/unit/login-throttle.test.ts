/** The shared login throttle (POP3 and the web page), on a clock the test moves */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LoginThrottle, type LoginThrottleOptions, type LoginTurn } from '../../src/util/login-throttle.js';

function clocked(options: Partial<LoginThrottleOptions> = {}) {
  const clock = { now: 0 };
  const throttle = new LoginThrottle({ perClient: { baseMs: 500, maxMs: 4_000 }, perAccount: { baseMs: 500, maxMs: 30_000 }, maxWaitMs: 5_000, now: () => clock.now, ...options });
  return { clock, throttle };
}

function waitOf(turn: LoginTurn): number {
  assert.ok(turn.allowed, 'a turn was given');
  return turn.waitMs;
}

describe('login throttle', () => {
  test('the first attempt is checked at once; each failure doubles the wait of the next, up to the cap', () => {
    const { clock, throttle } = clocked({ perAccount: undefined });
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      const turn = throttle.begin('10.0.0.9');
      waits.push(waitOf(turn));
      clock.now += waitOf(turn);
      if (turn.allowed) turn.attempt.failed();
    }
    assert.deepEqual(waits, [0, 500, 1000, 2000, 4000]);
    assert.equal(waitOf(throttle.begin('10.0.0.10')), 0, 'another address is not slowed');
  });

  test('attempts sent at once, or abandoned by a client that hangs up, count as failures and queue up', () => {
    const { throttle } = clocked({ perAccount: undefined });
    // Three guesses at the same instant, none ever reported (the client hung up on each)
    assert.deepEqual([1, 2, 3].map(() => waitOf(throttle.begin('10.0.0.9'))), [0, 500, 1500]);
    assert.ok(throttle.suspect('10.0.0.9'));
  });

  test('a turn further away than maxWaitMs is refused unchecked, with when to come back, and costs nothing', () => {
    const { throttle } = clocked({ perAccount: undefined, maxWaitMs: 1_000 });
    for (let i = 0; i < 2; i++) throttle.begin('10.0.0.9');
    const refused = throttle.begin('10.0.0.9');
    assert.deepEqual(refused, { allowed: false, retryAfterMs: 500 }, 'the next turn is 1.5 s away: 0.5 s past the limit');
    assert.deepEqual(throttle.begin('10.0.0.9'), refused, 'a refusal does not push the turn further');
  });

  test('failures on one mailbox from many addresses slow that mailbox, not others', () => {
    const { throttle } = clocked();
    const waits = Array.from({ length: 4 }, (_, i) => waitOf(throttle.begin(`127.0.0.${i + 2}`, 'alice')));
    assert.deepEqual(waits, [0, 500, 1500, 3500]);
    assert.equal(throttle.begin('127.0.0.9', 'alice').allowed, false, 'the fifth guess is 7.5 s away: refused');
    assert.equal(waitOf(throttle.begin('127.0.0.9', 'bob')), 0);
  });

  test('a success clears its address, and that address skips the mailbox wait from then on', () => {
    const { clock, throttle } = clocked();
    const owner = throttle.begin('10.0.0.1', 'alice');
    assert.ok(owner.allowed);
    owner.attempt.succeeded();
    for (let i = 0; i < 4; i++) throttle.begin(`10.0.0.${i + 50}`, 'alice');
    assert.equal(throttle.begin('10.0.0.99', 'alice').allowed, false, 'guessing alice from elsewhere is refused');
    assert.equal(waitOf(throttle.begin('10.0.0.1', 'alice')), 0, 'her own address is not locked out');
    clock.now += 25 * 3_600_000;
    assert.equal(waitOf(throttle.begin('10.0.0.1', 'alice')), 0, 'a day later every failure is forgotten too');
  });

  test('an overall pace spaces attempts from every address, and a success gives its turn back', () => {
    const { clock, throttle } = clocked({ perAccount: undefined, overall: { baseMs: 500, maxMs: 500 }, maxWaitMs: 3_000 });
    const waits = Array.from({ length: 7 }, (_, i) => waitOf(throttle.begin(`10.0.1.${i}`)));
    assert.deepEqual(waits, [0, 500, 1000, 1500, 2000, 2500, 3000]);
    const refused = throttle.begin('10.0.1.99');
    assert.ok(!refused.allowed && refused.retryAfterMs === 500);
    clock.now += 10_000;
    const right = throttle.begin('10.0.2.1');
    assert.ok(right.allowed);
    right.attempt.succeeded();
    assert.equal(waitOf(throttle.begin('10.0.2.2')), 0, 'the correct password took no turn from the next');
  });

  test('failures are forgotten after a quiet quarter hour, and at most maxEntries addresses are remembered', () => {
    const { clock, throttle } = clocked({ perAccount: undefined, maxEntries: 3 });
    throttle.begin('a');
    clock.now += 16 * 60_000;
    assert.equal(waitOf(throttle.begin('a')), 0);
    assert.ok(throttle.suspect('a'));
    for (const address of ['b', 'c', 'd']) throttle.begin(address);
    assert.ok(!throttle.suspect('a'), 'the oldest address was dropped');
    assert.equal(waitOf(throttle.begin('a')), 0);
  });
});
