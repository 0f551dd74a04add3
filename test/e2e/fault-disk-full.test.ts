/**
 * Disk full: the data dir is a 4 MB tmpfs. While it is full, devices get 452
 * (at MAIL when they declare SIZE, at the end of DATA when they don't), never
 * 250 and never a half-written file; once space is back and the upstream is
 * up, every message that got 250 is delivered exactly once.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RawSmtp, python } from '../support/clients.js';
import { deliveriesById, mountTmpfs, queueList, unmount } from '../support/faults.js';
import { eventually } from '../support/wait.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

/** Sends `count` messages of `size` bytes, one connection each; prints "code id-or-text" per message */
const SEND_MANY = `
import smtplib, sys
port, count, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
body = ('Subject: disk full test\\r\\n\\r\\n' + ('x' * 76 + '\\r\\n') * (size // 78)).encode()
for i in range(count):
    try:
        s = smtplib.SMTP('127.0.0.1', port, timeout=20)
        s.ehlo('scanner.lan')
        code, text = s.mail('scanner@office.test', ['SIZE=%d' % len(body)])
        if code != 250:
            print(code, 'at MAIL', text.decode())
            s.quit()
            continue
        s.rcpt('archive@example.com')
        code, text = s.data(body)
        print(code, text.decode())
        s.quit()
    except smtplib.SMTPResponseException as e:
        print(e.smtp_code, 'at DATA', e.smtp_error.decode())
`;

interface Sent {
  code: number;
  text: string;
}

async function sendMany(port: number, count: number, size: number): Promise<Sent[]> {
  const result = await python(SEND_MANY, [String(port), String(count), String(size)]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout
    .trim()
    .split('\n')
    .map((line) => ({ code: Number(line.slice(0, 3)), text: line.slice(4) }));
}

const idsOf = (sent: Sent[]) =>
  sent.flatMap((s) => /queued as ([0-9A-Z]+)/.exec(s.text)?.[1] ?? []);

/** A device that does not declare SIZE: the disk fills up during DATA */
async function sendUndeclared(port: number, bytes: number): Promise<string> {
  const smtp = await RawSmtp.connect(port);
  try {
    await smtp.reply();
    await smtp.command('HELO oldcopier\r\n');
    await smtp.command('MAIL FROM:<copier@office.test>\r\n');
    await smtp.command('RCPT TO:<archive@example.com>\r\n');
    assert.match(await smtp.command('DATA\r\n'), /^354/);
    const line = `${'y'.repeat(998)}\r\n`;
    return await smtp.command(
      `Subject: big scan\r\n\r\n${line.repeat(Math.ceil(bytes / line.length))}.\r\n`,
    );
  } finally {
    smtp.close();
  }
}

describe('disk full (4 MB tmpfs data dir)', () => {
  let dir: string;
  let dataDir: string;
  let upstream: Upstream;
  let relay: RunningRelay;
  let upstreamDown = true;
  const acknowledged: string[] = [];
  const filler = () => path.join(dataDir, 'filler.bin');

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-diskfull-'));
    dataDir = path.join(dir, 'data');
    mkdirSync(dataDir);
    mountTmpfs(dataDir, '4m');
    upstream = await startUpstream({
      offerTls: false,
      rcptReply: () => (upstreamDown ? [451, '4.3.0 Upstream is down for this test'] : undefined),
    });
    relay = await launchRelay({
      dir,
      config: {
        delivery: { smarthost: { host: '127.0.0.1', port: upstream.port, security: 'none' } },
      },
    });
  });
  after(async () => {
    await relay?.stop();
    await upstream?.close();
    if (dataDir) unmount(dataDir);
    rmSync(dir, { recursive: true, force: true });
  });

  test('while the disk fills up, devices get 250 then 452 at MAIL, never anything else', async () => {
    // Leave about 2.5 MB of the 4 MB
    writeFileSync(filler(), Buffer.alloc(1536 * 1024));
    const sent = await sendMany(relay.smtpPort, 12, 300 * 1024);
    acknowledged.push(...idsOf(sent));
    console.log(`fault-disk-full: ${sent.map((s) => s.code).join(' ')}`);
    assert.deepEqual(
      sent.filter((s) => s.code !== 250 && s.code !== 452),
      [],
      'only 250 or 452',
    );
    assert.ok(acknowledged.length >= 1, 'some were accepted before the disk filled');
    const refused = sent.filter((s) => s.code === 452);
    assert.ok(refused.length >= 1, 'the full disk was noticed');
    assert.ok(
      refused.every((s) => s.text.startsWith('at MAIL')),
      'refused at MAIL, before the data was sent',
    );
  });

  test('a device that does not declare SIZE gets 452 at the end of DATA, and no partial file is left', async () => {
    // Room above the 1 MB that MAIL asks for (so MAIL passes), well below the 3 MB this device sends
    truncateSync(filler(), 1024 * 1024);
    const reply = await sendUndeclared(relay.smtpPort, 3 * 1024 * 1024);
    assert.match(reply, /^452 /);
    assert.deepEqual(readdirSync(path.join(dataDir, 'spool', 'tmp')), [], 'spool/tmp is empty');
  });

  test('once space is back and the upstream is up, every acknowledged message is delivered once', async () => {
    rmSync(filler());
    const more = await sendMany(relay.smtpPort, 3, 300 * 1024);
    assert.deepEqual(
      more.map((s) => s.code),
      [250, 250, 250],
    );
    acknowledged.push(...idsOf(more));
    upstreamDown = false;
    const delivered = await eventually(
      'every acknowledged message at the upstream',
      () => {
        const counts = deliveriesById(upstream.messages);
        return acknowledged.every((id) => counts.has(id)) ? counts : undefined;
      },
      { timeoutMs: 30_000 },
    );
    const duplicates = acknowledged.filter((id) => (delivered.get(id) ?? 0) > 1);
    assert.deepEqual(duplicates, []);
    console.log(
      `fault-disk-full: ${acknowledged.length} acknowledged, ${acknowledged.length} delivered, 0 lost, 0 duplicates`,
    );
  });

  test('nothing in the spool is corrupt and the queue drains', async () => {
    await eventually('an empty queue', async () =>
      (await queueList(relay)).length === 0 ? true : undefined,
    );
    assert.deepEqual(readdirSync(path.join(dataDir, 'spool', 'corrupt')), []);
    assert.deepEqual(readdirSync(path.join(dataDir, 'spool', 'tmp')), []);
    assert.equal(relay.process.exitCode, null, 'the relay kept running');
  });
});
