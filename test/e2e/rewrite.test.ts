/**
 * Sender alignment end to end: the upstream sees the verified address in
 * MAIL FROM and From, the device's address in Reply-To and X-Original-From,
 * per-domain overrides, and body bytes unchanged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type WebClient, setupAdminOf } from '../support/browser.js';
import { RawSmtp, smtplibSend } from '../support/clients.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, viaSmarthost, type Upstream } from '../support/upstream.js';

const BODY = 'Caf\xe9 8-bit body\r\nFrom: not a header in the body\r\n';

describe('sender alignment to the smarthost', () => {
  let upstream: Upstream;
  let relay: RunningRelay;

  before(async () => {
    upstream = await startUpstream({ requireTls: true });
    relay = await launchRelay({
      config: viaSmarthost(upstream, {
        rewrite: {
          envelopeFrom: 'bounces@contoso.test',
          headerFrom: 'scanner@contoso.test',
          useDeviceName: false,
        },
        domains: {
          'partner.test': { route: 'smarthost', rewrite: { headerFrom: 'partners@contoso.test' } },
          'asis.test': { route: 'smarthost', rewrite: { envelopeFrom: '', headerFrom: '' } },
        },
      }),
    });
  });
  after(async () => {
    await relay.stop();
    await upstream.close();
  });

  test('MAIL FROM and From rewritten; the device in Reply-To and X-Original-From; body intact', async () => {
    const data = Buffer.from(
      `From: Printer <printer@office.lan>\r\nTo: boss@example.com\r\nSubject: Scan\r\n\r\n${BODY}.\r\n`,
      'latin1',
    );
    const seen = upstream.messages.length;
    assert.match(
      await RawSmtp.send(relay.smtpPort, {
        helo: 'MFP-3F',
        from: 'printer@office.lan',
        to: 'boss@example.com',
        data,
      }),
      /^250 /,
    );
    const message = (await upstream.waitFor(seen + 1))[seen];
    assert.equal(message?.from, 'bounces@contoso.test');
    const raw = message?.raw.toString('latin1') ?? '';
    const [head = '', body] = [
      raw.slice(0, raw.indexOf('\r\n\r\n') + 2),
      raw.slice(raw.indexOf('\r\n\r\n') + 4),
    ];
    assert.match(
      head,
      /^From: Printer <scanner@contoso\.test>\r\nX-Original-From: Printer <printer@office\.lan>\r\nReply-To: Printer <printer@office\.lan>\r\nTo: boss@example\.com\r\n/m,
    );
    assert.equal((head.match(/^From:/gim) ?? []).length, 1, 'one From');
    assert.equal(body, BODY, 'body bytes unchanged');
  });

  test('per-domain: a different From for one domain, no rewrite for another, one message split into transactions', async () => {
    const seen = upstream.messages.length;
    await smtplibSend(
      relay.smtpPort,
      'ups@office.lan',
      ['a@partner.test', 'b@asis.test', 'c@example.com'],
      'From: ups@office.lan\r\nReply-To: it@contoso.test\r\nSubject: UPS\r\n\r\nOn battery\r\n',
    );
    const messages = (await upstream.waitFor(seen + 3)).slice(seen);
    const byRcpt = (rcpt: string) => messages.find((m) => m.to.includes(rcpt));
    const partner = byRcpt('a@partner.test');
    assert.equal(partner?.from, 'bounces@contoso.test', 'envelope from the global setting');
    assert.match(
      partner?.raw.toString() ?? '',
      /^From: [^\r\n]*<partners@contoso\.test>\r\nX-Original-From: ups@office\.lan\r\nReply-To: it@contoso\.test\r\n/m,
      'the existing Reply-To kept',
    );
    const asis = byRcpt('b@asis.test');
    assert.equal(asis?.from, 'ups@office.lan');
    assert.match(asis?.raw.toString() ?? '', /^From: ups@office\.lan\r\n/m);
    assert.ok(!/X-Original-From/.test(asis?.raw.toString() ?? ''));
    assert.match(
      byRcpt('c@example.com')?.raw.toString() ?? '',
      /^From: [^\r\n]*<scanner@contoso\.test>\r\n/m,
    );
  });
});

/** Per-device address and display name: the HELO name until the admin names the device on the Devices page */
describe('per-device sender alignment', () => {
  let upstream: Upstream;
  let relay: RunningRelay;
  let admin: WebClient;

  before(async () => {
    upstream = await startUpstream({ requireTls: true });
    relay = await launchRelay({
      config: {
        // Two devices with the same setting: the one the admin names is not the one the other test sees
        smtp: {
          devices: {
            '127.0.0.1': { rewriteFrom: 'mfp@contoso.test' },
            '127.0.0.3': { rewriteFrom: 'mfp@contoso.test' },
          },
        },
        ...viaSmarthost(upstream, {
          rewrite: {
            envelopeFrom: 'bounces@contoso.test',
            headerFrom: 'scanner@contoso.test',
            useDeviceName: true,
          },
        }),
      },
    });
    admin = await setupAdminOf(relay);
  });
  after(async () => {
    await relay.stop();
    await upstream.close();
  });

  test('the device setting wins over the global one; its HELO name is the display name', async () => {
    const data = 'From: printer@office.lan\r\nSubject: Scan\r\n\r\nscan\r\n.\r\n';
    const seen = upstream.messages.length;
    assert.match(
      await RawSmtp.send(relay.smtpPort, {
        helo: 'MFP-3F',
        from: 'printer@office.lan',
        to: 'boss@example.com',
        data,
      }),
      /^250 /,
    );
    const message = (await upstream.waitFor(seen + 1))[seen];
    assert.equal(message?.from, 'mfp@contoso.test');
    // smtp-server lowercases the HELO name
    assert.match(message?.raw.toString() ?? '', /^From: mfp-3f <mfp@contoso\.test>\r\n/m);
  });

  test('a device named on the Devices page: its name is the display name of the next message', async () => {
    // A first message makes the device known; then the admin names it as a person would
    const send = (data: string) =>
      RawSmtp.send(relay.smtpPort, {
        helo: 'MFP-3F',
        from: 'printer@office.lan',
        to: 'boss@example.com',
        data,
        localAddress: '127.0.0.3',
      });
    const seen = upstream.messages.length;
    assert.match(
      await send('From: printer@office.lan\r\nSubject: Scan 1\r\n\r\nscan\r\n.\r\n'),
      /^250 /,
    );
    await upstream.waitFor(seen + 1);
    const named = await admin.post('/devices/name', {
      address: '127.0.0.3',
      name: '3rd floor MFP',
    });
    assert.equal(named.status, 303);
    assert.match((await admin.get('/devices')).text, /value="3rd floor MFP"/, 'the name was saved');
    assert.match(
      await send('From: printer@office.lan\r\nSubject: Scan 2\r\n\r\nscan\r\n.\r\n'),
      /^250 /,
    );
    const message = (await upstream.waitFor(seen + 2))[seen + 1];
    assert.equal(message?.from, 'mfp@contoso.test');
    assert.match(
      message?.raw.toString() ?? '',
      /^From: 3rd floor MFP <mfp@contoso\.test>\r\nX-Original-From: printer@office\.lan\r\nReply-To: printer@office\.lan\r\n/m,
    );
  });
});
