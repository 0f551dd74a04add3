/**
 * The admin page over plain HTTP: setup with the one-time token, login and
 * its growing delay, cookie flags, security headers, CSRF on every
 * state-changing route, escaping, no upstream password anywhere, /healthz,
 * /metrics and API tokens. The relay is the real product in a child process.
 */
import assert from 'node:assert/strict';
import { promises as fs, statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resolveConfig } from '../../src/config/validate.js';
import type { WebState } from '../../src/web/context.js';
import { buildApp } from '../../src/web/app.js';
import { makeCerts } from '../support/certs.js';
import { RawSmtp, run, smtplibSend } from '../support/clients.js';
import { setupAdmin, WebClient } from '../support/browser.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { eventually } from '../support/wait.js';

const SECRET = 'upstream-Secret-42';
const ADMIN = 'correct horse battery';

describe('admin web page over HTTP', () => {
  let upstream: Upstream;
  let relay: RunningRelay;
  let base: string;
  let admin: WebClient;

  before(async () => {
    upstream = await startUpstream({
      requireTls: true,
      auth: { user: 'relay@contoso.test', pass: SECRET },
    });
    relay = await launchRelay({
      config: {
        delivery: {
          smarthost: {
            host: '127.0.0.1',
            port: upstream.port,
            security: 'starttls',
            user: 'relay@contoso.test',
            password: SECRET,
          },
          tls: { verify: true, caFile: makeCerts().caFile },
        },
      },
    });
    base = `http://127.0.0.1:${relay.webPort}`;
  });
  after(async () => {
    await relay.stop();
    await upstream.close();
  });

  test('first start offers only setup; the token is in the log and in a 0600 file; a wrong token is refused', async () => {
    const line = await relay.waitForLog((l) => typeof l.setupToken === 'string');
    const token = String(line.setupToken);
    const file = path.join(relay.dataDir, 'setup-token');
    assert.equal((await fs.readFile(file, 'utf8')).trim(), token);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const anonymous = new WebClient(base);
    assert.equal((await anonymous.get('/')).location, '/setup');
    assert.equal((await anonymous.get('/login')).location, '/setup');
    await anonymous.get('/setup');
    for (const _csrf of [undefined, 'forged-token']) {
      const form = { token, password: ADMIN, confirm: ADMIN, ...(_csrf ? { _csrf } : {}) };
      assert.equal(
        (await anonymous.request('POST', '/setup', { form })).status,
        403,
        `the right setup token without a valid CSRF token (${_csrf ?? 'missing'})`,
      );
    }
    assert.equal((await anonymous.get('/setup')).status, 200, 'still in setup');
    const wrong = await anonymous.post('/setup', {
      token: 'not-the-token',
      password: ADMIN,
      confirm: ADMIN,
    });
    assert.equal(wrong.status, 401);
    assert.match(wrong.text, /setup token is not right/);
    admin = await setupAdmin(base, token, ADMIN);
    await assert.rejects(fs.stat(file), 'the used token file is gone');
    assert.equal(
      (await new WebClient(base).get('/setup')).location,
      '/login',
      'setup is closed once a password exists',
    );
  });

  test('the session cookie is HttpOnly and SameSite=Strict (no Secure over plain HTTP)', async () => {
    const client = new WebClient(base);
    const response = await client.get('/login');
    const cookie = response.headers.get('set-cookie') ?? '';
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.doesNotMatch(cookie, /Secure/);
  });

  test('every response carries the CSP and security headers', async () => {
    for (const [client, route] of [
      [new WebClient(base), '/healthz'],
      [new WebClient(base), '/login'],
      [admin, '/'],
      [admin, '/nope'],
      [admin, '/api/status'],
      [new WebClient(base), '/metrics'],
    ] as const) {
      const response = await client.get(route);
      assert.match(
        response.headers.get('content-security-policy') ?? '',
        /default-src 'none'/,
        route,
      );
      assert.match(
        response.headers.get('content-security-policy') ?? '',
        /frame-ancestors 'none'/,
        route,
      );
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff', route);
      assert.equal(response.headers.get('x-frame-options'), 'DENY', route);
    }
  });

  test('login: a wrong password is refused with a growing delay; logout ends the session', async () => {
    const client = new WebClient(base);
    await client.get('/login');
    const first = await client.post('/login', { password: 'wrong-password-1' });
    assert.equal(first.status, 401);
    assert.match(first.text, /Wrong password/);
    const started = Date.now();
    assert.equal((await client.post('/login', { password: 'wrong-password-2' })).status, 401);
    assert.ok(
      Date.now() - started >= 450,
      `second failure was delayed (${Date.now() - started} ms)`,
    );
    const ok = await client.post('/login', { password: ADMIN });
    assert.equal(ok.status, 303);
    assert.equal((await client.get('/')).status, 200);
    await client.post('/logout');
    assert.equal((await client.get('/')).location, '/login');
  });

  test('every state-changing route refuses a request without a valid CSRF token (routes read from the app, so a new one is covered)', async () => {
    const routes = stateChangingRoutes();
    const checked = new Set(routes.map((r) => `${r.method} ${r.path}`));
    const queued = '/api/queue/0000000000000000000A';
    for (const required of [
      'POST /setup',
      'POST /login',
      'POST /logout',
      'POST /sender/preflight',
      `POST ${queued}/retry`,
      `POST ${queued}/hold`,
      `POST ${queued}/release`,
      'PATCH /api/settings',
    ]) {
      assert.ok(checked.has(required), `${required} is among the routes checked`);
    }
    assert.ok(routes.length >= 25, `${routes.length} state-changing routes found`);
    const form: Record<string, string> = {
      name: 'evil',
      password: 'evil-password-1',
      to: 'victim@example.com',
      label: 'evil',
      do: 'retry-all',
      host: 'evil.example',
      address: '127.0.0.1',
      id: 'abcdef01',
    };
    const json = { ...form, smtp: { maxMessageSize: 1 } };
    for (const { method, path: route } of routes) {
      const attempts = [
        ['form without _csrf', { form }],
        ['form with a forged _csrf', { form: { ...form, _csrf: 'forged-token' } }],
        ['JSON without X-CSRF-Token', { json }],
        ['JSON with a forged X-CSRF-Token', { json, headers: { 'x-csrf-token': 'forged' } }],
      ] as const;
      for (const [what, options] of attempts) {
        const response = await admin.request(method, route, options);
        // Setup is closed once a password exists (its CSRF check before that is in the first test)
        if (route === '/setup')
          assert.equal(response.location, '/login', `${method} ${route}: ${what}`);
        else
          assert.equal(response.status, 403, `${method} ${route}: ${what} got ${response.status}`);
      }
    }
    const login = new WebClient(base);
    await login.get('/login');
    assert.equal(
      (await login.request('POST', '/login', { form: { password: ADMIN } })).status,
      403,
      'login form without its CSRF token',
    );
    // Nothing happened: the session still works, no mailbox "evil", no token, settings unchanged
    const mailboxes = await admin.get('/api/mailboxes');
    assert.equal(mailboxes.status, 200);
    assert.doesNotMatch(mailboxes.text, /evil/);
    assert.equal((await admin.get('/api/tokens')).text, '[]');
    assert.doesNotMatch(await fs.readFile(relay.configFile, 'utf8'), /maxMessageSize|evil/);
  });

  test('names, HELOs and addresses from devices are escaped on the page', async () => {
    const smtp = await RawSmtp.connect(relay.smtpPort);
    await smtp.reply();
    assert.match(await smtp.command('EHLO <script>alert(1)</script>\r\n'), /^250/);
    assert.match(await smtp.command("MAIL FROM:<o'neil&co@evil.test>\r\n"), /^250/);
    assert.match(await smtp.command('RCPT TO:<someone@example.com>\r\n'), /^250/);
    assert.match(await smtp.command('DATA\r\n'), /^354/);
    assert.match(await smtp.command('Subject: hi\r\n\r\nbody\r\n.\r\n'), /^250/);
    smtp.close();
    await upstream.waitFor(1);
    await admin.get('/devices');
    const named = await admin.post('/devices/name', {
      address: '127.0.0.1',
      name: '<b onmouseover=alert(3)>copier</b>',
    });
    assert.equal(named.status, 303);
    const page = await waitForPage(admin, '/devices', /onmouseover/);
    assert.doesNotMatch(
      page,
      /<script>alert|<b onmouseover/,
      'no live markup from the HELO or the name',
    );
    assert.match(page, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/, 'the HELO is shown as text');
    assert.match(page, /&lt;b onmouseover=alert\(3\)&gt;copier/, 'the name is shown as text');
    assert.match(
      await waitForPage(admin, '/', /neil/),
      /o&#39;neil&amp;co@evil\.test/,
      'the sender address is escaped in recent deliveries',
    );
  });

  test('no page or API response contains the upstream password', async () => {
    await admin.get('/settings');
    const saved = await admin.post('/settings', {
      mode: 'smarthost',
      host: '127.0.0.1',
      port: String(upstream.port),
      security: 'starttls',
      user: 'relay@contoso.test',
      password: '',
      verify: 'on',
      allowNetworks: '127.0.0.0/8',
      localDomains: 'relay.test',
      maxMessageSize: '50',
      retryDelays: '1s',
      maxAge: '5d',
      upstreamFailingFor: '15m',
      queueThreshold: '100',
      webhook: '',
      digestTo: '',
    });
    assert.equal(saved.status, 303, 'saved with an empty password field');
    assert.match(
      await fs.readFile(relay.configFile, 'utf8'),
      new RegExp(SECRET),
      'the stored password was kept',
    );
    const bad = await admin.post('/settings', {
      host: '127.0.0.1',
      port: '99999',
      allowNetworks: '10.0.0.0/33',
      password: '',
    });
    assert.equal(bad.status, 400);
    const sent = await admin.post('/test-mail', { to: 'check@example.com' });
    assert.match(sent.text, /Accepted by the upstream/);
    const pages = [
      '/',
      '/queue',
      '/settings',
      '/mailboxes',
      '/devices',
      '/test-mail',
      '/tokens',
      '/api/status',
      '/api/settings',
      '/api/queue',
      '/api/devices',
      '/api/mailboxes',
      '/api/tokens',
      '/metrics',
      '/healthz',
    ];
    for (const route of pages) {
      const response = await admin.get(route);
      assert.equal(response.status, 200, route);
      assert.ok(!response.text.includes(SECRET), `${route} does not contain the password`);
    }
    for (const text of [saved.text, bad.text, sent.text]) assert.ok(!text.includes(SECRET));
    assert.match((await admin.get('/api/settings')).text, /"passwordSet":true/);
    assert.ok(!relay.output().includes(SECRET), 'nor does the log');
  });

  test('settings errors are shown next to the field and nothing is saved', async () => {
    await admin.get('/settings');
    const before = await fs.readFile(relay.configFile, 'utf8');
    const bad = await admin.post('/settings', {
      mode: 'smarthost',
      host: '127.0.0.1',
      port: '587',
      security: 'starttls',
      allowNetworks: '127.0.0.0/8\n10.0.0.0/33',
      localDomains: 'relay.test',
      maxMessageSize: '50',
      retryDelays: '1m, soon',
      maxAge: '5d',
      upstreamFailingFor: '15m',
      queueThreshold: '100',
    });
    assert.equal(bad.status, 400);
    assert.match(
      bad.text,
      /<div class="field-error" id="allowNetworks-error">Entry 2: Expected a network/,
    );
    assert.match(
      bad.text,
      /<div class="field-error" id="retryDelays-error">Entry 2: Expected a duration/,
    );
    assert.match(bad.text, /10\.0\.0\.0\/33/, 'what was typed is kept in the form');
    assert.equal(await fs.readFile(relay.configFile, 'utf8'), before);
  });

  test('API tokens: /metrics and /api need a session or a token; a revoked token stops working', async () => {
    assert.equal((await new WebClient(base).get('/metrics')).status, 401);
    assert.equal((await new WebClient(base).get('/api/status')).status, 401);
    const created = await admin.request('POST', '/api/tokens', {
      json: { label: 'Deploy script', scope: 'admin' },
      headers: { 'x-csrf-token': admin.csrf },
    });
    assert.equal(created.status, 201);
    const { token, id } = JSON.parse(created.text) as { token: string; id: string };
    const bot = new WebClient(base);
    const metrics = await bot.get('/metrics', { authorization: `Bearer ${token}` });
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /^edge_relay_messages_accepted_total [1-9]/m);
    assert.match(
      metrics.text,
      /^edge_relay_recipients_total\{status="delivered",reason="ok"\} [1-9]/m,
    );
    assert.match(metrics.text, /^edge_relay_queue_messages\{state="deferred"\} \d+/m);
    assert.match(metrics.text, /^edge_relay_delivery_duration_seconds_bucket/m);
    const retried = await bot.request('POST', '/api/queue/retry-all', {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(
      retried.status,
      200,
      'a token needs no CSRF token (browsers never send it by themselves)',
    );
    assert.equal(
      (await bot.get('/', { authorization: `Bearer ${token}` })).location,
      '/login',
      'a token does not open the pages',
    );
    assert.equal(
      (
        await admin.request('DELETE', `/api/tokens/${id}`, {
          headers: { 'x-csrf-token': admin.csrf },
        })
      ).status,
      200,
    );
    assert.equal((await bot.get('/metrics', { authorization: `Bearer ${token}` })).status, 401);
    assert.ok(
      !(await fs.readFile(path.join(relay.dataDir, 'api-tokens.json'), 'utf8')).includes(
        token.split('_')[2] ?? 'x',
      ),
      'only a hash is stored',
    );
  });

  test('/healthz: 200 JSON without login, 503 when the spool is not writable', async () => {
    await smtplibSend(
      relay.smtpPort,
      'ups@office.test',
      ['ops@example.com'],
      'Subject: x\r\n\r\ny\r\n',
    );
    const healthy = await new WebClient(base).get('/healthz');
    assert.equal(healthy.status, 200);
    const body = JSON.parse(healthy.text) as { status: string; queue: { depth: number } };
    assert.equal(body.status, 'ok');
    assert.equal(typeof body.queue.depth, 'number');
    const tmp = path.join(relay.dataDir, 'spool', 'tmp');
    await fs.rename(tmp, `${tmp}.aside`);
    await fs.writeFile(tmp, 'not a folder');
    try {
      const broken = await new WebClient(base).get('/healthz');
      assert.equal(broken.status, 503);
      assert.equal((JSON.parse(broken.text) as { status: string }).status, 'unavailable');
    } finally {
      await fs.rm(tmp);
      await fs.rename(`${tmp}.aside`, tmp);
    }
    assert.equal((await new WebClient(base).get('/healthz')).status, 200);
  });
});

/** Example values for route parameters; a route with a parameter not named here fails the test until one is added */
const ROUTE_PARAMS: Record<string, string[]> = {
  id: ['0000000000000000000A'],
  action: ['retry', 'hold', 'release', 'delete'],
  name: ['postmaster'],
  address: ['127.0.0.1'],
};

/** Every POST, PUT, PATCH and DELETE route the web app has, with its parameters filled in */
function stateChangingRoutes(): { method: string; template: string; path: string }[] {
  const app = buildApp({
    https: false,
    store: { config: resolveConfig({}, 'routes') },
  } as unknown as WebState);
  const routes = app.routes.filter((r) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method));
  return routes.flatMap(({ method, path: template }) => {
    let paths = [template];
    for (const [, param = ''] of template.matchAll(/:(\w+)/g)) {
      const values = ROUTE_PARAMS[param];
      assert.ok(
        values,
        `${method} ${template}: add an example value for ":${param}" to ROUTE_PARAMS`,
      );
      paths = paths.flatMap((p) => values.map((v) => p.replace(`:${param}`, v)));
    }
    return paths.map((p) => ({ method, template, path: p }));
  });
}

