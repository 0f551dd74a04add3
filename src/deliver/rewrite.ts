/**
 * Sender alignment: mail from devices leaves with a verified sender, so SPF,
 * DKIM and DMARC line up with the upstream. Which address applies is decided
 * per device > per recipient domain > global; the envelope sender and the
 * From header are rewritten separately. The device's own address is kept in
 * Reply-To (when there is none) and the original From in X-Original-From.
 */
import { plainAddress } from '../util/ip.js';
import addressparser from 'nodemailer/lib/addressparser';
import { encodeWord } from 'nodemailer/lib/mime-funcs';
import type { Config } from '../config/schema.js';
import type { ClientInfo } from '../spool/records.js';
import {
  fieldValue,
  isField,
  joinFields,
  splitFields,
  type HeaderField,
} from './header-section.js';

/** "" leaves that part alone */
export interface RewritePlan {
  envelopeFrom: string;
  headerFrom: string;
  /** Display name for the new From; "" keeps the device's own display name */
  displayName: string;
}

export const NO_REWRITE: RewritePlan = { envelopeFrom: '', headerFrom: '', displayName: '' };

export interface RewriteContext {
  client?: ClientInfo;
  /** The admin-given device name from the inventory, when there is one */
  deviceName?: string;
}

function deviceSetting(config: Config, address: string | undefined): string | undefined {
  if (!address) return undefined;
  const devices = config.smtp.devices;
  return (devices[address] ?? devices[plainAddress(address)])?.rewriteFrom;
}

function domainSetting(
  config: Config,
  recipientDomain: string,
): Config['delivery']['domains'][string]['rewrite'] {
  const wanted = recipientDomain.toLowerCase();
  return Object.entries(config.delivery.domains).find(
    ([name]) => name.toLowerCase() === wanted,
  )?.[1].rewrite;
}

/**
 * The plan for one message to one recipient domain (pure). A device's
 * `rewriteFrom` sets both addresses ("" turns rewriting off for that device);
 * a domain's `envelopeFrom`/`headerFrom` override the global ones field by
 * field ("" turns that one off for the domain).
 */
export function rewritePlan(
  config: Config,
  recipientDomain: string,
  context: RewriteContext,
): RewritePlan {
  const global = config.delivery.rewrite;
  const device = deviceSetting(config, context.client?.address);
  const domain = domainSetting(config, recipientDomain);
  const envelopeFrom = device ?? domain?.envelopeFrom ?? global.envelopeFrom;
  const headerFrom = device ?? domain?.headerFrom ?? global.headerFrom;
  const displayName =
    headerFrom && global.useDeviceName ? context.deviceName || context.client?.helo || '' : '';
  return { envelopeFrom, headerFrom, displayName };
}

export const planKey = (plan: RewritePlan): string =>
  `${plan.envelopeFrom}|${plan.headerFrom}|${plan.displayName}`;

/** The null sender of bounces stays null: it must never be answered */
export const rewriteEnvelopeFrom = (from: string, plan: RewritePlan): string =>
  from && plan.envelopeFrom ? plan.envelopeFrom : from;

/** A display name as a phrase: atoms as they are, quoted when needed, RFC 2047 words when not ASCII */
export function displayPhrase(name: string): string {
  const clean = name.replace(/[\r\n]+/g, ' ').trim();
  if (!clean) return '';
  if (/[^\x20-\x7e]/.test(clean)) return encodeWord(clean, 'Q', 52);
  if (/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+$/.test(clean)) return clean;
  return `"${clean.replace(/(["\\])/g, '\\$1')}"`;
}

function originalSender(
  from: HeaderField | undefined,
): { name: string; address: string } | undefined {
  if (!from) return undefined;
  const [first] = addressparser(fieldValue(from), { flatten: true });
  return first?.address ? { name: first.name, address: first.address } : undefined;
}

/**
 * Edits a header section (pure): From replaced in place, X-Original-From and
 * (when missing) Reply-To added after it. `envelopeFrom` stands in for the
 * device's address when the message has no usable From.
 */
export function rewriteHeaders(headers: string, plan: RewritePlan, envelopeFrom: string): string {
  if (!plan.headerFrom) return headers;
  const fields = splitFields(headers);
  const index = fields.findIndex((f) => isField(f, 'From'));
  const from = index >= 0 ? fields[index] : undefined;
  const original = originalSender(from);
  if (original?.address.toLowerCase() === plan.headerFrom.toLowerCase() && !plan.displayName)
    return headers;
  // The header text is latin1 (one char per byte); an 8-bit name from the device is UTF-8 in practice
  const name = displayPhrase(
    plan.displayName || Buffer.from(original?.name ?? '', 'latin1').toString('utf8'),
  );
  const added: HeaderField[] = [
    { name: 'From', raw: ` ${name ? `${name} ` : ''}<${plan.headerFrom}>\r\n` },
  ];
  if (from) added.push({ name: 'X-Original-From', raw: from.raw });
  const replyTo = from && original ? from.raw : envelopeFrom ? ` <${envelopeFrom}>\r\n` : '';
  if (replyTo && !fields.some((f) => isField(f, 'Reply-To')))
    added.push({ name: 'Reply-To', raw: replyTo });
  if (index >= 0) fields.splice(index, 1, ...added);
  else fields.push(...added);
  return joinFields(fields);
}
