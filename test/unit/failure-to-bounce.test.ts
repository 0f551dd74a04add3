/**
 * From failure-policy.ts's outcomes to the queue's state and the bounce
 * report (pure): a throttled deferral neither counts nor expires, a
 * requested wait is honoured, and a bounce keeps the DSN status it was given.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildDsn } from '../../src/bounce/dsn.js';
import { bounced, deferred, fromDns } from '../../src/deliver/failure-policy.js';
import type { Outcome } from '../../src/deliver/outcome.js';
import { applyOutcomes } from '../../src/queue/apply.js';
import type { RetryPolicy } from '../../src/queue/backoff.js';
import type { QueueId } from '../../src/spool/ids.js';
import { initialState, type Arrival } from '../../src/spool/records.js';

const policy: RetryPolicy = { delaysMs: [60_000, 300_000], maxAgeMs: 3_600_000 };
const arrival: Arrival = {
  v: 1,
  id: '0MWY7QWAC1NCSU0TZ2U' as QueueId,
  from: 'scan@office.test',
  to: ['a@example.com'],
  receivedAt: '2026-12-06T10:00:00.000Z',
  client: { address: '10.0.0.5', helo: 'mfp' },
};
const at = (minutes: number) => new Date(Date.parse(arrival.receivedAt) + minutes * 60_000);
const apply = (outcome: Outcome, minutes: number, state = initialState(arrival)) =>
  applyOutcomes(arrival, state, [{ address: 'a@example.com', outcome }], at(minutes), policy);

test('a throttled deferral past the maximum age is not expired and not counted; an ordinary one is', () => {
  const slowDown = deferred('450 4.5.127 Excessive message rate (up:587)', { throttled: true });
  const throttled = apply(slowDown, 90);
  assert.equal(throttled.state.attempts, 0);
  assert.equal(throttled.state.recipients[0]?.status, 'deferred');
  assert.deepEqual(throttled.bounced, []);
  const ordinary = apply(deferred('451 4.3.0 Try later (up:587)'), 90);
  assert.equal(ordinary.state.attempts, 1);
  assert.deepEqual(
    ordinary.bounced.map((r) => [r.status, r.dsnStatus]),
    [['bounced', '4.4.7']],
  );
});

test('a wait the upstream asked for is honoured when longer than the backoff, never shortened', () => {
  const asked = apply(
    deferred('HTTP 429 (graph)', { retryAfterMs: 20 * 60_000, throttled: true }),
    1,
  );
  assert.equal(asked.state.nextAttempt, at(21).toISOString());
  const shorter = apply(deferred('HTTP 503 (graph)', { retryAfterMs: 1_000 }), 1);
  assert.equal(shorter.state.nextAttempt, at(2).toISOString(), 'the 1 minute backoff');
});

test("a bounce keeps the policy's DSN status, which the report uses even when the text has none", () => {
  const result = apply(
    fromDns('null-mx', 'Domain "example.com" does not accept mail (null MX, RFC 7505)'),
    1,
  );
  const [recipient] = result.bounced;
  assert.equal(recipient?.dsnStatus, '5.1.10');
  const report = buildDsn({
    action: 'failed',
    reportingMta: 'relay.test',
    queueId: arrival.id,
    arrivalDate: arrival.receivedAt,
    originalSender: arrival.from,
    failed: [
      {
        address: 'a@example.com',
        error: recipient?.lastError ?? '',
        dsnStatus: recipient?.dsnStatus,
      },
    ],
    originalHeaders: 'Subject: scan\r\n',
    to: arrival.from,
    date: at(1),
  });
  assert.match(report, /Action: failed\r\nStatus: 5\.1\.10\r\n/);
  assert.equal(
    apply(bounced('550 5.7.1 Relaying denied (up:25)', '5.7.1'), 1).bounced[0]?.dsnStatus,
    '5.7.1',
  );
});
