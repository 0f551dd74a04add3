/**
 * Is this failure temporary? The one place that decides. Every failure of a
 * delivery (an SMTP reply or nodemailer error, a DNS answer, a route that
 * leads nowhere, an HTTP answer from an API such as Microsoft Graph, any
 * exception on our side) becomes a `deferred` or `bounced` outcome here.
 * Decided on codes, never on message text, except the providers' requests
 * to slow down, which exist only as text.
 *
 * The rule of thumb: only the message or its recipient being wrong bounces.
 * Our settings, our disk, the network and a busy or picky upstream are
 * retried until the maximum queue age.
 */
import { RelayError, errorMessage } from '../errors.js';
import type { UnroutableCause } from '../route/router.js';
import type { Bounced, Deferred, Failure, Outcome } from './outcome.js';

export const deferred = (
  reason: string,
  wait: Pick<Deferred, 'retryAfterMs' | 'throttled'> = {},
): Deferred => ({ status: 'deferred', reason, ...wait });

export const bounced = (reason: string, dsnStatus: string): Bounced => ({
  status: 'bounced',
  reason,
  dsnStatus,
});

const ENHANCED_STATUS = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/;

/** The permanent RFC 3463 status ("5.1.1") a reply carries, else `fallback` */
export function dsnStatusOf(text: string, fallback: string): string {
  const status = ENHANCED_STATUS.exec(text);
  return status?.[1] === '5' ? status[0] : fallback;
}

/** A setting for the admin to fix (a login, a host name): never a reason to throw devices' mail away */
export const settingProblem = (failure: Failure, where: string): Deferred =>
  deferred(`${failure.reason} (${where})`);

// --- SMTP --------------------------------------------------------------------

/** What nodemailer reports: its error code, and the server's reply when there was one */
export interface SmtpFailure {
  code?: string;
  responseCode?: number;
  response?: string;
  message: string;
  command?: string;
}

/** nodemailer's codes for failures of the connection, never of the message, whatever the reply */
const CONNECTION_CODES = new Set([
  'ECONNECTION',
  'ETIMEDOUT',
  'ESOCKET',
  'EDNS',
  'ETLS',
  'ESTREAM',
  'ECONNREFUSED',
  'ECONNRESET',
]);

/**
 * Login refused (even 535): the password or the OAuth2 consent is a setting
 * to fix. A 5xx greeting ("CONN") says nothing about the message (an
 * overloaded host, or one that blocks us for now), as in Postfix
 * (smtp_skip_5xx_greeting).
 */
const SETTING_CODES = new Set(['EAUTH', 'ENOAUTH']);
const GREETING = 'CONN';

/**
 * Providers asking us to slow down. Retried, and the wait does not count
 * toward the maximum queue age: the message is fine, we are just early.
 */
const THROTTLE_SIGNS: readonly RegExp[] = [
  // Exchange Online: message rate limit exceeded
  /\b4\.5\.127\b/,
  // Exchange Online: the mailbox's daily sending quota (a 5.2.0 reply that lifts within a day)
  /SubmissionQuotaExceeded/i,
  // "421 4.7.0 ... rate limited", as Gmail and others say it
  /\b4\.7\.0\b.*\brate\b/i,
  // Too many recipients in one transaction: the rest go in the next one (RFC 5321 section 4.5.3.1.10)
  /^452[ -]4\.5\.3\b/,
];

const isThrottling = (reply: string): boolean => THROTTLE_SIGNS.some((sign) => sign.test(reply));

/** "550 5.1.1 No such user" from the server, or a readable description of what went wrong */
export function describeFailure(failure: SmtpFailure, where: string): string {
  const reply = failure.response?.replace(/\s+/g, ' ').trim();
  if (reply && /^\d{3}/.test(reply))
    return `${reply} (${where}${failure.command ? `, after ${failure.command}` : ''})`;
  const code = failure.code && !failure.message.includes(failure.code) ? `${failure.code}: ` : '';
  return `${code}${failure.message} (${where})`;
}

/** A 5xx reply to the message or a recipient bounces; everything else is retried */
export function fromSmtpFailure(failure: SmtpFailure, where: string): Failure {
  const reason = describeFailure(failure, where);
  const reply = failure.response ?? '';
  const code = failure.code ?? '';
  if (isThrottling(reply)) return deferred(reason, { throttled: true });
  if (
    (failure.responseCode ?? 0) < 500 ||
    CONNECTION_CODES.has(code) ||
    SETTING_CODES.has(code) ||
    failure.command === GREETING
  )
    return deferred(reason);
  return bounced(reason, dsnStatusOf(reply, '5.0.0'));
}

