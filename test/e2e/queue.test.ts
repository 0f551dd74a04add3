/** Retries, per-recipient results, bounces and the queue commands, against a real upstream */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RawSmtp, smtplibSend } from '../support/clients.js';
import { queueList } from '../support/faults.js';
import { newMail, launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, viaSmarthost, type Upstream } from '../support/upstream.js';
import { eventually } from '../support/wait.js';

const message = (subject: string) => `From: dev@office.test\r\nSubject: ${subject}\r\n\r\nbody\r\n`;

/** Relay settings whose smarthost refuses every attempt: nothing listens on port 9 of 127.0.0.1 */
const viaRefusingSmarthost = (delivery: Record<string, unknown>) => ({
  delivery: { smarthost: { host: '127.0.0.1', port: 9, security: 'none' }, ...delivery },
});

describe('temporary failure, then recovery', () => {
  let upstream: Upstream;
  let relay: RunningRelay;
  before(async () => {
    upstream = await startUpstream({
      requireTls: true,
      dataReply: (attempt) => (attempt === 1 ? [451, '4.3.0 Upstream busy, try later'] : undefined),
    });
    relay = await launchRelay({
      config: viaSmarthost(upstream, { retry: { delays: ['5s'], maxAge: '5d' } }),
    });
  });
  after(async () => {
    await relay.stop();
    await upstream.close();
  });

  test('a 451 defers with the reply as lastError, then the retry delivers it', async () => {
    await smtplibSend(relay.smtpPort, 'dev@office.test', ['a@example.com'], message('retry me'));
    // The retry comes 5 s later: room for a slow `queue list` on a busy machine to see the message waiting
    const deferred = await eventually(
      'a deferred message',
      async () => (await queueList(relay)).find((i) => i.attempts === 1),
      { timeoutMs: 10_000 },
    );
    assert.equal(deferred.recipients[0]?.status, 'deferred');
    assert.match(deferred.lastError ?? '', /^451 .*Upstream busy, try later \(127\.0\.0\.1:\d+/);
    assert.ok(deferred.nextAttempt && Date.parse(deferred.nextAttempt) > Date.now() - 1000);
    await upstream.waitFor(1, 20_000);
    assert.equal(upstream.dataAttempts, 2, 'exactly one retry');
    await eventually('an empty queue', async () => (await queueList(relay)).length === 0, {
      timeoutMs: 5000,
    });
  });
});

describe('permanent failure for one recipient', () => {
  let upstream: Upstream;
  let relay: RunningRelay;
  before(async () => {
    upstream = await startUpstream({
      rcptReply: (address) =>
        address.startsWith('nobody@') ? [550, '5.1.1 No such user here'] : undefined,
    });
    relay = await launchRelay({ config: viaSmarthost(upstream) });
  });
  after(async () => {
    await relay.stop();
    await upstream.close();
  });

  test('the rejected recipient bounces to postmaster, the other is delivered', async () => {
    await smtplibSend(
      relay.smtpPort,
      'scanner@office.test',
      ['nobody@example.com', 'boss@example.com'],
      message('partial'),
    );
    const [delivered] = await upstream.waitFor(1);
    assert.deepEqual(delivered?.to, ['boss@example.com']);
    const bounce = await eventually(
      'a bounce report',
      () => newMail(relay, 'postmaster').find((m) => m.includes('multipart/report')),
      { timeoutMs: 10_000 },
    );
    assert.match(bounce, /report-type=delivery-status/);
    assert.match(
      bounce,
      /Final-Recipient: rfc822; nobody@example\.com\r\nAction: failed\r\nStatus: 5\.1\.1/,
    );
    assert.match(bounce, /550 5\.1\.1 No such user here/);
    assert.ok(
      !bounce.includes('Final-Recipient: rfc822; boss@example.com'),
      'the bounce names only the rejected recipient',
    );
    assert.match(bounce, /Content-Type: text\/rfc822-headers\r\n\r\nReceived: from printer\.lan/);
    assert.match(bounce, /Subject: partial/);
    assert.equal((await queueList(relay)).length, 0);
  });
});

describe('queue commands while the upstream is unreachable', () => {
  let relay: RunningRelay;
  before(async () => {
    relay = await launchRelay({
      config: viaRefusingSmarthost({ retry: { delays: ['1h'], maxAge: '5d' } }),
    });
  });
  after(async () => {
    await relay.stop();
  });

  test('list shows deferred recipients with the connection error', async () => {
    await smtplibSend(relay.smtpPort, 'ups@office.test', ['ops@example.com'], message('queued'));
    const [item] = await eventually('one queued message tried once', async () => {
      const items = await queueList(relay);
      return items.length === 1 && items[0]?.attempts === 1 ? items : undefined;
    });
    assert.ok(item);
    assert.equal(item.from, 'ups@office.test');
    assert.equal(item.recipients[0]?.status, 'deferred');
    assert.match(item.lastError ?? '', /ECONNREFUSED|connect/i);
    assert.ok(item.size > 0);
  });

  test('hold, release, retry, show and delete', async () => {
    const [item] = await queueList(relay);
    assert.ok(item);
    assert.equal((await relay.cli(['queue', 'hold', item.id])).code, 0);
    let [held] = await queueList(relay);
    assert.equal(held?.recipients[0]?.status, 'held');
    assert.equal(held?.nextAttempt, null);
    const released = await relay.cli(['queue', 'release', item.id]);
    assert.equal(released.code, 0, released.stderr);
    await eventually(
      'a second attempt after release',
      async () => (await queueList(relay))[0]?.attempts === 2,
      { timeoutMs: 10_000 },
    );
    [held] = await queueList(relay);
    assert.equal(held?.recipients[0]?.status, 'deferred');
    const retry = await relay.cli(['queue', 'retry', '--all']);
    assert.match(retry.stdout, /Retrying 1 message/);
    await eventually(
      'a third attempt after retry --all',
      async () => (await queueList(relay))[0]?.attempts === 3,
      { timeoutMs: 10_000 },
    );
    const show = await relay.cli(['queue', 'show', item.id]);
    assert.match(show.stdout, /Subject: queued/);
    assert.equal((await relay.cli(['queue', 'delete', item.id])).code, 0);
    assert.deepEqual(await queueList(relay), []);
  });

  test('bad ids are refused clearly', async () => {
    const result = await relay.cli(['queue', 'show', '../../etc/passwd']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Not a queue id: "\.\.\/\.\.\/etc\/passwd"/);
    const missing = await relay.cli(['queue', 'delete', 'AAAAAAAAAAAAAAAAAAA']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /No message AAAAAAAAAAAAAAAAAAA in the queue/);
  });
});

describe('intake policy and limits', () => {
  let relay: RunningRelay;
  before(async () => {
    relay = await launchRelay({
      config: {
        smtp: {
          allowNetworks: ['127.0.0.1/32'],
          maxMessageSize: 10_000,
          maxConnectionsPerClient: 3,
        },
        mailbox: { copies: [{ mailbox: 'archive' }] },
      },
    });
    assert.equal(
      (await relay.cli(['mailbox', 'add', 'archive', '--password-stdin'], 'archive-pass-1\n')).code,
      0,
    );
  });
  after(async () => {
    await relay.stop();
  });

  test('no upstream configured: accepted, then deferred with what to do', async () => {
    await smtplibSend(
      relay.smtpPort,
      'cam@office.test',
      ['sec@example.com'],
      message('no upstream'),
    );
    const item = await eventually('the message tried once', async () =>
      (await queueList(relay)).find((i) => i.attempts >= 1 && i.from === 'cam@office.test'),
    );
    const remote = item.recipients.find((r) => r.address === 'sec@example.com');
    assert.equal(remote?.status, 'deferred');
    assert.match(item.lastError ?? '', /No upstream configured/);
  });

  test('a copy rule keeps relayed mail in the archive mailbox', async () => {
    await eventually(
      'the archived copy',
      () => newMail(relay, 'archive').some((text) => text.includes('Subject: no upstream')),
      { timeoutMs: 10_000 },
    );
  });

  test('a client outside allowNetworks is refused at connect: 554 5.7.1 instead of the greeting, then the connection closes', async () => {
    const smtp = await RawSmtp.connect(relay.smtpPort, { localAddress: '127.0.0.2' });
    assert.match(
      await smtp.reply(),
      /^554 5\.7\.1 Access denied: client 127\.0\.0\.2 is not in the allowed networks/,
    );
    await assert.rejects(smtp.reply(), /Connection closed/);
  });

  test('unknown local mailbox: 550 at RCPT', async () => {
    const smtp = await RawSmtp.connect(relay.smtpPort);
    await smtp.reply();
    await smtp.command('HELO printer\r\n');
    await smtp.command('MAIL FROM:<p@office.test>\r\n');
    assert.match(
      await smtp.command('RCPT TO:<nosuchuser@relay.test>\r\n'),
      /^550 5\.1\.1 No such mailbox here/,
    );
    assert.match(
      await smtp.command('RCPT TO:<Archive+scans@RELAY.test>\r\n'),
      /^250/,
      'case and +tag map to the mailbox',
    );
    smtp.close();
  });

  test('over maxMessageSize without a SIZE declaration: 552 after DATA, nothing queued', async () => {
    const before = (await queueList(relay)).length;
    const smtp = await RawSmtp.connect(relay.smtpPort);
    await smtp.reply();
    await smtp.command('HELO printer\r\n');
    await smtp.command('MAIL FROM:<p@office.test>\r\n');
    await smtp.command('RCPT TO:<x@example.com>\r\n');
    assert.match(await smtp.command('DATA\r\n'), /^354/);
    assert.match(
      await smtp.command(`Subject: big\r\n\r\n${'x'.repeat(998)}\r\n`.repeat(20) + '.\r\n'),
      /^552 5\.3\.4 Message is \d+ KB; this relay accepts at most \d+ KB\. Scan at a lower resolution or fewer pages/,
    );
    assert.match(
      await smtp.command('MAIL FROM:<p@office.test>\r\n'),
      /^250/,
      'the session goes on',
    );
    smtp.close();
    assert.equal((await queueList(relay)).length, before);
  });

  test('a declared SIZE over the limit is refused at MAIL', async () => {
    const smtp = await RawSmtp.connect(relay.smtpPort);
    await smtp.reply();
    await smtp.command('EHLO printer\r\n');
    assert.match(await smtp.command('MAIL FROM:<p@office.test> SIZE=20000\r\n'), /^552 /);
    smtp.close();
  });

  test('too many connections from one client: 421', async () => {
    const open = await Promise.all([1, 2, 3].map(() => RawSmtp.connect(relay.smtpPort)));
    await Promise.all(open.map((s) => s.reply()));
    const fourth = await RawSmtp.connect(relay.smtpPort);
    assert.match(await fourth.reply(), /^421 4\.7\.0 Too many connections from 127\.0\.0\.1/);
    open.forEach((s) => s.close());
    fourth.close();
  });
});

describe('delay warnings', () => {
  let relay: RunningRelay;
  before(async () => {
    relay = await launchRelay({
      config: viaRefusingSmarthost({ retry: { delays: ['1s'], maxAge: '5d' }, delayWarning: '2s' }),
    });
  });
  after(async () => {
    await relay.stop();
  });

  test('one "still trying" notice reaches postmaster once the message waited past delivery.delayWarning', async () => {
    await smtplibSend(relay.smtpPort, 'ups@office.test', ['ops@example.com'], message('slow'));
    const warning = await eventually(
      'a delay warning',
      () => newMail(relay, 'postmaster').find((m) => m.includes('Action: delayed')),
      { timeoutMs: 15_000 },
    );
    assert.match(warning, /Subject: Delayed Mail \(still being retried\)/);
    assert.match(warning, /Final-Recipient: rfc822; ops@example\.com/);
    await eventually(
      'more attempts',
      async () => ((await queueList(relay))[0]?.attempts ?? 0) >= 5,
      { timeoutMs: 15_000 },
    );
    assert.equal(
      newMail(relay, 'postmaster').filter((m) => m.includes('Action: delayed')).length,
      1,
      'no warning storm',
    );
    assert.equal(
      (await queueList(relay)).filter((i) => i.from === 'ups@office.test').length,
      1,
      'still queued',
    );
  });
});

describe('per-device policy', () => {
  let relay: RunningRelay;
  before(async () => {
    relay = await launchRelay({
      config: {
        smtp: {
          devices: { '127.0.0.3': { allowDomains: ['contoso.test'], maxMessagesPerMinute: 2 } },
        },
      },
    });
  });
  after(async () => {
    await relay.stop();
  });

  test('a device limited to some domains is refused others; its own rate limit applies; other devices are not affected', async () => {
    const device = await RawSmtp.connect(relay.smtpPort, { localAddress: '127.0.0.3' });
    await device.reply();
    await device.command('HELO mfp\r\n');
    assert.match(await device.command('MAIL FROM:<mfp@contoso.test>\r\n'), /^250/);
    assert.match(
      await device.command('RCPT TO:<someone@gmail.test>\r\n'),
      /^550 5\.7\.1 This device may only send to contoso\.test/,
    );
    assert.match(await device.command('RCPT TO:<boss@contoso.test>\r\n'), /^250/);
    await device.command('RSET\r\n');
    assert.match(await device.command('MAIL FROM:<mfp@contoso.test>\r\n'), /^250/);
    await device.command('RSET\r\n');
    assert.match(
      await device.command('MAIL FROM:<mfp@contoso.test>\r\n'),
      /^450 4\.7\.1 Too many messages from 127\.0\.0\.3 \(limit 2 a minute\)/,
    );
    device.close();
    const other = await RawSmtp.connect(relay.smtpPort, { localAddress: '127.0.0.4' });
    await other.reply();
    await other.command('HELO pc\r\n');
    assert.match(await other.command('MAIL FROM:<pc@office.test>\r\n'), /^250/);
    assert.match(await other.command('RCPT TO:<someone@gmail.test>\r\n'), /^250/);
    other.close();
  });
});
