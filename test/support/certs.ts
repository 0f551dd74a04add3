/** Test certificates made by openssl at test time: a CA and server certificates it signs */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TestCerts {
  dir: string;
  caFile: string;
  ca: string;
  /** Valid for 127.0.0.1, ::1 and localhost */
  key: string;
  cert: string;
  /** Issued by the CA but for another name */
  wrongNameKey: string;
  wrongNameCert: string;
  /** Issued by the CA but already expired */
  expiredKey: string;
  expiredCert: string;
  /** Self-signed, not from the CA */
  selfSignedKey: string;
  selfSignedCert: string;
}

const openssl = (dir: string, args: string[]): void => {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
};

function issue(dir: string, name: string, san: string, days: string[]): void {
  openssl(dir, [
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${name}`,
  ]);
  writeFileSync(
    path.join(dir, `${name}.ext`),
    `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`,
  );
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-extfile',
    `${name}.ext`,
    ...days,
  ]);
}

/** OpenSSL 3.0's x509 can't backdate, its `ca` command can */
function issueExpired(dir: string): void {
  writeFileSync(path.join(dir, 'index.txt'), '');
  writeFileSync(path.join(dir, 'serial'), '1000\n');
  writeFileSync(
    path.join(dir, 'ca.cnf'),
    `[ca]\ndefault_ca=test\n[test]\ndir=.\ndatabase=index.txt\nserial=serial\nnew_certs_dir=.\ncertificate=ca.crt\nprivate_key=ca.key\ndefault_md=sha256\npolicy=any\ncopy_extensions=none\nx509_extensions=ext\n[any]\ncommonName=supplied\n[ext]\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
  );
  openssl(dir, [
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'expired.key',
    '-out',
    'expired.csr',
    '-subj',
    '/CN=localhost',
  ]);
  openssl(dir, [
    'ca',
    '-batch',
    '-config',
    'ca.cnf',
    '-in',
    'expired.csr',
    '-out',
    'expired.crt',
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200102000000Z',
    '-notext',
  ]);
}

let cached: TestCerts | undefined;

export function makeCerts(): TestCerts {
  if (cached) return cached;
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-certs-'));
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=edge-relay test CA',
  ]);
  issue(dir, 'server', 'IP:127.0.0.1,IP:::1,DNS:localhost', ['-days', '2']);
  issue(dir, 'wrongname', 'DNS:not-this-host.invalid', ['-days', '2']);
  issueExpired(dir);
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'self.key',
    '-out',
    'self.crt',
    '-days',
    '2',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  const read = (file: string) => readFileSync(path.join(dir, file), 'utf8');
  cached = {
    dir,
    caFile: path.join(dir, 'ca.crt'),
    ca: read('ca.crt'),
    key: read('server.key'),
    cert: read('server.crt'),
    wrongNameKey: read('wrongname.key'),
    wrongNameCert: read('wrongname.crt'),
    expiredKey: read('expired.key'),
    expiredCert: read('expired.crt'),
    selfSignedKey: read('self.key'),
    selfSignedCert: read('self.crt'),
  };
  return cached;
}

/** A server certificate from the test CA for other names, e.g. "IP:10.0.2.2" (the host as a QEMU guest sees it) */
export function serverCertFor(san: string): { key: string; cert: string } {
  const { dir } = makeCerts();
  const name = `server-${san.replace(/[^A-Za-z0-9]+/g, '-')}`;
  issue(dir, name, san, ['-days', '2']);
  return {
    key: readFileSync(path.join(dir, `${name}.key`), 'utf8'),
    cert: readFileSync(path.join(dir, `${name}.crt`), 'utf8'),
  };
}
