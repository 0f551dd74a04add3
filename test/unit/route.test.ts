/** Routing per recipient and grouping into transactions (pure) */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveConfig } from '../../src/config/validate.js';
import { groupByDestination, NO_UPSTREAM, route } from '../../src/route/router.js';

const config = (delivery: Record<string, unknown>) =>
  resolveConfig({ mailbox: { localDomains: ['relay.test'] }, delivery }, 'test');

test('local domains go to a mailbox, +tags stripped, whatever the mode', () => {
  assert.deepEqual(route('Scans+floor3@relay.test', config({ mode: 'mx' })), {
    kind: 'local',
    mailbox: 'scans',
  });
});

test('smarthost mode without a smarthost: deferred with the admin hint', () => {
  assert.deepEqual(route('a@example.com', config({})), {
    kind: 'unroutable',
    reason: NO_UPSTREAM,
    cause: 'setting',
  });
});

test('mx mode: the recipient domain with the global MX TLS policy', () => {
  assert.deepEqual(
    route('a@Example.COM', config({ mode: 'mx', mx: { port: 25, tls: 'encrypt' } })),
    { kind: 'mx', domain: 'example.com', tls: 'encrypt' },
  );
});

test('per-domain overrides: a host (port defaults to mx.port), forced MX, forced smarthost', () => {
  const c = config({
    mode: 'smarthost',
    smarthost: { host: 'smtp.isp.test', port: 587 },
    mx: { port: 2525, tls: 'may' },
    domains: {
      'partner.test': { route: 'host', host: '10.0.0.5', tls: 'verify' },
      'direct.test': { route: 'mx' },
      'viaisp.test': { route: 'smarthost' },
      'nohost.test': { route: 'host' },
    },
  });
  assert.deepEqual(route('x@partner.test', c), {
    kind: 'host',
    host: '10.0.0.5',
    port: 2525,
    tls: 'verify',
  });
  assert.deepEqual(route('x@DIRECT.test', c), { kind: 'mx', domain: 'direct.test', tls: 'may' });
  assert.deepEqual(route('x@viaisp.test', c), {
    kind: 'smarthost',
    host: 'smtp.isp.test',
    port: 587,
  });
  assert.deepEqual(route('x@other.test', c), {
    kind: 'smarthost',
    host: 'smtp.isp.test',
    port: 587,
  });
  assert.deepEqual(route('x@nohost.test', c), {
    kind: 'unroutable',
    reason: 'No host set for "nohost.test" in delivery.domains',
    cause: 'setting',
  });
});

test('an override applies to that exact domain, not its subdomains', () => {
  const c = config({
    mode: 'mx',
    domains: { 'partner.test': { route: 'host', host: '10.0.0.5' } },
  });
  assert.equal(route('x@sub.partner.test', c).kind, 'mx');
});

test('bad addresses are refused for good', () => {
  assert.equal(route('no-at-sign', config({ mode: 'mx' })).kind, 'unroutable');
  assert.deepEqual(route('a%b@example.com', config({ mode: 'mx' })), {
    kind: 'unroutable',
    reason: 'Bad recipient address "a%b@example.com"',
    cause: 'bad-address',
  });
});

test('grouping: one group per domain in MX mode, in arrival order; hosts shared by domains share a group', () => {
  const c = config({
    mode: 'mx',
    domains: {
      'p1.test': { route: 'host', host: '10.0.0.5' },
      'p2.test': { route: 'host', host: '10.0.0.5' },
    },
  });
  const groups = groupByDestination(
    ['a@b.test', 'x@c.test', 'b@B.test', 'me@relay.test', 'y@p1.test', 'z@p2.test'],
    c,
  );
  assert.deepEqual(
    groups.map((g) => g.recipients),
    [['a@b.test', 'b@B.test'], ['x@c.test'], ['me@relay.test'], ['y@p1.test', 'z@p2.test']],
  );
});
