/**
 * The config file is the admin's too: a hand edit is used without a restart
 * (when the file changes, and on `edge-relay config reload` = `systemctl reload`), a broken edit
 * keeps the relay running on the settings it had, a page opened before a
 * hand edit cannot overwrite it, and a page save writes only what differs
 * from the defaults.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { setupAdminOf, type WebClient } from '../support/browser.js';
import { launchRelay, type LogLine, type RunningRelay } from '../support/relay.js';

const fileOf = (relay: RunningRelay): Record<string, unknown> =>
  JSON.parse(readFileSync(relay.configFile, 'utf8')) as Record<string, unknown>;

function handEdit(relay: RunningRelay, change: (config: Record<string, unknown>) => void): void {
  const config = fileOf(relay);
  change(config);
  writeFileSync(relay.configFile, JSON.stringify(config, null, 2));
}

describe('config file reload', () => {
  let relay: RunningRelay;
  let admin: WebClient;
  const logsSoFar = () => relay.logs.length;
  const logAfter = (from: number, match: (line: LogLine) => boolean) =>
    relay.waitForLog((line) => relay.logs.indexOf(line) >= from && match(line));
  const threshold = async () =>
    ((await admin.get('/api/settings')).text.match(/"queueThreshold":(\d+)/) ?? [])[1];

  before(async () => {
    relay = await launchRelay();
    admin = await setupAdminOf(relay);
  });
  after(() => relay.stop());

  test('a hand edit is used as soon as the file changes', async () => {
    const from = logsSoFar();
    handEdit(relay, (config) => (config.alerts = { queueThreshold: 77 }));
    const line = await logAfter(
      from,
      (l) => l.msg === 'Config file read again: its settings are in use',
    );
    assert.equal(line.reason, 'the file changed');
    assert.equal(await threshold(), '77');
  });

  test('config reload (systemctl reload) sends SIGHUP to the server, which reads the file and keeps running', async () => {
    const from = logsSoFar();
    handEdit(relay, (config) => (config.alerts = { queueThreshold: 78 }));
    const reloaded = await relay.cli(['config', 'reload']);
    assert.equal(reloaded.code, 0, reloaded.stderr);
    assert.match(
      reloaded.stdout,
      new RegExp(`^Asked edge-relay \\(pid ${relay.process.pid}\\) to read`),
    );
    await logAfter(from, (l) => l.msg === 'Config file read again: its settings are in use');
    assert.equal(await threshold(), '78');
    assert.equal(relay.process.exitCode, null, 'still running');
    assert.equal((await fetch(`http://127.0.0.1:${relay.webPort}/healthz`)).status, 200);
  });

  test('a broken edit is logged and the settings in use stay', async () => {
    const from = logsSoFar();
    handEdit(relay, (config) => (config.alerts = { queueThreshold: 'many' }));
    const line = await logAfter(
      from,
      (l) => l.msg === 'Config file has an error: still using the previous settings',
    );
    assert.match(String(line.err), /alerts\.queueThreshold/);
    assert.equal(await threshold(), '78');
    const refused = await admin.request('PATCH', '/api/settings', {
      json: { alerts: { queueThreshold: 5 } },
      headers: { 'x-csrf-token': admin.csrf },
    });
    assert.equal(refused.status, 409, 'a save does not write over the broken file');
    assert.match(refused.text, /alerts\.queueThreshold/);
    assert.match(
      readFileSync(relay.configFile, 'utf8'),
      /"many"/,
      "the admin's edit is still there to fix",
    );
    const fixed = logsSoFar();
    handEdit(relay, (config) => (config.alerts = { queueThreshold: 79 }));
    await logAfter(fixed, (l) => l.msg === 'Config file read again: its settings are in use');
    assert.equal(await threshold(), '79');
  });

  test('a page opened before a hand edit does not overwrite it', async () => {
    const form = await admin.get('/settings');
    const revision = /name="_revision" value="([^"]+)"/.exec(form.text)?.[1];
    assert.ok(revision, 'the page carries the revision it shows');
    const from = logsSoFar();
    handEdit(relay, (config) => (config.alerts = { queueThreshold: 80 }));
    await logAfter(from, (l) => l.msg === 'Config file read again: its settings are in use');
    const stale = await admin.post('/settings', { _revision: revision, queueThreshold: '5' });
    assert.equal(stale.status, 409);
    assert.match(stale.text, /was changed outside this page since you opened it/);
    assert.match(
      stale.text,
      /id="queueThreshold" name="queueThreshold" value="80"/,
      'the page now shows the file',
    );
    assert.equal((fileOf(relay).alerts as { queueThreshold: number }).queueThreshold, 80);
    const fresh = /name="_revision" value="([^"]+)"/.exec(stale.text)?.[1];
    const saved = await admin.post('/settings', { _revision: fresh ?? '', queueThreshold: '6' });
    assert.equal(saved.status, 303, saved.text.slice(0, 300));
    assert.equal((fileOf(relay).alerts as { queueThreshold: number }).queueThreshold, 6);
  });

  test('a page save writes only what differs from the defaults', async () => {
    const page = await admin.get('/settings');
    const form = Object.fromEntries(
      [
        ...page.text.matchAll(
          /<input type="(?:text|number|hidden)" (?:id="[^"]*" )?name="([^"]+)" value="([^"]*)"/g,
        ),
      ].map((m) => [m[1] ?? '', m[2] ?? '']),
    );
    const textareas = Object.fromEntries(
      [...page.text.matchAll(/<textarea id="[^"]*" name="([^"]+)">([^<]*)<\/textarea>/g)].map(
        (m) => [m[1] ?? '', m[2] ?? ''],
      ),
    );
    const ticked = Object.fromEntries(
      [...page.text.matchAll(/<input type="checkbox" id="[^"]*" name="([^"]+)" checked>/g)].map(
        (m) => [m[1] ?? '', 'on'],
      ),
    );
    assert.ok('verify' in ticked, 'certificate checks are on');
    const saved = await admin.post('/settings', {
      ...form,
      ...textareas,
      ...ticked,
      host: 'smtp.example.net',
    });
    assert.equal(saved.status, 303, saved.text.slice(0, 300));
    const file = fileOf(relay);
    assert.deepEqual((file.delivery as { smarthost: unknown }).smarthost, {
      host: 'smtp.example.net',
    });
    const text = readFileSync(relay.configFile, 'utf8');
    for (const key of ['maxRecipients', 'allowNetworks', 'maxAge', 'verify'])
      assert.ok(!text.includes(key), `${key} (a default) is not written`);
    assert.ok(text.split('\n').length < 40, `a short file (${text.split('\n').length} lines)`);
  });
});
