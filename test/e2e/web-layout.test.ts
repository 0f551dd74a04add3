/**
 * Every page of the admin site at the desktop widths an IT person uses
 * (1024, 1280, 1920 px) in headless Chromium, measured with element boxes:
 * no control is cut off or scrolled out of its container, the page never
 * scrolls sideways, the navigation stays on one line, text fields are wide
 * enough to type in, and a command or path is never broken inside a word.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { smtplibSend } from '../support/clients.js';
import { launchBrowser, setupAdminOf } from '../support/browser.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';

const WIDTHS = [1024, 1280, 1920];
/** tsx compiles the test keeping function names through a `__name` helper that the page does not have */
const KEEP_NAMES = { content: 'globalThis.__name = (fn) => fn;' };
const PASSWORD = 'a long admin passphrase';

/** Runs in the page: a list of sentences, one per layout problem found */
function layoutProblems(): string[] {
  const problems: string[] = [];
  const describe = (el: Element): string => {
    const text = (el.textContent ?? '').trim().slice(0, 30);
    const name =
      el.getAttribute('name') ?? el.getAttribute('value') ?? el.getAttribute('href') ?? '';
    return `<${el.tagName.toLowerCase()}${name ? ` ${name}` : ''}>${text ? ` "${text}"` : ''}`;
  };
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth + 1)
    problems.push(`the page scrolls sideways (${root.scrollWidth} px in ${root.clientWidth} px)`);
  for (const wrap of document.querySelectorAll('.table-wrap, pre, .card, fieldset')) {
    if (wrap.scrollWidth > wrap.clientWidth + 1 && wrap.tagName !== 'PRE')
      problems.push(
        `${describe(wrap)} overflows (${wrap.scrollWidth} px in ${wrap.clientWidth} px)`,
      );
  }
  const controls = document.querySelectorAll(
    'button, input:not([type=hidden]), select, textarea, nav a, main a',
  );
  for (const control of controls) {
    const box = control.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    for (let parent = control.parentElement; parent; parent = parent.parentElement) {
      const style = getComputedStyle(parent);
      if (style.overflowX === 'visible' && parent !== document.body) continue;
      const outer = parent.getBoundingClientRect();
      if (box.left < outer.left - 1 || box.right > outer.right + 1) {
        problems.push(
          `${describe(control)} is cut off: ${Math.round(box.left)}-${Math.round(box.right)} px outside ${describe(parent).slice(0, 40)} ${Math.round(outer.left)}-${Math.round(outer.right)} px`,
        );
      }
      break;
    }
  }
  for (const field of document.querySelectorAll(
    'main input[type=text], main input[type=password], main input[type=email], main input[type=number]',
  )) {
    const width = field.getBoundingClientRect().width;
    if (width > 0 && width < 120)
      problems.push(`${describe(field)} is only ${Math.round(width)} px wide`);
  }
  const nav = document.querySelector('nav');
  const link = nav?.querySelector('a');
  if (nav && link && nav.getBoundingClientRect().height > link.getBoundingClientRect().height * 1.5)
    problems.push('the navigation wraps onto a second line');
  for (const code of document.querySelectorAll('main code')) {
    // A command may wrap between its words and a path after a slash, never inside a word or a name
    const range = document.createRange();
    const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.textContent ?? '';
      let at = 0;
      for (const word of text.split(/(\s+)/)) {
        if (word.trim()) {
          range.setStart(node, at);
          range.setEnd(node, at + word.length);
          const tops = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top)));
          if (tops.size > 1) problems.push(`${describe(code)} breaks inside "${word}"`);
        }
        at += word.length;
      }
    }
  }
  return problems;
}

describe('admin pages lay out at desktop widths', () => {
  let browser: Browser;
  let page: Page;
  let relay: RunningRelay;
  let base: string;
  let queueId: string;

  before(async () => {
    relay = await launchRelay();
    base = `http://127.0.0.1:${relay.webPort}`;
    // Mail waits in the queue (no upstream): rows with every button, a long error text, a device with transcripts
    for (const n of [1, 2])
      await smtplibSend(
        relay.smtpPort,
        'scanner-with-a-long-name@copier.floor3.office.example',
        ['someone.with.a.long.address@customer.example.com', 'second@example.com'],
        `Subject: scan ${n}\r\n\r\npage\r\n`,
      );
    await relay.cli(['mailbox', 'add', 'scans', '--password-stdin'], 'scans-password-1\n');
    const listed = JSON.parse((await relay.cli(['queue', 'list', '--json'])).stdout) as {
      id: string;
    }[];
    queueId = listed[0]?.id ?? '';
    assert.ok(queueId, 'a message waits');
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await relay.stop();
  });

  test('the setup page, before any password exists', async () => {
    for (const width of WIDTHS) {
      page = await browser.newPage({ viewport: { width, height: 900 } });
      await page.addInitScript(KEEP_NAMES);
      await page.goto(`${base}/setup`);
      assert.deepEqual(await page.evaluate(layoutProblems), [], `/setup at ${width} px`);
      await page.close();
    }
  });

  test('every page after login', async () => {
    const admin = await setupAdminOf(relay, PASSWORD);
    const cookie = admin.cookie.split('=');
    const paths = [
      '/',
      '/queue',
      `/queue/${queueId}`,
      '/devices',
      '/devices/127.0.0.1/transcripts',
      '/mailboxes',
      '/settings',
      '/sender',
      '/test-mail',
      '/tokens',
    ];
    const problems: string[] = [];
    for (const width of WIDTHS) {
      const context = await browser.newContext({ viewport: { width, height: 900 } });
      await context.addCookies([
        { name: cookie[0] ?? '', value: cookie.slice(1).join('='), url: base },
      ]);
      await context.addInitScript(KEEP_NAMES);
      page = await context.newPage();
      for (const at of paths) {
        await page.goto(`${base}${at}`);
        assert.equal(new URL(page.url()).pathname, at, `${at} is shown, not a login redirect`);
        problems.push(
          ...(await page.evaluate(layoutProblems)).map(
            (problem) => `${at} at ${width} px: ${problem}`,
          ),
        );
      }
      await context.close();
    }
    page = await browser.newPage({ viewport: { width: 1024, height: 900 } });
    await page.addInitScript(KEEP_NAMES);
    await page.goto(`${base}/login`);
    problems.push(
      ...(await page.evaluate(layoutProblems)).map((problem) => `/login at 1024 px: ${problem}`),
    );
    await page.close();
    assert.deepEqual(problems, []);
  });
});
