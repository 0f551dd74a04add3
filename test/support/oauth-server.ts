/**
 * A local OAuth2 authorization server for tests: HTTPS (certificate from the
 * test CA) on 127.0.0.1, port 0, with a token endpoint (client credentials,
 * refresh token with rotation, device code) and a device-authorization
 * endpoint. The test plays the user with `approve(userCode)` and the tenant
 * admin with `revokeRefreshTokens()`; the upstream asks `isValid(token)`.
 */
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { makeCerts } from './certs.js';

export interface OAuthServerOptions {
  clientId?: string;
  clientSecret?: string;
  /** Seconds an access token lives */
  expiresIn?: number;
  /** Seconds between device polls the server asks for */
  interval?: number;
}

export interface OAuthServer {
  url: string;
  tokenUrl: string;
  deviceUrl: string;
  clientId: string;
  clientSecret: string;
  /** grant_type of every token request, in order */
  requests: string[];
  /** Every token and secret this server issued or knows, to check none is logged */
  secrets(): string[];
  isValid(accessToken: string): boolean;
  /** Make one access token unusable before its expiry (the upstream will refuse it) */
  revokeAccessToken(accessToken: string): void;
  revokeRefreshTokens(): void;
  approve(userCode: string): void;
  lastUserCode(): string | undefined;
  setExpiresIn(seconds: number): void;
  close(): Promise<void>;
}

const token = (prefix: string) => `${prefix}-${randomBytes(18).toString('base64url')}`;

export async function startOAuthServer(options: OAuthServerOptions = {}): Promise<OAuthServer> {
  const certs = makeCerts();
  const clientId = options.clientId ?? 'edge-relay-test-client';
  const clientSecret = options.clientSecret ?? token('client-secret');
  const access = new Map<string, number>();
  const refreshTokens = new Set<string>();
  const issuedRefresh: string[] = [];
  const issuedAccess: string[] = [];
  const devices = new Map<string, { userCode: string; approved: boolean }>();
  const requests: string[] = [];
  const state = { expiresIn: options.expiresIn ?? 3600 };

  const issue = (withRefresh: boolean) => {
    const accessToken = token('access');
    access.set(accessToken, Date.now() + state.expiresIn * 1000);
    issuedAccess.push(accessToken);
    const reply: Record<string, unknown> = {
      token_type: 'Bearer',
      access_token: accessToken,
      expires_in: state.expiresIn,
    };
    if (withRefresh) {
      const refreshToken = token('refresh');
      refreshTokens.add(refreshToken);
      issuedRefresh.push(refreshToken);
      reply.refresh_token = refreshToken;
    }
    return reply;
  };

  const handleToken = (form: URLSearchParams): [number, Record<string, unknown>] => {
    const grant = form.get('grant_type') ?? '';
    requests.push(grant);
    if (form.get('client_id') !== clientId)
      return [400, { error: 'invalid_client', error_description: 'Unknown client' }];
    switch (grant) {
      case 'client_credentials':
        if (form.get('client_secret') !== clientSecret)
          return [401, { error: 'invalid_client', error_description: 'Bad secret' }];
        return [200, issue(false)];
      case 'refresh_token': {
        const presented = form.get('refresh_token') ?? '';
        if (!refreshTokens.has(presented))
          return [
            400,
            {
              error: 'invalid_grant',
              error_description:
                'AADSTS50173: The provided grant has expired due to it being revoked',
            },
          ];
        // Rotation, as Microsoft does: the old refresh token is spent
        refreshTokens.delete(presented);
        return [200, issue(true)];
      }
      case 'urn:ietf:params:oauth:grant-type:device_code': {
        const device = devices.get(form.get('device_code') ?? '');
        if (!device) return [400, { error: 'expired_token' }];
        if (!device.approved) return [400, { error: 'authorization_pending' }];
        devices.delete(form.get('device_code') ?? '');
        return [200, issue(true)];
      }
      default:
        return [400, { error: 'unsupported_grant_type' }];
    }
  };

  const handleDevice = (form: URLSearchParams): [number, Record<string, unknown>] => {
    if (form.get('client_id') !== clientId) return [400, { error: 'invalid_client' }];
    const deviceCode = token('device');
    const userCode = randomBytes(4).toString('hex').toUpperCase();
    devices.set(deviceCode, { userCode, approved: false });
    return [
      200,
      {
        device_code: deviceCode,
        user_code: userCode,
        verification_uri: 'https://login.example.test/device',
        expires_in: 600,
        interval: options.interval ?? 1,
      },
    ];
  };

  const server = https.createServer({ key: certs.key, cert: certs.cert }, (request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const [status, body] =
        request.method !== 'POST'
          ? [405, { error: 'method' }]
          : request.url === '/token'
            ? handleToken(form)
            : request.url === '/devicecode'
              ? handleDevice(form)
              : [404, { error: 'not_found' }];
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    tokenUrl: `${url}/token`,
    deviceUrl: `${url}/devicecode`,
    clientId,
    clientSecret,
    requests,
    secrets: () => [clientSecret, ...issuedAccess, ...issuedRefresh],
    isValid: (accessToken) => (access.get(accessToken) ?? 0) > Date.now(),
    revokeAccessToken: (accessToken) => void access.delete(accessToken),
    revokeRefreshTokens: () => refreshTokens.clear(),
    approve(userCode) {
      for (const device of devices.values())
        if (device.userCode === userCode) device.approved = true;
    },
    lastUserCode: () => [...devices.values()].at(-1)?.userCode,
    setExpiresIn(seconds) {
      state.expiresIn = seconds;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
