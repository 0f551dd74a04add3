/**
 * Copy rules: keep a copy of relayed mail in a local mailbox, so the office
 * can read everything on the box while the internet is down (pure).
 * A rule with no senders and no networks matches every message.
 */
import type { Config } from '../config/schema.js';
import { NetworkPolicy } from './policy.js';

export interface CopyContext {
  from: string;
  client: string;
  recipients: readonly string[];
}

function senderMatches(patterns: readonly string[], from: string): boolean {
  const sender = from.toLowerCase();
  return patterns.some((pattern) => {
    const p = pattern.toLowerCase();
    return p.startsWith('@') ? sender.endsWith(p) : sender === p;
  });
}

/** The extra local recipients (mailbox@first local domain) the copy rules add to a message */
export function copyRecipients(
  config: Config,
  context: CopyContext,
  mailboxExists: (name: string) => boolean,
): string[] {
  const domain = config.mailbox.localDomains[0];
  if (!domain) return [];
  const present = new Set(context.recipients.map((r) => r.toLowerCase()));
  const extra: string[] = [];
  for (const rule of config.mailbox.copies) {
    const bySender = !rule.senders?.length || senderMatches(rule.senders, context.from);
    const byNetwork =
      !rule.networks?.length || new NetworkPolicy(rule.networks).allows(context.client);
    const address = `${rule.mailbox}@${domain}`;
    if (bySender && byNetwork && mailboxExists(rule.mailbox) && !present.has(address)) {
      present.add(address);
      extra.push(address);
    }
  }
  return extra;
}
