/** The header lines intake adds (pure) */

/** RFC 5322 date, e.g. "Thu, 26 Nov 2026 23:22:42 +0000" */
export const rfc5322Date = (date: Date): string => date.toUTCString().replace(/GMT$/, '+0000');

/** Printable ASCII only, so nothing a client sends can break a header line */
const clean = (text: string): string => text.replace(/[^\x21-\x7e]/g, '?').slice(0, 255);

export interface ReceivedInfo {
  helo: string;
  clientAddress: string;
  clientHostname?: string;
  byHost: string;
  protocol: string;
  queueId: string;
  /** Only named when there is exactly one, so one message doesn't reveal its other recipients */
  recipients: readonly string[];
  date: Date;
}

export function receivedHeader(info: ReceivedInfo): string {
  const from = `from ${clean(info.helo || 'unknown')} (${info.clientHostname ? `${clean(info.clientHostname)} ` : ''}[${clean(info.clientAddress)}])`;
  const by = `by ${clean(info.byHost)} (edge-relay) with ${clean(info.protocol)} id ${info.queueId}`;
  const only = info.recipients.length === 1 ? `\r\n\tfor <${clean(info.recipients[0] ?? '')}>` : '';
  return `Received: ${from}\r\n\t${by}${only};\r\n\t${rfc5322Date(info.date)}\r\n`;
}

export function missingHeaders(
  has: { date: boolean; messageId: boolean },
  queueId: string,
  hostname: string,
  date: Date,
): string {
  return (
    (has.date ? '' : `Date: ${rfc5322Date(date)}\r\n`) +
    (has.messageId ? '' : `Message-ID: <${queueId}@${clean(hostname)}>\r\n`)
  );
}
