/**
 * XOAUTH2 to the smarthost end to end: the relay (a child process) gets its
 * tokens from a local HTTPS token endpoint and logs in to an upstream that
 * accepts XOAUTH2 only and checks every token with that endpoint.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { resolveConfig } from '../../src/config/validate.js';
import { silentLogger } from '../../src/log.js';
import { OAuthClient } from '../../src/oauth/client.js';
import { type WebClient, setupAdminOf } from '../support/browser.js';
import { makeCerts } from '../support/certs.js';
import { smtplibSend } from '../support/clients.js';
import { startOAuthServer, type OAuthServer } from '../support/oauth-server.js';
import { newMail, launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { eventually } from '../support/wait.js';
import { queuedId } from '../support/queued.js';

const MAILBOX = 'scanner@contoso.test';

interface AuthLog {
  seen: { token: string; accepted: boolean }[];
}

/** An upstream that takes XOAUTH2 only; a bad token gets a plain 535 (Microsoft) or the error challenge (Google) */
async function xoauthUpstream(
  oauth: OAuthServer,
  style: 'plain535' | 'challenge',
  log: AuthLog,
): Promise<Upstream> {
  return startUpstream({
    requireTls: true,
    auth: { user: MAILBOX, pass: 'unused' },
    extra: {
      authMethods: ['XOAUTH2'],
      onAuth(auth, _session, callback) {
        const accepted =
          auth.method === 'XOAUTH2' &&
          auth.username === MAILBOX &&
          oauth.isValid(auth.accessToken ?? '');
        log.seen.push({ token: auth.accessToken ?? '', accepted });
        if (accepted) return callback(null, { user: MAILBOX });
        if (style === 'challenge')
          return callback(null, {
            data: { status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' },
          });
        callback(
          Object.assign(new Error('5.7.3 Authentication unsuccessful'), { responseCode: 535 }),
        );
      },
    },
  });
}

function relayConfig(
  upstream: Upstream,
  oauth: OAuthServer,
  flow: 'device' | 'client_credentials',
  oauth2: Record<string, unknown> = {},
) {
  return {
    delivery: {
      smarthost: {
        host: '127.0.0.1',
        port: upstream.port,
        security: 'starttls',
        user: MAILBOX,
        auth: 'oauth2',
      },
      oauth2: {
        provider: 'generic',
        flow,
        clientId: oauth.clientId,
        clientSecret: flow === 'client_credentials' ? oauth.clientSecret : '',
        tokenUrl: oauth.tokenUrl,
        deviceUrl: oauth.deviceUrl,
        scope: 'smtp offline_access',
        ...oauth2,
      },
      tls: { verify: true, caFile: makeCerts().caFile },
    },
  };
}

/** An HTTPS hop in front of the token server that keeps every form the relay sends (the server itself keeps only grant types) */
async function recordingHop(
  target: OAuthServer,
): Promise<{ tokenUrl: string; forms: URLSearchParams[]; close(): Promise<void> }> {
  const certs = makeCerts();
  const forms: URLSearchParams[] = [];
  const server = https.createServer({ key: certs.key, cert: certs.cert }, (request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      forms.push(new URLSearchParams(body.toString('utf8')));
      const onward = https.request(
        `${target.url}${request.url ?? ''}`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          ca: certs.ca,
        },
        (reply) => {
          response.writeHead(reply.statusCode ?? 502, { 'content-type': 'application/json' });
          reply.pipe(response);
        },
      );
      onward.on('error', () => response.destroy());
      onward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    tokenUrl: `https://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
    forms,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const mail = (subject: string) =>
  `From: scanner@office.test\r\nTo: boss@example.com\r\nSubject: ${subject}\r\n\r\nscan attached\r\n`;

/** The log line of the `count`-th message done */
const doneAttempts = async (relay: RunningRelay, count: number) => {
  const done = () => relay.logs.filter((l) => l.msg === 'Message done, removed from the queue');
  await relay.waitForLog(() => done().length >= count);
  return done()[count - 1]!;
};

function assertNoSecrets(relay: RunningRelay, oauth: OAuthServer): void {
  const output = relay.output();
  for (const secret of oauth.secrets())
    assert.ok(
      !output.includes(secret),
      `a token or secret (${secret.slice(0, 8)}...) appeared in the log`,
    );
}

describe('XOAUTH2 with client credentials (Microsoft-style 535)', () => {
  // Each test gets its own token server, upstream and relay: no token is left over from another
  let oauth: OAuthServer;
  let upstream: Upstream;
  let relay: RunningRelay;
  let authLog: AuthLog;

  const launch = async (expiresIn: number) => {
    authLog = { seen: [] };
    oauth = await startOAuthServer({ expiresIn });
    upstream = await xoauthUpstream(oauth, 'plain535', authLog);
    relay = await launchRelay({ config: relayConfig(upstream, oauth, 'client_credentials') });
  };
  afterEach(async () => {
    await relay.stop();
    await upstream.close();
    await oauth.close();
    assertNoSecrets(relay, oauth);
  });

  test('fetches a token and delivers with XOAUTH2', async () => {
    await launch(3);
    await smtplibSend(relay.smtpPort, 'scanner@office.test', ['boss@example.com'], mail('one'));
    const [message] = await upstream.waitFor(1);
    assert.equal(message?.user, MAILBOX);
    assert.deepEqual(oauth.requests, ['client_credentials']);
    assert.equal(authLog.seen.length, 1);
    assert.ok(authLog.seen[0]?.accepted);
  });

  test('a token past half its life is renewed before use', async () => {
    await launch(3);
    await smtplibSend(relay.smtpPort, 'scanner@office.test', ['boss@example.com'], mail('one'));
    await upstream.waitFor(1);
    // The relay runs in its own process, on the real clock: let the 3 s token pass half its life. A sleep,
    // as nothing happens then to wait for (the relay renews only when it next needs a token); counted from
    // the delivery, which came after the relay got the token, so the 1.5 s are over whatever the load
    await new Promise((resolve) => setTimeout(resolve, 1_700));
    await smtplibSend(relay.smtpPort, 'scanner@office.test', ['boss@example.com'], mail('two'));
    await upstream.waitFor(2);
    assert.deepEqual(oauth.requests, ['client_credentials', 'client_credentials']);
    assert.notEqual(authLog.seen[1]?.token, authLog.seen[0]?.token);
    assert.ok(
      authLog.seen.every((s) => s.accepted),
      'the stale token was never offered',
    );
  });

  test('a 535 for a revoked token: a fresh token, retried in the same attempt', async () => {
    await launch(3600);
    await smtplibSend(relay.smtpPort, 'scanner@office.test', ['boss@example.com'], mail('three'));
    await upstream.waitFor(1);
    const current = authLog.seen.at(-1)?.token ?? '';
    oauth.revokeAccessToken(current);
    const seenBefore = authLog.seen.length;
    await smtplibSend(relay.smtpPort, 'scanner@office.test', ['boss@example.com'], mail('four'));
    await upstream.waitFor(2);
    const tries = authLog.seen.slice(seenBefore);
    assert.deepEqual(
      tries.map((t) => t.accepted),
      [false, true],
      'refused once, then accepted',
    );
    assert.equal(tries[0]?.token, current);
    const done = await doneAttempts(relay, 2);
    assert.equal(done.attempts, 1, 'delivered in the first attempt, not after a deferral');
  });
});

describe('provider "microsoft", app-only (client credentials), endpoints pointed at the local token server', () => {
  let oauth: OAuthServer;
  let hop: Awaited<ReturnType<typeof recordingHop>>;
  let upstream: Upstream;
  let relay: RunningRelay;
  const authLog: AuthLog = { seen: [] };

  before(async () => {
    oauth = await startOAuthServer({ expiresIn: 3600 });
    hop = await recordingHop(oauth);
    upstream = await xoauthUpstream(oauth, 'plain535', authLog);
    // No scope set: the Microsoft provider's own app-only scope is used
    relay = await launchRelay({
      config: relayConfig(upstream, oauth, 'client_credentials', {
        provider: 'microsoft',
        tenant: 'contoso.test',
        tokenUrl: hop.tokenUrl,
        deviceUrl: '',
        scope: '',
      }),
    });
  });
  after(async () => {
    await relay.stop();
    await upstream.close();
    await hop.close();
    await oauth.close();
  });

  test('the token request carries the .default scope and the secret; the message goes out with XOAUTH2', async () => {
    await smtplibSend(
      relay.smtpPort,
      'scanner@office.test',
      ['boss@example.com'],
      mail('microsoft'),
    );
    const [message] = await upstream.waitFor(1);
    assert.equal(message?.user, MAILBOX);
    assert.equal(hop.forms.length, 1);
    const form = hop.forms[0];
    assert.equal(form?.get('grant_type'), 'client_credentials');
    assert.equal(form?.get('scope'), 'https://outlook.office365.com/.default');
    assert.equal(form?.get('client_id'), oauth.clientId);
    assert.equal(form?.get('client_secret'), oauth.clientSecret);
    assert.ok(authLog.seen[0]?.accepted);
  });

  test('no token or client secret in any log line', () => assertNoSecrets(relay, oauth));
});

describe('XOAUTH2 with a device sign-in (Google-style challenge), then revoked', () => {
  let oauth: OAuthServer;
  let upstream: Upstream;
  let relay: RunningRelay;
  let admin: WebClient;
  const authLog: AuthLog = { seen: [] };

  before(async () => {
    oauth = await startOAuthServer({ expiresIn: 3600 });
    upstream = await xoauthUpstream(oauth, 'challenge', authLog);
    // The admin signs in once (what the web page does), into the data dir the relay will use
    const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-test-'));
    const config = resolveConfig(
      { ...relayConfig(upstream, oauth, 'device'), dataDir: path.join(dir, 'data') },
      'test',
    );
    const client = await OAuthClient.open({
      config: () => config,
      dataDir: config.dataDir,
      log: silentLogger(),
    });
    const code = await client.startDeviceLogin();
    oauth.approve(code.userCode);
    await eventually(
      `the device sign-in (${JSON.stringify(client.deviceLoginState())})`,
      () => client.deviceLoginState().state === 'done',
      { timeoutMs: 10_000 },
    );
    relay = await launchRelay({ dir, config: relayConfig(upstream, oauth, 'device') });
    admin = await setupAdminOf(relay);
  });
  after(async () => {
    await relay.stop();
    await upstream.close();
    await oauth.close();
  });

  test('the stored refresh token gets an access token; delivered', async () => {
    await smtplibSend(
      relay.smtpPort,
      'scanner@office.test',
      ['boss@example.com'],
      mail('device one'),
    );
    await upstream.waitFor(1);
    assert.deepEqual(oauth.requests, [
      'urn:ietf:params:oauth:grant-type:device_code',
      'refresh_token',
    ]);
  });

  test('the error challenge for a revoked access token: refreshed and retried on the same connection', async () => {
    oauth.revokeAccessToken(authLog.seen.at(-1)?.token ?? '');
    const seenBefore = authLog.seen.length;
    await smtplibSend(
      relay.smtpPort,
      'scanner@office.test',
      ['boss@example.com'],
      mail('device two'),
    );
    await upstream.waitFor(2);
    assert.deepEqual(
      authLog.seen.slice(seenBefore).map((t) => t.accepted),
      [false, true],
    );
    assert.equal((await doneAttempts(relay, 2)).attempts, 1);
  });

  test('revoked sign-in: deferred, lastError says re-consent is needed, needs-consent logged', async () => {
    oauth.revokeRefreshTokens();
    oauth.revokeAccessToken(authLog.seen.at(-1)?.token ?? '');
    const reply = await smtplibSend(
      relay.smtpPort,
      'scanner@office.test',
      ['boss@example.com'],
      mail('device three'),
    );
    const id = queuedId(reply);
    const warning = await relay.waitForLog((l) => l.oauth === 'needs-consent');
    assert.match(String(warning.reason), /invalid_grant.*sign in again/);
    const item = await eventually(
      'the deferred message',
      async () => {
        const list = JSON.parse((await relay.cli(['queue', 'list', '--json'])).stdout) as {
          id: string;
          lastError: string | null;
          recipients: { status: string }[];
        }[];
        return list.find((entry) => entry.id === id && entry.lastError);
      },
      { timeoutMs: 15_000 },
    );
    assert.equal(item.recipients[0]?.status, 'deferred');
    assert.match(item.lastError ?? '', /re-consent is needed/);
    assert.equal(upstream.messages.length, 2, 'nothing more delivered');
    const alerts = await eventually(
      'the re-consent alert in the postmaster mailbox',
      () => {
        const found = newMail(relay, 'postmaster').filter((m) =>
          m.includes('Sign-in to the upstream needed'),
        );
        return found.length ? found : undefined;
      },
      { timeoutMs: 10_000 },
    );
    assert.equal(alerts.length, 1, 'one alert, no storm');
    assert.match(alerts[0] ?? '', /Sender page/);
  });

  test('the dashboard says why: the revoked sign-in (invalid_grant) and that re-consent is needed', async () => {
    const page = (await admin.get('/')).text;
    assert.match(
      page,
      /<dd id="sign-in"><span class="pill[^"]*">needs-consent<\/span> <span class="muted">The sign-in was revoked or has expired \(invalid_grant\): re-consent is needed, sign in again on the Sender page \(AADSTS50173[^<]*<\/span> <a href="\/sender">Sign in<\/a>/,
    );
  });

  test('no token in any log line', () => assertNoSecrets(relay, oauth));
});
