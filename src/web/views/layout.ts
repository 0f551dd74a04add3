/** The page frame and the small formatting helpers every page shares */
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { Flash } from '../sessions.js';

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

export type NavKey =
  | 'dashboard'
  | 'queue'
  | 'devices'
  | 'mailboxes'
  | 'settings'
  | 'sender'
  | 'test-mail'
  | 'tokens';

const NAV: [NavKey, string, string][] = [
  ['dashboard', '/', 'Dashboard'],
  ['queue', '/queue', 'Queue'],
  ['devices', '/devices', 'Devices'],
  ['mailboxes', '/mailboxes', 'Mailboxes'],
  ['settings', '/settings', 'Settings'],
  ['sender', '/sender', 'Sender'],
  ['test-mail', '/test-mail', 'Test mail'],
  ['tokens', '/tokens', 'API tokens'],
];

export interface PageFrame {
  title: string;
  hostname: string;
  version: string;
  /** Absent on the login and setup pages */
  nav?: { active: NavKey; csrf: string };
  flash?: Flash | undefined;
}

export const csrfField = (csrf: string): Html =>
  html`<input type="hidden" name="_csrf" value="${csrf}">`;

export function page(frame: PageFrame, body: Html): Html {
  const nav = frame.nav;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${frame.title} · edge-relay</title><link rel="stylesheet" href="/assets/app.css"></head>
<body><header><div class="bar"><span class="brand">edge-relay<span class="host">${frame.hostname}</span></span>
${
  nav
    ? html`<nav>${NAV.map(([key, href, label]) => html`<a href="${href}" class="${key === nav.active ? 'active' : ''}">${label}</a>`)}</nav>
<form method="post" action="/logout">${csrfField(nav.csrf)}<button type="submit" class="small">Log out</button></form>`
    : ''
}
</div></header>
<main>${frame.flash ? html`<div class="notice ${frame.flash.kind}" role="status">${frame.flash.text}</div>` : ''}${body}</main>
<footer>edge-relay ${frame.version}</footer></body></html>`;
}

/** A file or folder path that may wrap after a slash but never inside a name (a hyphen is no place to break a path) */
export function pathCode(path: string): Html {
  const parts = path.split(/(?<=\/)/);
  return html`<code class="path">${parts.map((part, i) => html`${i ? html`<wbr>` : ''}<span>${part}</span>`)}</code>`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** "3 min ago" style, with the exact time in a tooltip */
export function when(at: Date | string | null | undefined, now = Date.now()): Html {
  if (!at) return html`<span class="muted">never</span>`;
  const date = typeof at === 'string' ? new Date(at) : at;
  const seconds = Math.round((now - date.getTime()) / 1000);
  const ago = Math.abs(seconds);
  const text =
    ago < 60
      ? `${ago} s`
      : ago < 3600
        ? `${Math.round(ago / 60)} min`
        : ago < 172_800
          ? `${Math.round(ago / 3600)} h`
          : `${Math.round(ago / 86_400)} days`;
  return html`<span class="when" title="${date.toISOString()}">${seconds >= 0 ? `${text} ago` : `in ${text}`}</span>`;
}

const TONE: Record<string, 'ok' | 'warn' | 'bad' | ''> = {
  delivered: 'ok',
  local: 'ok',
  reachable: 'ok',
  queued: '',
  deferred: 'warn',
  held: 'warn',
  unknown: '',
  'not-configured': 'warn',
  failing: 'bad',
  bounced: 'bad',
  rejected: 'bad',
};

export const pill = (status: string, label = status): Html =>
  html`<span class="pill ${TONE[status] ?? ''}">${label}</span>`;

export function formatUptime(seconds: number): string {
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  return days ? `${days} d ${hours} h` : hours ? `${hours} h ${minutes} min` : `${minutes} min`;
}
