/**
 * API tokens for scripts and Prometheus: "er_<id>_<secret>", shown once when
 * created (on the web page or by "edge-relay admin token create"). Only a
 * SHA-256 of the secret is stored (it is 32 random bytes, so a slow hash
 * adds nothing), in <dataDir>/api-tokens.json, mode 0600. The running relay
 * reads the file on each check, so a token made or revoked by the CLI counts at once.
 *
 * Each token has a scope, so the token given to Prometheus cannot change
 * settings. New tokens are read-only unless asked otherwise: a token copied
 * into a monitoring tool's config is the one most likely to leak. Tokens
 * stored before scopes existed are read-only too: what they were used for
 * most (metrics, status) goes on working, and one that changed things gets
 * a 403 naming the scope to create a new token with.
 */
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { readJsonFile } from '../util/fsx.js';
import { updateJsonFile } from '../util/locks.js';
import { sameSecret } from '../util/password.js';

/** Each includes the ones before it: metrics = GET /metrics; read = any GET of /api too; admin = all of the API */
export const TOKEN_SCOPES = ['metrics', 'read', 'admin'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];
export const DEFAULT_SCOPE: TokenScope = 'read';
/** What a token stored without a scope (made before scopes existed) may do */
const UNSCOPED: TokenScope = 'read';

export interface TokenInfo {
  id: string;
  label: string;
  scope: TokenScope;
  createdAt: string;
}

interface StoredToken extends Omit<TokenInfo, 'scope'> {
  hash: string;
  /** Absent in tokens stored before scopes existed */
  scope?: string;
}

const isScope = (text: string): text is TokenScope =>
  (TOKEN_SCOPES as readonly string[]).includes(text);

export function parseScope(text: string): TokenScope {
  if (isScope(text)) return text;
  throw new UsageError(
    `Unknown token scope "${text.slice(0, 20)}"; use ${TOKEN_SCOPES.join(', ')}`,
  );
}

/** Whether a token of scope `have` may do what needs `need` */
export function scopeCovers(have: TokenScope, need: TokenScope): boolean {
  return TOKEN_SCOPES.indexOf(have) >= TOKEN_SCOPES.indexOf(need);
}

const infoOf = ({ id, label, scope, createdAt }: StoredToken): TokenInfo => ({
  id,
  label,
  scope: scope !== undefined && isScope(scope) ? scope : UNSCOPED,
  createdAt,
});

const TOKEN = /^er_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$/;
const MAX_LABEL = 60;

const digest = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export class ApiTokens {
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'api-tokens.json');
  }

  async list(): Promise<TokenInfo[]> {
    return (await this.read()).map(infoOf);
  }

  /** Returns the token text: the only time it exists outside the caller's hands */
  async create(
    labelText: string,
    scope: TokenScope = DEFAULT_SCOPE,
  ): Promise<{ info: TokenInfo; token: string }> {
    const label = labelText.trim();
    if (!label || label.length > MAX_LABEL)
      throw new UsageError(
        `Give the token a name of 1 to ${MAX_LABEL} characters (got "${label.slice(0, 20)}")`,
      );
    const id = randomBytes(4).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const info: TokenInfo = { id, label, scope, createdAt: new Date().toISOString() };
    await updateJsonFile<StoredToken[], void>(
      this.file,
      () => [],
      (tokens) => void tokens.push({ ...info, hash: digest(secret) }),
    );
    return { info, token: `er_${id}_${secret}` };
  }

  async revoke(id: string): Promise<void> {
    await updateJsonFile<StoredToken[], void>(
      this.file,
      () => [],
      (tokens) => {
        const at = tokens.findIndex((t) => t.id === id);
        if (at < 0) throw new UsageError(`No token with id "${id}"`);
        tokens.splice(at, 1);
      },
    );
  }

  async verify(token: string): Promise<TokenInfo | undefined> {
    const match = TOKEN.exec(token);
    if (!match) return undefined;
    const stored = (await this.read()).find((t) => t.id === match[1]);
    return stored && sameSecret(stored.hash, digest(match[2] ?? '')) ? infoOf(stored) : undefined;
  }

  private async read(): Promise<StoredToken[]> {
    return (await readJsonFile<StoredToken[]>(this.file)) ?? [];
  }
}
