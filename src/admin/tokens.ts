/**
 * API tokens for scripts and Prometheus: "er_<id>_<secret>", shown once when
 * created (on the web page or by "edge-relay admin token create"). Only a
 * SHA-256 of the secret is stored (it is 32 random bytes, so a slow hash
 * adds nothing), in <dataDir>/api-tokens.json, mode 0600. The running relay
 * reads the file on each check, so a token made or revoked by the CLI counts at once.
 */
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { readJsonFile } from '../util/fsx.js';
import { updateJsonFile } from '../util/locks.js';
import { sameSecret } from '../util/password.js';

export interface TokenInfo {
  id: string;
  label: string;
  createdAt: string;
}

interface StoredToken extends TokenInfo {
  hash: string;
}

const TOKEN = /^er_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$/;
const MAX_LABEL = 60;

const digest = (secret: string): string => createHash('sha256').update(secret).digest('hex');


export class ApiTokens {
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'api-tokens.json');
  }

  async list(): Promise<TokenInfo[]> {
    return (await this.read()).map(({ id, label, createdAt }) => ({ id, label, createdAt }));
  }

  /** Returns the token text: the only time it exists outside the caller's hands */
  async create(labelText: string): Promise<{ info: TokenInfo; token: string }> {
    const label = labelText.trim();
    if (!label || label.length > MAX_LABEL) throw new UsageError(`Give the token a name of 1 to ${MAX_LABEL} characters (got "${label.slice(0, 20)}")`);
    const id = randomBytes(4).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const info = { id, label, createdAt: new Date().toISOString() };
    await updateJsonFile<StoredToken[], void>(this.file, () => [], (tokens) => void tokens.push({ ...info, hash: digest(secret) }));
    return { info, token: `er_${id}_${secret}` };
  }

  async revoke(id: string): Promise<void> {
    await updateJsonFile<StoredToken[], void>(this.file, () => [], (tokens) => {
      const at = tokens.findIndex((t) => t.id === id);
      if (at < 0) throw new UsageError(`No token with id "${id}"`);
      tokens.splice(at, 1);
    });
  }

  async verify(token: string): Promise<TokenInfo | undefined> {
    const match = TOKEN.exec(token);
    if (!match) return undefined;
    const stored = (await this.read()).find((t) => t.id === match[1]);
    return stored && sameSecret(stored.hash, digest(match[2] ?? '')) ? { id: stored.id, label: stored.label, createdAt: stored.createdAt } : undefined;
  }

  private async read(): Promise<StoredToken[]> {
    return (await readJsonFile<StoredToken[]>(this.file)) ?? [];
  }
}
