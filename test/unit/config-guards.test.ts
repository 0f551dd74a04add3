/** The pure rules behind issue 14's settings guards: world-open networks, secrets bound to their server, prototype keys */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_CONFIG } from '../../src/config/defaults.js';
import { prototypeKeyPath } from '../../src/config/merge.js';
import { wideNetworkProblem, wideNetworks } from '../../src/config/networks.js';
import { forgetMovedSecrets } from '../../src/config/secrets.js';
import { resolveConfig } from '../../src/config/validate.js';
import { mailboxNameProblem } from '../../src/mailbox/names.js';

test('networks that open the relay to the world, and those a site may list', () => {
  const world = [
    '0.0.0.0/0',
    '0.0.0.0/1',
    '128.0.0.0/1',
    '8.0.0.0/8',
    '10.0.0.0/7',
    '::/0',
    '::/8',
    '2000::/3',
    '::ffff:0:0/96',
    '::ffff:0.0.0.0/95',
    '::ffff:8.0.0.0/104',
  ];
  assert.deepEqual(wideNetworks(world), world);
  assert.match(
    wideNetworkProblem('::ffff:0:0/96') ?? '',
    /^"::ffff:0:0\/96" lets the whole IPv4 internet send mail/,
  );
  assert.match(
    wideNetworkProblem('8.0.0.0/8') ?? '',
    /^"8\.0\.0\.0\/8" lets a public range wider than \/16 send mail/,
  );
  const site = [
    ...DEFAULT_CONFIG.smtp.allowNetworks,
    '100.64.0.0/10',
    '169.254.0.0/16',
    '203.0.113.0/24',
    '198.51.0.0/16',
    '2001:db8::/32',
    'fe80::/10',
    '8.8.8.8',
    '::ffff:8.8.8.8',
    '2001:db8::1',
    'not a network',
  ];
  assert.deepEqual(wideNetworks(site), []);
});

test('a stored secret is forgotten when its server changes, unless the same change gives it again', () => {
  const config = resolveConfig(
    {
      delivery: {
        smarthost: { host: 'smtp.example.com', user: 'u', password: 'p' },
        oauth2: {
          provider: 'generic',
          clientSecret: 's',
          tokenUrl: 'https://idp.example.com/token',
        },
      },
    },
    'test',
  );
  const password = ['delivery.smarthost.password'];
  const forgotten = (patch: object) =>
    forgetMovedSecrets(config, patch as Record<string, unknown>).forgotten.map(
      (secret) => secret.key,
    );
  assert.deepEqual(forgotten({ delivery: { smarthost: { host: 'evil.example.net' } } }), password);
  assert.deepEqual(forgotten({ delivery: { smarthost: { port: 2525 } } }), password);
  assert.deepEqual(
    forgotten({ delivery: { smarthost: { host: ' SMTP.Example.com ', security: 'tls' } } }),
    [],
    'same server, other spelling or TLS mode',
  );
  assert.deepEqual(
    forgotten({ delivery: { smarthost: { host: 'new.example.com', password: 'p2' } } }),
    [],
    'given again',
  );
  assert.deepEqual(
    forgotten({ delivery: { oauth2: { tokenUrl: 'https://evil.example.net/token' } } }),
    ['delivery.oauth2.clientSecret'],
  );
  assert.deepEqual(forgotten({ delivery: { oauth2: { provider: 'microsoft' } } }), [
    'delivery.oauth2.clientSecret',
  ]);
  assert.deepEqual(
    forgetMovedSecrets(config, { delivery: { smarthost: { host: 'evil.example.net' } } }).patch,
    { delivery: { smarthost: { host: 'evil.example.net', password: '' } } },
  );
  const none = resolveConfig({ delivery: { smarthost: { host: 'smtp.example.com' } } }, 'test');
  assert.deepEqual(
    forgetMovedSecrets(none, { delivery: { smarthost: { host: 'other.example.com' } } }).forgotten,
    [],
    'nothing stored, nothing to forget',
  );
});

test('credentials with security "none" are refused, naming the key', () => {
  for (const smarthost of [{ user: 'u' }, { password: 'p' }, { auth: 'oauth2' }]) {
    assert.throws(
      () =>
        resolveConfig(
          { delivery: { smarthost: { host: 'lan-relay', security: 'none', ...smarthost } } },
          'x.json',
        ),
      /Config key "delivery\.smarthost\.security": Without TLS the user name and password/,
    );
  }
  assert.equal(
    resolveConfig(
      { delivery: { smarthost: { host: 'lan-relay', port: 25, security: 'none' } } },
      'x.json',
    ).delivery.smarthost.security,
    'none',
    'no credentials: fine',
  );
});

test('prototype keys are found at any depth, other keys are not', () => {
  assert.equal(
    prototypeKeyPath(JSON.parse('{"a": {"b": [{"c": 1}, {"__proto__": {}}]}}')),
    'a.b[1].__proto__',
  );
  assert.equal(
    prototypeKeyPath({ delivery: { domains: { 'constructor.example': {} } } }),
    undefined,
  );
  assert.equal(prototypeKeyPath({ smtp: { constructor: 1 } }), 'smtp.constructor');
});

test("mailbox names shaped like the store's own files are reserved", () => {
  for (const name of ['users.json', 'x.lock', 'y.tmp'])
    assert.match(mailboxNameProblem(name) ?? '', /^That name is reserved/);
  for (const name of ['postmaster', 'json', 'users-json', 'a.b'])
    assert.equal(mailboxNameProblem(name), undefined);
});
