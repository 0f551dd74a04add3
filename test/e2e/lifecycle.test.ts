/** Start and stop as an admin sees it: defaults, SIGTERM during a transaction, one server per data dir */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { RawSmtp } from '../support/clients.js';
import { runCli, launchRelay } from '../support/relay.js';

test('SIGTERM mid-DATA: the device gets no 250, the relay exits 0 within 10 s, nothing half-written stays', async () => {
  const relay = await launchRelay();
  const smtp = await RawSmtp.connect(relay.smtpPort);
  await smtp.reply();
  await smtp.command('HELO printer\r\n');
  await smtp.command('MAIL FROM:<a@office.test>\r\n');
  await smtp.command('RCPT TO:<b@example.com>\r\n');
  assert.match(await smtp.command('DATA\r\n'), /^354/);
  smtp.socket.write('Subject: interrupted\r\n\r\nhalf a scan');
  const started = Date.now();
  const code = await relay.stop();
  const took = Date.now() - started;
  assert.equal(code, 0);
  assert.ok(took < 10_000, `stopped in ${took} ms`);
  const reply = await smtp.reply().catch(() => 'closed without reply');
  assert.doesNotMatch(reply, /^250/);
  smtp.close();
  assert.deepEqual(readdirSync(path.join(relay.dataDir, 'spool/tmp')), []);
  assert.deepEqual(readdirSync(path.join(relay.dataDir, 'spool/files')), []);
  const list = await relay.cli(['queue', 'list', '--json']);
  assert.deepEqual(JSON.parse(list.stdout), []);
});

test('a second server on the same data dir refuses to start', async () => {
  const relay = await launchRelay();
  try {
    const second = await runCli(['serve', '--config', relay.configFile]);
    // 1, not 2 (bad configuration): under systemd the relay must come up once the other one stops
    assert.equal(second.code, 1);
    assert.ok(
      second.stderr.includes(
        `Another edge-relay (pid ${relay.process.pid}) is already serving ${relay.dataDir}`,
      ),
      second.stderr,
    );
  } finally {
    await relay.stop();
  }
});

test('serve without --config uses the embedded defaults and ./data', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-defaults-'));
  const check = await runCli(['config', 'check'], { cwd: dir });
  assert.equal(check.code, 0);
  assert.match(check.stdout, /Configuration OK: the embedded defaults/);
  assert.match(check.stdout, /upstream +none yet/);
  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  for (const command of [
    'serve',
    'queue list',
    'mailbox add NAME --password-stdin',
    'admin password',
    'config check',
  ])
    assert.ok(help.stdout.includes(command), command);
  const unknown = await runCli(['frobnicate']);
  assert.equal(unknown.code, 2);
});
