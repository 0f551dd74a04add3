/**
 * Microsoft 365 and Google as providers: their endpoints and scopes, what
 * each needs before tokens can be fetched, and what is actually sent to (and
 * read from) a provider, against a local HTTPS stand-in that records every form.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { resolveConfig } from '../../src/config/validate.js';
import { authorizeDevice, clientCredentials, type GrantContext } from '../../src/oauth/grants.js';
import { endpoints, missingSetting, type OAuthSettings } from '../../src/oauth/providers.js';
import { makeCerts } from '../support/certs.js';

const settings = (oauth2: Partial<OAuthSettings>): OAuthSettings =>
  resolveConfig({ delivery: { oauth2 } }, 'test').delivery.oauth2;

const SMTP_SEND = 'https://outlook.office365.com/SMTP.Send offline_access';
const APP_ONLY = 'https://outlook.office365.com/.default';

/** Complete settings, one set per provider and flow; a test takes keys away or adds some */
const MICROSOFT_DEVICE: Partial<OAuthSettings> = {
  provider: 'microsoft',
  flow: 'device',
  clientId: 'app',
};
const MICROSOFT_APP_ONLY: Partial<OAuthSettings> = {
  provider: 'microsoft',
  flow: 'client_credentials',
  tenant: 'contoso.onmicrosoft.com',
  clientId: 'app',
  clientSecret: 's',
};
const GOOGLE_DEVICE: Partial<OAuthSettings> = {
  provider: 'google',
  flow: 'device',
  clientId: 'app',
};

describe('provider endpoints and scopes', () => {
  test('Microsoft, device sign-in: any work account ("organizations"), delegated SMTP.Send with offline_access', () => {
    assert.deepEqual(endpoints(settings(MICROSOFT_DEVICE)), {
      tokenUrl: 'https://login.microsoftonline.com/organizations/oauth2/v2.0/token',
      deviceUrl: 'https://login.microsoftonline.com/organizations/oauth2/v2.0/devicecode',
      scope: SMTP_SEND,
    });
  });

  test('Microsoft, app-only: the tenant in the URL and the .default scope', () => {
    const ends = endpoints(settings(MICROSOFT_APP_ONLY));
    assert.equal(
      ends.tokenUrl,
      'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token',
    );
    assert.equal(ends.scope, APP_ONLY);
  });

  test('Google: its token and device endpoints, the full-mail scope', () => {
    assert.deepEqual(endpoints(settings(GOOGLE_DEVICE)), {
      tokenUrl: 'https://oauth2.googleapis.com/token',
      deviceUrl: 'https://oauth2.googleapis.com/device/code',
      scope: 'https://mail.google.com/',
    });
  });

  test("the settings' URLs and scope override the provider's (how tests and odd tenants work)", () => {
    const ends = endpoints(
      settings({
        ...MICROSOFT_DEVICE,
        tokenUrl: 'https://127.0.0.1:1/token',
        deviceUrl: 'https://127.0.0.1:1/devicecode',
      }),
    );
    assert.deepEqual(ends, {
      tokenUrl: 'https://127.0.0.1:1/token',
      deviceUrl: 'https://127.0.0.1:1/devicecode',
      scope: SMTP_SEND,
    });
  });
});

describe('what is missing before tokens can be fetched', () => {
  /** The first missing setting, named; '' when nothing is missing */
  const missing = (oauth2: Partial<OAuthSettings>): string =>
    missingSetting(settings(oauth2)) ?? '';

  test('complete settings: nothing', () => {
    for (const complete of [MICROSOFT_DEVICE, MICROSOFT_APP_ONLY, GOOGLE_DEVICE])
      assert.equal(
        missingSetting(settings(complete)),
        null,
        `${complete.provider} ${complete.flow}`,
      );
  });

  test('the client ID first', () => {
    assert.match(missing({ ...MICROSOFT_DEVICE, clientId: '' }), /clientId is empty/);
  });

  test('Microsoft app-only needs the secret and the tenant', () => {
    assert.match(missing({ ...MICROSOFT_APP_ONLY, clientSecret: '' }), /clientSecret is empty/);
    assert.match(
      missing({ ...MICROSOFT_APP_ONLY, tenant: '' }),
      /tenant is empty \(needed for Microsoft app-only sign-in\)/,
    );
  });

  test('generic needs its token URL and scope', () => {
    const generic: Partial<OAuthSettings> = {
      provider: 'generic',
      flow: 'device',
      clientId: 'app',
    };
    assert.match(missing(generic), /tokenUrl is empty/);
    const withTokenUrl = { ...generic, tokenUrl: 'https://127.0.0.1:1/t' };
    assert.match(missing(withTokenUrl), /scope is empty/);
    assert.match(missing({ ...withTokenUrl, scope: 'smtp' }), /deviceUrl is empty/);
  });
});

