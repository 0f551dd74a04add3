/**
 * Hostile input on the admin web page, over real HTTP against the real relay:
 * malformed JSON and forms on every state-changing route (logged in and not,
 * seeded: FUZZ_WEB_ROUNDS rounds, FUZZ_SEED), huge bodies (413 with a clear
 * message, never a hang), path traversal on every route (never a file that
 * should not be served), and XSS payloads in every field shown back (escaped,
 * never live markup), with a CSP on every page.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RawSmtp, run } from '../support/clients.js';
import { setupAdmin, WebClient, type WebResponse } from '../support/browser.js';
import { isAlive } from '../support/faults.js';
import { eventually } from '../support/wait.js';
import { Rng } from '../support/fuzz.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';

const ROUNDS = Number(process.env.FUZZ_WEB_ROUNDS ?? 3);
const SEED = Number(process.env.FUZZ_SEED ?? 20261127);
const ADMIN = 'correct horse battery';
const CANARY = `canary-${process.pid}-not-for-the-web`;

/** Every state-changing route: method and path (with a sample id where the route has one) */
const ROUTES: [string, string][] = [
  ['POST', '/setup'],
  ['POST', '/login'],
  ['POST', '/queue'],
  ['POST', '/settings'],
  ['POST', '/mailboxes'],
  ['POST', '/mailboxes/remove'],
  ['POST', '/mailboxes/password'],
  ['POST', '/devices/name'],
  ['POST', '/test-mail'],
  ['POST', '/tokens'],
  ['POST', '/tokens/revoke'],
  ['POST', '/sender/preflight'],
  ['POST', '/sender/oauth/signout'],
  ['POST', '/api/queue/retry-all'],
  ['POST', '/api/queue/0000000000000000000A/hold'],
  ['PATCH', '/api/settings'],
  ['POST', '/api/mailboxes'],
  ['DELETE', '/api/mailboxes/nobody'],
  ['POST', '/api/mailboxes/nobody/password'],
  ['POST', '/api/devices/127.0.0.1/name'],
  ['POST', '/api/test-mail'],
  ['POST', '/api/tokens'],
  ['DELETE', '/api/tokens/abcdef01'],
  ['POST', '/logout'],
];
/** Every page and GET route, for traversal and headers */
const PAGES = [
  '/',
  '/queue',
  '/queue/0000000000000000000A',
  '/devices',
  '/devices/127.0.0.1/transcripts',
  '/mailboxes',
  '/settings',
  '/sender',
  '/test-mail',
  '/tokens',
  '/login',
  '/setup',
  '/healthz',
  '/metrics',
  '/assets/app.css',
  '/api/status',
  '/api/queue',
  '/api/settings',
  '/api/mailboxes',
  '/api/devices',
  '/api/tokens',
  '/api/sender',
];

const JSON_BODIES = [
  '{',
  '{"name":',
  '[]',
  'null',
  '"text"',
  '1e999',
  '{"name":{"toString":null},"password":{"valueOf":null},"to":[],"label":{}}',
  '{"__proto__":{"polluted":1},"smtp":{"__proto__":null}}',
  '{"constructor":{"prototype":{"x":1}}}',
  '['.repeat(50_000),
  '{"a":"\\ud800"}',
  '\u0000\u0001',
];
const FORM_BODIES = [
  '%',
  '%zz=%',
  'a=%E0%A4%A',
  '&&&=&=',
  '=x',
  `name=${'%00'.repeat(100)}`,
  `${'a'.repeat(5000)}=1`,
  'do=retry:../../etc/passwd&ids=..%2F..',
  'name[]=x&name[y]=z',
  `_csrf=${'x'.repeat(10_000)}`,
];
const TYPES = [
  'application/json',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'multipart/form-data',
  'text/plain',
  'application/json; charset=utf-16',
  '',
];

function malformedBody(rng: Rng): { type: string; body: Buffer } {
  const type = rng.pick(TYPES);
  const kind = rng.int(4);
  if (kind === 0) return { type, body: Buffer.from(rng.pick(JSON_BODIES)) };
  if (kind === 1) return { type, body: Buffer.from(rng.pick(FORM_BODIES)) };
  if (kind === 2)
    return {
      type,
      body: Buffer.from(
        `--xyz\r\nContent-Disposition: form-data; name="${rng.pick(['name', '"', '', 'a\u0000'])}"\r\n\r\n${rng.pick(['x', ''])}${rng.chance(0.5) ? '\r\n--xyz--' : ''}`,
      ),
    };
  return { type, body: rng.bytes(rng.int(3000)) };
}

