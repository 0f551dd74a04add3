import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_CONFIG } from '../../src/config/defaults.js';
import { ConfigStore } from '../../src/config/store.js';
import { deepMerge } from '../../src/config/merge.js';
import { resolveConfig } from '../../src/config/validate.js';
import { ConfigError } from '../../src/errors.js';
import { runCli } from '../support/relay.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'edge-relay-config-'));

test('the defaults are valid and match CONTRACT.md', () => {
  const config = resolveConfig({}, 'defaults');
  assert.equal(config.smtp.port, 2525);
  assert.equal(config.pop3.port, 1110);
  assert.equal(config.web.port, 8080);
  assert.equal(config.dataDir, './data');
  assert.equal(config.delivery.smarthost.security, 'starttls');
  assert.equal(config.delivery.tls.verify, true);
  assert.deepEqual(config.smtp.allowNetworks, DEFAULT_CONFIG.smtp.allowNetworks);
});

test('overrides deep-merge; arrays replace', () => {
  const config = resolveConfig(
    { smtp: { allowNetworks: ['10.1.0.0/16'] }, delivery: { retry: { maxAge: '1d' } } },
    'test',
  );
  assert.deepEqual(config.smtp.allowNetworks, ['10.1.0.0/16']);
  assert.equal(config.delivery.retry.maxAge, '1d');
  assert.deepEqual(config.delivery.retry.delays, DEFAULT_CONFIG.delivery.retry.delays);
});

const bad: [string, unknown, RegExp][] = [
  ['unknown key', { smtp: { portt: 25 } }, /Unknown config key "smtp\.portt"/],
  ['wrong type', { smtp: { port: '25' } }, /Config key "smtp\.port": Must be a number/],
  [
    'bad CIDR',
    { smtp: { allowNetworks: ['10.0.0.0/8', '300.1.1.1/8'] } },
    /Config key "smtp\.allowNetworks\[1\]"/,
  ],
  [
    'bad duration',
    { delivery: { retry: { maxAge: '5 days' } } },
    /Config key "delivery\.retry\.maxAge": Expected a duration/,
  ],
  [
    'bad enum',
    { delivery: { smarthost: { security: 'ssl' } } },
    /Config key "delivery\.smarthost\.security"/,
  ],
  [
    'bad resolver',
    { delivery: { dns: { servers: ['dns.google'] } } },
    /Config key "delivery\.dns\.servers\[0\]"/,
  ],
  [
    'a sign-in Google does not offer',
    { delivery: { oauth2: { provider: 'google', flow: 'client_credentials' } } },
    /Config key "delivery\.oauth2\.flow": Google does not offer app-only sign-in/,
  ],
];
for (const [name, overrides, message] of bad) {
  test(`invalid config (${name}) names the key`, () => {
    assert.throws(
      () => resolveConfig(overrides, 'x.json'),
      (err: unknown) => err instanceof ConfigError && message.test(err.message),
    );
  });
}

test('config check exits 2 naming the key or the unreadable file', async () => {
  const dir = tmp();
  const file = path.join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify({ smtp: { allowNetworks: ['192.168.1.0/33'] } }));
  const result = await runCli(['config', 'check', '--config', file]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /smtp\.allowNetworks\[0\]/);
  const missing = await runCli(['config', 'check', '--config', path.join(dir, 'nope.json')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /Cannot read config file .*nope\.json/);
  writeFileSync(file, '{ not json');
  const broken = await runCli(['config', 'check', '--config', file]);
  assert.equal(broken.code, 2);
  assert.match(broken.stderr, /is not valid JSON/);
  const serve = await runCli(['serve', '--config', path.join(dir, 'nope.json')]);
  assert.equal(serve.code, 2, 'serve does not start on a bad config');
});

test('the store saves atomically with mode 0600 and refuses a bad patch without changing anything', async () => {
  const file = path.join(tmp(), 'config.json');
  writeFileSync(file, '{}');
  const store = await ConfigStore.open(file);
  let changed = 0;
  store.onChange(() => changed++);
  await store.update({
    delivery: { smarthost: { host: 'smtp.example.test', password: 's3cret' } },
  });
  assert.equal(store.config.delivery.smarthost.host, 'smtp.example.test');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), {
    delivery: { smarthost: { host: 'smtp.example.test', password: 's3cret' } },
  });
  await assert.rejects(store.update({ smtp: { port: -1 } }), /smtp\.port/);
  assert.equal(store.config.smtp.port, 2525);
  assert.equal(changed, 1);
  assert.ok(!readFileSync(file, 'utf8').includes('port'));
});

test("src/version.ts and bin/edge-relay --version give package.json's version", async () => {
  const { VERSION } = await import('../../src/version.js');
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  assert.equal(VERSION, pkg.version);
  assert.equal((await runCli(['--version'])).stdout.trim(), pkg.version);
});

test('config/default.json is the embedded default, and config/example.json (with // comments) is valid', async () => {
  const shipped = JSON.parse(
    readFileSync(new URL('../../config/default.json', import.meta.url), 'utf8'),
  ) as unknown;
  assert.deepEqual(shipped, JSON.parse(JSON.stringify(DEFAULT_CONFIG)));
  const example = new URL('../../config/example.json', import.meta.url).pathname;
  const result = await runCli(['config', 'check', '--config', example]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /smarthost smtp\.office365\.com:587 \(starttls\)/);
});

test('a settings patch with __proto__ or constructor keys changes no prototype', () => {
  const patch = JSON.parse(
    '{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, "smtp": {"port": 2525}}',
  ) as unknown;
  const merged = deepMerge({ smtp: { port: 25, host: '0.0.0.0' } }, patch) as Record<
    string,
    unknown
  >;
  assert.deepEqual(merged, { smtp: { port: 2525, host: '0.0.0.0' } });
  assert.equal(Object.getPrototypeOf(merged), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
