/**
 * DKIM signing (RFC 6376, rsa-sha256, relaxed/relaxed) with a key made on
 * the box on first use: <dataDir>/dkim/<selector>.key (0600). Signing reads
 * the outgoing message twice instead of holding it: a first pass hashes the
 * body and keeps the header section, the second sends the message with the
 * signature in front. Only mail whose From is in `delivery.dkim.domain` is
 * signed. nodemailer's own DKIM stream would buffer up to 10 MB in memory.
 */
import { createPublicKey, generateKeyPair, type KeyObject, createPrivateKey } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import addressparser from 'nodemailer/lib/addressparser';
import MessageParser from 'nodemailer/lib/dkim/message-parser';
import RelaxedBody from 'nodemailer/lib/dkim/relaxed-body';
import sign from 'nodemailer/lib/dkim/sign';
import type { Config } from '../config/schema.js';
import { errnoCode } from '../errors.js';
import { ensureDir, writeFileAtomic } from '../util/fsx.js';

type Header = { key: string; line: string };

/** A header section this long is not one we sign (and not one we hold) */
const MAX_HEADER_BYTES = 256 * 1024;
const generate = promisify(generateKeyPair);

export interface DkimRecord {
  /** Where to publish it, e.g. "edge-relay._domainkey.contoso.com" */
  name: string;
  type: 'TXT';
  /** The record's text: "v=DKIM1; k=rsa; p=..." */
  value: string;
  /** The same as a zone-file line, split into strings of at most 255 characters */
  zoneLine: string;
  /** The p= value */
  publicKey: string;
}

export class DkimKeys {
  private readonly keys = new Map<string, Promise<KeyObject>>();

  constructor(private readonly dataDir: string) {}

  /** The selector's private key, made (RSA 2048) and stored the first time it is asked for */
  privateKey(selector: string): Promise<KeyObject> {
    let key = this.keys.get(selector);
    if (!key) {
      key = this.loadOrCreate(selector);
      key.catch(() => this.keys.delete(selector));
      this.keys.set(selector, key);
    }
    return key;
  }

  async record(domain: string, selector: string): Promise<DkimRecord> {
    const publicKey = createPublicKey(await this.privateKey(selector))
      .export({ type: 'spki', format: 'der' })
      .toString('base64');
    const name = `${selector}._domainkey.${domain}`;
    const value = `v=DKIM1; k=rsa; p=${publicKey}`;
    const strings = value.match(/.{1,255}/g) ?? [];
    return {
      name,
      type: 'TXT',
      value,
      zoneLine: `${name}. IN TXT ( ${strings.map((s) => `"${s}"`).join(' ')} )`,
      publicKey,
    };
  }

  private async loadOrCreate(selector: string): Promise<KeyObject> {
    const file = path.join(this.dataDir, 'dkim', `${selector}.key`);
    try {
      return createPrivateKey(await fs.readFile(file, 'utf8'));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    const { privateKey } = await generate('rsa', { modulusLength: 2048 });
    await ensureDir(path.dirname(file));
    await writeFileAtomic(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), 0o600);
    return privateKey;
  }
}

const fromDomain = (headers: Header[]): string | undefined => {
  const from = headers.find((h) => h.key === 'from');
  const value = from?.line.slice(from.line.indexOf(':') + 1).replace(/\r?\n/g, '');
  const [first] = value ? addressparser(value, { flatten: true }) : [];
  return first?.address?.split('@').pop()?.toLowerCase();
};

/** Pass one: the header section and the relaxed body hash; undefined when the message is not ours to sign */
async function scan(
  open: () => Promise<Readable>,
  domain: string,
): Promise<{ headers: Header[]; bodyHash: string } | undefined> {
  const source = await open();
  const parser = new MessageParser();
  const body = new RelaxedBody({ hashAlgo: 'sha256' });
  return new Promise((resolve, reject) => {
    let headers: Header[] | undefined;
    let seen = 0;
    const stop = (result: undefined) => {
      source.destroy();
      resolve(result);
    };
    source.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (!parser.headersParsed && seen > MAX_HEADER_BYTES) stop(undefined);
    });
    parser.on('headers', (parsed: Header[]) => {
      headers = parsed;
      if (fromDomain(parsed) !== domain) stop(undefined);
    });
    body.on('hash', (bodyHash: string) => resolve(headers ? { headers, bodyHash } : undefined));
    for (const stream of [source, parser, body]) stream.once('error', reject);
    source.pipe(parser).pipe(body).resume();
  });
}

async function* prepend(header: string, source: Readable): AsyncGenerator<Buffer> {
  yield Buffer.from(`${header}\r\n`, 'latin1');
  yield* source;
}

export class DkimSigner {
  private readonly keys: DkimKeys;

  constructor(dataDir: string) {
    this.keys = new DkimKeys(dataDir);
  }

  record(domain: string, selector: string): Promise<DkimRecord> {
    return this.keys.record(domain, selector);
  }

  /** `open` as it was, or signing on the way out when the settings say so */
  wrap(config: Config, open: () => Promise<Readable>): () => Promise<Readable> {
    const { enabled, domain, selector } = config.delivery.dkim;
    if (!enabled || !domain) return open;
    return async () => {
      const scanned = await scan(open, domain.toLowerCase());
      if (!scanned) return open();
      const signature = sign(scanned.headers, 'sha256', scanned.bodyHash, {
        domainName: domain,
        keySelector: selector,
        privateKey: await this.keys.privateKey(selector),
      });
      return signature ? Readable.from(prepend(signature, await open())) : open();
    };
  }
}
