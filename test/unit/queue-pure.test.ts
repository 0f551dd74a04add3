/** Backoff, outcome folding and bounce reports (pure) */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildDsn, reportStatus, type DsnAction } from '../../src/bounce/dsn.js';
import { applyOutcomes } from '../../src/queue/apply.js';
import { delayAfter, type RetryPolicy } from '../../src/queue/backoff.js';
import type { QueueId } from '../../src/spool/ids.js';
import { initialState, toListItem, type Arrival } from '../../src/spool/records.js';

const policy: RetryPolicy = { delaysMs: [60_000, 300_000, 900_000], maxAgeMs: 86_400_000 };
const arrival: Arrival = {
  v: 1,
  id: '0MWY7QWAC1NCSU0TZ2U' as QueueId,
  from: 'scan@office.test',
  to: ['a@example.com', 'b@example.com', 'c@relay.test'],
  receivedAt: '2026-11-26T10:00:00.000Z',
  client: { address: '10.0.0.5', helo: 'mfp' },
};

const dsnInput = (action: DsnAction, error: string) => ({
  action,
  reportingMta: 'relay.test',
  queueId: arrival.id,
  arrivalDate: arrival.receivedAt,
  originalSender: arrival.from,
  failed: [{ address: 'b@example.com', error }],
  originalHeaders: 'Subject: scan\r\nFrom: scan@office.test\r\n',
  to: 'postmaster@relay.test',
  date: new Date('2026-11-26T11:00:00Z'),
});

test('backoff follows the list and repeats the last delay', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 10].map((n) => delayAfter(n, policy)),
    [60_000, 300_000, 900_000, 900_000, 900_000],
  );
});

test('each recipient gets its own outcome; deferred ones wait on the schedule', () => {
  const now = new Date('2026-11-26T10:01:00.000Z');
  const result = applyOutcomes(
    arrival,
    initialState(arrival),
    [
      { address: 'a@example.com', outcome: { status: 'delivered', detail: '250 ok' } },
      {
        address: 'b@example.com',
        outcome: { status: 'deferred', reason: '451 4.3.0 busy (mx:25)' },
      },
      { address: 'c@relay.test', outcome: { status: 'local', detail: 'mailbox c' } },
    ],
    now,
    policy,
  );
  assert.equal(result.finished, false);
  assert.deepEqual(
    result.state.recipients.map((r) => r.status),
    ['delivered', 'deferred', 'local'],
  );
  assert.equal(result.state.attempts, 1);
  assert.equal(result.state.lastError, '451 4.3.0 busy (mx:25)');
  assert.equal(result.state.nextAttempt, '2026-11-26T10:02:00.000Z');
  assert.deepEqual(result.bounced, []);
  const item = toListItem({ arrival, state: { ...result.state, held: true }, size: 10 });
  assert.deepEqual(
    item.recipients.map((r) => r.status),
    ['delivered', 'held', 'local'],
    'pending recipients of a held message show as held',
  );
  assert.equal(item.nextAttempt, null);
});

test('a deferral past maxAge becomes a bounce that says why', () => {
  const later = new Date(Date.parse(arrival.receivedAt) + policy.maxAgeMs + 1);
  const result = applyOutcomes(
    arrival,
    initialState(arrival),
    arrival.to.map((address) => ({
      address,
      outcome: { status: 'deferred' as const, reason: 'ECONNREFUSED (up:587)' },
    })),
    later,
    policy,
  );
  assert.equal(result.finished, true);
  assert.equal(result.bounced.length, 3);
  assert.match(
    result.bounced[0]?.lastError ?? '',
    /^Gave up after 24h in the queue; last error: ECONNREFUSED/,
  );
});

test('the DSN is a multipart/report naming each failed recipient with the remote reply', () => {
  const text = buildDsn(
    dsnInput(
      'failed',
      '550 5.1.1 <b@example.com>: no such user (mx1.example.com:25, after RCPT TO)',
    ),
  );
  assert.match(text, /^From: Mail Delivery System <MAILER-DAEMON@relay\.test>\r\n/);
  assert.match(
    text,
    /Content-Type: multipart\/report; report-type=delivery-status; boundary="(edge-relay-[0-9a-f]+)"/,
  );
  assert.match(text, /Reporting-MTA: dns; relay\.test\r\n/);
  assert.match(
    text,
    /Final-Recipient: rfc822; b@example\.com\r\nAction: failed\r\nStatus: 5\.1\.1\r\nRemote-MTA: dns; mx1\.example\.com\r\nDiagnostic-Code: smtp; 550 5\.1\.1/,
  );
  assert.match(
    text,
    /Content-Type: text\/rfc822-headers\r\n\r\nSubject: scan\r\nFrom: scan@office\.test\r\n/,
  );
  assert.ok(!/[^\r]\n/.test(text), 'CRLF only');
  assert.equal(reportStatus({ error: 'Gave up after 5d in the queue; last error: x' }), '4.4.7');
  assert.equal(reportStatus({ error: 'Bad recipient address "x"' }), '5.4.0');
});

test('a delay warning says the message is still being retried', () => {
  const text = buildDsn(dsnInput('delayed', '451 4.4.1 No answer from host (mx:25)'));
  assert.match(text, /Subject: Delayed Mail \(still being retried\)/);
  assert.match(text, /Action: delayed\r\nStatus: 4\.4\.1/);
});