/** A provider stand-in: answers each path with a canned JSON reply and records the forms it was sent */
describe('what is sent to a provider, and read back', () => {
  const certs = makeCerts();
  const forms: { path: string; form: URLSearchParams }[] = [];
  const replies: Record<string, object> = {
    '/token': { token_type: 'Bearer', access_token: 'access-1', expires_in: 3599 },
    // Google's device endpoint says verification_url, not RFC 8628's verification_uri
    '/google/device': {
      device_code: 'dc-1',
      user_code: 'GQVQ-JKEC',
      verification_url: 'https://www.google.com/device',
      expires_in: 1800,
      interval: 5,
    },
    '/microsoft/devicecode': {
      device_code: 'dc-2',
      user_code: 'F7XK2LQ9P',
      verification_uri: 'https://microsoft.com/devicelogin',
      expires_in: 900,
      interval: 5,
      message: 'To sign in, use a web browser',
    },
  };
  let server: https.Server;
  let base = '';

  before(async () => {
    server = https.createServer({ key: certs.key, cert: certs.cert }, (request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        forms.push({
          path: request.url ?? '',
          form: new URLSearchParams(Buffer.concat(chunks).toString('utf8')),
        });
        const reply = replies[request.url ?? ''];
        response.writeHead(reply ? 200 : 404, { 'content-type': 'application/json' });
        response.end(JSON.stringify(reply ?? { error: 'not_found' }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const context = (oauth2: Partial<OAuthSettings>): GrantContext => ({
    settings: settings(oauth2),
    http: { verify: true, caFile: certs.caFile, timeoutMs: 5_000 },
  });

  test('Microsoft device sign-in asks for SMTP.Send and offline_access (so a refresh token comes back)', async () => {
    const code = await authorizeDevice(
      context({
        provider: 'microsoft',
        flow: 'device',
        clientId: 'app-ms',
        deviceUrl: `${base}/microsoft/devicecode`,
      }),
    );
    assert.equal(code.verificationUri, 'https://microsoft.com/devicelogin');
    assert.equal(code.message, 'To sign in, use a web browser');
    const sent = forms.at(-1);
    assert.equal(sent?.path, '/microsoft/devicecode');
    assert.equal(sent?.form.get('scope'), SMTP_SEND);
    assert.equal(sent?.form.get('client_id'), 'app-ms');
  });

  test('Microsoft app-only sends the .default scope with the client secret', async () => {
    const result = await clientCredentials(
      context({
        provider: 'microsoft',
        flow: 'client_credentials',
        tenant: 'contoso.test',
        clientId: 'app-ms',
        clientSecret: 'secret-ms',
        tokenUrl: `${base}/token`,
      }),
    );
    assert.deepEqual(result, { kind: 'token', accessToken: 'access-1', expiresInS: 3599 });
    const sent = forms.at(-1)?.form;
    assert.equal(sent?.get('grant_type'), 'client_credentials');
    assert.equal(sent?.get('scope'), APP_ONLY);
    assert.equal(sent?.get('client_secret'), 'secret-ms');
  });

  test("Google's device sign-in: its verification_url is the address shown, the scope is mail.google.com", async () => {
    const code = await authorizeDevice(
      context({
        provider: 'google',
        flow: 'device',
        clientId: 'app-g',
        deviceUrl: `${base}/google/device`,
      }),
    );
    assert.deepEqual(code, {
      deviceCode: 'dc-1',
      userCode: 'GQVQ-JKEC',
      verificationUri: 'https://www.google.com/device',
      expiresInS: 1800,
      intervalS: 5,
    });
    assert.equal(forms.at(-1)?.form.get('scope'), 'https://mail.google.com/');
  });
});
