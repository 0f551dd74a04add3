/**
 * The smarthost password goes only to the server it was given for, and only
 * over TLS (issue 14). Whoever can change settings (a page session, an API
 * client) repoints the smarthost at a server of their own on another LAN host
 * (127.0.0.2), which accepts any AUTH and records what it was given: it never
 * receives the stored password. The real product in a child process, real
 * smtp-server upstreams, Python's smtplib as the device.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { setupAdminOf, type WebClient } from '../support/browser.js';
import { smtplibSend } from '../support/clients.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import {
  startUpstream,
  viaSmarthost,
  type Upstream,
  type UpstreamOptions,
} from '../support/upstream.js';
import { eventually } from '../support/wait.js';

const USER = 'relay@contoso.test';
const PASSWORD = 'Upstream-Secret-5e2b-do-not-leak';

/** A server of the attacker's on another LAN host: takes any AUTH (even without TLS) and keeps what it was given */
async function listeningServer(
  options: UpstreamOptions,
): Promise<{ upstream: Upstream; offered: string[] }> {
  const offered: string[] = [];
  const upstream = await startUpstream({
    host: '127.0.0.2',
    auth: { user: 'anyone', pass: 'anything' },
    ...options,
    extra: {
      authOptional: true,
      allowInsecureAuth: true,
      onAuth(auth, _session, callback) {
        offered.push(`${auth.username ?? ''}:${auth.password ?? ''}`);
        callback(null, { user: auth.username });
      },
    },
  });
  return { upstream, offered };
}

interface QueueItem {
  id: string;
  attempts: number;
  lastError: string;
}

describe('the stored smarthost password after a repoint', () => {
  let real: Upstream;
  let plain: Awaited<ReturnType<typeof listeningServer>>;
  let tls: Awaited<ReturnType<typeof listeningServer>>;
  let relay: RunningRelay;
  let admin: WebClient;

  const patch = (json: unknown) =>
    admin.request('PATCH', '/api/settings', { json, headers: { 'x-csrf-token': admin.csrf } });
  const stored = async () =>
    (
      JSON.parse(await fs.readFile(relay.configFile, 'utf8')) as {
        delivery: { smarthost: Record<string, unknown> };
      }
    ).delivery.smarthost;
  const send = (subject: string) =>
    smtplibSend(
      relay.smtpPort,
      'scanner@office.test',
      ['boss@example.com'],
      `From: scanner@office.test\r\nSubject: ${subject}\r\n\r\nx\r\n`,
    );

  before(async () => {
    real = await startUpstream({ requireTls: true, auth: { user: USER, pass: PASSWORD } });
    plain = await listeningServer({ offerTls: false });
    tls = await listeningServer({});
    relay = await launchRelay({
      config: viaSmarthost(real, {}, { user: USER, password: PASSWORD }),
    });
    admin = await setupAdminOf(relay);
  });
  after(async () => {
    await relay.stop();
    await Promise.all([real.close(), plain.upstream.close(), tls.upstream.close()]);
  });

  test('the API refuses security "none" while a user name and password are set, and saves nothing', async () => {
    const before = await fs.readFile(relay.configFile, 'utf8');
    for (const smarthost of [
      { host: '127.0.0.2', port: plain.upstream.port, security: 'none' },
      { security: 'none' },
    ]) {
      const refused = await patch({ delivery: { smarthost } });
      assert.equal(refused.status, 400, refused.text);
      const body = JSON.parse(refused.text) as { fields: Record<string, string> };
      assert.match(
        body.fields.security ?? '',
        /Without TLS the user name and password .* would cross the network in clear/,
      );
    }
    assert.equal(await fs.readFile(relay.configFile, 'utf8'), before, 'nothing saved');
  });

  test('repointed at a server without TLS (user removed), the password is forgotten and the server gets no AUTH at all', async () => {
    const saved = await patch({
      delivery: {
        smarthost: { host: '127.0.0.2', port: plain.upstream.port, security: 'none', user: '' },
      },
    });
    assert.equal(saved.status, 200, saved.text);
    await send('to the repointed server');
    const [message] = await plain.upstream.waitFor(1);
    assert.deepEqual(plain.offered, [], 'no credentials offered');
    assert.equal(message?.user, undefined, 'no login');
    assert.deepEqual((JSON.parse(saved.text) as { forgottenSecrets: string[] }).forgottenSecrets, [
      'delivery.smarthost.password',
    ]);
    // Empty is the default, so the file no longer names a password at all
    assert.equal((await stored()).password ?? '', '', 'the password left the config file');
  });

  test('pointed back with the password given again in the same change, it is kept and used', async () => {
    const saved = await patch({
      delivery: {
        smarthost: {
          host: '127.0.0.1',
          port: real.port,
          security: 'starttls',
          user: USER,
          password: PASSWORD,
        },
      },
    });
    assert.equal(saved.status, 200, saved.text);
    assert.deepEqual(
      (JSON.parse(saved.text) as { forgottenSecrets: string[] }).forgottenSecrets,
      [],
    );
    await send('back home');
    const [message] = await real.waitFor(1);
    assert.equal(message?.user, USER, 'logged in with the password given again');
  });

  test('repointed on the page (TLS, unverified) with the password field left empty, the new server never sees the stored password', async () => {
    const saved = await admin.post('/settings', {
      host: '127.0.0.2',
      port: String(tls.upstream.port),
      security: 'starttls',
      user: USER,
      password: '',
      _checkboxes: 'verify',
    });
    assert.equal(saved.status, 303, saved.text);
    await send('to the other server');
    // Either the server got a login and a message (the old behaviour) or the relay deferred the message saying why
    const deferred = await eventually(
      'the message delivered or deferred',
      async () => {
        if (tls.upstream.messages.length) return 'delivered';
        const items = JSON.parse(
          (await relay.cli(['queue', 'list', '--json'])).stdout,
        ) as QueueItem[];
        return items.find((item) => item.attempts > 0)?.lastError;
      },
      { timeoutMs: 15_000 },
    );
    assert.deepEqual(
      tls.offered.filter((given) => given.includes(PASSWORD)),
      [],
      'the stored password never reached the new server',
    );
    assert.match(
      deferred,
      /EAUTH: No password is stored for the user "relay@contoso\.test" \(it is removed when the smarthost changes\): enter it in the settings/,
    );
    assert.equal((await stored()).password ?? '', '');
    assert.match(
      (await admin.get('/settings')).text,
      /The stored smarthost password was removed because it belongs to the server it was given for: enter it again/,
    );
  });
});
