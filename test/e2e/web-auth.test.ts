/**
 * The admin page's login under a guessing flood from many LAN hosts
 * (127.0.0.x), and API token scopes, over real HTTP against the real relay.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setupAdminOf, type WebClient } from '../support/browser.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';

const ADMIN = 'correct horse battery';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** One HTTP request from `localAddress` (node's own client: fetch cannot choose the source address) */
function request(
  port: number,
  localAddress: string,
  method: string,
  route: string,
  options: { headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        localAddress,
        method,
        path: route,
        headers: options.headers,
        timeout: 30_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${route}: no answer in 30 s`)));
    req.end(options.body);
  });
}

/** A login form as a browser on `localAddress` gets it; returns a function that submits a password */
async function loginForm(
  port: number,
  localAddress: string,
): Promise<(password: string, accept?: string) => Promise<Reply & { ms: number }>> {
  const page = await request(port, localAddress, 'GET', '/login');
  const cookie = (String(page.headers['set-cookie'] ?? '').split(';')[0] ?? '').trim();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)?.[1] ?? '';
  assert.ok(cookie && csrf, 'the login page gave a session and a CSRF token');
  return async (password, accept = 'text/html') => {
    const started = performance.now();
    const body = new URLSearchParams({ _csrf: csrf, password }).toString();
    const reply = await request(port, localAddress, 'POST', '/login', {
      headers: { cookie, accept, 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    return { ...reply, ms: performance.now() - started };
  };
}

describe('web login throttling and API token scopes', () => {
  let relay: RunningRelay;
  let port: number;
  let admin: WebClient;

  before(async () => {
    relay = await launchRelay();
    port = relay.webPort ?? 0;
    admin = await setupAdminOf(relay, ADMIN);
  });
  after(async () => {
    await relay.stop();
  });

  test('token scopes: metrics reads /metrics only, read reads the API, admin changes; a refusal is a 403 naming the scope', async () => {
    const create = async (label: string, scope?: string) => {
      const created = await relay.cli([
        'admin',
        'token',
        'create',
        label,
        ...(scope ? ['--scope', scope] : []),
      ]);
      assert.equal(created.code, 0, created.stderr);
      const match = /\(id ([0-9a-f]{8})\) with scope (\w+)[\s\S]*\n(er_\S+)/.exec(created.stdout);
      assert.ok(match?.[1] && match[3], created.stdout);
      return { id: match[1], scope: match[2], token: match[3] };
    };
    const prometheus = await create('Prometheus', 'metrics');
    const dashboard = await create('Wall dashboard');
    const deploy = await create('Deploy script', 'admin');
    const legacy = await create('Made before scopes', 'admin');
    assert.equal(dashboard.scope, 'read', 'a new token is read-only unless asked otherwise');
    // A token stored by an older version has no scope at all
    const file = path.join(relay.dataDir, 'api-tokens.json');
    const stored = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>[];
    writeFileSync(
      file,
      JSON.stringify(
        stored.map(({ scope, ...rest }) => (rest.id === legacy.id ? rest : { ...rest, scope })),
      ),
      { mode: 0o600 },
    );
    const bad = await relay.cli(['admin', 'token', 'create', 'x', '--scope', 'everything']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Unknown token scope "everything"; use metrics, read, admin/);

    const call = (token: string, method: string, route: string, json?: unknown) =>
      request(port, '127.0.0.1', method, route, {
        headers: {
          authorization: `Bearer ${token}`,
          ...(json ? { 'content-type': 'application/json' } : {}),
        },
        body: json ? JSON.stringify(json) : undefined,
      });
    const patch = { web: { sessionTtl: '11h' } };

    assert.equal((await call(prometheus.token, 'GET', '/metrics')).status, 200);
    const status = await call(prometheus.token, 'GET', '/api/status');
    assert.equal(status.status, 403);
    assert.equal(
      JSON.parse(status.text).error,
      'This API token has scope "metrics"; GET /api/status needs a token with scope "read" or "admin"',
    );
    const change = await call(prometheus.token, 'PATCH', '/api/settings', patch);
    assert.equal(change.status, 403);
    assert.match(JSON.parse(change.text).error, /needs a token with scope "admin"$/);

    for (const reader of [dashboard, legacy]) {
      for (const route of ['/api/status', '/api/settings', '/api/queue', '/metrics'])
        assert.equal(
          (await call(reader.token, 'GET', route)).status,
          200,
          `${reader.scope} token: GET ${route}`,
        );
      for (const [method, route] of [
        ['PATCH', '/api/settings'],
        ['POST', '/api/queue/retry-all'],
        ['POST', '/api/tokens'],
      ] as const) {
        const refused = await call(reader.token, method, route, patch);
        assert.equal(refused.status, 403, `${method} ${route}`);
        assert.equal(
          JSON.parse(refused.text).error,
          `This API token has scope "read"; ${method} ${route} needs a token with scope "admin"`,
        );
      }
    }
    assert.ok(
      !JSON.parse(
        (await call(deploy.token, 'GET', '/api/settings')).text,
      ).config.web.sessionTtl.startsWith('11'),
      'nothing was changed',
    );

    assert.equal((await call(deploy.token, 'PATCH', '/api/settings', patch)).status, 200);
    assert.equal(
      JSON.parse((await call(deploy.token, 'GET', '/api/settings')).text).config.web.sessionTtl,
      '11h',
    );
    const made = await call(deploy.token, 'POST', '/api/tokens', {
      label: 'Second Prometheus',
      scope: 'metrics',
    });
    assert.equal(made.status, 201);
    assert.equal(JSON.parse(made.text).scope, 'metrics');

    const listed = (await relay.cli(['admin', 'token', 'list'])).stdout;
    assert.match(listed, new RegExp(`^${prometheus.id} .* metrics +Prometheus$`, 'm'));
    assert.match(listed, new RegExp(`^${legacy.id} .* read +Made before scopes$`, 'm'));
    await admin.get('/tokens');
    const page = await admin.post('/tokens', { label: 'From the page', scope: 'metrics' });
    assert.equal(page.status, 200);
    assert.match(page.text, /<td>From the page<\/td><td>metrics<\/td>/);
    assert.match(page.text, /<option value="read" selected>/, 'the form offers read-only first');
  });

  test('30 parallel guesses from 10 hosts: a few are checked, the rest told how long to wait; then the admin gets in', async () => {
    const forms = await Promise.all(
      Array.from({ length: 30 }, (_, i) => loginForm(port, `127.0.0.${20 + (i % 10)}`)),
    );
    const started = performance.now();
    const replies = await Promise.all(
      forms.map((submit, i) =>
        submit(`guess-${i}`, i % 6 === 0 ? 'application/json' : 'text/html'),
      ),
    );
    const elapsed = performance.now() - started;
    const checked = replies.filter((r) => r.status === 401);
    const refused = replies.filter((r) => r.status === 429);
    console.log(
      `web-auth: 30 parallel guesses from 10 hosts: ${checked.length} checked, ${refused.length} refused with 429, all answered in ${Math.round(elapsed)} ms`,
    );
    assert.equal(checked.length + refused.length, 30, replies.map((r) => r.status).join(' '));
    assert.ok(
      checked.length <= 7,
      `at most one check per 0.5 s within the 3 s anyone waits: ${checked.length} checked in ${Math.round(elapsed)} ms`,
    );
    assert.ok(Math.max(...replies.map((r) => r.ms)) < 4_000, 'nobody is held more than about 3 s');
    for (const reply of refused) {
      const seconds = Number(reply.headers['retry-after']);
      assert.ok(
        Number.isInteger(seconds) && seconds >= 1,
        `Retry-After: ${reply.headers['retry-after']}`,
      );
      if (reply.headers['content-type']?.startsWith('application/json'))
        assert.deepEqual(JSON.parse(reply.text), {
          error: `Too many login attempts: wait ${seconds} seconds, then try again`,
          retryAfterSeconds: seconds,
        });
      else
        assert.match(
          reply.text,
          new RegExp(
            `role="alert">Too many login attempts: wait ${seconds} seconds, then try again<`,
          ),
        );
    }
    assert.ok(
      refused.some((r) => r.headers['content-type']?.startsWith('application/json')),
      'a script asking for JSON got JSON',
    );

    // The admin at her own desk: told how long to wait (if at all), and in after that
    const submit = await loginForm(port, '127.0.0.1');
    let reply = await submit(ADMIN);
    for (let tries = 0; reply.status === 429 && tries < 3; tries++) {
      await new Promise((resolve) =>
        setTimeout(resolve, Number(reply.headers['retry-after']) * 1000),
      );
      reply = await submit(ADMIN);
    }
    assert.equal(reply.status, 303, `the right password got in (last answer ${reply.status})`);
    console.log(
      `web-auth: right after the flood the admin's correct password was answered in ${Math.round(reply.ms)} ms`,
    );
    assert.ok(reply.ms < 3_500, `within ${Math.round(reply.ms)} ms`);
  });
});
