/**
 * Opportunistic TLS on MX delivery (RFC 7435): an MX that offers STARTTLS
 * but cannot complete a handshake we accept (it only speaks TLS 1.0) gets
 * the message in plain text under the default policy "may", as Postfix does;
 * under "encrypt" the message waits instead.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { smtplibSend } from '../support/clients.js';
import { freePortOn, startDnsServer, type DnsServer } from '../support/dns-server.js';
import { queuedId, triedOnce } from '../support/queued.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const OLD_MX = '127.0.0.60';

const message = (subject: string) =>
  `From: ups@office.test\r\nSubject: ${subject}\r\n\r\nOn battery\r\n`;

describe('MX delivery: STARTTLS handshake fails', () => {
  let dns: DnsServer;
  let relay: RunningRelay;
  let oldMx: Upstream;

  before(async () => {
    const port = await freePortOn([OLD_MX]);
    // TLS 1.0 only (and the old ciphers that needs): our client insists on TLS 1.2 or later
    oldMx = await startUpstream({
      host: OLD_MX,
      port,
      extra: { minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' },
    });
    dns = await startDnsServer({
      'old.test': [{ type: 'MX', preference: 10, exchange: 'mx.old.test' }],
      'strict.test': [{ type: 'MX', preference: 10, exchange: 'mx.old.test' }],
      'mx.old.test': [{ type: 'A', address: OLD_MX }],
    });
    relay = await launchRelay({
      config: {
        delivery: {
          mode: 'mx',
          mx: { port, tls: 'may' },
          dns: { servers: [dns.address], timeout: '2s' },
          retry: { delays: ['1h'], maxAge: '5d' },
          domains: { 'strict.test': { route: 'mx', tls: 'encrypt' } },
        },
      },
    });
  });

  after(async () => {
    await relay?.stop();
    await oldMx?.close();
    await dns?.close();
  });

  test('policy "may": delivered in plain text to the same host, and the log says why', async () => {
    await smtplibSend(relay.smtpPort, 'ups@office.test', ['ops@old.test'], message('may'));
    const [received] = await oldMx.waitFor(1);
    assert.deepEqual(received?.to, ['ops@old.test']);
    assert.equal(received?.secure, false, 'plain text after the failed handshake');
    const line = await relay.waitForLog(
      (l) => l.msg === 'STARTTLS failed under TLS policy "may"; retrying this host without TLS',
    );
    assert.equal(line.mx, 'mx.old.test');
  });

  test('policy "encrypt": no plain-text fallback, the message waits with the TLS error', async () => {
    const reply = await smtplibSend(
      relay.smtpPort,
      'ups@office.test',
      ['ops@strict.test'],
      message('encrypt'),
    );
    const item = await triedOnce(relay, queuedId(reply));
    assert.equal(item.recipients[0]?.status, 'deferred');
    assert.match(item.lastError ?? '', /mx\.old\.test/);
    assert.match(item.lastError ?? '', /ETLS|TLS|SSL|protocol/i);
    assert.equal(oldMx.messages.length, 1, 'only the "may" message arrived');
    assert.equal(
      relay.logs.filter(
        (l) => l.msg === 'STARTTLS failed under TLS policy "may"; retrying this host without TLS',
      ).length,
      1,
    );
  });
});
