/**
 * The Sender page: the OAuth2 device sign-in shown on the page and completed
 * by "the admin" on a local token server, the DKIM record to publish, the
 * pre-flight check against a loopback DNS server; and device transcripts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeCerts } from '../support/certs.js';
import { RawSmtp } from '../support/clients.js';
import { type WebClient, setupAdminOf } from '../support/browser.js';
import { startDnsServer, type DnsServer } from '../support/dns-server.js';
import { startOAuthServer, type OAuthServer } from '../support/oauth-server.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { eventually } from '../support/wait.js';

describe('the Sender page and device transcripts', () => {
  let oauth: OAuthServer;
  let dns: DnsServer;
  let relay: RunningRelay;
  let admin: WebClient;

  before(async () => {
    oauth = await startOAuthServer({ interval: 1 });
    dns = await startDnsServer({
      'contoso.test': [
        { type: 'MX', preference: 10, exchange: 'mx.contoso.test' },
        { type: 'TXT', text: 'v=spf1 include:spf.protection.outlook.com -all' },
      ],
      'mx.contoso.test': [{ type: 'A', address: '127.0.0.50' }],
      '_dmarc.contoso.test': [{ type: 'TXT', text: 'v=DMARC1; p=reject' }],
    });
    relay = await launchRelay({
      config: {
        // The device may mail only example.test (and the local domain): anything else is refused at RCPT
        smtp: { devices: { '127.0.0.1': { allowDomains: ['example.test'] } } },
        delivery: {
          retry: { delays: ['1h'], maxAge: '5d' },
          rewrite: { headerFrom: 'scanner@contoso.test', envelopeFrom: '', useDeviceName: false },
          smarthost: {
            host: '127.0.0.1',
            port: 9,
            security: 'starttls',
            user: 'scanner@contoso.test',
            auth: 'oauth2',
          },
          oauth2: {
            provider: 'generic',
            flow: 'device',
            clientId: oauth.clientId,
            tokenUrl: oauth.tokenUrl,
            deviceUrl: oauth.deviceUrl,
            scope: 'smtp offline_access',
          },
          tls: { caFile: makeCerts().caFile },
          dns: { servers: [dns.address] },
          dkim: { enabled: true, domain: 'contoso.test', selector: 'box1' },
        },
      },
    });
    admin = await setupAdminOf(relay);
  });
  after(async () => {
    await relay.stop();
    await oauth.close();
    await dns.close();
  });

  test('device sign-in: the code is on the page, and once approved the status turns ok', async () => {
    const before = await admin.get('/sender');
    assert.match(before.text, /needs-consent|not-configured/);
    assert.match(
      (await admin.get('/')).text,
      /<dd id="sign-in"><span class="pill[^"]*">needs-consent<\/span> <span class="muted">Nobody has signed in yet/,
      'the dashboard says why',
    );
    assert.equal((await admin.post('/sender/oauth/start', {})).status, 303);
    const page = await admin.get('/sender');
    const code = /<code id="user-code">([^<]+)<\/code>/.exec(page.text)?.[1];
    assert.ok(code, 'the user code is shown');
    assert.equal(code, oauth.lastUserCode());
    oauth.approve(code);
    await eventually(
      'the sign-in to complete',
      async () => /signed in<\/span>/.test((await admin.get('/sender')).text),
      { timeoutMs: 15_000 },
    );
    const status = (await admin.get('/api/sender')).text;
    assert.match(status, /"state":"ok"/);
    assert.match(
      (await admin.get('/')).text,
      /<dd id="sign-in"><span class="pill[^"]*">ok<\/span>/,
    );
    for (const secret of oauth.secrets())
      assert.ok(!relay.output().includes(secret), 'no token in the log');
  });

  test('a state-changing sender route without the CSRF token is refused', async () => {
    assert.equal((await admin.post('/sender/oauth/signout', { _csrf: 'forged' })).status, 403);
  });

  test('the DKIM record to publish is shown', async () => {
    const page = await admin.get('/sender');
    assert.match(page.text, /<code id="dkim-name">box1\._domainkey\.contoso\.test<\/code>/);
    assert.match(
      page.text,
      /<code id="dkim-value"[^>]*>v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{200,}<\/code>/,
    );
  });

  test('pre-flight: the box holds the aligned sender domain; the check names what is missing, in plain words', async () => {
    assert.match(
      (await admin.get('/sender')).text,
      /<input type="text" name="domain" value="contoso\.test"/,
      'pre-filled from the rewritten From',
    );
    const page = await admin.post('/sender/preflight', { domain: 'contoso.test' });
    assert.equal(page.status, 200);
    assert.match(page.text, /<strong>contoso\.test<\/strong>/);
    assert.match(
      page.text,
      /<p class="lead" id="preflight-verdict">Mail sent as contoso\.test is likely to be refused or put in spam until you fix DKIM: No DKIM key is published at box1\._domainkey\.contoso\.test: signed mail will not verify\.<\/p>/,
    );
    for (const check of ['MX', 'SPF', 'DMARC', 'DKIM'])
      assert.ok(page.text.includes(`<td>${check}</td>`), check);
    assert.match(page.text, /box1\._domainkey/, 'the missing DKIM record is named');
  });

  test('the Devices page and /api/devices: first seen, totals, refusals and the last result', async () => {
    type Device = {
      address: string;
      helo: string;
      firstSeen: string;
      lastSeen: string;
      total: { messages: number; bytes: number; rejects: number };
      today: { messages: number; rejects: number };
      lastResult: { status: string; text: string } | null;
    };
    const device = async () =>
      (JSON.parse((await admin.get('/api/devices')).text) as Device[]).find(
        (d) => d.address === '127.0.0.1',
      );
    const accepted = await RawSmtp.send(relay.smtpPort, {
      helo: 'mfp-2f',
      from: 'scan@office.test',
      to: 'postmaster@relay.test',
      data: 'Subject: scan\r\n\r\nx\r\n.\r\n',
    });
    assert.match(accepted, /^250 /);
    const afterAccepted = await eventually(
      'the local delivery of the accepted message',
      async () => {
        const found = await device();
        return found?.lastResult?.status === 'local' ? found : undefined;
      },
      { timeoutMs: 10_000 },
    );
    const smtp = await RawSmtp.connect(relay.smtpPort);
    await smtp.reply();
    await smtp.command('EHLO mfp-2f\r\n');
    await smtp.command('MAIL FROM:<scan@office.test>\r\n');
    assert.match(
      await smtp.command('RCPT TO:<someone@other.test>\r\n'),
      /^550 5\.7\.1 This device may only send to example\.test/,
    );
    await smtp.command('QUIT\r\n');
    smtp.close();
    const found = await eventually(
      'the refusal in the inventory',
      async () => {
        const d = await device();
        return d?.lastResult?.status === 'rejected' ? d : undefined;
      },
      { timeoutMs: 5_000 },
    );
    assert.equal(found.total.messages, afterAccepted.total.messages);
    assert.equal(found.total.messages, 1, 'one message accepted so far');
    assert.ok(found.total.bytes > 0);
    assert.equal(found.total.rejects, 1);
    assert.equal(found.today.rejects, 1);
    assert.equal(found.helo, 'mfp-2f');
    assert.equal(found.firstSeen, afterAccepted.firstSeen, 'first seen does not move');
    assert.ok(found.firstSeen <= found.lastSeen);
    assert.equal(found.lastResult?.text, '550 This device may only send to example.test');
    const row =
      /<tr data-address="127\.0\.0\.1">[\s\S]*?<\/tr>/.exec(
        (await admin.get('/devices')).text,
      )?.[0] ?? '';
    assert.match(
      row,
      /<span class="small muted rules">Rules: only to example\.test<\/span>/,
      'the rule that refused it is shown',
    );
    assert.match(row, /<div class="first-seen">first <span class="when" title="[^"]+">/);
    assert.match(
      row,
      /<span class="total-messages">1<\/span> sent<br><span class="small muted"><span class="total-bytes">\d+ B<\/span>, <span class="total-rejects">1<\/span> refused/,
    );
    assert.match(
      row,
      /<td class="last-result detail"><span class="pill bad">rejected<\/span> <span class="small muted">550 This device may only send to example\.test<\/span>/,
    );
  });

  test('a device transcript shows the session with the password hidden', async () => {
    const secret = Buffer.from('\0scanner\0Pa55-word-Printer').toString('base64');
    const smtp = await RawSmtp.connect(relay.smtpPort);
    await smtp.reply();
    await smtp.command('EHLO mfp-lobby\r\n');
    await smtp.command(`AUTH PLAIN ${secret}\r\n`);
    await smtp.command('MAIL FROM:<scan@office.test>\r\n');
    await smtp.command('RCPT TO:<boss@example.test>\r\n');
    await smtp.command('DATA\r\n');
    assert.match(await smtp.command('Subject: scan\r\n\r\nx\r\n.\r\n'), /^250/);
    await smtp.command('QUIT\r\n');
    smtp.close();
    const page = await eventually(
      'the transcript',
      async () => {
        const text = (await admin.get('/devices/127.0.0.1/transcripts')).text;
        return text.includes('mfp-lobby') ? text : undefined;
      },
      { timeoutMs: 5000 },
    );
    assert.match(page, /device &gt; AUTH PLAIN \/\* secured \*\//);
    assert.ok(!page.includes(secret));
    assert.match((await admin.get('/devices')).text, /href="\/devices\/127\.0\.0\.1\/transcripts"/);
  });
});
