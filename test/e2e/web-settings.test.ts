/**
 * The Settings page for issue 7: upstream sign-in (OAuth2 with a write-only
 * client secret), sender alignment with its explanation, device TLS; a saved
 * alignment applies to the next message; no page or API response ever holds
 * a configured secret; a listener change says a restart is needed.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type WebClient, setupAdminOf } from '../support/browser.js';
import { RawSmtp, smtplibSend } from '../support/clients.js';
import { freePort } from '../support/ports.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, viaSmarthost, type Upstream } from '../support/upstream.js';

const PASSWORD = 'Upstream-Pa55word-7f3a';
const CLIENT_SECRET = 'Client-Secret-9c1e-from-config';
const NEW_CLIENT_SECRET = 'Client-Secret-42aa-typed-on-the-page';
/** Should anything ask for a token, it goes nowhere but loopback (nothing listens on port 9) */
const LOOPBACK_TOKEN_URL = 'https://127.0.0.1:9/token';

describe('the Settings page: sign-in, sender alignment, device TLS, secrets, restart', () => {
  let upstream: Upstream;
  let relay: RunningRelay;
  let admin: WebClient;

  before(async () => {
    upstream = await startUpstream({
      requireTls: true,
      auth: { user: 'relay@contoso.test', pass: PASSWORD },
    });
    relay = await launchRelay({
      config: {
        ...viaSmarthost(
          upstream,
          {
            oauth2: {
              provider: 'microsoft',
              flow: 'client_credentials',
              tenant: 'contoso.test',
              clientId: 'app-1',
              clientSecret: CLIENT_SECRET,
              tokenUrl: LOOPBACK_TOKEN_URL,
            },
          },
          { user: 'relay@contoso.test', password: PASSWORD },
        ),
      },
    });
    admin = await setupAdminOf(relay);
  });
  after(async () => {
    await relay.stop();
    await upstream.close();
  });

  test('the page shows sign-in, alignment (with why to turn it on) and device TLS fields', async () => {
    const page = (await admin.get('/settings')).text;
    assert.match(
      page,
      /<select id="auth" name="auth"><option value="password" selected>[^<]*<\/option><option value="oauth2" >/,
    );
    assert.match(
      page,
      /<select id="oauthProvider" name="oauthProvider"><option value="microsoft" selected>/,
    );
    assert.match(
      page,
      /<select id="oauthFlow" name="oauthFlow">.*<option value="client_credentials" selected>/s,
    );
    assert.match(
      page,
      /<input type="text" id="oauthTenant" name="oauthTenant" value="contoso\.test"/,
    );
    assert.match(page, /<input type="text" id="oauthClientId" name="oauthClientId" value="app-1"/);
    assert.match(
      page,
      /<input type="password" id="oauthClientSecret" name="oauthClientSecret" value=""/,
      'the secret field is empty',
    );
    assert.match(page, /name="clearOauthClientSecret"/, 'a stored secret can be removed');
    assert.match(
      page,
      /<input type="text" id="rewriteHeaderFrom" name="rewriteHeaderFrom" value=""/,
    );
    assert.match(
      page,
      /<input type="text" id="rewriteEnvelopeFrom" name="rewriteEnvelopeFrom" value=""/,
    );
    assert.match(
      page,
      /<input type="checkbox" id="rewriteUseDeviceName" name="rewriteUseDeviceName" >/,
    );
    assert.match(
      page,
      /<div class="hint" id="why-rewrite"><p><strong>Why turn it on\?<\/strong> Receivers check that a message's From address belongs to a domain/,
    );
    assert.match(page, /original From is kept in <code>X-Original-From<\/code>/);
    assert.match(page, /<input type="checkbox" id="tlsStarttls" name="tlsStarttls" >/);
    assert.match(
      page,
      /<select id="tlsProfile" name="tlsProfile"><option value="modern" selected>.*<option value="legacy" >/s,
    );
    assert.doesNotMatch(page, /id="restart-needed"/, 'nothing to restart yet');
    assert.match(
      (await admin.get('/sender')).text,
      /href="\/settings#oauth"><em>Settings &rarr; Upstream &rarr; Authentication<\/em><\/a>/,
      'the Sender page points at a field that exists',
    );
  });

  test('a bad address, or a sign-in the provider does not offer, is reported beside its field and nothing is saved', async () => {
    const before = await fs.readFile(relay.configFile, 'utf8');
    const bad = await admin.post('/settings', {
      rewriteHeaderFrom: 'not an address',
      rewriteEnvelopeFrom: '',
    });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /<div class="field-error" id="rewriteHeaderFrom-error">[^<]*email/i);
    assert.match(bad.text, /value="not an address"/, 'what was typed is kept');
    const google = await admin.post('/settings', {
      auth: 'oauth2',
      oauthProvider: 'google',
      oauthFlow: 'client_credentials',
    });
    assert.equal(google.status, 400, 'valid keys, but a sign-in Google does not offer for SMTP');
    assert.match(
      google.text,
      /<div class="field-error" id="oauthFlow-error">Google does not offer app-only sign-in \(client_credentials\) for SMTP/,
    );
    assert.equal(await fs.readFile(relay.configFile, 'utf8'), before);
  });

  test('alignment saved on the page applies to the next message', async () => {
    await smtplibSend(
      relay.smtpPort,
      'printer@office.lan',
      ['boss@example.com'],
      'From: Printer <printer@office.lan>\r\nSubject: before\r\n\r\nx\r\n',
    );
    const [first] = await upstream.waitFor(1);
    assert.equal(first?.from, 'printer@office.lan', 'off by default');
    const saved = await admin.post('/settings', {
      rewriteHeaderFrom: 'scanner@contoso.test',
      rewriteEnvelopeFrom: 'scanner@contoso.test',
      _checkboxes: 'rewriteUseDeviceName',
    });
    assert.equal(saved.status, 303);
    assert.match((await admin.get('/settings')).text, /Settings saved and in use/);
    const stored = JSON.parse(await fs.readFile(relay.configFile, 'utf8')) as {
      delivery: { rewrite: unknown };
    };
    // useDeviceName: false is the default, so the file does not repeat it
    assert.deepEqual(stored.delivery.rewrite, {
      envelopeFrom: 'scanner@contoso.test',
      headerFrom: 'scanner@contoso.test',
    });
    await smtplibSend(
      relay.smtpPort,
      'printer@office.lan',
      ['boss@example.com'],
      'From: Printer <printer@office.lan>\r\nSubject: after\r\n\r\nx\r\n',
    );
    const second = (await upstream.waitFor(2))[1];
    assert.equal(second?.from, 'scanner@contoso.test');
    assert.match(
      second?.raw.toString() ?? '',
      /^From: Printer <scanner@contoso\.test>\r\nX-Original-From: Printer <printer@office\.lan>\r\nReply-To: Printer <printer@office\.lan>\r\n/m,
    );
  });

  test('a client secret typed on the page is stored but never shown again', async () => {
    const saved = await admin.post('/settings', { oauthClientSecret: NEW_CLIENT_SECRET });
    assert.equal(saved.status, 303);
    assert.match(await fs.readFile(relay.configFile, 'utf8'), new RegExp(NEW_CLIENT_SECRET));
    const kept = await admin.post('/settings', { oauthClientSecret: '', oauthClientId: 'app-2' });
    assert.equal(kept.status, 303);
    assert.match(
      await fs.readFile(relay.configFile, 'utf8'),
      new RegExp(NEW_CLIENT_SECRET),
      'an empty field keeps the stored secret',
    );
  });

  test('no page or API response holds a configured secret', async () => {
    const secrets = [PASSWORD, CLIENT_SECRET, NEW_CLIENT_SECRET];
    const routes = [
      '/',
      '/settings',
      '/sender',
      '/devices',
      '/queue',
      '/test-mail',
      '/api/settings',
      '/api/status',
      '/api/sender',
      '/api/devices',
      '/api/queue',
    ];
    for (const route of routes) {
      const response = await admin.get(route);
      assert.equal(response.status, 200, route);
      for (const secret of secrets)
        assert.ok(
          !response.text.includes(secret),
          `${route} does not contain ${secret.slice(0, 12)}...`,
        );
    }
    const patched = await admin.request('PATCH', '/api/settings', {
      json: { alerts: { queueThreshold: 50 } },
      headers: { 'x-csrf-token': admin.csrf },
    });
    assert.equal(patched.status, 200);
    for (const secret of secrets) assert.ok(!patched.text.includes(secret), 'nor the PATCH answer');
    const { config } = JSON.parse((await admin.get('/api/settings')).text) as {
      config: { delivery: { smarthost: Record<string, unknown>; oauth2: Record<string, unknown> } };
    };
    assert.equal(config.delivery.smarthost.passwordSet, true);
    assert.equal(config.delivery.oauth2.clientSecretSet, true);
    assert.ok(
      !('password' in config.delivery.smarthost) && !('clientSecret' in config.delivery.oauth2),
    );
    for (const secret of secrets) assert.ok(!relay.output().includes(secret), 'nor the log');
  });

  test('a smaller message size limit counts from the next connection, without a restart', async () => {
    const patched = await admin.request('PATCH', '/api/settings', {
      json: { smtp: { maxMessageSize: 20_000 } },
      headers: { 'x-csrf-token': admin.csrf },
    });
    assert.equal(JSON.parse(patched.text).restartNeeded, false);
    const smtp = await RawSmtp.connect(relay.smtpPort);
    try {
      await smtp.reply();
      assert.match(
        await smtp.command('EHLO printer.lan\r\n'),
        /^250[- ]SIZE 20000\r?$/m,
        'EHLO advertises the new limit',
      );
      assert.match(
        await smtp.command('MAIL FROM:<scan@office.test> SIZE=30000\r\n'),
        /^552 /,
        'a declared size over it is refused at MAIL',
      );
    } finally {
      smtp.close();
    }
    await admin.request('PATCH', '/api/settings', {
      json: { smtp: { maxMessageSize: 52_428_800 } },
      headers: { 'x-csrf-token': admin.csrf },
    });
  });

  test('a listener change answers restartNeeded, and the page says a restart is needed', async () => {
    const quiet = JSON.parse(
      (
        await admin.request('PATCH', '/api/settings', {
          json: { alerts: { queueThreshold: 60 } },
          headers: { 'x-csrf-token': admin.csrf },
        })
      ).text,
    ) as { restartNeeded: boolean };
    assert.equal(quiet.restartNeeded, false, 'a setting used at once needs no restart');
    const port = await freePort();
    const changed = await admin.request('PATCH', '/api/settings', {
      json: { smtp: { port } },
      headers: { 'x-csrf-token': admin.csrf },
    });
    assert.equal(changed.status, 200);
    const body = JSON.parse(changed.text) as { restartNeeded: boolean; restartKeys: string[] };
    assert.equal(body.restartNeeded, true);
    assert.deepEqual(body.restartKeys, ['smtp.port']);
    assert.match(
      (await admin.get('/settings')).text,
      /<div class="notice warn" id="restart-needed"><strong>Restart needed\.<\/strong>.*<code>smtp\.port<\/code>/s,
    );
    const tls = await admin.post('/settings', {
      tlsStarttls: 'on',
      tlsProfile: 'legacy',
      _checkboxes: 'tlsStarttls',
    });
    assert.equal(tls.status, 303);
    assert.match(
      (await admin.get('/settings')).text,
      /Settings saved\. Restart needed: the relay still listens with the old smtp\.port, smtp\.tls/,
    );
  });

  test('with app-only OAuth2 the Sender page offers no sign-in button, and says why', async () => {
    assert.equal((await admin.post('/settings', { auth: 'oauth2' })).status, 303);
    const page = (await admin.get('/sender')).text;
    assert.match(
      page,
      /<p id="app-only">App-only sign-in \(client credentials\): nobody signs in here/,
    );
    assert.doesNotMatch(page, /Sign in \(device code\)/);
  });
});
