/**
 * Settings a careless admin (or whoever holds a session) must not get past
 * (issue 14): allowNetworks that open the relay to the world, keys that
 * would reach an object's prototype, a mailbox named like the store's own
 * files. Seen through the real CLI (`config check`, `mailbox add`) and over
 * HTTP, on the real product.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setupAdminOf, type WebClient } from '../support/browser.js';
import { runCli, launchRelay, type RunningRelay } from '../support/relay.js';

const WORLD = ['0.0.0.0/0', '::/0', '::ffff:0:0/96', '8.0.0.0/8', '2000::/3'];

describe('config check', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-guards-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const check = async (name: string, config: unknown) => {
    const file = path.join(dir, `${name}.json`);
    writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
    return runCli(['config', 'check', '--config', file]);
  };

  test('refuses allowNetworks open to the world (exit 2, naming the entry), unless smtp.allowWideNetworks is set', async () => {
    const results = await Promise.all(
      WORLD.map((network, i) =>
        check(`world-${i}`, { smtp: { allowNetworks: ['192.168.0.0/16', network] } }),
      ),
    );
    results.forEach((result, i) => {
      assert.equal(result.code, 2, `${WORLD[i]}: ${result.stdout}`);
      assert.match(
        result.stderr,
        new RegExp(
          `Config key "smtp\\.allowNetworks\\[1\\]": "${WORLD[i]?.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}" lets .* send mail through this relay \\(an open relay on your upstream account\\): list only your own networks, or set smtp\\.allowWideNetworks to true`,
        ),
      );
    });
    assert.match(results[0]?.stderr ?? '', /the whole IPv4 internet/);
    assert.match(
      results[2]?.stderr ?? '',
      /the whole IPv4 internet/,
      'IPv4-mapped IPv6 is the IPv4 internet',
    );
    const known = await check('known', {
      smtp: { allowNetworks: ['192.168.0.0/16', ...WORLD], allowWideNetworks: true },
    });
    assert.equal(known.code, 0, known.stderr);
    assert.match(
      known.stdout,
      /^Warning: Open to the world: smtp\.allowNetworks lets 0\.0\.0\.0\/0, ::\/0, ::ffff:0:0\/96, 8\.0\.0\.0\/8, 2000::\/3 send mail through this relay \(smtp\.allowWideNetworks is on\)/m,
    );
    const site = await check('site', {
      smtp: {
        allowNetworks: [
          '10.0.0.0/8',
          '172.16.0.0/12',
          '100.64.0.0/10',
          'fc00::/7',
          '203.0.113.0/24',
          '198.18.0.0/16',
          '2001:db8::/32',
        ],
      },
    });
    assert.equal(site.code, 0, `a site's own networks, private or public, pass: ${site.stderr}`);
  });

  test('refuses "__proto__", "constructor" and "prototype" keys, naming where', async () => {
    const cases: [string, string, RegExp][] = [
      [
        'proto-top',
        '{"__proto__": {"dataDir": "/tmp/elsewhere"}}',
        /Config key "__proto__" is not allowed/,
      ],
      [
        'proto-nested',
        '{"smtp": {"__proto__": {"port": 25}}}',
        /Config key "smtp\.__proto__" is not allowed/,
      ],
      [
        'constructor',
        '{"delivery": {"domains": {"constructor": {"route": "mx"}}}}',
        /Config key "delivery\.domains\.constructor" is not allowed/,
      ],
      [
        'prototype',
        '{"mailbox": {"copies": [{"mailbox": "archive", "prototype": {}}]}}',
        /Config key "mailbox\.copies\[0\]\.prototype" is not allowed/,
      ],
    ];
    const results = await Promise.all(cases.map(([name, text]) => check(name, text)));
    results.forEach((result, i) => {
      assert.equal(result.code, 2, cases[i]?.[1]);
      assert.match(result.stderr, cases[i]?.[2] ?? /x/);
    });
  });

  test("refuses a postmaster mailbox named like the store's own files", async () => {
    const result = await check('postmaster', { mailbox: { postmaster: 'users.json' } });
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /Config key "mailbox\.postmaster": That name is reserved: "users\.json"/,
    );
  });
});

describe('a relay with the default allowNetworks: the page, the API and the CLI', () => {
  let relay: RunningRelay;
  let admin: WebClient;
  const patch = (json: unknown) =>
    admin.request('PATCH', '/api/settings', { json, headers: { 'x-csrf-token': admin.csrf } });

  before(async () => {
    relay = await launchRelay();
    admin = await setupAdminOf(relay);
  });
  after(() => relay.stop());

  test('the page and the API refuse a world-open network with a sentence, and the flag can be turned on only in the file', async () => {
    const before = readFileSync(relay.configFile, 'utf8');
    const api = await patch({ smtp: { allowNetworks: ['127.0.0.0/8', '::/0'] } });
    assert.equal(api.status, 400);
    assert.match(
      (JSON.parse(api.text) as { fields: Record<string, string> }).fields.allowNetworks ?? '',
      /^Entry 2: "::\/0" lets the whole IPv6 internet send mail through this relay/,
    );
    const page = await admin.post('/settings', { allowNetworks: '127.0.0.0/8\n0.0.0.0/0' });
    assert.equal(page.status, 400);
    assert.match(
      page.text,
      /<div class="field-error" id="allowNetworks-error">Entry 2: &quot;0\.0\.0\.0\/0&quot; lets the whole IPv4 internet send mail through this relay/,
    );
    const flag = await patch({ smtp: { allowWideNetworks: true, allowNetworks: ['0.0.0.0/0'] } });
    assert.equal(flag.status, 400);
    assert.deepEqual((JSON.parse(flag.text) as { other: string[] }).other, [
      'Config key "smtp.allowWideNetworks" can be turned on only in the config file',
    ]);
    assert.equal(readFileSync(relay.configFile, 'utf8'), before, 'nothing saved');
  });

  test('a settings patch with a "__proto__" or "constructor" key answers 400 naming it, and changes nothing', async () => {
    const before = readFileSync(relay.configFile, 'utf8');
    for (const [text, key] of [
      ['{"__proto__": {"alerts": {"queueThreshold": 7}}}', '__proto__'],
      [
        '{"alerts": {"constructor": {"prototype": {"x": 1}}, "queueThreshold": 7}}',
        'alerts.constructor',
      ],
    ] as const) {
      const response = await patch(JSON.parse(text));
      assert.equal(response.status, 400, text);
      assert.deepEqual((JSON.parse(response.text) as { other: string[] }).other, [
        `Config key "${key}" is not allowed: "__proto__", "constructor" and "prototype" are reserved names`,
      ]);
    }
    assert.equal(readFileSync(relay.configFile, 'utf8'), before);
    assert.equal(
      (
        JSON.parse((await admin.get('/api/settings')).text) as {
          config: { alerts: { queueThreshold: number } };
        }
      ).config.alerts.queueThreshold,
      100,
    );
  });

  test('a mailbox named users.json is refused as reserved on the CLI, the page and the API; the store still works', async () => {
    const cli = await relay.cli(
      ['mailbox', 'add', 'users.json', '--password-stdin'],
      'Mailbox-pass-1234\n',
    );
    assert.equal(cli.code, 2);
    assert.match(cli.stderr, /That name is reserved: "users\.json"/);
    const page = await admin.post('/mailboxes', {
      name: 'Users.json',
      password: 'Mailbox-pass-1234',
    });
    assert.equal(page.status, 303);
    assert.match(
      (await admin.get('/mailboxes')).text,
      /That name is reserved: &quot;users\.json&quot;/,
    );
    const api = await admin.request('POST', '/api/mailboxes', {
      json: { name: 'users.json', password: 'Mailbox-pass-1234' },
      headers: { 'x-csrf-token': admin.csrf },
    });
    assert.equal(api.status, 400, api.text);
    assert.match(api.text, /That name is reserved/);
    const added = await relay.cli(
      ['mailbox', 'add', 'frontdesk', '--password-stdin'],
      'Mailbox-pass-1234\n',
    );
    assert.equal(added.code, 0, added.stderr);
    assert.match((await relay.cli(['mailbox', 'list'])).stdout, /frontdesk/);
  });
});

describe('a relay with smtp.allowWideNetworks on', () => {
  let relay: RunningRelay;

  before(async () => {
    relay = await launchRelay({
      config: { smtp: { allowWideNetworks: true, allowNetworks: ['127.0.0.0/8', '0.0.0.0/0'] } },
    });
  });
  after(() => relay.stop());

  test('warns in the log at start and on the dashboard, naming the entry', async () => {
    const warning = await relay.waitForLog((line) => Array.isArray(line.networks));
    assert.equal(warning.level, 40);
    assert.deepEqual(warning.networks, ['0.0.0.0/0']);
    assert.match(
      warning.msg,
      /^Open to the world: smtp\.allowNetworks lets 0\.0\.0\.0\/0 send mail through this relay \(smtp\.allowWideNetworks is on\)/,
    );
    const admin = await setupAdminOf(relay);
    assert.match(
      (await admin.get('/')).text,
      /<div class="notice warn" id="wide-networks">Open to the world: smtp\.allowNetworks lets 0\.0\.0\.0\/0 send mail/,
    );
    assert.deepEqual(
      (JSON.parse((await admin.get('/api/status')).text) as { wideNetworks: string[] })
        .wideNetworks,
      ['0.0.0.0/0'],
    );
  });
});
