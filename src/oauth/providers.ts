/**
 * Where each OAuth2 provider's endpoints are and which scope SMTP sending
 * needs (pure). `tokenUrl`, `deviceUrl` and `scope` in the settings override
 * the provider's values: that is how the generic provider and tests work.
 */
import type { Config } from '../config/schema.js';

export type OAuthSettings = Config['delivery']['oauth2'];

export interface Endpoints {
  tokenUrl: string;
  /** "" when the provider has no device-authorization endpoint */
  deviceUrl: string;
  scope: string;
}

/** Delegated (device sign-in) and app-only (client credentials) scopes differ at Microsoft */
const MICROSOFT_SCOPE = {
  device: 'https://outlook.office365.com/SMTP.Send offline_access',
  client_credentials: 'https://outlook.office365.com/.default',
} as const;

function providerEndpoints(settings: OAuthSettings): Endpoints {
  switch (settings.provider) {
    case 'microsoft': {
      // "organizations" lets any work account sign in when no tenant is set; app-only needs the tenant
      const base = `https://login.microsoftonline.com/${encodeURIComponent(settings.tenant || 'organizations')}/oauth2/v2.0`;
      return {
        tokenUrl: `${base}/token`,
        deviceUrl: `${base}/devicecode`,
        scope: MICROSOFT_SCOPE[settings.flow],
      };
    }
    case 'google':
      return {
        tokenUrl: 'https://oauth2.googleapis.com/token',
        deviceUrl: 'https://oauth2.googleapis.com/device/code',
        scope: 'https://mail.google.com/',
      };
    case 'generic':
      return { tokenUrl: '', deviceUrl: '', scope: '' };
  }
}

export function endpoints(settings: OAuthSettings): Endpoints {
  const base = providerEndpoints(settings);
  return {
    tokenUrl: settings.tokenUrl || base.tokenUrl,
    deviceUrl: settings.deviceUrl || base.deviceUrl,
    scope: settings.scope || base.scope,
  };
}

/** The upstream each provider expects, for the settings page to pre-fill */
export const PROVIDER_SMARTHOST = {
  microsoft: { host: 'smtp.office365.com', port: 587, security: 'starttls' },
  google: { host: 'smtp.gmail.com', port: 587, security: 'starttls' },
} as const;

/** Messages a minute and recipients a day a provider lets one mailbox send; 0 = none published */
export interface ProviderPacing {
  messagesPerMinute: number;
  recipientsPerDay: number;
}

/**
 * The published sending limits, by smarthost name, for the settings to
 * fill in when an admin picks the provider:
 * - Microsoft 365 (Exchange Online limits, "Sending limits"): 30 messages a
 *   minute and 10,000 recipients a day per mailbox; Graph's sendMail counts
 *   against the same mailbox limits.
 * - Gmail / Google Workspace (support.google.com/a/answer/166852, "Gmail
 *   sending limits in Google Workspace"): 2,000 messages a day per user
 *   (10,000 recipients); each message has a recipient, so 2,000 recipients
 *   a day keeps under both. No per-minute figure is published.
 * - Google's SMTP relay service (smtp-relay.gmail.com, "Sending limits for
 *   the SMTP relay service"): 10,000 recipients a day per user.
 */
export const PROVIDER_PACING: Readonly<Record<string, ProviderPacing>> = {
  [PROVIDER_SMARTHOST.microsoft.host]: { messagesPerMinute: 30, recipientsPerDay: 10_000 },
  [PROVIDER_SMARTHOST.google.host]: { messagesPerMinute: 0, recipientsPerDay: 2_000 },
  'smtp-relay.gmail.com': { messagesPerMinute: 0, recipientsPerDay: 10_000 },
};

/** Which provider's account the upstream is ('graph' or the smarthost's name), to notice when the admin picks another */
export function upstreamProvider(config: Pick<Config, 'delivery'>): string {
  const { mode, smarthost } = config.delivery;
  return mode === 'graph'
    ? 'graph'
    : mode === 'smarthost'
      ? smarthost.host.trim().toLowerCase()
      : '';
}

/** The provider's published limits for the upstream, if it is one we know */
export function providerPacing(config: Pick<Config, 'delivery'>): ProviderPacing | undefined {
  const provider = upstreamProvider(config);
  return provider === 'graph'
    ? PROVIDER_PACING[PROVIDER_SMARTHOST.microsoft.host]
    : PROVIDER_PACING[provider];
}

/** App-only access to Microsoft Graph: whatever application permissions (Mail.Send) the admin granted */
export const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';

/** The sign-in the relay uses: Graph's in delivery mode "graph", the smarthost's XOAUTH2 otherwise */
export interface SignIn {
  settings: OAuthSettings;
  /** The config section the settings come from, for messages that name a key */
  section: 'delivery.oauth2' | 'delivery.graph';
  /** Why no token is needed (nothing signs in), or undefined when one is */
  unused?: string;
}

export function activeSignIn(config: Config): SignIn {
  const { mode, smarthost, oauth2, graph } = config.delivery;
  if (mode === 'graph') {
    const settings: OAuthSettings = {
      provider: 'microsoft',
      flow: 'client_credentials',
      tenant: graph.tenant,
      clientId: graph.clientId,
      clientSecret: graph.clientSecret,
      tokenUrl: graph.tokenUrl,
      deviceUrl: '',
      scope: GRAPH_SCOPE,
    };
    return { settings, section: 'delivery.graph' };
  }
  const unused =
    smarthost.auth !== 'oauth2'
      ? 'The smarthost does not use OAuth2 (delivery.smarthost.auth)'
      : undefined;
  return { settings: oauth2, section: 'delivery.oauth2', ...(unused ? { unused } : {}) };
}

/** What is missing before tokens can be fetched, or null when the settings are complete */
export function missingSetting(
  settings: OAuthSettings,
  section: SignIn['section'] = 'delivery.oauth2',
): string | null {
  const ends = endpoints(settings);
  if (!settings.clientId) return `${section}.clientId is empty`;
  if (!ends.tokenUrl) return `${section}.tokenUrl is empty (needed for provider "generic")`;
  if (!ends.scope) return `${section}.scope is empty (needed for provider "generic")`;
  if (settings.flow === 'client_credentials' && !settings.clientSecret)
    return `${section}.clientSecret is empty (needed for ${section === 'delivery.graph' ? 'Microsoft Graph' : 'flow "client_credentials"'})`;
  if (
    settings.flow === 'client_credentials' &&
    settings.provider === 'microsoft' &&
    !settings.tenant
  )
    return `${section}.tenant is empty (needed for Microsoft app-only sign-in)`;
  if (settings.flow === 'device' && !ends.deviceUrl)
    return `${section}.deviceUrl is empty (needed for flow "device")`;
  return null;
}
