/**
 * A certificate for our own listeners (POP3, SMTP intake, web). The admin's
 * files win; without them a self-signed certificate is generated once into
 * <dataDir>/tls/<name>.key/.crt and reused on every later start, so clients
 * that accepted it once keep trusting it. selfsigned is pure JavaScript, so
 * the single executable needs no openssl.
 */
import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ConfigError, errnoCode } from '../errors.js';
import type { Logger } from '../log.js';
import { ensureDir, writeFileAtomic } from './fsx.js';

export interface CertificateOptions {
  dataDir: string;
  /** Which listener this is for: names the generated files ("pop3" -> tls/pop3.key, tls/pop3.crt) */
  name: string;
  /** The admin's PEM files; both empty = use or generate the self-signed pair */
  certFile: string;
  keyFile: string;
  /** Put into the generated certificate's subject and names */
  hostname: string;
  log: Logger;
}

export interface Certificate {
  key: string;
  cert: string;
  /** True when this call created a new self-signed certificate */
  generated: boolean;
}

/** Long enough that a box in a cupboard does not start failing TLS after a year */
const VALID_YEARS = 10;

export async function loadOrCreateCertificate(options: CertificateOptions): Promise<Certificate> {
  const { certFile, keyFile, name } = options;
  if (certFile || keyFile) {
    if (!certFile || !keyFile)
      throw new ConfigError(
        `Give both a certificate and a key file for ${name} TLS (have cert "${certFile}", key "${keyFile}")`,
      );
    return {
      cert: await readPem(certFile, `${name} certificate`),
      key: await readPem(keyFile, `${name} key`),
      generated: false,
    };
  }
  const dir = path.resolve(options.dataDir, 'tls');
  const files = { key: path.join(dir, `${name}.key`), cert: path.join(dir, `${name}.crt`) };
  const existing = await readPair(files.key, files.cert);
  if (existing) return { ...existing, generated: false };

  const made = await selfSigned(options.hostname);
  await ensureDir(dir);
  // The key first: a crash in between leaves no certificate, so the next start makes a fresh pair
  await writeFileAtomic(files.key, made.key, 0o600);
  await writeFileAtomic(files.cert, made.cert, 0o600);
  // SHA-256, as mail programs show it and as `openssl x509 -noout -fingerprint -sha256` prints it, so a person can compare
  options.log.info(
    {
      listener: name,
      cert: files.cert,
      sha256Fingerprint: new X509Certificate(made.cert).fingerprint256,
    },
    'Generated a self-signed TLS certificate',
  );
  return { key: made.key, cert: made.cert, generated: true };
}

async function readPem(file: string, what: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `Cannot read the ${what} file "${file}": ${errnoCode(err) ?? String(err)}`,
      err,
    );
  }
}

async function readPair(
  keyFile: string,
  certFile: string,
): Promise<{ key: string; cert: string } | undefined> {
  try {
    return { key: await fs.readFile(keyFile, 'utf8'), cert: await fs.readFile(certFile, 'utf8') };
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

async function selfSigned(hostname: string): Promise<{ key: string; cert: string }> {
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(notBeforeDate);
  notAfterDate.setFullYear(notAfterDate.getFullYear() + VALID_YEARS);
  // Loaded only when a certificate has to be made: its X.509 library costs several MB a running relay never needs again
  const { generate } = await import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: hostname }], {
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: hostname },
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  return { key: pems.private, cert: pems.cert };
}
