/**
 * The admin pages over HTTP as a person clicks them: queue hold, release and
 * delete (one, or the ticked ones), a message's headers, the same over the
 * API; mailboxes with their counts and sizes, set password, remove; and
 * settings changed through the API that count at once: a short session
 * lifetime, a digest schedule.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { poplibLogin, smtplibSend } from '../support/clients.js';
import { setupAdmin, WebClient } from '../support/browser.js';
import { newMail, launchRelay, type RunningRelay } from '../support/relay.js';
import { eventually } from '../support/wait.js';

const ADMIN = 'pages admin passphrase';

interface Item {
  id: string;
  held: boolean;
  recipients: { address: string }[];
}

describe('admin pages: queue, mailboxes, settings that count at once', () => {
  let relay: RunningRelay;
  let base: string;
  let admin: WebClient;

  const api = async <T>(route: string): Promise<T> =>
    JSON.parse((await admin.get(route)).text) as T;
  const queue = () => api<Item[]>('/api/queue');
  const idFor = async (address: string): Promise<string> => {
    const item = (await queue()).find((i) => i.recipients.some((r) => r.address === address));
    assert.ok(item, `a queued message for ${address}`);
    return item.id;
  };
  const heldById = async (): Promise<Record<string, boolean>> =>
    Object.fromEntries((await queue()).map((i) => [i.id, i.held]));
  /** A form post, then the page it redirects to (where the flash message shows) */
  const click = async (
    route: string,
    form: Record<string, string | string[]>,
    back: string,
  ): Promise<string> => {
    const response = await admin.post(route, form);
    assert.equal(response.status, 303, `${route}: ${response.text.slice(0, 300)}`);
    assert.equal(response.location, back);
    return (await admin.get(back)).text;
  };
  const sendApi = (method: string, route: string, json?: unknown) =>
    admin.request(method, route, { json, headers: { 'x-csrf-token': admin.csrf } });

  before(async () => {
    // No upstream: devices' mail waits in the queue, as on a box not yet set up
    relay = await launchRelay();
    base = `http://127.0.0.1:${relay.webPort}`;
    const token = String(
      (await relay.waitForLog((l) => typeof l.setupToken === 'string')).setupToken,
    );
    admin = await setupAdmin(base, token, ADMIN);
  });
  after(async () => {
    await relay.stop();
  });

  test('queue: hold and release one, act on the ticked ones, delete; the headers page', async () => {
    for (const who of ['a', 'b', 'c'])
      await smtplibSend(
        relay.smtpPort,
        'scanner@office.test',
        [`${who}@example.com`],
        `Subject: for ${who}\r\n\r\npage\r\n`,
      );
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((who) => idFor(`${who}@example.com`)));
    assert.ok(a && b && c);

    let page = await click('/queue', { do: `hold:${a}` }, '/queue');
    assert.match(page, /1 message put on hold/);
    assert.match(page, new RegExp(`value="release:${a}"`), 'a held message offers Release');
    assert.deepEqual(await heldById(), { [a]: true, [b]: false, [c]: false });

    assert.match(
      await click('/queue', { do: 'hold', ids: [b, c] }, '/queue'),
      /2 messages put on hold/,
    );
    assert.deepEqual(await heldById(), { [a]: true, [b]: true, [c]: true });
    assert.match(
      await click('/queue', { do: 'release', ids: [a, b] }, '/queue'),
      /2 messages released/,
    );
    assert.deepEqual(await heldById(), { [a]: false, [b]: false, [c]: true });
    assert.match(
      await click('/queue', { do: 'delete' }, '/queue'),
      /Select one or more messages first/,
    );
    assert.equal((await queue()).length, 3, 'nothing ticked, nothing deleted');
    assert.match(
      await click('/queue', { do: 'delete', ids: [a, c] }, '/queue'),
      /2 messages deleted/,
    );
    assert.deepEqual(Object.keys(await heldById()), [b]);

    page = (await admin.get(`/queue/${b}`)).text;
    assert.match(page, /<h2>Headers<\/h2><pre>[^<]*Subject: for b/);
    assert.match(page, /scanner@office\.test/);
    assert.match(page, /HELO printer\.lan/);
    const bogus = await admin.get('/queue/not-an-id');
    assert.equal(bogus.status, 400);
    assert.match(bogus.text, /Not a queue id: "not-an-id"/);
  });

  test('queue over the API: hold, release, and an unknown action is a 400', async () => {
    const [item] = await queue();
    assert.ok(item);
    assert.equal((await sendApi('POST', `/api/queue/${item.id}/hold`)).status, 200);
    assert.equal((await api<{ item: Item }>(`/api/queue/${item.id}`)).item.held, true);
    assert.equal((await sendApi('POST', `/api/queue/${item.id}/release`)).status, 200);
    assert.equal((await api<{ item: Item }>(`/api/queue/${item.id}`)).item.held, false);
    const unknown = await sendApi('POST', `/api/queue/${item.id}/explode`);
    assert.equal(unknown.status, 400);
    assert.match(unknown.text, /Unknown queue action \\"explode\\"/);
  });

  test('mailboxes: counts and sizes shown, set password and remove from the page', async () => {
    assert.match(
      await click('/mailboxes', { name: 'scans', password: 'scans-password-1' }, '/mailboxes'),
      /<div class="notice ok" role="status">Mailbox &quot;scans&quot; added<\/div>/,
    );
    for (const n of [1, 2])
      await smtplibSend(
        relay.smtpPort,
        'scanner@office.test',
        ['scans@relay.test'],
        `Subject: scan ${n}\r\n\r\n${'x'.repeat(2000)}\r\n`,
      );
    const row = await eventually(
      'two messages in scans',
      async () =>
        (await api<{ name: string; messages: number; bytes: number }[]>('/api/mailboxes')).find(
          (r) => r.name === 'scans' && r.messages === 2,
        ),
      { timeoutMs: 10_000 },
    );
    assert.ok(row.bytes > 4000, `size counts the bodies (${row.bytes})`);
    const page = (await admin.get('/mailboxes')).text;
    assert.match(
      page,
      new RegExp(
        `<strong>scans</strong></td>\\s*<td class="num">2</td><td class="num">${(row.bytes / 1024).toFixed(1)} KB</td>`,
      ),
    );

    const port = relay.pop3Port!;
    assert.match(
      await click(
        '/mailboxes/password',
        { name: 'scans', password: 'scans-password-2' },
        '/mailboxes',
      ),
      /<div class="notice ok" role="status">Password of &quot;scans&quot; changed<\/div>/,
    );
    assert.equal(
      await poplibLogin(port, 'scans', 'scans-password-2'),
      'ok',
      'the new password opens the mailbox',
    );
    assert.match(
      await poplibLogin(port, 'scans', 'scans-password-1'),
      /^-ERR \[AUTH\]/,
      'the old one does not',
    );

    assert.match(
      await click('/mailboxes/remove', { name: 'postmaster' }, '/mailboxes'),
      /<div class="notice error" role="status">The postmaster mailbox &quot;postmaster&quot; receives bounces and alerts and can&#39;t be removed<\/div>/,
    );
    assert.match(
      await click('/mailboxes/remove', { name: 'scans' }, '/mailboxes'),
      /removed with its messages/,
    );
    assert.deepEqual(
      (await api<{ name: string }[]>('/api/mailboxes')).map((r) => r.name),
      ['postmaster'],
    );
  });

  test('a short session lifetime set through the API: a new login expires and goes back to /login', async () => {
    assert.equal(
      (await sendApi('PATCH', '/api/settings', { web: { sessionTtl: '1s' } })).status,
      200,
    );
    const short = new WebClient(base);
    await short.get('/login');
    assert.equal((await short.post('/login', { password: ADMIN })).location, '/');
    assert.equal((await short.get('/')).status, 200);
    await eventually(
      'the 1 s session to expire: back to the login page',
      async () => (await short.get('/')).location === '/login',
      { timeoutMs: 5_000 },
    );
    assert.equal((await short.get('/api/status')).status, 401);
    assert.equal(
      (await admin.get('/')).status,
      200,
      'a session keeps the lifetime it was given at login',
    );
    assert.equal(
      (await sendApi('PATCH', '/api/settings', { web: { sessionTtl: '12h' } })).status,
      200,
    );
  });

  test('a digest schedule set through the API sends the summary into the postmaster mailbox', async () => {
    const before = newMail(relay, 'postmaster').length;
    assert.equal(
      (
        await sendApi('PATCH', '/api/settings', {
          alerts: { digest: { schedule: '* * * * * *', to: 'postmaster' } },
        })
      ).status,
      200,
    );
    try {
      const digest = await eventually(
        'a digest',
        () =>
          newMail(relay, 'postmaster')
            .slice(before)
            .find((m) => m.includes('Daily summary')),
        { timeoutMs: 10_000 },
      );
      assert.match(digest, /^Subject: \[edge-relay\] Daily summary \d{4}-\d\d-\d\d\r$/m);
      assert.match(digest, /^Accepted from devices: [1-9]\d* {3}Refused: 0\r$/m);
      assert.match(digest, /^In the queue now: \d+ new, \d+ waiting to retry, \d+ on hold\r$/m);
      assert.match(digest, /^Upstream: not-configured\r$/m);
    } finally {
      assert.equal(
        (
          await sendApi('PATCH', '/api/settings', {
            alerts: { digest: { schedule: '0 7 * * *', to: '' } },
          })
        ).status,
        200,
      );
    }
  });
});
