/**
 * Open-relay probes from hosts outside smtp.allowNetworks. A host outside
 * (127.0.0.3) gets 554 at connect and no command answered. A session opened
 * while its host (127.0.0.2) was allowed, then taken out of allowNetworks
 * from the admin page, meets every trick relay testers use: each recipient is
 * refused with 5xx, DATA never starts, nothing reaches the upstream. The same
 * tricks from an allowed host never route to somewhere other than the address
 * says.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setupAdminOf, type WebClient } from '../support/browser.js';
import { RawSmtp } from '../support/clients.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const PROBES = [
  'victim@example.com',
  'VICTIM@EXAMPLE.COM',
  'victim@example.com.',
  '@relay.test:victim@example.com',
  '@relay.test,@other.test:victim@example.com',
  'victim%example.com@relay.test',
  'victim%example.com',
  'example.com!victim@relay.test',
  'example.com!victim',
  '"victim@example.com"',
  '"victim@example.com"@relay.test',
  '"victim%example.com"@relay.test',
  'victim@example.com@relay.test',
  'postmaster',
  'postmaster@relay.test',
  'POSTMASTER@RELAY.TEST',
  'abuse@relay.test',
  'nobody@relay.test',
  'victim@[127.0.0.1]',
  'victim@[IPv6:::1]',
  'victim@[IPv6:::ffff:127.0.0.1]',
  'victim@relay.test',
  'victim@localhost',
  'victim@[203.0.113.5]',
];

describe('open-relay probes from outside the allowed networks', () => {
  let upstream: Upstream;
  let relay: RunningRelay;
  let admin: WebClient;

  before(async () => {
    upstream = await startUpstream({ offerTls: false });
    relay = await launchRelay({
      config: {
        smtp: { allowNetworks: ['127.0.0.1/32', '127.0.0.2/32'] },
        delivery: { smarthost: { host: '127.0.0.1', port: upstream.port, security: 'none' } },
      },
    });
    admin = await setupAdminOf(relay);
  });
  after(async () => {
    await relay?.stop();
    await upstream?.close();
  });

  test('a host outside gets 554 5.7.1 in place of the greeting, even when it pipelines a whole message at once', async () => {
    const smtp = await RawSmtp.connect(relay.smtpPort, { localAddress: '127.0.0.3' });
    smtp.socket.write(
      'EHLO x\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nSubject: spam\r\n\r\nbuy\r\n.\r\nQUIT\r\n',
    );
    const replies: string[] = [];
    for (;;) {
      const reply = await smtp.reply().catch(() => undefined);
      if (!reply) break;
      replies.push(reply);
    }
    smtp.close();
    assert.deepEqual(
      replies,
      ['554 5.7.1 Access denied: client 127.0.0.3 is not in the allowed networks of this relay'],
      'refused, then disconnected',
    );
  });

  test(`${PROBES.length} relay tricks on a session whose host was just taken out of allowNetworks are each refused with 5xx, and DATA never starts`, async () => {
    const smtp = await RawSmtp.connect(relay.smtpPort, { localAddress: '127.0.0.2' });
    const replies: [string, string][] = [];
    try {
      assert.match(await smtp.reply(), /^220 /);
      await smtp.command('EHLO relay-tester.example\r\n');
      const patched = await admin.request('PATCH', '/api/settings', {
        json: { smtp: { allowNetworks: ['127.0.0.1/32'] } },
        headers: { 'x-csrf-token': admin.csrf },
      });
      assert.equal(patched.status, 200, patched.text);
      for (const sender of ['<>', '<spammer@example.net>', '<postmaster@relay.test>']) {
        const mail = await smtp.command(`MAIL FROM:${sender}\r\n`);
        if (!mail.startsWith('250')) {
          replies.push([`MAIL FROM:${sender}`, mail]);
          continue;
        }
        for (const probe of PROBES)
          replies.push([probe, await smtp.command(`RCPT TO:<${probe}>\r\n`)]);
        const data = await smtp.command('DATA\r\n');
        assert.match(data, /^5\d\d /, `DATA after refused recipients: ${data}`);
        await smtp.command('RSET\r\n');
      }
    } finally {
      smtp.close();
    }
    const accepted = replies.filter(([, reply]) => !/^5\d\d /.test(reply));
    assert.deepEqual(accepted, [], 'every probe refused with 5xx');
    console.log(
      `load-open-relay: ${replies.length} probes from 127.0.0.2, all refused with 5xx (${[...new Set(replies.map(([, r]) => r.slice(0, 3)))].join(', ')})`,
    );
  });

  test('the host taken out of allowNetworks is refused at connect from its next connection, without a restart', async () => {
    const smtp = await RawSmtp.connect(relay.smtpPort, { localAddress: '127.0.0.2' });
    assert.match(await smtp.reply(), /^554 5\.7\.1 /);
    smtp.close();
  });

  test('nothing reached the upstream and nothing was queued', async () => {
    // Queue first: a message accepted by mistake is either still queued or already at the upstream
    const list = await relay.cli(['queue', 'list', '--json']);
    assert.deepEqual(JSON.parse(list.stdout), []);
    assert.equal(upstream.messages.length, 0);
  });

  test('from the allowed host, % and ! hacks and foreign literals are refused; a source route is reduced to its mailbox (RFC 5321 C)', async () => {
    const smtp = await RawSmtp.connect(relay.smtpPort, { localAddress: '127.0.0.1' });
    await smtp.reply();
    await smtp.command('EHLO printer.lan\r\n');
    await smtp.command('MAIL FROM:<printer@office.test>\r\n');
    const replies: [string, string][] = [];
    for (const t of [
      'victim%example.com@relay.test',
      'example.com!victim@relay.test',
      'victim@[203.0.113.5]',
    ])
      replies.push([t, await smtp.command(`RCPT TO:<${t}>\r\n`)]);
    assert.deepEqual(
      replies.filter(([, r]) => !/^5\d\d /.test(r)),
      [],
    );
    assert.match(await smtp.command('RCPT TO:<@relay.test:ops@example.com>\r\n'), /^250 /);
    await smtp.command('DATA\r\n');
    assert.match(await smtp.command('Subject: source route\r\n\r\nhello\r\n.\r\n'), /^250 /);
    smtp.close();
    const [message] = await upstream.waitFor(1);
    assert.deepEqual(
      message?.to,
      ['ops@example.com'],
      'delivered to the mailbox, not via the route',
    );
  });
});
