/**
 * Access tokens for XOAUTH2 to the smarthost, or for Microsoft Graph in
 * delivery mode "graph" (whichever sign-in the settings make active). Keeps the current access token
 * in memory and gets a new one before it expires (or when the upstream
 * refused it), from the stored refresh token (device sign-in) or the client
 * credentials. Knows whether an admin must act, and says so through
 * `status()` and a "status" event; never logs a token.
 */
import { EventEmitter } from 'node:events';
import type { Config } from '../config/schema.js';
import { RelayError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { DeviceLogin, type DeviceCode, type DeviceLoginState } from './device-login.js';
import { clientCredentials, refresh, type GrantContext, type TokenResult } from './grants.js';
import { activeSignIn, endpoints, missingSetting, type OAuthSettings } from './providers.js';
import { TokenVault } from './vault.js';

export type OAuthState = 'ok' | 'needs-consent' | 'not-configured' | 'failing';

export interface OAuthStatus {
  state: OAuthState;
  /** What is wrong and what to do, for the dashboard and alerts */
  reason?: string;
  /** When an access token was last obtained */
  lastRefresh?: string;
}

/** What the SMTP client needs: a token, fresh on demand after the upstream refused one */
export interface AccessTokenSource {
  accessToken(options: { force: boolean }): Promise<string>;
}

export interface OAuthClientEvents {
  status: [OAuthStatus];
}

export interface OAuthClientOptions {
  config: () => Config;
  dataDir: string;
  log: Logger;
}

interface CachedToken {
  value: string;
  /** Use until this instant (ms); a margin before the real expiry is already taken off */
  useUntil: number;
  settings: string;
}

/** Errors that only an admin can fix: sign in again, or repair the app registration or secret */
const ADMIN_ERRORS = new Set([
  'invalid_grant',
  'invalid_client',
  'unauthorized_client',
  'consent_required',
  'interaction_required',
  'invalid_scope',
]);
const MAX_MARGIN_MS = 5 * 60_000;

export class OAuthClient extends EventEmitter<OAuthClientEvents> implements AccessTokenSource {
  private readonly vault: TokenVault;
  private readonly device: DeviceLogin;
  private cached: CachedToken | undefined;
  private inflight: Promise<string> | undefined;
  private known: OAuthStatus = { state: 'ok' };
  /** The settings under which an admin-only error happened: no more requests until they change or someone signs in */
  private blockedFor: string | undefined;

  constructor(private readonly options: OAuthClientOptions) {
    super();
    this.vault = new TokenVault(options.dataDir);
    this.device = new DeviceLogin({
      context: () => this.context(),
      onToken: (result) => this.signedIn(result),
      log: options.log,
    });
  }

  /** Ready to report a truthful status: knows whether someone has signed in */
  static async open(options: OAuthClientOptions): Promise<OAuthClient> {
    const client = new OAuthClient(options);
    const { settings } = activeSignIn(options.config());
    if (settings.flow === 'device' && !(await client.storedRefreshToken()))
      client.known = { state: 'needs-consent', reason: NOT_SIGNED_IN };
    return client;
  }

  status(): OAuthStatus {
    const signIn = activeSignIn(this.options.config());
    if (signIn.unused) return { state: 'not-configured', reason: signIn.unused };
    const missing = missingSetting(signIn.settings, signIn.section);
    if (missing) return { state: 'not-configured', reason: missing };
    return { ...this.known };
  }

  async accessToken({ force }: { force: boolean }): Promise<string> {
    const settings = this.settingsKey();
    const cached = this.cached;
    if (!force && cached && cached.settings === settings && Date.now() < cached.useUntil)
      return cached.value;
    if (force && cached?.settings === settings) this.cached = undefined;
    // Many deliveries at once share one request to the token endpoint
    this.inflight ??= this.fetchToken(settings).finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  startDeviceLogin(): Promise<DeviceCode> {
    return this.device.start();
  }

  deviceLoginState(): DeviceLoginState {
    return this.device.state();
  }

  /** Forgets the stored sign-in (the page's "sign out") */
  async signOut(): Promise<void> {
    this.device.cancel();
    this.cached = undefined;
    await this.vault.clear();
    this.setStatus({ state: 'needs-consent', reason: NOT_SIGNED_IN });
  }

  stop(): void {
    this.device.cancel();
  }

  private async fetchToken(settings: string): Promise<string> {
    const signIn = activeSignIn(this.options.config());
    const missing = missingSetting(signIn.settings, signIn.section);
    if (signIn.unused || missing)
      throw new RelayError(`OAuth2 is not set up: ${missing ?? signIn.unused ?? ''}`, {
        kind: 'temporary',
      });
    if (this.blockedFor === settings)
      throw new RelayError(`OAuth2: ${this.known.reason ?? NOT_SIGNED_IN}`, { kind: 'temporary' });
    const result = await this.request(signIn.settings).catch((err: unknown) => {
      this.setStatus({
        state: 'failing',
        reason: `The token endpoint could not be reached: ${errorMessage(err)}`,
        ...this.lastRefresh(),
      });
      throw err;
    });
    if (result.kind === 'refused') throw this.refused(result, settings, signIn.settings.flow);
    if (result.refreshToken) await this.saveGrant(result.refreshToken);
    return this.remember(result.accessToken, result.expiresInS, settings);
  }

  private async request(settings: OAuthSettings): Promise<TokenResult> {
    const context = this.context();
    if (settings.flow === 'client_credentials') return clientCredentials(context);
    const refreshToken = await this.storedRefreshToken();
    if (!refreshToken)
      return { kind: 'refused', error: 'not_signed_in', description: '', status: 0 };
    return refresh(context, refreshToken);
  }

  private refused(
    result: Extract<TokenResult, { kind: 'refused' }>,
    settings: string,
    flow: OAuthSettings['flow'],
  ): RelayError {
    const needsAdmin = ADMIN_ERRORS.has(result.error) || result.error === 'not_signed_in';
    const reason = explain(result, flow);
    if (needsAdmin) {
      this.blockedFor = settings;
      this.cached = undefined;
      this.setStatus({ state: 'needs-consent', reason, ...this.lastRefresh() });
    } else {
      this.setStatus({ state: 'failing', reason, ...this.lastRefresh() });
    }
    return new RelayError(`OAuth2: ${reason}`, { kind: 'temporary' });
  }

  private remember(value: string, expiresInS: number, settings: string): string {
    const lifetimeMs = expiresInS * 1000;
    this.cached = {
      value,
      useUntil: Date.now() + lifetimeMs - Math.min(MAX_MARGIN_MS, lifetimeMs / 2),
      settings,
    };
    this.setStatus({ state: 'ok', lastRefresh: new Date().toISOString() });
    return value;
  }

  private async signedIn(result: Extract<TokenResult, { kind: 'token' }>): Promise<void> {
    const settings = this.settingsKey();
    if (!result.refreshToken)
      throw new RelayError(
        'The sign-in returned no refresh token: is "offline_access" in the scope?',
        { kind: 'temporary' },
      );
    await this.saveGrant(result.refreshToken);
    this.blockedFor = undefined;
    this.remember(result.accessToken, result.expiresInS, settings);
    this.options.log.info('OAuth2: signed in; the refresh token is stored encrypted');
  }

  private saveGrant(refreshToken: string): Promise<void> {
    const oauth2 = activeSignIn(this.options.config()).settings;
    return this.vault.save({
      refreshToken,
      clientId: oauth2.clientId,
      tokenUrl: endpoints(oauth2).tokenUrl,
      savedAt: new Date().toISOString(),
    });
  }

  /**
   * The stored refresh token, only for the client and the token endpoint it
   * was issued to: whoever changes the settings can't have it sent elsewhere.
   * A grant from an older version names no endpoint; it is bound at its next refresh
   */
  private async storedRefreshToken(): Promise<string | undefined> {
    const grant = await this.vault.load();
    const oauth2 = activeSignIn(this.options.config()).settings;
    const tokenUrl = endpoints(oauth2).tokenUrl;
    return grant && grant.clientId === oauth2.clientId && (grant.tokenUrl ?? tokenUrl) === tokenUrl
      ? grant.refreshToken
      : undefined;
  }

  private context(): GrantContext {
    const config = this.options.config();
    const { tls } = config.delivery;
    return {
      settings: activeSignIn(config).settings,
      http: { caFile: tls.caFile || undefined, verify: tls.verify },
    };
  }

  /** Everything that decides which token we get; the secret is compared, never stored elsewhere */
  private settingsKey(): string {
    const oauth2 = activeSignIn(this.options.config()).settings;
    return JSON.stringify([
      oauth2.provider,
      oauth2.flow,
      oauth2.tenant,
      oauth2.clientId,
      oauth2.clientSecret,
      endpoints(oauth2),
    ]);
  }

  private lastRefresh(): Pick<OAuthStatus, 'lastRefresh'> {
    return this.known.lastRefresh ? { lastRefresh: this.known.lastRefresh } : {};
  }

  private setStatus(next: OAuthStatus): void {
    const changed = next.state !== this.known.state || next.reason !== this.known.reason;
    this.known = next;
    if (!changed) return;
    if (next.state === 'needs-consent' || next.state === 'failing')
      this.options.log.warn(
        { oauth: next.state, reason: next.reason },
        `OAuth2 ${next.state === 'needs-consent' ? 'needs an admin' : 'token refresh failing'}`,
      );
    this.emit('status', this.status());
  }
}

const NOT_SIGNED_IN =
  'Nobody has signed in yet: start the sign-in on the Sender page of the admin web page';

/** Plain-language reason for a refused token request */
function explain(
  result: Extract<TokenResult, { kind: 'refused' }>,
  flow: Config['delivery']['oauth2']['flow'],
): string {
  const detail = result.description ? ` (${result.description})` : '';
  switch (result.error) {
    case 'not_signed_in':
      return NOT_SIGNED_IN;
    case 'invalid_grant':
      return flow === 'device'
        ? `The sign-in was revoked or has expired (invalid_grant): re-consent is needed, sign in again on the Sender page${detail}`
        : `The token endpoint refused the grant (invalid_grant)${detail}`;
    case 'invalid_client':
    case 'unauthorized_client':
      if (/AADSTS7000222/.test(result.description))
        return `The client secret has expired (AADSTS7000222): make a new one in Entra ID (App registrations > your app > Certificates & secrets) and enter it in the settings${detail}`;
      return `The token endpoint refused the app (${result.error}): check the client id and secret (a client secret expires)${detail}`;
    case 'consent_required':
    case 'interaction_required':
      return `An administrator must grant consent to the app (${result.error})${detail}`;
    default:
      return `The token endpoint refused the request (${result.error})${detail}`;
  }
}
