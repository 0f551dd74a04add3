/** MX ordering and the decision where a domain's mail goes (pure) */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exchangesFrom, MAX_MX_HOSTS, orderMx } from '../../src/deliver/mx-resolve.js';
import { stricter, tlsSettings } from '../../src/tls/policy.js';

/** A deterministic "random" source from a list */
const sequence = (values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length] ?? 0;
};

test('MX hosts sorted by preference; names lowercased, trailing dot and duplicates dropped', () => {
  const hosts = orderMx(
    [
      { exchange: 'MX3.example.com.', priority: 30 },
      { exchange: 'mx1.example.com', priority: 10 },
      { exchange: 'mx2.example.com', priority: 20 },
      { exchange: 'mx1.example.com', priority: 40 },
    ],
    sequence([0.5]),
  );
  assert.deepEqual(hosts, [
    { name: 'mx1.example.com', preference: 10 },
    { name: 'mx2.example.com', preference: 20 },
    { name: 'mx3.example.com', preference: 30 },
  ]);
});

test('equal preferences are shuffled by the random source, never mixed across preferences', () => {
  const records = [
    { exchange: 'a.test', priority: 10 },
    { exchange: 'b.test', priority: 10 },
    { exchange: 'c.test', priority: 20 },
  ];
  assert.deepEqual(
    orderMx(records, sequence([0.1, 0.9, 0])).map((h) => h.name),
    ['a.test', 'b.test', 'c.test'],
  );
  assert.deepEqual(
    orderMx(records, sequence([0.9, 0.1, 0])).map((h) => h.name),
    ['b.test', 'a.test', 'c.test'],
  );
  const firsts = new Set(Array.from({ length: 200 }, () => orderMx(records)[0]?.name));
  assert.deepEqual(
    [...firsts].sort(),
    ['a.test', 'b.test'],
    'Math.random spreads over both, never picks the backup first',
  );
});

const statusOf = (result: ReturnType<typeof exchangesFrom>) =>
  result.kind === 'failed' ? result.failure.status : result.kind;

test('NXDOMAIN and null MX bounce with their DSN status; DNS failures are deferred', () => {
  assert.deepEqual(exchangesFrom('gone.test', { kind: 'nxdomain' }, undefined), {
    kind: 'failed',
    failure: {
      status: 'bounced',
      reason: 'Domain "gone.test" does not exist (NXDOMAIN)',
      dsnStatus: '5.1.2',
    },
  });
  assert.deepEqual(
    exchangesFrom(
      'null.test',
      { kind: 'found', records: [{ exchange: '', priority: 0 }] },
      undefined,
    ),
    {
      kind: 'failed',
      failure: {
        status: 'bounced',
        reason: 'Domain "null.test" does not accept mail (null MX, RFC 7505)',
        dsnStatus: '5.1.10',
      },
    },
  );
  assert.deepEqual(
    exchangesFrom(
      'x.test',
      { kind: 'failed', error: 'DNS lookup of MX "x.test" failed: ESERVFAIL' },
      undefined,
    ),
    {
      kind: 'failed',
      failure: { status: 'deferred', reason: 'DNS lookup of MX "x.test" failed: ESERVFAIL' },
    },
  );
});

test('a null MX next to real MX records is ignored (RFC 7505 section 3)', () => {
  const result = exchangesFrom(
    'mixed.test',
    {
      kind: 'found',
      records: [
        { exchange: '', priority: 0 },
        { exchange: 'mx.mixed.test', priority: 10 },
      ],
    },
    undefined,
  );
  assert.deepEqual(result, {
    kind: 'found',
    hosts: [{ name: 'mx.mixed.test', preference: 10 }],
    implicit: false,
  });
});

test('no MX: the address records make the domain its own MX; none at all bounces; a failed lookup is deferred', () => {
  assert.deepEqual(
    exchangesFrom('a.test', { kind: 'nodata' }, { kind: 'found', records: ['192.0.2.1'] }),
    { kind: 'found', hosts: [{ name: 'a.test', preference: 0 }], implicit: true },
  );
  assert.equal(
    statusOf(exchangesFrom('a.test', { kind: 'nodata' }, { kind: 'nodata' })),
    'bounced',
  );
  assert.equal(
    statusOf(exchangesFrom('a.test', { kind: 'nodata' }, { kind: 'failed', error: 'timeout' })),
    'deferred',
  );
});

test('at most MAX_MX_HOSTS hosts are kept', () => {
  const records = Array.from({ length: 40 }, (_, i) => ({
    exchange: `mx${i}.big.test`,
    priority: i,
  }));
  const result = exchangesFrom('big.test', { kind: 'found', records }, undefined);
  assert.equal(result.kind === 'found' && result.hosts.length, MAX_MX_HOSTS);
});

test('TLS policies: the stricter wins; each maps to connection settings', () => {
  assert.equal(stricter('may', 'verify'), 'verify');
  assert.equal(stricter('encrypt', 'may'), 'encrypt');
  assert.equal(stricter('none', 'none'), 'none');
  assert.deepEqual(tlsSettings('none'), { security: 'none', verify: false });
  assert.deepEqual(tlsSettings('may'), { security: 'opportunistic', verify: false });
  assert.deepEqual(tlsSettings('encrypt'), { security: 'starttls', verify: false });
  assert.deepEqual(tlsSettings('verify'), { security: 'starttls', verify: true });
});
