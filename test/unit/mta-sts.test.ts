/** MTA-STS records, policies and MX patterns (RFC 8461, pure) */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_AGE_LIMIT, mxMatches, parseStsPolicy, parseStsRecord, policyAllows } from '../../src/deliver/mta-sts-policy.js';

test('TXT record: the id of the one v=STSv1 record', () => {
  assert.deepEqual(parseStsRecord(['v=spf1 -all', 'v=STSv1; id=20160831085700Z;']), { ok: true, value: { id: '20160831085700Z' } });
  assert.deepEqual(parseStsRecord(['v=STSv1;id=abc123']), { ok: true, value: { id: 'abc123' } });
});

test('TXT record: none, two, or a bad id mean no policy', () => {
  assert.equal(parseStsRecord([]).ok, false);
  assert.equal(parseStsRecord(['v=STSv1; id=a', 'v=STSv1; id=b']).ok, false);
  assert.deepEqual(parseStsRecord(['v=STSv1; id=not-alnum!']), { ok: false, error: 'Bad MTA-STS record id "not-alnum!"' });
  assert.equal(parseStsRecord(['v=STSv10; id=abc']).ok, false, 'another version is not ours');
});

test('policy: CRLF or LF lines, several mx, unknown keys ignored', () => {
  const parsed = parseStsPolicy('version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.net.\r\nmax_age: 604800\r\nextension: yes\r\n');
  assert.deepEqual(parsed, { ok: true, value: { mode: 'enforce', mx: ['mail.example.com', '*.example.net'], maxAgeSeconds: 604800 } });
  assert.deepEqual(parseStsPolicy('version: STSv1\nmode: none\nmax_age: 10\n'), { ok: true, value: { mode: 'none', mx: [], maxAgeSeconds: 10 } });
});

test('policy: bad version, mode, max_age or missing mx are errors; max_age capped at one year', () => {
  assert.deepEqual(parseStsPolicy('version: STSv2\nmode: enforce\nmx: a\nmax_age: 1'), { ok: false, error: 'Bad MTA-STS policy version "STSv2"' });
  assert.deepEqual(parseStsPolicy('version: STSv1\nmode: strict\nmx: a\nmax_age: 1'), { ok: false, error: 'Bad MTA-STS policy mode "strict"' });
  assert.deepEqual(parseStsPolicy('version: STSv1\nmode: testing\nmx: a\nmax_age: -5'), { ok: false, error: 'Bad MTA-STS policy max_age "-5"' });
  assert.deepEqual(parseStsPolicy('version: STSv1\nmode: enforce\nmax_age: 86400'), { ok: false, error: 'MTA-STS policy lists no mx' });
  const huge = parseStsPolicy('version: STSv1\nmode: testing\nmx: a.test\nmax_age: 9999999999');
  assert.equal(huge.ok && huge.value.maxAgeSeconds, MAX_AGE_LIMIT);
});

test('mx patterns: exact names, and a wildcard for exactly one leftmost label', () => {
  assert.equal(mxMatches('mail.example.com', 'MAIL.example.com.'), true);
  assert.equal(mxMatches('mail.example.com', 'mail2.example.com'), false);
  assert.equal(mxMatches('*.example.com', 'mx1.example.com'), true);
  assert.equal(mxMatches('*.example.com', 'example.com'), false);
  assert.equal(mxMatches('*.example.com', 'a.b.example.com'), false);
  assert.equal(mxMatches('*.example.com', 'mx1.example.com.evil.test'), false);
  assert.equal(policyAllows({ mode: 'enforce', mx: ['a.test', '*.b.test'], maxAgeSeconds: 1 }, 'x.b.test'), true);
  assert.equal(policyAllows({ mode: 'enforce', mx: ['a.test', '*.b.test'], maxAgeSeconds: 1 }, 'x.c.test'), false);
});
