/**
 * Which size limit a message meets, so a scan too large for where it goes is
 * refused while the person is still at the device, not bounced minutes later
 * (pure; the upstreams' limits come from deliver/upstream-limits.ts).
 *
 * - Our own limit (smtp.maxMessageSize) applies to every message, local
 *   mailboxes included: they have no other.
 * - A remote recipient also meets the limit of the upstream its mail goes to,
 *   once that upstream has told it (EHLO SIZE) or it is known fixed.
 * - EHLO advertises the smallest that applies: in smarthost mode that
 *   includes the smarthost's; in MX mode each domain's upstream differs, so
 *   EHLO says ours and each recipient is judged at RCPT.
 * - The reply to DATA is one for the whole message (RFC 5321 section 4.2.5),
 *   so a message too large for the upstream of any of its remote recipients
 *   is refused for all of them, local ones included: a person who scans again
 *   smaller reaches everyone once, instead of the local ones twice.
 */
import type { SMTPServerAddress } from 'smtp-server';
import type { Config } from '../config/schema.js';
import { smtpReject, type RelayError } from '../errors.js';
import { upstreamKey, type UpstreamLimit } from '../deliver/upstream-limits.js';
import { route } from '../route/router.js';

/** What intake asks of the upstream limits */
export interface UpstreamSizes {
  limitOf(key: string | null): UpstreamLimit | undefined;
}

/**
 * Room for what we add on the way out (our Received header, a missing Date or
 * Message-ID, a DKIM-Signature): a message we accept under an upstream's
 * limit must still fit it as we send it
 */
export const OUTBOUND_HEADROOM = 2048;

export interface SizeRule {
  /** Message bytes allowed, as the device sends them */
  bytes: number;
  refusal(size: number): RelayError;
}

const MB = 1024 * 1024;

/**
 * "31.2 MB", "25 MB", "98 KB": what a device's display has room for. One
 * decimal (not the page's formatBytes rounding) so a message just over a
 * limit does not read as the limit itself
 */
export function formatSize(bytes: number): string {
  if (bytes < MB) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
  return `${Math.round((bytes / MB) * 10) / 10} MB`;
}

/** The sizes side by side, in bytes when rounding would make them look the same */
function tooLarge(size: number, who: string, limit: number): RelayError {
  const [shown, most] =
    formatSize(size) === formatSize(limit)
      ? [`${size} bytes`, `${limit} bytes`]
      : [formatSize(size), formatSize(limit)];
  return smtpReject(
    552,
    '5.3.4',
    `Message is ${shown}; ${who} accepts at most ${most}. Scan at a lower resolution or fewer pages`,
  );
}

export function ownRule(config: Config): SizeRule {
  const bytes = config.smtp.maxMessageSize;
  return { bytes, refusal: (size) => tooLarge(size, 'this relay', bytes) };
}

function upstreamRule(limit: UpstreamLimit): SizeRule {
  return {
    bytes: Math.max(1, limit.bytes - OUTBOUND_HEADROOM),
    refusal: (size) => tooLarge(size, `the upstream ${limit.name}`, limit.bytes),
  };
}

/** Our own limit, or the upstream's when the recipient's mail leaves the box and that is smaller */
export function recipientRule(
  recipient: string,
  config: Config,
  upstreams: UpstreamSizes,
): SizeRule {
  const limit = upstreams.limitOf(upstreamKey(route(recipient, config)));
  const own = ownRule(config);
  return limit && limit.bytes - OUTBOUND_HEADROOM < own.bytes ? upstreamRule(limit) : own;
}

/** The smallest limit any of the recipients meets: the message must fit them all */
export function messageRule(
  recipients: readonly string[],
  config: Config,
  upstreams: UpstreamSizes,
): SizeRule {
  return recipients
    .map((r) => recipientRule(r, config, upstreams))
    .reduce((smallest, rule) => (rule.bytes < smallest.bytes ? rule : smallest), ownRule(config));
}

/** The one upstream's limit: the smarthost's once learned, or Microsoft Graph's */
export function mainUpstreamLimit(
  config: Config,
  upstreams: UpstreamSizes,
): UpstreamLimit | undefined {
  const { mode, smarthost } = config.delivery;
  if (mode === 'graph') return upstreams.limitOf(upstreamKey({ kind: 'graph' }));
  if (mode !== 'smarthost' || !smarthost.host) return undefined;
  return upstreams.limitOf(
    upstreamKey({ kind: 'smarthost', host: smarthost.host, port: smarthost.port }),
  );
}

/** The SIZE our EHLO advertises: with a smarthost or Graph every remote recipient meets that upstream's limit too */
export function advertisedSize(config: Config, upstreams: UpstreamSizes): number {
  const limit = mainUpstreamLimit(config, upstreams);
  return limit
    ? Math.min(config.smtp.maxMessageSize, upstreamRule(limit).bytes)
    : config.smtp.maxMessageSize;
}

/** The SIZE= a client declared at MAIL FROM (RFC 1870), 0 when none */
export const declaredSize = (address: SMTPServerAddress | false): number =>
  (address && address.args && Number(address.args.SIZE)) || 0;
