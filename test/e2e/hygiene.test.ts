/**
 * Message hygiene over real sockets: what a device sends that an upstream
 * could misread (a bare CR in a header, a 5 MB line, NUL bytes) arrives at a
 * real upstream (smtp-server) with no new header field, no line over 998
 * octets and no NUL, and decodes (Python's email package) to what was sent.
 * And a failure on the relay's side (an unreadable DKIM key) is an ordinary
 * deferral: counted, with a lastError, and bounced at maxAge.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RawSmtp } from '../support/clients.js';
import { queueList } from '../support/faults.js';
import { decodeMessage, lineTrouble } from '../support/mime.js';
import { newMail, launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, viaSmarthost, type Upstream } from '../support/upstream.js';
import { eventually } from '../support/wait.js';

const MAX_LINE = 998;

/** DATA as a device sends it, dot-stuffed and terminated */
const data = (message: Buffer): Buffer =>
  Buffer.concat([
    Buffer.from(message.toString('latin1').replace(/^\./gm, '..'), 'latin1'),
    Buffer.from('.\r\n'),
  ]);

const send = (relay: RunningRelay, message: Buffer): Promise<string> =>
  RawSmtp.send(relay.smtpPort, {
    helo: 'scanner',
    from: 'scanner@office.test',
    to: 'ops@example.com',
    data: data(message),
  });

describe('what reaches the upstream is safe and says what the device sent', () => {
  let upstream: Upstream;
  let relay: RunningRelay;

  before(async () => {
    upstream = await startUpstream();
    relay = await launchRelay({ config: viaSmarthost(upstream) });
  });

  after(async () => {
    await relay?.stop();
    await upstream?.close();
  });

  test('a bare CR in a header stays in that header: no Bcc field is smuggled in', async () => {
    const message = Buffer.from(
      'From: scanner@office.test\r\nX-Inj: a\rBcc: x@evil.test\r\nSubject: injection\r\n\r\nbody\r\n',
      'latin1',
    );
    assert.match(await send(relay, message), /^250 /);
    const [received] = (await upstream.waitFor(upstream.messages.length + 1)).slice(-1);
    const head = received!.raw.toString('latin1').split('\r\n\r\n')[0]!;
    assert.ok(!/(^|\r?\n)Bcc:/i.test(head), `a new Bcc field arrived:\n${head}`);
    assert.match(head, /\r\nX-Inj: a Bcc: x@evil\.test\r\n/);
    const decoded = await decodeMessage(received!.raw);
    assert.deepEqual(
      decoded.headers.filter(([name]) => name.toLowerCase() === 'bcc'),
      [],
    );
  });

  test('mail that is already valid arrives byte for byte after our Received field (its DKIM signature survives)', async () => {
    const message = Buffer.from(
      [
        'DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=office.test; s=dev; h=from:subject;',
        '\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=c2lnbmF0dXJl',
        'From: scanner@office.test',
        'Subject: valid',
        'Date: Sun, 06 Dec 2026 01:00:00 +0000',
        'Message-ID: <valid@office.test>',
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="b"',
        '',
        '--b',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 8bit',
        '',
        `caf\xc3\xa9 ${'x'.repeat(MAX_LINE - 6)}`,
        '--b',
        'Content-Type: application/pdf',
        'Content-Transfer-Encoding: base64',
        '',
        ...(Buffer.alloc(3000, 'pdf')
          .toString('base64')
          .match(/.{1,76}/g) ?? []),
        '--b--',
        '',
      ].join('\r\n'),
      'latin1',
    );
    assert.match(await send(relay, message), /^250 /);
    const [received] = (await upstream.waitFor(upstream.messages.length + 1)).slice(-1);
    const raw = received!.raw;
    assert.ok(
      raw.subarray(raw.length - message.length).equals(message),
      'the message arrived changed',
    );
    assert.match(
      raw.subarray(0, raw.length - message.length).toString('latin1'),
      /^Received: [^]*\r\n$/,
    );
  });

  test('a 5 MB line with NUL bytes arrives with no line over 998 octets and no NUL, and decodes to the same bytes', async () => {
    const line = Buffer.alloc(5 * 1024 * 1024, 'scan-data \0\xff=');
    const message = Buffer.concat([
      Buffer.from('From: scanner@office.test\r\nSubject: big line\r\n\r\n'),
      line,
      Buffer.from('\r\n'),
    ]);
    assert.match(await send(relay, message), /^250 /);
    const [received] = (await upstream.waitFor(upstream.messages.length + 1, 60_000)).slice(-1);
    const trouble = lineTrouble(received!.raw);
    console.log(
      `hygiene: a ${line.length}-octet line arrived as ${received!.raw.length} octets, longest line ${trouble.longest}`,
    );
    assert.ok(trouble.longest <= MAX_LINE, `a line of ${trouble.longest} octets arrived`);
    assert.equal(trouble.nul, false, 'a NUL arrived');
    const [sent, got] = await Promise.all([decodeMessage(message), decodeMessage(received!.raw)]);
    assert.deepEqual(got.parts, sent.parts);
  });
});

test('an unreadable DKIM key: each attempt is a counted deferral with a lastError, and the message bounces at maxAge', async () => {
  const upstream = await startUpstream();
  const relay = await launchRelay({
    config: viaSmarthost(upstream, {
      dkim: { enabled: true, domain: 'office.test', selector: 'broken' },
      retry: { delays: ['1s'], maxAge: '4s' },
    }),
  });
  try {
    // A folder where the key file should be: reading it fails every time
    mkdirSync(path.join(relay.dataDir, 'dkim', 'broken.key'), { recursive: true });
    assert.match(
      await send(
        relay,
        Buffer.from('From: scanner@office.test\r\nSubject: signed\r\n\r\nbody\r\n'),
      ),
      /^250 /,
    );
    const deferred = await eventually(
      'a counted attempt',
      async () => (await queueList(relay)).find((item) => item.attempts >= 1),
      { timeoutMs: 10_000 },
    );
    assert.match(deferred.lastError ?? '', /EISDIR.*\(on this box, before sending\)/);
    assert.equal(deferred.recipients[0]?.status, 'deferred');
    const bounce = await eventually(
      'a bounce report at maxAge',
      () => newMail(relay, 'postmaster').find((m) => m.includes('multipart/report')),
      { timeoutMs: 15_000 },
    );
    assert.match(bounce, /Gave up after 4s in the queue; last error: EISDIR/);
    await eventually('an empty queue', async () => (await queueList(relay)).length === 0, {
      timeoutMs: 5_000,
    });
    assert.equal(upstream.messages.length, 0, 'nothing was sent unsigned');
  } finally {
    await relay.stop();
    await upstream.close();
  }
});
