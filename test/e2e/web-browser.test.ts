/**
 * The admin page in headless Chromium, as an IT generalist uses it on first
 * start: setup with the token from the log, log in (a wrong password is
 * refused), act on the queue, enter the upstream and watch waiting mail go
 * out, add a mailbox, send a test mail, and a screenshot of the dashboard
 * (always saved as test-artifacts/dashboard.png; UPDATE_DOCS_SCREENSHOT=1
 * also copies it to docs/dashboard.png for the README).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { makeCerts } from '../support/certs.js';
import { smtplibSend } from '../support/clients.js';
import { launchBrowser } from '../support/browser.js';
import { ROOT, launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const ADMIN = 'a long admin passphrase';

describe('admin page in a real browser', () => {
  let browser: Browser;
  let page: Page;
  let upstream: Upstream;
  let relay: RunningRelay;
  let base: string;

  const queueIds = async (): Promise<string[]> =>
    page
      .locator('input[name="ids"]')
      .evaluateAll((boxes) => boxes.map((b) => (b as HTMLInputElement).value));

  before(async () => {
    upstream = await startUpstream({ requireTls: true });
    // No upstream yet (first start); only the test CA is known, as an admin would have it in a real setup
    relay = await launchRelay({
      config: { delivery: { tls: { verify: true, caFile: makeCerts().caFile } } },
    });
    base = `http://127.0.0.1:${relay.webPort}`;
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });
  after(async () => {
    await browser?.close();
    await relay.stop();
    await upstream.close();
  });

  test('first start: setup with the token from the log', async () => {
    const token = String(
      (await relay.waitForLog((l) => typeof l.setupToken === 'string')).setupToken,
    );
    await page.goto(`${base}/`);
    assert.equal(new URL(page.url()).pathname, '/setup');
    await page.fill('#token', token);
    await page.fill('#password', ADMIN);
    await page.fill('#confirm', ADMIN);
    await page.click('button[type=submit]');
    await page.waitForURL(`${base}/`);
    assert.match((await page.textContent('main')) ?? '', /Admin password set/);
    assert.match(
      (await page.textContent('main')) ?? '',
      /Not configured/,
      'the dashboard says the upstream is missing',
    );
  });

  test('log out, a wrong password is refused, the right one logs in', async () => {
    await page.click('header button');
    await page.waitForURL(`${base}/login`);
    await page.fill('#password', 'not the password');
    await page.click('button[type=submit]');
    assert.match((await page.textContent('[role=alert]')) ?? '', /Wrong password/);
    await page.fill('#password', ADMIN);
    await page.click('button[type=submit]');
    await page.waitForURL(`${base}/`);
    assert.equal(await page.textContent('h1'), 'Dashboard');
  });

  test('queue: retry one message, delete another', async () => {
    await smtplibSend(
      relay.smtpPort,
      'scanner@office.test',
      ['boss@example.com'],
      'Subject: scan 1\r\n\r\npage\r\n',
    );
    await smtplibSend(
      relay.smtpPort,
      'scanner@office.test',
      ['spam@example.com'],
      'Subject: scan 2\r\n\r\npage\r\n',
    );
    await page.goto(`${base}/queue`);
    const [keep, drop] = await queueIds();
    assert.ok(keep && drop, 'two messages wait (no upstream yet)');
    assert.match((await page.textContent('main')) ?? '', /No upstream configured/);
    await page.click(`button[value="retry:${keep}"]`);
    assert.match((await page.textContent('[role=status]')) ?? '', /^1 message will be retried now/);
    await page.click(`button[value="delete:${drop}"]`);
    assert.match((await page.textContent('[role=status]')) ?? '', /^1 message deleted/);
    assert.deepEqual(await queueIds(), [keep]);
  });

  test('settings: entering the upstream takes effect at once (waiting and next messages are delivered)', async () => {
    await page.goto(`${base}/settings`);
    await page.fill('#host', '127.0.0.1');
    await page.fill('#port', String(upstream.port));
    await page.selectOption('#security', 'starttls');
    await page.click('button.primary');
    assert.match((await page.textContent('[role=status]')) ?? '', /Settings saved and in use/);
    const [waiting] = await upstream.waitFor(1);
    assert.match(waiting?.raw.toString() ?? '', /Subject: scan 1/);
    await smtplibSend(
      relay.smtpPort,
      'scanner@office.test',
      ['boss@example.com'],
      'Subject: scan 3\r\n\r\npage\r\n',
    );
    const messages = await upstream.waitFor(2);
    assert.match(messages[1]?.raw.toString() ?? '', /Subject: scan 3/);
    assert.equal(
      messages.some((m) => m.raw.toString().includes('scan 2')),
      false,
      'the deleted message never left',
    );
  });

  test('settings: a bad value is shown next to its field', async () => {
    await page.goto(`${base}/settings`);
    await page.fill('#allowNetworks', '192.168.1.0/24\n300.1.1.1/8');
    await page.click('button.primary');
    assert.match(
      (await page.textContent('#allowNetworks-error')) ?? '',
      /Entry 2: Expected a network/,
    );
  });

  test('mailboxes: add one', async () => {
    await page.goto(`${base}/mailboxes`);
    await page.fill('#name', 'scans');
    await page.fill('#new-password', 'scans-password-1');
    await page.click('form[action="/mailboxes"] button');
    assert.match((await page.textContent('[role=status]')) ?? '', /Mailbox "scans" added/);
    assert.match((await page.textContent('table')) ?? '', /scans/);
    const listed = await relay.cli(['mailbox', 'list']);
    assert.match(listed.stdout, /scans/);
  });

  test('send a test mail and see the upstream reply', async () => {
    await page.goto(`${base}/test-mail`);
    await page.fill('#to', 'it@example.com');
    await page.click('button.primary');
    const result = await page.textContent('#result');
    assert.match(result ?? '', /Accepted by the upstream/);
    assert.match(result ?? '', /Ok: accepted by test upstream/);
    const messages = await upstream.waitFor(3);
    assert.deepEqual(messages[2]?.to, ['it@example.com']);
  });

  test('dashboard screenshot', async () => {
    await page.goto(`${base}/devices`);
    await page.fill('input[name="name"]', '3rd floor scanner');
    await page.click('form[action="/devices/name"] button');
    await page.goto(`${base}/`);
    assert.match((await page.textContent('main')) ?? '', /Reachable/);
    const dir = path.join(ROOT, 'test-artifacts');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'dashboard.png');
    await page.screenshot({ path: file, fullPage: true });
    // Saved as a test artifact on every run: a real PNG of the whole page, not an empty or error frame
    const png = readFileSync(file);
    assert.deepEqual(
      [...png.subarray(0, 8)],
      [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
      'PNG signature',
    );
    assert.equal(png.toString('latin1', 12, 16), 'IHDR');
    assert.equal(png.readUInt32BE(16), 1280, 'as wide as the viewport');
    assert.ok(png.readUInt32BE(20) >= 600, `full page height (${png.readUInt32BE(20)} px)`);
    assert.ok(
      png.length > 30_000 && png.length < 5_000_000,
      `a plausible size for a rendered dashboard (${png.length} bytes)`,
    );
    if (process.env.UPDATE_DOCS_SCREENSHOT)
      copyFileSync(file, path.join(ROOT, 'docs', 'dashboard.png'));
  });
});
