/**
 * Which mailbox sends (pure): the From address as it leaves (after sender
 * alignment), or the one mailbox the settings name. Graph takes the
 * recipients from the message's own To, Cc and Bcc; envelope recipients
 * missing there are added as Bcc, which Exchange never shows.
 */
import addressparser from 'nodemailer/lib/addressparser';
import type { Config } from '../../config/schema.js';
import { fieldValue, isField, joinFields, splitFields } from '../header-section.js';

export const DEFAULT_GRAPH_BASE = 'https://graph.microsoft.com/v1.0';

export const graphBase = (config: Config): string =>
  (config.delivery.graph.baseUrl || DEFAULT_GRAPH_BASE).replace(/\/+$/, '');

/** For the dashboard: where mail goes */
export function graphTarget(config: Config): string {
  const { graph } = config.delivery;
  const who = graph.sender === 'mailbox' ? `as ${graph.mailbox}` : 'as the From address';
  return `Microsoft Graph (${new URL(graphBase(config)).host}) ${who}`;
}

const addressesOf = (value: string): string[] =>
  addressparser(value, { flatten: true })
    .map((a) => a.address.toLowerCase())
    .filter(Boolean);

export interface GraphHeaders {
  headers: string;
  /** The From header's address, "" when there is none */
  from: string;
}

/** The header section Graph gets: every envelope recipient in To, Cc or Bcc */
export function graphHeaders(headers: string, recipients: readonly string[]): GraphHeaders {
  const fields = splitFields(headers);
  const from = fields.find((f) => isField(f, 'From'));
  const listed = new Set(
    fields
      .filter((f) => ['To', 'Cc', 'Bcc'].some((name) => isField(f, name)))
      .flatMap((f) => addressesOf(fieldValue(f))),
  );
  const missing = recipients.filter((r) => !listed.has(r.toLowerCase()));
  if (missing.length)
    fields.push({ name: 'Bcc', raw: ` ${missing.map((r) => `<${r}>`).join(',\r\n ')}\r\n` });
  return {
    headers: missing.length ? joinFields(fields) : headers,
    from: from ? (addressesOf(fieldValue(from))[0] ?? '') : '',
  };
}

/** The mailbox to send from, or why there is none */
export function senderMailbox(
  config: Config,
  from: string,
): { mailbox: string } | { problem: string } {
  const { graph } = config.delivery;
  if (graph.sender === 'mailbox') return { mailbox: graph.mailbox };
  if (from) return { mailbox: from };
  return {
    problem:
      'The message has no From address to choose the sending mailbox by: set sender alignment (a From address) or delivery.graph.sender "mailbox"',
  };
}
