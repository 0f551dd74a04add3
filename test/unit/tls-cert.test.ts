/** The listener certificate: the admin's files win; otherwise generated once, private, and reused */
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { loadOrCreateCertificate } from '../../src/util/tls-cert.js';

const base = (dataDir: string) => ({
  dataDir,
  name: 'pop3',
  certFile: '',
  keyFile: '',
  hostname: 'mail.office.test',
  log: silentLogger(),
});

describe('loadOrCreateCertificate', () => {
  test('generates a self-signed certificate once (mode 0600) and reuses it on later starts', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'edge-relay-cert-'));
    const first = await loadOrCreateCertificate(base(dataDir));
    assert.equal(first.generated, true);
    const x509 = new X509Certificate(first.cert);
    assert.match(x509.subject, /CN=mail\.office\.test/);
    assert.match(x509.subjectAltName ?? '', /DNS:mail\.office\.test/);
    assert.ok(
      new Date(x509.validTo).getTime() > Date.now() + 5 * 365 * 86_400_000,
      'valid for years',
    );
    assert.ok(x509.checkPrivateKey(createPrivateKey(first.key)));
    for (const file of ['pop3.key', 'pop3.crt'])
      assert.equal(statSync(path.join(dataDir, 'tls', file)).mode & 0o777, 0o600);
    const second = await loadOrCreateCertificate(base(dataDir));
    assert.deepEqual(second, { key: first.key, cert: first.cert, generated: false });
  });

  test("uses the admin's files, and names a missing file or a missing half of the pair", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'edge-relay-cert-'));
    const made = await loadOrCreateCertificate({ ...base(dataDir), name: 'other' });
    const certFile = path.join(dataDir, 'admin.crt');
    const keyFile = path.join(dataDir, 'admin.key');
    writeFileSync(certFile, made.cert);
    writeFileSync(keyFile, made.key);
    assert.deepEqual(await loadOrCreateCertificate({ ...base(dataDir), certFile, keyFile }), {
      key: made.key,
      cert: made.cert,
      generated: false,
    });
    await assert.rejects(
      loadOrCreateCertificate({ ...base(dataDir), certFile, keyFile: '' }),
      (err) =>
        err instanceof ConfigError &&
        /Give both a certificate and a key file for pop3 TLS/.test(err.message),
    );
    await assert.rejects(
      loadOrCreateCertificate({ ...base(dataDir), certFile: '/nonexistent/x.crt', keyFile }),
      (err) => err instanceof ConfigError && err.message.includes('"/nonexistent/x.crt": ENOENT'),
    );
  });
});
