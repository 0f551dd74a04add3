/**
 * The refresh token at rest: AES-256-GCM with a random key kept in
 * <dataDir>/oauth.key (0600), the sealed token in <dataDir>/oauth-token.json
 * (0600). The record names the client it was issued to and the token
 * endpoint that issued it, so a token from a previous app registration is not
 * used for a new one, and a changed setting never sends it to another server.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { RelayError, errnoCode } from '../errors.js';
import { ensureDir, readJsonFile, writeFileAtomic } from '../util/fsx.js';

export interface StoredGrant {
  refreshToken: string;
  /** The client id the token was issued to */
  clientId: string;
  /** The token endpoint that issued it: the only one it is sent to. Absent in grants stored by older versions */
  tokenUrl?: string;
  savedAt: string;
}

interface Sealed {
  v: 1;
  iv: string;
  tag: string;
  data: string;
}

const KEY_BYTES = 32;

export class TokenVault {
  private readonly keyFile: string;
  private readonly tokenFile: string;

  constructor(dataDir: string) {
    this.keyFile = path.join(dataDir, 'oauth.key');
    this.tokenFile = path.join(dataDir, 'oauth-token.json');
  }

  async save(grant: StoredGrant): Promise<void> {
    const key = await this.key();
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const data = Buffer.concat([cipher.update(JSON.stringify(grant), 'utf8'), cipher.final()]);
    const sealed: Sealed = {
      v: 1,
      iv: iv.toString('base64'),
      tag: cipher.getAuthTag().toString('base64'),
      data: data.toString('base64'),
    };
    await writeFileAtomic(this.tokenFile, JSON.stringify(sealed), 0o600);
  }

  /** The stored grant, or undefined when there is none (or it cannot be opened: the admin signs in again) */
  async load(): Promise<StoredGrant | undefined> {
    const sealed = await readJsonFile<Sealed>(this.tokenFile).catch(() => undefined);
    if (sealed?.v !== 1) return undefined;
    const key = await this.existingKey();
    if (!key) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
      decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
      const text = Buffer.concat([
        decipher.update(Buffer.from(sealed.data, 'base64')),
        decipher.final(),
      ]).toString('utf8');
      return JSON.parse(text) as StoredGrant;
    } catch {
      return undefined;
    }
  }

  async clear(): Promise<void> {
    await fs.rm(this.tokenFile, { force: true });
  }

  private async existingKey(): Promise<Buffer | undefined> {
    try {
      const key = await fs.readFile(this.keyFile);
      return key.length === KEY_BYTES ? key : undefined;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw new RelayError(`Cannot read "${this.keyFile}"`, { kind: 'temporary', cause: err });
    }
  }

  /** Made on first use; a key that is there is never replaced (it would orphan the stored token) */
  private async key(): Promise<Buffer> {
    const existing = await this.existingKey();
    if (existing) return existing;
    const key = randomBytes(KEY_BYTES);
    await ensureDir(path.dirname(this.keyFile));
    await writeFileAtomic(this.keyFile, key, 0o600);
    return key;
  }
}
