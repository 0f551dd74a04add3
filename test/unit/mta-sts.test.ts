/** MTA-STS records, policies and MX patterns (RFC 8461, pure), and the policy cache file */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { CACHE_FILE, StsCache } from '../../src/deliver/mta-sts-cache.js';
import { createLogger } from '../../src/log.js';
import {
  MAX_AGE_LIMIT,
  mxMatches,
  parseStsPolicy,
  parseStsRecord,
  policyAllows,
} from '../../src/deliver/mta-sts-policy.js';

test('TXT record: the id of the one v=STSv1 record', () => {
  assert.deepEqual(parseStsRecord(['v=spf1 -all', 'v=STSv1; id=20160831085700Z;']), {
    ok: true,
    value: { id: '20160831085700Z' },
  });
  assert.deepEqual(parseStsRecord(['v=STSv1;id=abc123']), { ok: true, value: { id: 'abc123' } });
});

test('TXT record: none, two, or a bad id mean no policy', () => {
  assert.equal(parseStsRecord([]).ok, false);
  assert.equal(parseStsRecord(['v=STSv1; id=a', 'v=STSv1; id=b']).ok, false);
  assert.deepEqual(parseStsRecord(['v=STSv1; id=not-alnum!']), {
    ok: false,
    error: 'Bad MTA-STS record id "not-alnum!"',
  });
  assert.equal(parseStsRecord(['v=STSv10; id=abc']).ok, false, 'another version is not ours');
});

test('policy: CRLF or LF lines, several mx, unknown keys ignored', () => {
  const parsed = parseStsPolicy(
    'version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.net.\r\nmax_age: 604800\r\nextension: yes\r\n',
  );
  assert.deepEqual(parsed, {
    ok: true,
    value: { mode: 'enforce', mx: ['mail.example.com', '*.example.net'], maxAgeSeconds: 604800 },
  });
  assert.deepEqual(parseStsPolicy('version: STSv1\nmode: none\nmax_age: 10\n'), {
    ok: true,
    value: { mode: 'none', mx: [], maxAgeSeconds: 10 },
  });
});

test('policy: bad version, mode, max_age or missing mx are errors; max_age capped at one year', () => {
  assert.deepEqual(parseStsPolicy('version: STSv2\nmode: enforce\nmx: a\nmax_age: 1'), {
    ok: false,
    error: 'Bad MTA-STS policy version "STSv2"',
  });
  assert.deepEqual(parseStsPolicy('version: STSv1\nmode: strict\nmx: a\nmax_age: 1'), {
    ok: false,
    error: 'Bad MTA-STS policy mode "strict"',
  });
  assert.deepEqual(parseStsPolicy('version: STSv1\nmode: testing\nmx: a\nmax_age: -5'), {
    ok: false,
    error: 'Bad MTA-STS policy max_age "-5"',
  });
  assert.deepEqual(parseStsPolicy('version: STSv1\nmode: enforce\nmax_age: 86400'), {
    ok: false,
    error: 'MTA-STS policy lists no mx',
  });
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
  assert.equal(
    policyAllows({ mode: 'enforce', mx: ['a.test', '*.b.test'], maxAgeSeconds: 1 }, 'x.b.test'),
    true,
  );
  assert.equal(
    policyAllows({ mode: 'enforce', mx: ['a.test', '*.b.test'], maxAgeSeconds: 1 }, 'x.c.test'),
    false,
  );
});

function cacheIn(dataDir: string, now: () => number) {
  const logged: string[] = [];
  const log = createLogger({
    destination: new Writable({ write: (chunk, _e, done) => (logged.push(String(chunk)), done()) }),
  });
  return { cache: new StsCache({ dataDir, log, now }), logged };
}

const POLICY = { mode: 'enforce', mx: ['mx.example.com'], maxAgeSeconds: 600 } as const;

test('policy cache: survives a new instance (a restart), honours the expiry, leaves no temp files', async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sts-cache-'));
  let now = 1_000_000;
  await cacheIn(dataDir, () => now).cache.set('example.com', {
    id: 'abc',
    policy: { ...POLICY, mx: [...POLICY.mx] },
    expiresAt: now + 600_000,
  });
  assert.deepEqual(readdirSync(dataDir), [CACHE_FILE]);
  const restarted = cacheIn(dataDir, () => now).cache;
  assert.deepEqual(await restarted.get('example.com'), {
    id: 'abc',
    policy: POLICY,
    expiresAt: 1_600_000,
  });
  now += 600_000;
  assert.equal(await restarted.get('example.com'), undefined, 'expired at max_age');
  await restarted.set('other.com', {
    id: 'x1',
    policy: { ...POLICY, mx: [...POLICY.mx] },
    expiresAt: now + 1_000,
  });
  const saved = JSON.parse(readFileSync(path.join(dataDir, CACHE_FILE), 'utf8')) as {
    policies: Record<string, unknown>;
  };
  assert.deepEqual(
    Object.keys(saved.policies),
    ['other.com'],
    'expired entries are not written back',
  );
});

test('policy cache: a damaged file or entry is logged and ignored, and the next save repairs it', async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sts-cache-'));
  const file = path.join(dataDir, CACHE_FILE);
  writeFileSync(file, '{"version": 1, "policies": {"exa');
  const broken = cacheIn(dataDir, () => 0);
  assert.equal(await broken.cache.get('example.com'), undefined);
  assert.match(broken.logged.join(''), /MTA-STS policy cache unreadable/);
  await broken.cache.set('example.com', {
    id: 'abc',
    policy: { ...POLICY, mx: [...POLICY.mx] },
    expiresAt: 10,
  });
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).policies['example.com'].id, 'abc');

  writeFileSync(
    file,
    JSON.stringify({
      version: 1,
      policies: {
        'bad.com': { id: 'no spaces!', policy: POLICY, expiresAt: 10 },
        'good.com': { id: 'ok1', policy: POLICY, expiresAt: 10 },
      },
    }),
  );
  const partly = cacheIn(dataDir, () => 0);
  assert.equal(await partly.cache.get('bad.com'), undefined);
  assert.equal((await partly.cache.get('good.com'))?.id, 'ok1');
  assert.match(partly.logged.join(''), /damaged entry ignored/);
});
