/** Mail addresses as the relay sees them (pure) */

export interface Address {
  local: string;
  /** Lowercased; an address literal keeps its brackets */
  domain: string;
}

const DOT_ATOM = /^[A-Za-z0-9!#$&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$&'*+/=?^_`{|}~-]+)*$/;
const QUOTED = /^"([\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"$/;
const HOSTNAME =
  /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;
const UTF8 = /[\u0080-\uffff]/;

/**
 * Parses "local@domain". Source routes ("@a:b@c") and the old "%" and "!"
 * relay hacks are not addresses here: they are refused, never interpreted.
 */
export function parseAddress(text: string): Address | null {
  if (text.length > 320 || text.startsWith('@') || (text.includes(':') && !text.includes('[IPv6:')))
    return null;
  const at = text.lastIndexOf('@');
  if (at <= 0) return null;
  const local = text.slice(0, at);
  const domain = text.slice(at + 1).toLowerCase();
  if (local.length > 64 && !UTF8.test(local)) return null;
  if (!(DOT_ATOM.test(local) || QUOTED.test(local) || UTF8.test(local))) return null;
  if (/[%!]/.test(local)) return null;
  if (!(HOSTNAME.test(domain) || UTF8.test(domain))) return null;
  return { local, domain: domain.replace(/\.$/, '') };
}

export const formatAddress = (address: Address): string => `${address.local}@${address.domain}`;

/** The mailbox a local address goes to: case-insensitive, "+tag" stripped */
export function mailboxName(local: string): string {
  const base = local.replace(/^"|"$/g, '').toLowerCase();
  const plus = base.indexOf('+');
  return plus > 0 ? base.slice(0, plus) : base;
}