/** Every host failed before a transaction: retried if any failure was temporary, bounced only when all were permanent */
export function fromHostFailures(failures: readonly Failure[]): Failure {
  const reason = failures.map((f) => f.reason).join('; ') || 'No MX host addresses to try';
  const first = failures[0];
  if (first?.status === 'bounced' && failures.every((f) => f.status === 'bounced'))
    return bounced(reason, first.dsnStatus);
  return deferred(
    reason,
    failures.some((f) => f.status === 'deferred' && f.throttled) ? { throttled: true } : {},
  );
}

// --- DNS and routing ---------------------------------------------------------

/** What DNS said about where a domain's mail goes (mx-resolve.ts finds out) */
export type DnsFinding = 'no-such-domain' | 'null-mx' | 'no-address' | 'lookup-failed';

const DNS_STATUS: Record<Exclude<DnsFinding, 'lookup-failed'>, string> = {
  // RFC 3463: bad destination system address
  'no-such-domain': '5.1.2',
  // RFC 7505 section 4.2: the domain accepts no mail
  'null-mx': '5.1.10',
  // RFC 3463: unable to route
  'no-address': '5.4.4',
};

/** A domain that does not exist or takes no mail bounces; a lookup that failed may work next time */
export function fromDns(finding: DnsFinding, reason: string): Failure {
  return finding === 'lookup-failed' ? deferred(reason) : bounced(reason, DNS_STATUS[finding]);
}

/** The router found no way: a malformed address bounces, a missing setting waits for the admin */
export function fromUnroutable(cause: UnroutableCause, reason: string): Failure {
  return cause === 'bad-address' ? bounced(reason, '5.1.3') : deferred(reason);
}

// --- Exceptions --------------------------------------------------------------

/**
 * Anything thrown during a delivery (a DKIM key we cannot read, a body we
 * cannot open, a bug): retried, so it counts as an attempt and the maximum
 * queue age applies. Only an error that says it is the message's fault
 * (a RelayError of kind "permanent", e.g. no such mailbox) bounces.
 */
export function fromException(err: unknown, where: string): Failure {
  const reason = `${errorMessage(err)} (${where})`;
  return err instanceof RelayError && err.kind === 'permanent'
    ? bounced(reason, dsnStatusOf(err.enhanced, '5.0.0'))
    : deferred(reason);
}

// --- HTTP (an API sender such as Microsoft Graph) ----------------------------

/** A provider may ask for a day (a daily quota); a longer or malformed wait is not believed */
export const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;

/** Retry-After: seconds or an HTTP date (RFC 9110 section 10.2.3); undefined when absent or unusable */
export function parseRetryAfter(header: string | undefined, now: Date): number | undefined {
  const text = header?.trim();
  if (!text) return undefined;
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now.getTime();
  return Number.isFinite(ms) && ms >= 0 ? Math.min(ms, MAX_RETRY_AFTER_MS) : undefined;
}

/** 401/403: the sign-in or the app's permission, a setting to fix. 408: the request timed out */
const HTTP_RETRIED = new Set([401, 403, 408]);
const MAX_BODY_IN_REASON = 300;

/**
 * An HTTP API's answer to one send: 2xx delivered; 429 throttled with its
 * Retry-After; 5xx deferred (honouring a Retry-After); other 4xx bounced
 * (413: too big, 5.3.4), except the settings in HTTP_RETRIED.
 */
export function fromHttpAnswer(
  status: number,
  retryAfterHeader: string | undefined,
  body: string,
  where: string,
  now = new Date(),
): Outcome {
  const text = body.replace(/\s+/g, ' ').trim().slice(0, MAX_BODY_IN_REASON);
  const reason = `HTTP ${status}${text ? `: ${text}` : ''} (${where})`;
  if (status >= 200 && status < 300)
    return { status: 'delivered', detail: `${where} said: HTTP ${status}` };
  const retryAfterMs = parseRetryAfter(retryAfterHeader, now);
  const wait = retryAfterMs === undefined ? {} : { retryAfterMs };
  if (status === 429) return deferred(reason, { ...wait, throttled: true });
  if (status >= 500 || status < 400 || HTTP_RETRIED.has(status)) return deferred(reason, wait);
  return bounced(reason, status === 413 ? '5.3.4' : '5.0.0');
}