/** The inventory and recent list fill in as events arrive */
const waitForPage = (client: WebClient, route: string, pattern: RegExp): Promise<string> =>
  eventually(
    `${route} to match ${pattern}`,
    async () => {
      const page = await client.get(route);
      return pattern.test(page.text) && page.text;
    },
    { timeoutMs: 5_000 },
  );

describe('admin web page over HTTPS', () => {
  test('a self-signed certificate is generated; cookies are Secure; HSTS is sent', async () => {
    const relay = await launchRelay({ config: { web: { tls: { enabled: true } } } });
    try {
      const cert = await fs.readFile(path.join(relay.dataDir, 'tls', 'web.crt'), 'utf8');
      const response = await new Promise<IncomingMessage>((resolve, reject) => {
        // Trust exactly the generated certificate; its name is the relay's hostname, not 127.0.0.1
        https
          .get(
            {
              host: '127.0.0.1',
              port: relay.webPort,
              path: '/setup',
              ca: cert,
              checkServerIdentity: () => undefined,
            },
            resolve,
          )
          .on('error', reject);
      });
      response.resume();
      assert.equal(response.statusCode, 200);
      assert.match(String(response.headers['set-cookie']), /HttpOnly; Secure; SameSite=Strict/);
      assert.match(String(response.headers['strict-transport-security']), /max-age=/);
    } finally {
      await relay.stop();
    }
  });

  test('an admin-supplied certificate is served (curl verifies it); "admin password --password-stdin" ends setup and its password logs in', async () => {
    const certs = makeCerts();
    const relay = await launchRelay({
      config: {
        web: {
          tls: {
            enabled: true,
            certFile: path.join(certs.dir, 'server.crt'),
            keyFile: path.join(certs.dir, 'server.key'),
          },
        },
      },
    });
    try {
      const base = `https://127.0.0.1:${relay.webPort}`;
      const jar = path.join(relay.dir, 'cookies.txt');
      const curl = async (route: string, form?: Record<string, string>) => {
        const args = [
          '-sS',
          '-i',
          '--cacert',
          certs.caFile,
          '-b',
          jar,
          '-c',
          jar,
          ...(form ? ['--data', new URLSearchParams(form).toString()] : []),
          `${base}${route}`,
        ];
        const result = await run('curl', args);
        assert.equal(result.code, 0, `curl ${route}: ${result.stderr}`);
        const [head = '', ...body] = result.stdout.split('\r\n\r\n');
        return {
          status: Number(/^HTTP\/\S+ (\d+)/.exec(head)?.[1]),
          head,
          body: body.join('\r\n\r\n'),
        };
      };
      const setupFile = path.join(relay.dataDir, 'setup-token');
      await relay.waitForLog((l) => typeof l.setupToken === 'string');
      const setup = await curl('/setup');
      assert.equal(setup.status, 200, 'verified against the test CA');
      assert.match(
        setup.head,
        /^set-cookie: edge_relay_session=[^;]+;.*HttpOnly; Secure; SameSite=Strict/im,
      );
      const untrusted = await run('curl', ['-sS', `${base}/setup`]);
      assert.equal(
        untrusted.code,
        60,
        'without the CA the certificate is not trusted: it is ours, not a public one',
      );
      assert.ok(statSync(setupFile).isFile());

      const set = await relay.cli(['admin', 'password', '--password-stdin'], `${ADMIN}\n`);
      assert.equal(set.code, 0, set.stderr);
      await assert.rejects(
        fs.stat(setupFile),
        'the setup token file is gone with the password set',
      );
      assert.match((await curl('/setup')).head, /^location: \/login\r?$/im, 'setup is closed');

      const login = await curl('/login');
      const csrf = /name="_csrf" value="([^"]+)"/.exec(login.body)?.[1] ?? '';
      assert.equal(
        (await curl('/login', { _csrf: csrf, password: 'not the password' })).status,
        401,
      );
      const ok = await curl('/login', { _csrf: csrf, password: ADMIN });
      assert.equal(ok.status, 303);
      assert.match(ok.head, /^location: \/\r?$/im);
      assert.match((await curl('/')).body, /<h1>Dashboard<\/h1>/);
    } finally {
      await relay.stop();
    }
  });
});
