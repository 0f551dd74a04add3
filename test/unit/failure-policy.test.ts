/** Is this failure temporary? Every kind of failure into one outcome (pure) */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RelayError } from '../../src/errors.js';
import {
  describeFailure,
  fromDns,
  fromException,
  fromHostFailures,
  fromHttpAnswer,
  fromSmtpFailure,
  fromUnroutable,
  parseRetryAfter,
  MAX_RETRY_AFTER_MS,
} from '../../src/deliver/failure-policy.js';

const where = 'mx1.example.test:2525';

/** What the policy makes of nodemailer's error for the reply `response` to `command` */
const smtpOutcome = (
  code: string,
  response: string,
  command: string | undefined,
  message: string,
) =>
  fromSmtpFailure(
    { code, responseCode: Number(response.slice(0, 3)), response, command, message },
    where,
  );

test('a 5xx reply to a recipient bounces, with the exact reply, host, command and its DSN status', () => {
  assert.deepEqual(
    smtpOutcome('EENVELOPE', '550 5.1.1 No such user', 'RCPT TO', 'Recipient command failed'),
    {
      status: 'bounced',
      reason: '550 5.1.1 No such user (mx1.example.test:2525, after RCPT TO)',
      dsnStatus: '5.1.1',
    },
  );
  const plain = smtpOutcome('EMESSAGE', '554 Rejected', 'DATA', 'Message failed');
  assert.equal(plain.status, 'bounced');
  assert.equal(plain.status === 'bounced' && plain.dsnStatus, '5.0.0');
});

test('a 4xx reply is deferred', () => {
  assert.deepEqual(smtpOutcome('EMESSAGE', '451 4.3.0 Try later', 'DATA', 'Message failed'), {
    status: 'deferred',
    reason: '451 4.3.0 Try later (mx1.example.test:2525, after DATA)',
  });
});

test('network and TLS failures are deferred, even with a 5xx reply to STARTTLS', () => {
  assert.equal(
    fromSmtpFailure({ code: 'ECONNECTION', message: 'connect ECONNREFUSED 127.0.0.9:25' }, where)
      .status,
    'deferred',
  );
  assert.equal(
    fromSmtpFailure({ code: 'ETIMEDOUT', message: 'Greeting never received' }, where).status,
    'deferred',
  );
  assert.equal(
    smtpOutcome(
      'ETLS',
      '502 5.5.1 STARTTLS not supported',
      'STARTTLS',
      'Error upgrading connection with STARTTLS',
    ).status,
    'deferred',
  );
});

test('a 5xx greeting and authentication failures are always retried; a 5xx to a command after the greeting bounces', () => {
  assert.deepEqual(smtpOutcome('EPROTOCOL', '554 5.3.2 No service', 'CONN', 'Invalid greeting'), {
    status: 'deferred',
    reason: '554 5.3.2 No service (mx1.example.test:2525, after CONN)',
  });
  assert.equal(
    smtpOutcome('EPROTOCOL', '554 5.5.1 Bad sequence', 'DATA', 'Invalid response').status,
    'bounced',
  );
  assert.equal(
    smtpOutcome('EAUTH', '535 5.7.8 Bad credentials', undefined, 'Invalid login').status,
    'deferred',
  );
});

test("providers' requests to slow down are throttled deferrals, even when they come as 5xx", () => {
  const replies = [
    '450 4.5.127 Excessive message rate from sender',
    '554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message',
    '421 4.7.0 Try again later, closing connection. Our system has detected an unusual rate of unsolicited mail',
    '452 4.5.3 Too many recipients',
  ];
  for (const response of replies) {
    assert.deepEqual(
      smtpOutcome('EENVELOPE', response, 'DATA', 'x'),
      { status: 'deferred', reason: `${response} (${where}, after DATA)`, throttled: true },
      response,
    );
  }
  // A busy host that does not mention a rate is an ordinary deferral: it counts toward the maximum queue age
  assert.deepEqual(smtpOutcome('EMESSAGE', '421 4.7.0 Too many connections', 'DATA', 'x'), {
    status: 'deferred',
    reason: `421 4.7.0 Too many connections (${where}, after DATA)`,
  });
});

test('without a reply the description names the code once and the host', () => {
  assert.equal(
    describeFailure({ code: 'ECONNECTION', message: 'connect ECONNREFUSED 127.0.0.9:25' }, where),
    'ECONNECTION: connect ECONNREFUSED 127.0.0.9:25 (mx1.example.test:2525)',
  );
  assert.equal(
    describeFailure({ code: 'ETIMEDOUT', message: 'ETIMEDOUT: timed out' }, where),
    'ETIMEDOUT: timed out (mx1.example.test:2525)',
  );
});

