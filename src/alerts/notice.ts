/** The words of an alert: a mail for the postmaster mailbox and a JSON body for webhooks */
import type { HealthSnapshot } from './upstream-health.js';
import { DAILY_CAP_HYSTERESIS, nearDailyCap, type DailyUsage, type Transition } from './rules.js';

export interface AlertFacts {
  hostname: string;
  now: Date;
  health: HealthSnapshot;
  queueDepth: number;
  queueThreshold: number;
  failingFor: string;
  dailyUsage: readonly DailyUsage[];
  dailyCapPercent: number;
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
  const lastError = health.lastError
    ? `Last error (${health.lastError.at.toISOString()}): ${health.lastError.text}`
    : 'No error recorded';
  const near = nearDailyCap(facts.dailyUsage, facts.dailyCapPercent);
  const counts = facts.dailyUsage
    .filter((u) => u.dayLimit > 0)
    .map((u) => `${u.label}: ${u.sentToday} of ${u.dayLimit} recipients in the last 24 hours`)
    .join('\n');
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
      firing: [
        `Queue above ${facts.queueThreshold} messages`,
        `edge-relay on ${facts.hostname} has ${facts.queueDepth} messages waiting (alert threshold ${facts.queueThreshold}).\n${lastError}`,
      ],
      recovered: [
        'Queue back to normal',
        `edge-relay on ${facts.hostname} has ${facts.queueDepth} messages waiting again.`,
      ],
    },
    dailyCap: {
      firing: [
        `${near.map((u) => u.label).join(', ') || 'An upstream'} at ${facts.dailyCapPercent}% of its daily limit`,
        `edge-relay on ${facts.hostname} is close to the daily sending limit of its upstream:\n${counts}\n` +
          'Once the limit is reached, mail waits safely in the queue until the last 24 hours have room again; it is not refused, and the provider does not block the account.',
      ],
      recovered: [
        'Daily sending back below the alert line',
        `edge-relay on ${facts.hostname} is again below ${Math.max(facts.dailyCapPercent - DAILY_CAP_HYSTERESIS, 0)}% of its upstream's daily limit:\n${counts}`,
      ],
    },
  };
  const [title, message] = texts[transition.kind][transition.change];
  return {
    kind: transition.kind,
    state: transition.change,
    title: `[edge-relay] ${title}`,
    message,
  };
}

/** The upstream sign-in (OAuth2) needs an admin, or works again */
export function oauthNotice(
  change: Transition['change'],
  hostname: string,
  reason: string | undefined,
): Notice {
  return change === 'firing'
    ? {
        kind: 'oauth',
        state: change,
        title: '[edge-relay] Sign-in to the upstream needed',
        message: `edge-relay on ${hostname} can no longer get a token for the upstream.\n${reason ?? ''}\nOpen the Sender page of the admin web page and sign in again. Mail waits safely in the queue meanwhile.`,
      }
    : {
        kind: 'oauth',
        state: change,
        title: '[edge-relay] Upstream sign-in works again',
        message: `edge-relay on ${hostname} got a token for the upstream again.`,
      };
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
  return JSON.stringify({
    title: notice.title,
    message: notice.message,
    text: `${notice.title}\n${notice.message}`,
    kind: notice.kind,
    state: notice.state,
    host: hostname,
    at: now.toISOString(),
  });
}
