/**
 * Two ways to use the admin page in tests: headless Chromium (Debian's
 * chromium, driven by playwright-core) as a person does, and a tiny
 * cookie-keeping HTTP client for checks on every route and header.
 */
import { chromium, type Browser } from 'playwright-core';
import type { RunningRelay } from './relay.js';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

export interface WebResponse {
  status: number;
  headers: Headers;
  text: string;
  location: string | null;
}

/** Keeps the session cookie like a browser; knows the page's CSRF token */
export class WebClient {
  cookie = '';
  csrf = '';

  constructor(readonly base: string) {}

  async request(
    method: string,
    path: string,
    options: {
      form?: Record<string, string | string[]>;
      json?: unknown;
      headers?: Record<string, string>;
    } = {},
  ): Promise<WebResponse> {
    const headers: Record<string, string> = { ...options.headers };
    if (this.cookie) headers.cookie = this.cookie;
    let body: string | undefined;
    if (options.form) {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(options.form))
        for (const v of Array.isArray(value) ? value : [value]) params.append(key, v);
      body = params.toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] = 'application/json';
    }
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(30_000),
    });
    const setCookie = response.headers.get('set-cookie');
    if (setCookie) {
      const pair = setCookie.split(';')[0] ?? '';
      this.cookie = /=$/.test(pair) || /Max-Age=0/i.test(setCookie) ? '' : pair;
    }
    const text = await response.text();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(text)?.[1];
    if (csrf) this.csrf = csrf;
    return {
      status: response.status,
      headers: response.headers,
      text,
      location: response.headers.get('location'),
    };
  }

  get(path: string, headers?: Record<string, string>): Promise<WebResponse> {
    return this.request('GET', path, { headers });
  }

  /** A form post with this session's CSRF token (unless `_csrf` is given) */
  post(path: string, form: Record<string, string | string[]> = {}): Promise<WebResponse> {
    return this.request('POST', path, { form: { _csrf: this.csrf, ...form } });
  }
}

/** Sets the admin password through the setup page with the token from the log; returns a logged-in client */
/** The admin of a relay just started: its setup token from the log, then `password` */
export async function setupAdminOf(
  relay: RunningRelay,
  password = 'correct horse battery',
): Promise<WebClient> {
  const line = await relay.waitForLog((l) => typeof l.setupToken === 'string');
  return setupAdmin(`http://127.0.0.1:${relay.webPort}`, String(line.setupToken), password);
}

export async function setupAdmin(
  base: string,
  token: string,
  password: string,
): Promise<WebClient> {
  const client = new WebClient(base);
  await client.get('/setup');
  const done = await client.post('/setup', { token, password, confirm: password });
  if (done.status !== 303 || done.location !== '/')
    throw new Error(`Setup failed (${done.status}): ${done.text.slice(0, 500)}`);
  await client.get('/');
  return client;
}
