/** Delivery status notifications, RFC 3464 (pure) */
import { randomBytes } from 'node:crypto';
import { dsnStatusOf } from '../deliver/failure-policy.js';
import { rfc5322Date } from '../intake/received.js';

export interface FailedRecipient {
  address: string;
  /** The reason as recorded, usually the remote server's exact reply and its host */
  error: string;
  /** The RFC 3463 status failure-policy.ts gave the bounce; absent in records written before it was stored */
  dsnStatus?: string;
}

/** failed: final, the message won't be retried; delayed: a warning while it still is */
export type DsnAction = 'failed' | 'delayed';

export interface DsnInput {
  action: DsnAction;
  reportingMta: string;
  queueId: string;
  arrivalDate: string;
  originalSender: string;
  failed: FailedRecipient[];
  /** The original message's header section, CRLF line endings */
  originalHeaders: string;
  to: string;
  date: Date;
}

const STATUS = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/;
const REPLY = /^(\d{3})\s/;
const REMOTE = /\(([^\s(),]+?):\d+(?:,|\))/;

/**
 * The status of a recipient in the report. A bounce carries the one
 * deliver/failure-policy.ts gave it; a delay, or a record saved before
 * statuses were stored, has only its text: the reply's enhanced status,
 * else "4.0.0" for a delay, "4.4.7" for an expiry, "5.0.0" for another reply
 * and "5.4.0" for a failure without one.
 */
export function reportStatus(
  recipient: Pick<FailedRecipient, 'error' | 'dsnStatus'>,
  action: DsnAction = 'failed',
): string {
  const { error } = recipient;
  if (action === 'delayed') {
    const status = STATUS.exec(error);
    return status?.[1] === '4' ? status[0] : '4.0.0';
  }
  if (recipient.dsnStatus) return recipient.dsnStatus;
  return dsnStatusOf(
    error,
    /^Gave up after/.test(error) ? '4.4.7' : REPLY.test(error) ? '5.0.0' : '5.4.0',
  );
}

const TEXT: Record<DsnAction, { subject: string; body: string }> = {
  failed: {
    subject: 'Undelivered Mail Returned to Sender',
    body: 'could not be\r\ndelivered to one or more of its recipients. It will not be retried.',
  },
  delayed: {
    subject: 'Delayed Mail (still being retried)',
    body: 'has not been\r\ndelivered yet to the recipients below. It is still being retried; no action is needed.',
  },
};

const oneLine = (text: string): string =>
  text.replace(/[\r\n]+/g, ' ').replace(/[^\x20-\x7e]/g, '?');

export function buildDsn(input: DsnInput): string {
  const boundary = `edge-relay-${randomBytes(8).toString('hex')}`;
  const human = input.failed
    .map((f) => `<${oneLine(f.address)}>:\r\n    ${oneLine(f.error)}`)
    .join('\r\n\r\n');
  const perRecipient = input.failed
    .map((f) => {
      const remote = REMOTE.exec(f.error)?.[1];
      const reply = REPLY.test(f.error)
        ? `Diagnostic-Code: smtp; ${oneLine(f.error)}\r\n`
        : `Diagnostic-Code: x-edge-relay; ${oneLine(f.error)}\r\n`;
      return `Final-Recipient: rfc822; ${oneLine(f.address)}\r\nAction: ${input.action}\r\nStatus: ${reportStatus(f, input.action)}\r\n${remote ? `Remote-MTA: dns; ${remote}\r\n` : ''}${reply}`;
    })
    .join('\r\n');
  return [
    `From: Mail Delivery System <MAILER-DAEMON@${input.reportingMta}>`,
    `To: <${oneLine(input.to)}>`,
    `Subject: ${TEXT[input.action].subject}`,
    `Date: ${rfc5322Date(input.date)}`,
    `Message-ID: <${input.queueId}.${boundary.slice(-8)}.bounce@${input.reportingMta}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    `This is the mail system at ${input.reportingMta} (edge-relay).`,
    '',
    `A message from <${oneLine(input.originalSender)}> (queue id ${input.queueId}) ${TEXT[input.action].body}`,
    '',
    human,
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    '',
    `Reporting-MTA: dns; ${input.reportingMta}`,
    `X-Edge-Relay-Queue-ID: ${input.queueId}`,
    `Arrival-Date: ${rfc5322Date(new Date(input.arrivalDate))}`,
    '',
    perRecipient,
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    '',
    input.originalHeaders.replace(/(\r\n)*$/, ''),
    '',
    `--${boundary}--`,
    '',
  ].join('\r\n');
}
