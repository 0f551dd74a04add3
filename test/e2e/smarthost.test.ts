/**
 * The relay core end to end: real clients send through the relay to a real
 * upstream that requires STARTTLS (certificate from our test CA) and AUTH.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import nodemailer from 'nodemailer';
import { RawSmtp, run, smtplibSend } from '../support/clients.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, viaSmarthost, type Upstream } from '../support/upstream.js';
import { queuedId } from '../support/queued.js';

const AUTH = { user: 'relay@contoso.test', pass: 'upstream-Secret-42' };

const MESSAGE = [
  'From: Printer <printer@office.test>',
  'To: someone@example.com',
  'Subject: Scan from 3rd floor',
  'Date: Thu, 26 Nov 2026 10:00:00 +0000',
  'Message-ID: <scan-1@printer.office.test>',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=iso-8859-1',
  'Content-Transfer-Encoding: 8bit',
  '',
  'Caf\xe9 8-bit body line',
  '.leading dot line',
  '',
].join('\r\n');

describe('relay to a smarthost over verified STARTTLS with AUTH', () => {
  let upstream: Upstream;
  let relay: RunningRelay;

  before(async () => {
    upstream = await startUpstream({ requireTls: true, auth: AUTH });
    relay = await launchRelay({
      config: viaSmarthost(upstream, {}, { user: AUTH.user, password: AUTH.pass }),
    });
  });
  after(async () => {
    await relay.stop();
    await upstream.close();
  });

  test('smtplib: the upstream receives the exact bytes, with our Received header first', async () => {
    const reply = await smtplibSend(
      relay.smtpPort,
      'printer@office.test',
      ['someone@example.com'],
      Buffer.from(MESSAGE, 'latin1'),
    );
    const id = queuedId(reply);
    const [message] = await upstream.waitFor(1);
    assert.ok(message);
    assert.equal(message.secure, true, 'delivered over TLS');
    assert.equal(message.user, AUTH.user, 'authenticated to the upstream');
    assert.deepEqual(message.to, ['someone@example.com']);
    const raw = message.raw.toString('latin1');
    assert.match(
      raw,
      /^Received: from printer\.lan \(\[127\.0\.0\.1\]\)\r\n\tby relay\.test \(edge-relay\) with ESMTP id [0-9A-Z]+\r\n\tfor <someone@example\.com>;\r\n\t.+\r\n/,
    );
    assert.ok(raw.includes(`id ${id}`), 'Received header carries the queue id');
    assert.equal(
      raw.slice(raw.indexOf('From: Printer')),
      MESSAGE,
      'message bytes unchanged (8-bit and dot line included)',
    );
  });

  test('curl smtp:// with upload-file is relayed', async () => {
    const body =
      'From: ups@office.test\r\nTo: ops@example.com\r\nSubject: UPS on battery\r\n\r\nPower failure at 10:02\r\n';
    const result = await run(
      'curl',
      [
        '-sS',
        `smtp://127.0.0.1:${relay.smtpPort}`,
        '--mail-from',
        'ups@office.test',
        '--mail-rcpt',
        'ops@example.com',
        '--upload-file',
        '-',
      ],
      { input: body },
    );
    assert.equal(result.code, 0, result.stderr);
    const messages = await upstream.waitFor(2);
    const raw = messages[1]?.raw.toString() ?? '';
    assert.ok(raw.includes('Power failure at 10:02'));
    assert.match(raw, /^Date: .+\r\n/m, 'Date added');
    assert.match(raw, /^Message-ID: <[0-9A-Z]+@relay\.test>\r\n/m, 'Message-ID added');
  });

  test('nodemailer as a device client is relayed, with AUTH offered and accepted', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: relay.smtpPort,
      secure: false,
      ignoreTLS: true,
      auth: { user: 'scanner', pass: 'whatever' },
    });
    const info = await transport.sendMail({
      from: 'nas@office.test',
      to: 'admin@example.com',
      subject: 'RAID degraded',
      text: 'Disk 2 failed',
    });
    assert.match(info.response, /^250 .*queued as [0-9A-Z]+/);
    const messages = await upstream.waitFor(3);
    assert.ok(messages[2]?.raw.toString().includes('Disk 2 failed'));
  });

  test('a device speaking bare LF throughout, ending DATA with \\n.\\n, is relayed with CRLF', async () => {
    const smtp = await RawSmtp.connect(relay.smtpPort);
    assert.match(await smtp.reply(), /^220 /);
    assert.match(await smtp.command('HELO oldprinter\n'), /^250 /);
    assert.match(await smtp.command('MAIL FROM:<copier@office.test>\n'), /^250/);
    assert.match(await smtp.command('RCPT TO:<boss@example.com>\n'), /^250/);
    assert.match(await smtp.command('DATA\n'), /^354/);
    const reply = await smtp.command(
      'Subject: bare LF\n\nline one\n..dot stuffed\nline three\n.\n',
    );
    assert.match(reply, /^250 .*queued as/);
    assert.match(await smtp.command('QUIT\n'), /^221/);
    smtp.close();
    const messages = await upstream.waitFor(4);
    const raw = messages[3]?.raw.toString() ?? '';
    const [head, body] = raw.split('\r\n\r\n');
    assert.equal(
      body,
      'line one\r\n.dot stuffed\r\nline three\r\n',
      'body with CRLF and dot-stuffing undone',
    );
    assert.match(
      head ?? '',
      /\r\nSubject: bare LF\r\nDate: [^\r\n]+\r\nMessage-ID: <[0-9A-Z]+@relay\.test>$/,
    );
    assert.ok(!/[^\r]\n/.test(raw), 'no bare LF reaches the upstream');
  });

  test('the upstream password never appears in the log', () => {
    assert.ok(!relay.output().includes(AUTH.pass));
  });
});
