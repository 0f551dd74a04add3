/**
 * POP3 TLS set up the way an admin does it: their own certificate and key
 * (made by openssl at test time, signed by a test CA) in pop3.tls.certFile /
 * keyFile, an implicit-TLS port, and requireTlsForLogin. Python's poplib
 * verifies the certificate with that CA, on the TLS port and after STLS.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeCerts } from '../support/certs.js';
import { python, smtplibSend } from '../support/clients.js';
import { RawPop3 } from '../support/pop3.js';
import { freePort } from '../support/ports.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';

/** Logs in over TLS verified with the test CA: implicit TLS, or STLS on the plain port; prints version, certificate CN, STAT */
const TLS_LOGIN = `
import json, poplib, ssl, sys
mode, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
context = ssl.create_default_context(cafile=cafile)
if mode == 'implicit':
    p = poplib.POP3_SSL('127.0.0.1', port, context=context, timeout=20)
else:
    p = poplib.POP3('127.0.0.1', port, timeout=20)
    p.stls(context)
subject = dict(pair[0] for pair in p.sock.getpeercert()['subject'])
p.user('erin'); p.pass_('erin-secret-55')
print(json.dumps({'version': p.sock.version(), 'cn': subject['commonName'], 'stat': list(p.stat())}))
p.quit()
`;

describe("POP3 TLS with the admin's own certificate", () => {
  let relay: RunningRelay;
  let pop3s: number;
  const certs = makeCerts();

  before(async () => {
    pop3s = await freePort();
    relay = await launchRelay({
      config: {
        pop3: {
          tls: {
            port: pop3s,
            certFile: path.join(certs.dir, 'server.crt'),
            keyFile: path.join(certs.dir, 'server.key'),
          },
          requireTlsForLogin: true,
        },
      },
    });
    const added = await relay.cli(
      ['mailbox', 'add', 'erin', '--password-stdin'],
      'erin-secret-55\n',
    );
    assert.equal(added.code, 0, added.stderr);
    const message =
      'From: scanner@office.test\r\nTo: erin@relay.test\r\nSubject: Over TLS\r\n\r\nsecret scan\r\n';
    assert.match(
      await smtplibSend(relay.smtpPort, 'scanner@office.test', ['erin@relay.test'], message),
      /^250 /,
    );
    await relay.waitForLog((l) => l.msg === 'Recipient local' && l.rcpt === 'erin@relay.test');
  });
  after(async () => {
    await relay.stop();
  });

  for (const mode of ['implicit', 'stls'] as const) {
    test(`${mode === 'implicit' ? 'the implicit-TLS port' : 'STLS on the plain port'} presents the configured certificate; poplib verifies it with the CA and reads the mailbox`, async () => {
      const result = await python(TLS_LOGIN, [
        mode,
        String(mode === 'implicit' ? pop3s : relay.pop3Port),
        certs.caFile,
      ]);
      assert.equal(result.code, 0, result.stderr);
      const seen = JSON.parse(result.stdout) as { version: string; cn: string; stat: number[] };
      assert.match(seen.version, /^TLSv1\.[23]$/);
      assert.equal(
        seen.cn,
        'server',
        'the certificate from pop3.tls.certFile, not a generated one',
      );
      assert.equal(seen.stat[0], 1);
    });
  }

  test('with requireTlsForLogin, a plaintext login is refused and no certificate was generated', async () => {
    const pop = await RawPop3.connect(relay.pop3Port!);
    try {
      await pop.line();
      assert.equal(
        await pop.command('USER erin'),
        '-ERR [SYS/PERM] Log in only over an encrypted connection: send STLS first, or use the POP3S port',
      );
    } finally {
      pop.close();
    }
    assert.equal(
      relay.logs.filter(
        (l) => l.msg === 'Generated a self-signed TLS certificate' && l.listener === 'pop3',
      ).length,
      0,
    );
  });
});
