/** The shared login throttle (POP3 and the web page), with waits short enough to run on the real clock */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LoginThrottle, type LoginThrottleOptions } from '../../src/util/login-throttle.js';

const BASE = 100;

function throttleWith(options: Partial<LoginThrottleOptions> = {}): LoginThrottle {
  return new LoginThrottle({
    perClient: { baseMs: BASE, maxMs: 400 },
    perAccount: { baseMs: BASE, maxMs: 10_000 },
    maxWaitMs: 1_000,
    ...options,
  });
}

/** Takes a turn and reports the check's outcome at once; returns when the check started (ms from `t0`), or the refusal */
async function guess(
  throttle: LoginThrottle,
  t0: number,
  client: string,
  account: string | undefined,
  right = false,
) {
  const turn = await throttle.take(client, account);
  if (!turn.allowed) return { refusedFor: turn.retryAfterMs, at: Date.now() - t0 };
  const at = Date.now() - t0;
  if (right) turn.attempt.succeeded();
  else turn.attempt.failed();
  return { checkedAt: at };
}

describe('login throttle', () => {
  test('the first attempt is checked at once; each failure doubles the wait before the next check, up to the cap', async () => {
    const throttle = throttleWith({ perAccount: undefined });
    const t0 = Date.now();
    const times: number[] = [];
    for (let i = 0; i < 5; i++)
      times.push((await guess(throttle, t0, '10.0.0.9', undefined)).checkedAt ?? NaN);
    const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0));
    assert.ok(times[0]! < 80, `first check at ${times[0]} ms`);
    for (const [i, expected] of [100, 200, 400, 400].entries())
      assert.ok(
        gaps[i]! >= expected - 5 && gaps[i]! < expected + 150,
        `gap ${i + 1}: ${gaps[i]} ms, expected ${expected}`,
      );
    assert.ok(
      (await guess(throttle, Date.now(), '10.0.0.10', undefined)).checkedAt! < 80,
      'another address is not slowed',
    );
  });

  test('guesses sent at once are checked one after another, each after the wait the last failure earned; the rest are refused at once', async () => {
    const throttle = throttleWith({
      perClient: { baseMs: BASE, maxMs: 10_000 },
      perAccount: undefined,
      maxWaiting: 3,
    });
    const t0 = Date.now();
    const results = await Promise.all(
      Array.from({ length: 6 }, () => guess(throttle, t0, '10.0.0.9', undefined)),
    );
    const checked = results
      .flatMap((r) => (r.checkedAt === undefined ? [] : [r.checkedAt]))
      .sort((a, b) => a - b);
    const refused = results.filter((r) => r.refusedFor !== undefined);
    assert.equal(checked.length, 4, 'one at once and three waiting (the limit); two refused');
    assert.equal(refused.length, 2);
    // Without waiting: each refusal came before the first wait (BASE after the first failure) was over
    assert.ok(
      refused.every((r) => r.at < checked[1]! && r.refusedFor! >= 1_000),
      `refused without waiting (at ${refused.map((r) => r.at).join(', ')} ms), told to come back in a second at least`,
    );
    assert.ok(
      checked[1]! >= 95 && checked[2]! >= 295 && checked[3]! >= 695,
      `checked at ${checked.join(', ')} ms`,
    );
    assert.ok(throttle.suspect('10.0.0.9'));
  });

  test('a client that hangs up while waiting had nothing checked, and frees its place', async () => {
    const throttle = throttleWith({ perAccount: undefined });
    const first = await throttle.take('10.0.0.9');
    assert.ok(first.allowed);
    first.attempt.failed();
    const hungUp = new AbortController();
    const waiting = throttle.take('10.0.0.9', 'x', hungUp.signal);
    hungUp.abort();
    assert.equal(await waiting, null);
    const next = await guess(throttle, Date.now(), '10.0.0.9', undefined);
    assert.ok(
      next.checkedAt !== undefined && next.checkedAt >= 50,
      'the next one waits only what the one failure earned',
    );
  });

  test('a turn further away than maxWaitMs is refused unchecked, with when to come back, and costs nothing', async () => {
    const throttle = throttleWith({
      perClient: { baseMs: 2_000, maxMs: 2_000 },
      perAccount: undefined,
    });
    await guess(throttle, Date.now(), '10.0.0.9', undefined);
    const refused = await throttle.take('10.0.0.9');
    assert.ok(
      refused && !refused.allowed && refused.retryAfterMs >= 900 && refused.retryAfterMs <= 1_000,
      JSON.stringify(refused),
    );
    const again = await throttle.take('10.0.0.9');
    assert.ok(
      again && !again.allowed && again.retryAfterMs <= refused.retryAfterMs,
      'a refusal does not push the turn further',
    );
  });

  test('failures on one mailbox from many addresses slow that mailbox, not others; right passwords sent at once barely wait', async () => {
    const throttle = throttleWith();
    const t0 = Date.now();
    const attack = await Promise.all(
      Array.from({ length: 4 }, (_, i) => guess(throttle, t0, `127.0.0.${i + 2}`, 'alice')),
    );
    const times = attack.map((r) => r.checkedAt ?? NaN).sort((a, b) => a - b);
    assert.ok(times[3]! >= 695, `four addresses, one mailbox: checked at ${times.join(', ')} ms`);
    const t1 = Date.now();
    const owners = await Promise.all(
      Array.from({ length: 4 }, (_, i) => guess(throttle, t1, `127.0.1.${i + 2}`, 'bob', true)),
    );
    assert.ok(
      owners.every((r) => r.checkedAt !== undefined && r.checkedAt < 100),
      `right passwords to bob: ${owners.map((r) => r.checkedAt).join(', ')} ms`,
    );
  });

  test('a success clears its address, and that address skips the mailbox wait from then on', async () => {
    const throttle = throttleWith({ perAccount: { baseMs: 5_000, maxMs: 5_000 } });
    await guess(throttle, Date.now(), '10.0.0.1', 'alice', true);
    await guess(throttle, Date.now(), '10.0.0.50', 'alice');
    const stranger = await throttle.take('10.0.0.99', 'alice');
    assert.ok(stranger && !stranger.allowed, 'guessing alice from elsewhere is refused');
    assert.ok(
      (await guess(throttle, Date.now(), '10.0.0.1', 'alice', true)).checkedAt! < 80,
      'her own address is not locked out',
    );
  });

  test('an overall pace spaces failures from every address; successes take no turn', async () => {
    const throttle = throttleWith({
      perAccount: undefined,
      overall: { baseMs: BASE, maxMs: BASE },
    });
    const t0 = Date.now();
    const failures = await Promise.all(
      Array.from({ length: 4 }, (_, i) => guess(throttle, t0, `10.0.1.${i}`, undefined)),
    );
    assert.ok(
      Math.max(...failures.map((r) => r.checkedAt ?? NaN)) >= 295,
      'four addresses: one check per 100 ms',
    );
    // A right password waits out the pace the last failure earned, and earns none itself
    assert.ok(
      (await guess(throttle, Date.now(), '10.0.2.9', undefined, true)).checkedAt !== undefined,
    );
    const t1 = Date.now();
    const rights = await Promise.all(
      Array.from({ length: 4 }, (_, i) => guess(throttle, t1, `10.0.2.${i}`, undefined, true)),
    );
    // Paced like failures, the last would come 3 * BASE after the first; queued only behind the checks, far sooner
    assert.ok(
      Math.max(...rights.map((r) => r.checkedAt ?? NaN)) < 2 * BASE,
      `right passwords only queue for the checks before them: ${rights.map((r) => r.checkedAt).join(', ')} ms`,
    );
  });

  test('at most maxEntries keys are remembered', async () => {
    const throttle = throttleWith({ perAccount: undefined, maxEntries: 3 });
    await guess(throttle, Date.now(), 'a', undefined);
    assert.ok(throttle.suspect('a'));
    for (const address of ['b', 'c', 'd']) await guess(throttle, Date.now(), address, undefined);
    assert.ok(!throttle.suspect('a'), 'the oldest address was dropped');
  });
});