test('every MX host failing: bounced only when all bounced, with the first status', () => {
  const gone = fromDns('no-address', 'No address for "mx1.test"');
  assert.deepEqual(fromHostFailures([gone, fromDns('null-mx', 'null MX')]), {
    status: 'bounced',
    reason: 'No address for "mx1.test"; null MX',
    dsnStatus: '5.4.4',
  });
  assert.equal(fromHostFailures([gone, fromDns('lookup-failed', 'SERVFAIL')]).status, 'deferred');
  assert.equal(fromHostFailures([]).status, 'deferred');
});

test('DNS: a domain that does not exist or takes no mail bounces with its status; a failed lookup waits', () => {
  assert.deepEqual(fromDns('no-such-domain', 'NXDOMAIN'), {
    status: 'bounced',
    reason: 'NXDOMAIN',
    dsnStatus: '5.1.2',
  });
  assert.deepEqual(fromDns('null-mx', 'null MX'), {
    status: 'bounced',
    reason: 'null MX',
    dsnStatus: '5.1.10',
  });
  assert.deepEqual(fromDns('lookup-failed', 'SERVFAIL'), {
    status: 'deferred',
    reason: 'SERVFAIL',
  });
});

test('a route that leads nowhere: a bad address bounces, a missing setting waits for the admin', () => {
  assert.deepEqual(fromUnroutable('bad-address', 'Bad recipient address "a%b"'), {
    status: 'bounced',
    reason: 'Bad recipient address "a%b"',
    dsnStatus: '5.1.3',
  });
  assert.deepEqual(fromUnroutable('setting', 'No upstream configured'), {
    status: 'deferred',
    reason: 'No upstream configured',
  });
});

test('exceptions are deferred; only an error that blames the message bounces, with its status', () => {
  assert.deepEqual(
    fromException(
      new TypeError("Cannot read properties of undefined (reading 'x')"),
      'on this box',
    ),
    {
      status: 'deferred',
      reason: "Cannot read properties of undefined (reading 'x') (on this box)",
    },
  );
  assert.equal(fromException('a string', 'here').status, 'deferred');
  assert.equal(
    fromException(Object.assign(new Error('disk'), { code: 'EIO' }), 'here').status,
    'deferred',
  );
  assert.equal(
    fromException(new RelayError('Not signed in', { kind: 'config' }), 'here').status,
    'deferred',
  );
  assert.deepEqual(
    fromException(
      new RelayError('No such mailbox here: bob', {
        kind: 'permanent',
        smtpCode: 550,
        enhanced: '5.1.1',
      }),
      'local delivery',
    ),
    {
      status: 'bounced',
      reason: 'No such mailbox here: bob (local delivery)',
      dsnStatus: '5.1.1',
    },
  );
});

test('HTTP answers (an API sender): 2xx delivered, 429 throttled with its wait, 5xx deferred, 4xx bounced', () => {
  const now = new Date('2026-12-06T10:00:00Z');
  const api = 'graph.microsoft.com';
  assert.deepEqual(fromHttpAnswer(202, undefined, '', api, now), {
    status: 'delivered',
    detail: 'graph.microsoft.com said: HTTP 202',
  });
  assert.deepEqual(fromHttpAnswer(429, '30', '{"error":{"code":"TooManyRequests"}}', api, now), {
    status: 'deferred',
    reason: 'HTTP 429: {"error":{"code":"TooManyRequests"}} (graph.microsoft.com)',
    retryAfterMs: 30_000,
    throttled: true,
  });
  assert.deepEqual(fromHttpAnswer(503, 'Sun, 06 Dec 2026 10:02:00 GMT', 'busy', api, now), {
    status: 'deferred',
    reason: 'HTTP 503: busy (graph.microsoft.com)',
    retryAfterMs: 120_000,
  });
  assert.deepEqual(fromHttpAnswer(500, undefined, '', api, now), {
    status: 'deferred',
    reason: 'HTTP 500 (graph.microsoft.com)',
  });
  assert.deepEqual(fromHttpAnswer(400, undefined, 'ErrorInvalidRecipients', api, now), {
    status: 'bounced',
    reason: 'HTTP 400: ErrorInvalidRecipients (graph.microsoft.com)',
    dsnStatus: '5.0.0',
  });
  assert.equal(
    (fromHttpAnswer(413, undefined, '', api, now) as { dsnStatus?: string }).dsnStatus,
    '5.3.4',
  );
  // The sign-in or the app's permission: a setting to fix, not the message's fault
  assert.equal(fromHttpAnswer(401, undefined, '', api, now).status, 'deferred');
  assert.equal(fromHttpAnswer(403, undefined, '', api, now).status, 'deferred');
});

test('Retry-After: seconds or a date; absent, past or garbage ignored; capped at a day', () => {
  const now = new Date('2026-12-06T10:00:00Z');
  assert.equal(parseRetryAfter('120', now), 120_000);
  assert.equal(parseRetryAfter(undefined, now), undefined);
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter('Sun, 06 Dec 2026 09:00:00 GMT', now), undefined);
  assert.equal(parseRetryAfter('9999999', now), MAX_RETRY_AFTER_MS);
});