/**
 * A request exactly as written (no URL normalisation, unlike fetch). The server may answer before reading
 * a body it refuses and then close: as browsers and curl do, the answer counts, not the failed upload.
 */
function rawRequest(
  port: number,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body?: Buffer,
): Promise<WebResponse> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const request = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: target,
        headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) },
        timeout: 20_000,
      },
      (response) => {
        answered = true;
        const chunks: Buffer[] = [];
        const done = () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(response.headers))
            if (typeof v === 'string') h.set(k, v);
          resolve({
            status: response.statusCode ?? 0,
            headers: h,
            text: Buffer.concat(chunks).toString('utf8'),
            location: response.headers.location ?? null,
          });
        };
        response.on('data', (d: Buffer) => chunks.push(d));
        response.on('end', done);
        response.on('close', done);
      },
    );
    request.on('timeout', () =>
      request.destroy(new Error(`${method} ${target.slice(0, 80)}: no answer in 20 s`)),
    );
    request.on('error', (err) => answered || reject(err));
    request.end(body);
  });
}

describe(`web fuzzing (seed ${SEED})`, () => {
  let relay: RunningRelay;
  let admin: WebClient;
  let port: number;
  const auth = () => ({ cookie: admin.cookie, 'x-csrf-token': admin.csrf });

  before(async () => {
    relay = await launchRelay();
    port = relay.webPort!;
    const token = String(
      (await relay.waitForLog((l) => typeof l.setupToken === 'string')).setupToken,
    );
    admin = await setupAdmin(`http://127.0.0.1:${port}`, token, ADMIN);
    // Files a traversal would love to reach: next to the config and in the data dir
    for (const dir of [relay.dir, relay.dataDir])
      writeFileSync(path.join(dir, 'canary.txt'), CANARY);
  });
  after(async () => {
    await relay?.stop();
  });

  test(`malformed JSON and forms on ${ROUTES.length} state-changing routes, logged in and not: a 4xx or a page saying what was wrong, never a 500, never a hang`, async () => {
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const rng = new Rng(SEED + round);
      for (const [method, route] of ROUTES) {
        if (route === '/logout') continue; // it would end the admin session the other checks use
        for (const withSession of [true, false]) {
          const { type, body } = malformedBody(rng);
          const response = await rawRequest(
            port,
            method,
            route,
            { ...(withSession ? auth() : {}), ...(type ? { 'content-type': type } : {}) },
            body,
          );
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          if (response.status >= 500)
            failures.push(
              `${method} ${route} (${withSession ? 'logged in' : 'anonymous'}, ${type}, ${JSON.stringify(body.subarray(0, 60).toString('latin1'))}): ${response.status} ${response.text.slice(0, 200)}`,
            );
        }
      }
    }
    console.log(
      `fuzz-web: ${ROUNDS * (ROUTES.length - 1) * 2} malformed requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
    assert.deepEqual(failures, []);
    assert.deepEqual(
      relay.logs.filter((l) => l.msg === 'Web request failed').map((l) => l.err),
      [],
      'no request failed inside the server',
    );
    assert.doesNotMatch(
      (await admin.get('/api/settings')).text,
      /polluted/,
      'a __proto__ key in a settings patch changed nothing',
    );
    assert.equal((await admin.get('/api/status')).status, 200, 'the admin session still works');
    assert.ok(isAlive(relay.process.pid!));
  });

  test('huge bodies get a 413 naming the limit (curl, with and without Content-Length), logged in or not, quickly', async () => {
    const file = path.join(relay.dir, 'huge.bin');
    writeFileSync(file, Buffer.alloc(8 * 1024 * 1024, 'a'));
    for (const [method, route, withSession] of [
      ['POST', '/login', false],
      ['POST', '/mailboxes', true],
      ['PATCH', '/api/settings', true],
      ['POST', '/api/tokens', false],
    ] as const) {
      for (const chunked of [false, true]) {
        const headers = Object.entries(withSession ? auth() : {}).flatMap(([k, v]) => [
          '-H',
          `${k}: ${v}`,
        ]);
        const started = Date.now();
        const result = await run('curl', [
          '-sS',
          '-X',
          method,
          ...headers,
          '-H',
          'Content-Type: application/json',
          ...(chunked ? ['-H', 'Transfer-Encoding: chunked'] : []),
          '--data-binary',
          `@${file}`,
          '-D',
          '-',
          `http://127.0.0.1:${port}${route}`,
        ]);
        const what = `${method} ${route} ${chunked ? 'chunked' : 'sized'}: ${result.stdout.slice(0, 300)} ${result.stderr}`;
        assert.match(result.stdout, /^HTTP\/1\.1 413 /m, what);
        assert.match(
          result.stdout,
          route.startsWith('/api/')
            ? /\{"error":"Request body too large: the limit is 262144 bytes \(256 KB\)"\}/
            : /Request body too large: the limit is 262144 bytes/,
          what,
        );
        assert.match(result.stdout, /^content-security-policy: default-src 'none'/im, what);
        assert.ok(
          Date.now() - started < 10_000,
          `${what}: answered after ${Date.now() - started} ms`,
        );
      }
    }
    assert.ok(isAlive(relay.process.pid!));
    assert.equal((await admin.get('/api/status')).status, 200);
  });

  test('path traversal on every route never serves a file: no canary, no /etc/passwd, no 500', async () => {
    const tricks = [
      '/../../../../etc/passwd',
      '/..%2f..%2f..%2fetc%2fpasswd',
      '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '/%252e%252e%252fcanary.txt',
      '/..\\..\\canary.txt',
      '/../canary.txt',
      '/../data/canary.txt',
      '/%2e%2e%2fcanary.txt',
      '/canary.txt%00.css',
      '/%00',
      '/..%00/',
      '/.%2e/.%2e/canary.txt',
      '/%c0%ae%c0%ae/canary.txt',
    ];
    const targets = [
      ...PAGES.flatMap((page) => tricks.map((trick) => `${page === '/' ? '' : page}${trick}`)),
      ...tricks,
      ...tricks.map((t) => `/assets${t}`),
      `/${'a'.repeat(100_000)}`,
      `/queue/${'%2e%2e%2f'.repeat(5000)}`,
    ];
    const seen = new Map<number, number>();
    for (const target of targets) {
      for (const headers of [auth(), {}]) {
        const response = await rawRequest(port, 'GET', target, headers);
        seen.set(response.status, (seen.get(response.status) ?? 0) + 1);
        assert.ok(
          response.status < 500,
          `${target.slice(0, 100)}: ${response.status} ${response.text.slice(0, 200)}`,
        );
        assert.ok(
          !response.text.includes(CANARY) && !/root:x:0:0/.test(response.text),
          `${target.slice(0, 100)} served a file`,
        );
      }
    }
    console.log(
      `fuzz-web: ${targets.length * 2} traversal requests, statuses ${JSON.stringify(Object.fromEntries(seen))}`,
    );
  });

  test('XSS payloads in every field shown back come back escaped; every page has the CSP', async () => {
    const xss = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'';
    const live = /<script>alert|<img src=x/;
    const escaped = /&lt;script&gt;alert\(1\)&lt;\/script&gt;&lt;img src=x onerror=alert\(2\)&gt;/;
    // A device with a hostile HELO, sender and subject: its message waits in the queue (no upstream is set)
    const smtp = await RawSmtp.connect(relay.smtpPort);
    await smtp.reply();
    assert.match(await smtp.command(`EHLO ${xss.replace(/[ "']/g, '')}\r\n`), /^250/);
    // smtp-server refuses "<" in an address; quotes and ampersands get through
    assert.match(await smtp.command("MAIL FROM:<o'neil&co@evil.test>\r\n"), /^250/);
    assert.match(await smtp.command('RCPT TO:<someone@example.com>\r\n'), /^250/);
    assert.match(await smtp.command('DATA\r\n'), /^354/);
    const queued = /queued as ([0-9A-Z]+)/.exec(
      await smtp.command(`Subject: ${xss}\r\nFrom: ${xss}\r\n\r\nbody\r\n.\r\n`),
    )?.[1];
    smtp.close();
    assert.ok(queued, 'the message was queued');
    const shown: [string, WebResponse][] = [];
    const show = async (label: string, response: Promise<WebResponse>) =>
      shown.push([label, await response]);
    await show(
      'device name',
      admin
        .post('/devices/name', { address: '127.0.0.1', name: xss })
        .then(() => admin.get('/devices')),
    );
    await show('queue', admin.get('/queue'));
    await show('queued message', admin.get(`/queue/${queued}`));
    await show(
      'mailbox name',
      admin
        .post('/mailboxes', { name: xss, password: 'long-enough-pw' })
        .then(() => admin.get('/mailboxes')),
    );
    await show(
      'settings errors',
      admin.post('/settings', {
        host: xss,
        port: xss,
        retryDelays: xss,
        maxAge: xss,
        allowNetworks: xss,
        localDomains: xss,
        webhook: xss,
        digestTo: xss,
      }),
    );
    await show('test mail', admin.post('/test-mail', { to: xss }));
    await show('token label', admin.post('/tokens', { label: xss }));
    await show('preflight domain', admin.post('/sender/preflight', { domain: xss }));
    await show('transcripts address', admin.get(`/devices/${encodeURIComponent(xss)}/transcripts`));
    await show('dashboard', admin.get('/'));
    for (const [label, response] of shown) {
      assert.doesNotMatch(response.text, live, `${label}: live markup`);
      assert.ok(
        response.headers.get('content-security-policy')?.includes("default-src 'none'"),
        `${label}: CSP`,
      );
    }
    assert.match(
      shown.find(([l]) => l === 'queue')![1].text,
      /o&#39;neil&amp;co@evil\.test/,
      'the sender is escaped in the queue',
    );
    for (const label of [
      'device name',
      'queued message',
      'settings errors',
      'test mail',
      'token label',
      'transcripts address',
    ]) {
      assert.match(
        shown.find(([l]) => l === label)![1].text,
        escaped,
        `${label}: the payload is shown as text`,
      );
    }
    await eventually(
      'the HELO on the devices page',
      async () =>
        /&lt;script&gt;alert\(1\)&lt;\/script&gt;&lt;imgsrc=xonerror=alert\(2\)&gt;/.test(
          (await admin.get('/devices')).text,
        ) || undefined,
    );
    for (const page of PAGES)
      assert.ok((await admin.get(page)).headers.get('content-security-policy'), `${page}: CSP`);
  });

  test('a stale form (wrong CSRF token) gets an HTML page saying what to do, not JSON', async () => {
    const response = await admin.request('POST', '/queue', {
      form: { _csrf: 'stale', do: 'retry-all' },
    });
    assert.equal(response.status, 403);
    assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(response.text, /Missing or wrong CSRF token.*reload the page and try again/);
    const api = await admin.request('POST', '/api/queue/retry-all', {
      json: {},
      headers: { 'x-csrf-token': 'stale' },
    });
    assert.equal(api.status, 403);
    assert.match(JSON.parse(api.text).error, /CSRF/);
  });

  test('JSON fields that are objects without a usable toString read as empty (a 400, or an emptied name), never a 500', async () => {
    const routes = [
      '/api/mailboxes',
      '/api/tokens',
      '/api/test-mail',
      '/api/devices/127.0.0.1/name',
      '/api/mailboxes/postmaster/password',
    ];
    for (const route of routes) {
      const body = Buffer.from(
        '{"name":{"toString":null},"password":{"valueOf":null},"label":{"toString":null},"to":{"toString":null}}',
      );
      const response = await rawRequest(
        port,
        'POST',
        route,
        { ...auth(), 'content-type': 'application/json' },
        body,
      );
      assert.equal(
        response.status,
        route.endsWith('/name') ? 200 : 400,
        `POST ${route}: ${response.text}`,
      );
      assert.doesNotThrow(() => JSON.parse(response.text), route);
    }
  });

  test('a broken multipart form is a 400 that says so, not a 500', async () => {
    const response = await rawRequest(
      port,
      'POST',
      '/settings',
      { ...auth(), 'content-type': 'multipart/form-data; boundary=xyz' },
      Buffer.from('garbage\r\n--xyz\r\nbroken'),
    );
    assert.equal(response.status, 400);
    assert.match(
      response.text,
      /^Cannot read the form sent as "multipart\/form-data; boundary=xyz"/,
    );
  });
});
