/** Intake TLS for devices: off by default, STARTTLS and implicit TLS when asked, a legacy profile for TLS 1.0 devices */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type WebClient, setupAdminOf } from '../support/browser.js';
import { RawSmtp, run } from '../support/clients.js';
import { freePort } from '../support/ports.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { eventually } from '../support/wait.js';

/** s_client's summary line once a handshake succeeded (a failed one says "Cipher is (NONE)") */
const HANDSHAKE_DONE = /New, [^,]+, Cipher is (?!\(NONE\))/;

/** openssl's client offering only TLS 1.0 (and the low security level such old ciphers need) */
const tls1Handshake = (args: string[]) =>
  run('openssl', ['s_client', '-tls1', '-cipher', 'DEFAULT:@SECLEVEL=0', ...args], {
    input: 'QUIT\r\n',
    timeoutMs: 15_000,
  });

test('STARTTLS is not offered by default', async () => {
  const relay = await launchRelay();
  try {
    const smtp = await RawSmtp.connect(relay.smtpPort);
    await smtp.reply();
    const ehlo = await smtp.command('EHLO printer\r\n');
    assert.doesNotMatch(ehlo, /STARTTLS/);
    assert.match(await smtp.command('STARTTLS\r\n'), /^5\d\d /);
    smtp.close();
  } finally {
    await relay.stop();
  }
});

describe('legacy profile', () => {
  let relay: RunningRelay;
  let smtpsPort: number;
  before(async () => {
    smtpsPort = await freePort();
    relay = await launchRelay({
      config: { smtp: { tls: { starttls: true, port: smtpsPort, profile: 'legacy' } } },
    });
  });
  after(async () => {
    await relay.stop();
  });

  test('a TLS 1.0 client completes STARTTLS', async () => {
    const result = await tls1Handshake([
      '-connect',
      `127.0.0.1:${relay.smtpPort}`,
      '-starttls',
      'smtp',
    ]);
    assert.match(result.stdout, HANDSHAKE_DONE, result.stdout + result.stderr);
    assert.match(result.stdout, /Protocol\s*: TLSv1\b/);
  });

  test('a TLS 1.0 client connects to the implicit-TLS port', async () => {
    const result = await tls1Handshake(['-connect', `127.0.0.1:${smtpsPort}`]);
    assert.match(result.stdout, HANDSHAKE_DONE);
    assert.match(result.stdout, /Protocol\s*: TLSv1\b/);
  });

  test('swaks sends through STARTTLS', async () => {
    const result = await run('swaks', [
      '--server',
      '127.0.0.1',
      '--port',
      String(relay.smtpPort),
      '--tls',
      '--from',
      'mfp@office.test',
      '--to',
      'someone@example.com',
      '--header',
      'Subject: over TLS',
    ]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /<~\s+250 .*queued as [0-9A-Z]+/);
    assert.match(result.stdout, /TLS started/);
  });

  test('the generated certificate is kept in the data dir and reused', async () => {
    const first = await run('openssl', ['s_client', '-connect', `127.0.0.1:${smtpsPort}`], {
      input: 'QUIT\r\n',
    });
    const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(
      first.stdout,
    )?.[0];
    assert.ok(cert);
    await relay.stop();
    relay = await launchRelay({
      dir: relay.dir,
      config: { smtp: { tls: { starttls: true, port: smtpsPort, profile: 'legacy' } } },
    });
    const second = await run('openssl', ['s_client', '-connect', `127.0.0.1:${smtpsPort}`], {
      input: 'QUIT\r\n',
    });
    assert.ok(second.stdout.includes(cert), 'the same certificate after a restart');
  });
});

describe('modern profile', () => {
  let relay: RunningRelay;
  let smtpsPort: number;
  let admin: WebClient;
  before(async () => {
    smtpsPort = await freePort();
    relay = await launchRelay({
      config: { smtp: { tls: { starttls: true, port: smtpsPort, profile: 'modern' } } },
    });
    admin = await setupAdminOf(relay);
  });
  after(async () => {
    await relay.stop();
  });

  const transcriptLines = async (): Promise<string[]> => {
    const transcripts = JSON.parse(
      (await admin.get('/api/devices/127.0.0.1/transcripts')).text,
    ) as { lines: { dir: string; text: string }[] }[];
    return transcripts.flatMap((t) => t.lines.map((l) => `${l.dir} ${l.text}`));
  };

  test('refuses TLS 1.0 and still speaks TLS 1.2+', async () => {
    const result = await tls1Handshake([
      '-connect',
      `127.0.0.1:${relay.smtpPort}`,
      '-starttls',
      'smtp',
    ]);
    assert.match(result.stdout, /Cipher is \(NONE\)/, 'no TLS session came up');
    assert.notEqual(result.code, 0);
    const modern = await run(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${relay.smtpPort}`, '-starttls', 'smtp'],
      { input: 'QUIT\r\n' },
    );
    assert.match(modern.stdout, HANDSHAKE_DONE);
    assert.match(modern.stdout, /New, TLSv1\.[23],/);
  });

  test("the refused STARTTLS handshake is in the device's transcript, with the fix", async () => {
    const lines = await eventually(
      'the handshake line in the transcript',
      async () => {
        const found = await transcriptLines();
        return found.some((l) => l.startsWith('E TLS handshake failed')) ? found : undefined;
      },
      { timeoutMs: 5_000 },
    );
    const starttls = lines.indexOf('C STARTTLS');
    const failed = lines.findIndex((l) => l.startsWith('E TLS handshake failed'));
    assert.ok(
      starttls >= 0 && failed > starttls,
      `STARTTLS, then the failure: ${lines.join(' | ')}`,
    );
    assert.equal(
      lines[failed],
      'E TLS handshake failed: unsupported protocol (device offered TLSv1); an old device needs smtp.tls.profile "legacy"',
    );
    const page = (await admin.get('/devices/127.0.0.1/transcripts')).text;
    assert.match(page, /!!! +TLS handshake failed: unsupported protocol \(device offered TLSv1\)/);
  });

  test('a refused handshake on the implicit-TLS port gets a transcript of its own', async () => {
    const result = await tls1Handshake(['-connect', `127.0.0.1:${smtpsPort}`]);
    assert.match(result.stdout, /Cipher is \(NONE\)/);
    const lines = await eventually(
      'a second handshake line',
      async () => {
        const found = await transcriptLines();
        return found.filter((l) => l.startsWith('E TLS handshake failed')).length >= 2
          ? found
          : undefined;
      },
      { timeoutMs: 5_000 },
    );
    assert.equal(
      lines.at(-1),
      'E TLS handshake failed: unsupported protocol (device offered TLSv1); an old device needs smtp.tls.profile "legacy"',
    );
  });
});
