/**
 * The OAuth2 requests SMTP sending needs, as values: client credentials
 * (RFC 6749 section 4.4), refresh (section 6), device authorization and its
 * polling (RFC 8628). Each answer is a token, or the endpoint's error code.
 */
import { RelayError } from '../errors.js';
import { endpoints, type OAuthSettings } from './providers.js';
import {
  numberField,
  postForm,
  stringField,
  type TokenHttpOptions,
  type TokenReply,
} from './token-http.js';

export type TokenResult =
  | { kind: 'token'; accessToken: string; expiresInS: number; refreshToken?: string }
  /** The endpoint's `error` code (invalid_grant, authorization_pending, ...) and its description */
  | { kind: 'refused'; error: string; description: string; status: number };

export interface DeviceAuthorization {
  deviceCode: string;
  userCode: string;
  verificationUri: string;
  expiresInS: number;
  intervalS: number;
  /** The provider's own instructions, when it gives some */
  message?: string;
}

export interface GrantContext {
  settings: OAuthSettings;
  http: TokenHttpOptions;
}

/** An hour is what Microsoft and Google issue; used when a reply leaves expires_in out */
const DEFAULT_LIFETIME_S = 3600;

function clientFields(settings: OAuthSettings): Record<string, string> {
  return {
    client_id: settings.clientId,
    ...(settings.clientSecret ? { client_secret: settings.clientSecret } : {}),
  };
}

function asTokenResult(reply: TokenReply): TokenResult {
  const accessToken = stringField(reply.body, 'access_token');
  if (reply.status === 200 && accessToken) {
    const refreshToken = stringField(reply.body, 'refresh_token');
    return {
      kind: 'token',
      accessToken,
      expiresInS: numberField(reply.body, 'expires_in') ?? DEFAULT_LIFETIME_S,
      ...(refreshToken ? { refreshToken } : {}),
    };
  }
  const error = stringField(reply.body, 'error') ?? `http_${reply.status}`;
  // Microsoft's descriptions start with an AADSTS code an admin can look up; keep the first line only
  const description = (stringField(reply.body, 'error_description') ?? '').split(/\r?\n/)[0] ?? '';
  return { kind: 'refused', error, description, status: reply.status };
}

const tokenRequest = async (
  context: GrantContext,
  form: Record<string, string>,
): Promise<TokenResult> =>
  asTokenResult(await postForm(endpoints(context.settings).tokenUrl, form, context.http));

export const clientCredentials = (context: GrantContext): Promise<TokenResult> =>
  tokenRequest(context, {
    grant_type: 'client_credentials',
    ...clientFields(context.settings),
    scope: endpoints(context.settings).scope,
  });

export const refresh = (context: GrantContext, refreshToken: string): Promise<TokenResult> =>
  tokenRequest(context, {
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
    ...clientFields(context.settings),
    scope: endpoints(context.settings).scope,
  });

export const pollDevice = (context: GrantContext, deviceCode: string): Promise<TokenResult> =>
  tokenRequest(context, {
    grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
    device_code: deviceCode,
    ...clientFields(context.settings),
  });

export async function authorizeDevice(context: GrantContext): Promise<DeviceAuthorization> {
  const { deviceUrl, scope } = endpoints(context.settings);
  const reply = await postForm(
    deviceUrl,
    { client_id: context.settings.clientId, scope },
    context.http,
  );
  const deviceCode = stringField(reply.body, 'device_code');
  const userCode = stringField(reply.body, 'user_code');
  // Google says verification_url, RFC 8628 and Microsoft verification_uri
  const verificationUri =
    stringField(reply.body, 'verification_uri') ?? stringField(reply.body, 'verification_url');
  if (reply.status !== 200 || !deviceCode || !userCode || !verificationUri) {
    const error = stringField(reply.body, 'error') ?? `HTTP ${reply.status}`;
    const description = (stringField(reply.body, 'error_description') ?? '').split(/\r?\n/)[0];
    throw new RelayError(
      `The sign-in could not start: ${error}${description ? ` (${description})` : ''}`,
      { kind: 'temporary' },
    );
  }
  const message = stringField(reply.body, 'message');
  return {
    deviceCode,
    userCode,
    verificationUri,
    expiresInS: numberField(reply.body, 'expires_in') ?? 900,
    intervalS: numberField(reply.body, 'interval') ?? 5,
    ...(message ? { message } : {}),
  };
}
