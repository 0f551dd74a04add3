/**
 * The OAuth2 client against a real local HTTPS token server: client
 * credentials, caching and refresh before expiry, device sign-in, refresh
 * token rotation, revoked sign-in -> needs-consent, encryption at rest.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Writable } from 'node:stream';
import { resolveConfig } from '../../src/config/validate.js';
import { createLogger } from '../../src/log.js';
import { OAuthClient, type OAuthStatus } from '../../src/oauth/client.js';
import { TokenVault } from '../../src/oauth/vault.js';
import { makeCerts } from '../support/certs.js';
import { startOAuthServer, type OAuthServer } from '../support/oauth-server.js';
import { eventually } from '../support/wait.js';

function setup(server: OAuthServer, flow: 'device' | 'client_credentials') {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'edge-relay-oauth-'));
  const config = resolveConfig(
    {
      dataDir,
      delivery: {
        smarthost: { host: 'smtp.example.test', user: 'scanner@contoso.test', auth: 'oauth2' },
        oauth2: {
          provider: 'generic',
          flow,
          clientId: server.clientId,
          clientSecret: flow === 'client_credentials' ? server.clientSecret : '',
          tokenUrl: server.tokenUrl,
          deviceUrl: server.deviceUrl,
          scope: 'smtp offline_access',
        },
        tls: { verify: true, caFile: makeCerts().caFile },
      },
    },
    'test',
  );
  let logged = '';
  const log = createLogger({
    destination: new Writable({ write: (chunk, _e, done) => ((logged += String(chunk)), done()) }),
  });
  return { dataDir, config, log, output: () => logged };
}

describe('OAuth2 client', () => {
  let server: OAuthServer;
  before(async () => {
    server = await startOAuthServer({ expiresIn: 2 });
  });
  after(() => server.close());

  test('client credentials: fetched once, cached, renewed past half its life, forced on demand', async (t) => {
    // The clock, not a wait, moves the token past half its life
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const { config, dataDir, log } = setup(server, 'client_credentials');
    const client = await OAuthClient.open({ config: () => config, dataDir, log });
    const before = server.requests.length;
    const first = await client.accessToken({ force: false });
    assert.ok(server.isValid(first));
    assert.equal(await client.accessToken({ force: false }), first, 'cached while fresh');
    assert.equal(server.requests.length - before, 1);
    t.mock.timers.tick(999);
    assert.equal(
      await client.accessToken({ force: false }),
      first,
      'still cached just before half its life',
    );
    t.mock.timers.tick(2);
    const second = await client.accessToken({ force: false });
    assert.notEqual(second, first, 'renewed before expiry (2 s token, margin 1 s)');
    const third = await client.accessToken({ force: true });
    assert.notEqual(third, second);
    assert.deepEqual(server.requests.slice(before), [
      'client_credentials',
      'client_credentials',
      'client_credentials',
    ]);
    const status = client.status();
    assert.equal(status.state, 'ok');
    assert.ok(status.lastRefresh && Date.parse(status.lastRefresh) > Date.now() - 5_000);
  });

  test('concurrent callers share one token request', async () => {
    const { config, dataDir, log } = setup(server, 'client_credentials');
    const client = await OAuthClient.open({ config: () => config, dataDir, log });
    const before = server.requests.length;
    const tokens = await Promise.all(
      Array.from({ length: 8 }, () => client.accessToken({ force: false })),
    );
    assert.equal(new Set(tokens).size, 1);
    assert.equal(server.requests.length - before, 1);
  });

  test('a wrong client secret is an admin problem, said in plain words without the secret', async () => {
    const { config, dataDir, log, output } = setup(server, 'client_credentials');
    const wrong = {
      ...config,
      delivery: {
        ...config.delivery,
        oauth2: { ...config.delivery.oauth2, clientSecret: 'not-the-secret-123' },
      },
    };
    const client = await OAuthClient.open({ config: () => wrong, dataDir, log });
    await assert.rejects(
      client.accessToken({ force: false }),
      /invalid_client.*check the client id and secret/,
    );
    assert.equal(client.status().state, 'needs-consent');
    assert.ok(!output().includes('not-the-secret-123'));
  });

  test('device sign-in: code shown, user approves, refresh token stored encrypted 0600, then used and rotated', async () => {
    const { config, dataDir, log, output } = setup(server, 'device');
    const client = await OAuthClient.open({ config: () => config, dataDir, log });
    assert.equal(client.status().state, 'needs-consent', 'nobody signed in yet');
    const statuses: OAuthStatus[] = [];
    client.on('status', (status) => statuses.push(status));
    const code = await client.startDeviceLogin();
    assert.match(code.userCode, /^[0-9A-F]{8}$/);
    assert.equal(code.verificationUri, 'https://login.example.test/device');
    assert.equal(code.expiresIn, 600);
    assert.equal(client.deviceLoginState().state, 'waiting');
    const polls = () => server.requests.filter((grant) => grant.endsWith(':device_code')).length;
    await eventually('the first poll answered "authorization_pending"', () => polls() === 1);
    assert.equal(
      client.deviceLoginState().state,
      'waiting',
      'still pending before the user approves',
    );
    server.approve(code.userCode);
    await eventually('the sign-in to complete', () => client.deviceLoginState().state === 'done');
    assert.equal(client.status().state, 'ok');
    assert.deepEqual(
      statuses.map((s) => s.state),
      ['ok'],
    );

    const keyFile = path.join(dataDir, 'oauth.key');
    const tokenFile = path.join(dataDir, 'oauth-token.json');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    const stored = readFileSync(tokenFile, 'utf8');
    const grant = await new TokenVault(dataDir).load();
    assert.ok(grant, 'a grant is stored');
    assert.ok(grant.refreshToken.startsWith('refresh-'));
    assert.ok(
      !stored.includes(grant.refreshToken),
      'the refresh token is not in the file in clear',
    );
    assert.ok(!stored.includes('refresh-'));

    // A new process (new client) uses the stored refresh token; the server rotates it
    const restarted = await OAuthClient.open({ config: () => config, dataDir, log });
    assert.equal(restarted.status().state, 'ok');
    const token = await restarted.accessToken({ force: false });
    assert.ok(server.isValid(token));
    const rotated = await new TokenVault(dataDir).load();
    assert.notEqual(
      rotated?.refreshToken,
      grant.refreshToken,
      'the rotated refresh token replaced the spent one',
    );
    for (const secret of server.secrets())
      assert.ok(!output().includes(secret), 'no token in the log');
  });

  test('revoked sign-in: invalid_grant -> needs-consent with a reason, an event, and no further requests', async () => {
    const { config, dataDir, log } = setup(server, 'device');
    const client = await OAuthClient.open({ config: () => config, dataDir, log });
    const code = await client.startDeviceLogin();
    server.approve(code.userCode);
    await eventually('the sign-in to complete', () => client.deviceLoginState().state === 'done');
    server.revokeRefreshTokens();
    const events: OAuthStatus[] = [];
    client.on('status', (status) => events.push(status));
    const before = server.requests.length;
    await assert.rejects(
      client.accessToken({ force: true }),
      /re-consent is needed, sign in again/,
    );
    assert.equal(client.status().state, 'needs-consent');
    assert.match(client.status().reason ?? '', /invalid_grant/);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.state, 'needs-consent');
    await assert.rejects(client.accessToken({ force: true }), /re-consent/);
    assert.equal(server.requests.length - before, 1, 'a dead refresh token is not sent again');
    // Signing in again clears it
    const again = await client.startDeviceLogin();
    server.approve(again.userCode);
    await eventually('the new sign-in', () => client.status().state === 'ok');
    assert.ok(server.isValid(await client.accessToken({ force: false })));
  });

  test('the stored sign-in goes only to the token endpoint that issued it, never to one the settings were repointed at', async () => {
    const { config, dataDir, log } = setup(server, 'device');
    const client = await OAuthClient.open({ config: () => config, dataDir, log });
    const code = await client.startDeviceLogin();
    server.approve(code.userCode);
    await eventually('the sign-in to complete', () => client.deviceLoginState().state === 'done');
    const elsewhere = await startOAuthServer();
    try {
      const repointed = {
        ...config,
        delivery: {
          ...config.delivery,
          oauth2: { ...config.delivery.oauth2, tokenUrl: elsewhere.tokenUrl },
        },
      };
      const moved = await OAuthClient.open({ config: () => repointed, dataDir, log });
      assert.equal(moved.status().state, 'needs-consent');
      await assert.rejects(moved.accessToken({ force: false }), /Nobody has signed in yet/);
      assert.deepEqual(
        elsewhere.requests,
        [],
        'the refresh token was not sent to the other endpoint',
      );
    } finally {
      await elsewhere.close();
    }
    const back = await OAuthClient.open({ config: () => config, dataDir, log });
    assert.ok(
      server.isValid(await back.accessToken({ force: false })),
      'still signed in with the endpoint that issued it',
    );
  });

  test('not configured: the smarthost uses passwords', async () => {
    const { config, dataDir, log } = setup(server, 'client_credentials');
    const password = {
      ...config,
      delivery: {
        ...config.delivery,
        smarthost: { ...config.delivery.smarthost, auth: 'password' as const },
      },
    };
    const client = await OAuthClient.open({ config: () => password, dataDir, log });
    assert.equal(client.status().state, 'not-configured');
  });

  test('a token endpoint over plain http is refused', async () => {
    const { config, dataDir, log } = setup(server, 'client_credentials');
    const plain = {
      ...config,
      delivery: {
        ...config.delivery,
        oauth2: { ...config.delivery.oauth2, tokenUrl: 'http://127.0.0.1:9/token' },
      },
    };
    const client = await OAuthClient.open({ config: () => plain, dataDir, log });
    await assert.rejects(client.accessToken({ force: false }), /must use https/);
    assert.equal(client.status().state, 'failing');
  });
});
