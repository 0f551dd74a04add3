/** Device transcripts from a real Intake over a real socket: commands and replies, credentials redacted, bodies elided */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { resolveConfig } from '../../src/config/validate.js';
import { Intake } from '../../src/intake/server.js';
import { TranscriptLog } from '../../src/intake/transcripts.js';
import { silentLogger } from '../../src/log.js';
import { Spool } from '../../src/spool/spool.js';
import { RawSmtp } from '../support/clients.js';
import { eventually } from '../support/wait.js';

test('a session is recorded with AUTH redacted and the body elided', async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'edge-relay-transcript-'));
  const config = resolveConfig({ dataDir, smtp: { host: '127.0.0.1', port: 0 } }, 'test');
  const spool = await Spool.open(dataDir, silentLogger());
  const intake = new Intake({
    config: () => config,
    spool,
    log: silentLogger(),
    mailboxes: { exists: () => false },
  });
  const { port } = await intake.start();
  try {
    const secret = Buffer.from('\0printer\0sup3r-secret').toString('base64');
    const smtp = await RawSmtp.connect(port);
    await smtp.reply();
    await smtp.command('EHLO mfp-3rd-floor\r\n');
    assert.match(await smtp.command(`AUTH PLAIN ${secret}\r\n`), /^235/);
    await smtp.command('MAIL FROM:<scan@office.test>\r\n');
    await smtp.command('RCPT TO:<boss@example.com>\r\n');
    await smtp.command('DATA\r\n');
    await smtp.command('Subject: private scan\r\n\r\nconfidential body\r\n.\r\n');
    await smtp.command('QUIT\r\n');
    smtp.close();
    const [transcript] = await eventually(
      'a finished transcript',
      () => {
        const list = intake.transcripts.forClient('127.0.0.1');
        return list.length === 1 && list[0]?.lines.some((l) => l.text.startsWith('221'))
          ? list
          : undefined;
      },
      { timeoutMs: 5000 },
    );
    const text = transcript?.lines.map((l) => `${l.dir}: ${l.text}`).join('\n') ?? '';
    assert.match(text, /^S: 220 /);
    assert.match(text, /C: EHLO mfp-3rd-floor/);
    assert.match(text, /C: AUTH PLAIN \/\* secured \*\//);
    assert.match(text, /C: RCPT TO:<boss@example\.com>/);
    assert.match(text, /C: <\d+ bytes of DATA>/);
    assert.match(text, /S: 250 2\.0\.0 Ok: queued as [0-9A-Z]+/);
    assert.ok(
      !text.includes(secret) && !text.includes('sup3r-secret'),
      'credentials never recorded',
    );
    assert.ok(!text.includes('confidential body'), 'bodies never recorded');
  } finally {
    await intake.stop();
  }
});

test('limits: sessions per client, lines per session, clients', () => {
  const log = new TranscriptLog({
    sessionsPerClient: 2,
    linesPerSession: 3,
    lineLength: 10,
    clients: 2,
  });
  for (const id of ['a', 'b', 'c']) {
    log.start(id, '10.0.0.1');
    for (let i = 0; i < 5; i++)
      log.sink.debug({ tnx: 'command', cid: id }, 'C:', `NOOP ${'x'.repeat(50)}`);
    log.finish(id);
  }
  const kept = log.forClient('10.0.0.1');
  assert.deepEqual(
    kept.map((t) => t.session),
    ['b', 'c'],
  );
  assert.equal(kept[0]?.lines.length, 3);
  assert.equal(kept[0]?.truncated, true);
  assert.equal(kept[0]?.lines[0]?.text.length, 10);
  for (const client of ['10.0.0.2', '10.0.0.3']) {
    log.start(client, client);
    log.finish(client);
  }
  assert.deepEqual(log.forClient('10.0.0.1'), [], 'the least recently seen client is forgotten');
});
