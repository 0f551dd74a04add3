/** The words of an alert: a mail for the postmaster mailbox and a JSON body for webhooks */
import type { HealthSnapshot } from './upstream-health.js';
import type { Transition } from './rules.js';

export interface AlertFacts {
  hostname: string;
  now: Date;
  health: HealthSnapshot;
  queueDepth: number;
  queueThreshold: number;
  failingFor: string;
}

export interface Notice {
  /** upstream and queue come from the rules; oauth from the sign-in's status */
  kind: Transition['kind'] | 'oauth';
  state: Transition['change'];
  title: string;
  message: string;
}

export function composeNotice(transition: Transition, facts: AlertFacts): Notice {
  const { health } = facts;
  const lastError = health.lastError ? `Last error (${health.lastError.at.toISOString()}): ${health.lastError.text}` : 'No error recorded';
  const texts: Record<Transition['kind'], Record<Transition['change'], [string, string]>> = {
    upstream: {
      firing: [
        `Upstream failing for more than ${facts.failingFor}`,
        `edge-relay on ${facts.hostname} has not been able to deliver to the upstream since ${health.failingSince?.toISOString() ?? 'a while'}.\n` +
          `Messages wait safely in the queue (${facts.queueDepth} now) and will be sent when the upstream is back.\n${lastError}`,
      ],
      recovered: [
        'Upstream recovered',
        `edge-relay on ${facts.hostname} reached the upstream again at ${health.lastSuccess?.at.toISOString() ?? facts.now.toISOString()}.\nMessages still in the queue: ${facts.queueDepth}.`,
      ],
    },
    queue: {
      firing: [`Queue above ${facts.queueThreshold} messages`, `edge-relay on ${facts.hostname} has ${facts.queueDepth} messages waiting (alert threshold ${facts.queueThreshold}).\n${lastError}`],
      recovered: ['Queue back to normal', `edge-relay on ${facts.hostname} has ${facts.queueDepth} messages waiting again.`],
    },
  };
  const [title, message] = texts[transition.kind][transition.change];
  return { kind: transition.kind, state: transition.change, title: `[edge-relay] ${title}`, message };
}

/** The upstream sign-in (OAuth2) needs an admin, or works again */
export function oauthNotice(change: Transition['change'], hostname: string, reason: string | undefined): Notice {
  return change === 'firing'
    ? {
        kind: 'oauth',
        state: change,
        title: '[edge-relay] Sign-in to the upstream needed',
        message: `edge-relay on ${hostname} can no longer get a token for the upstream.\n${reason ?? ''}\nOpen the Sender page of the admin web page and sign in again. Mail waits safely in the queue meanwhile.`,
      }
    : { kind: 'oauth', state: change, title: '[edge-relay] Upstream sign-in works again', message: `edge-relay on ${hostname} got a token for the upstream again.` };
}

/** A plain RFC 5322 message for the postmaster mailbox */
export function noticeMail(notice: Notice, hostname: string, now: Date): string {
  const header = [
    `From: edge-relay <postmaster@${hostname}>`,
    `To: postmaster@${hostname}`,
    `Subject: ${notice.title.replace(/[\r\n]+/g, ' ')}`,
    `Date: ${now.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <alert-${now.getTime()}-${notice.kind}-${notice.state}@${hostname}>`,
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
  ];
  return `${header.join('\r\n')}\r\n\r\n${notice.message.replace(/\r?\n/g, '\r\n')}\r\n`;
}

/** JSON for webhooks: `title` + `message` (ntfy, Apprise), `text` (Teams/Slack-style), plus machine-readable fields */
export function webhookBody(notice: Notice, hostname: string, now: Date): string {
  return JSON.stringify({ title: notice.title, message: notice.message, text: `${notice.title}\n${notice.message}`, kind: notice.kind, state: notice.state, host: hostname, at: now.toISOString() });
}
