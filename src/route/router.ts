/**
 * Where each recipient goes (pure): a local mailbox, the smarthost, or the
 * recipient domain's MX hosts. Recipients of one message that share a
 * destination travel together in one transaction.
 */
import type { Config } from '../config/schema.js';
import { mailboxName, parseAddress } from './address.js';

export type Destination =
  | { kind: 'local'; mailbox: string }
  | { kind: 'smarthost'; host: string; port: number }
  | { kind: 'mx'; domain: string }
  | { kind: 'unroutable'; reason: string; permanent: boolean };

export const NO_UPSTREAM = 'No upstream configured: set delivery.smarthost.host (or delivery.mode "mx") in the settings';

export function isLocalDomain(domain: string, config: Config): boolean {
  const wanted = domain.toLowerCase();
  return config.mailbox.localDomains.some((local) => local.toLowerCase() === wanted);
}

export function route(recipient: string, config: Config): Destination {
  const address = parseAddress(recipient);
  if (!address) return { kind: 'unroutable', reason: `Bad recipient address "${recipient}"`, permanent: true };
  if (isLocalDomain(address.domain, config)) return { kind: 'local', mailbox: mailboxName(address.local) };
  if (config.delivery.mode === 'mx') return { kind: 'mx', domain: address.domain };
  const { host, port } = config.delivery.smarthost;
  if (!host) return { kind: 'unroutable', reason: NO_UPSTREAM, permanent: false };
  return { kind: 'smarthost', host, port };
}

export const destinationKey = (d: Destination): string => {
  switch (d.kind) {
    case 'local':
      return `local:${d.mailbox}`;
    case 'smarthost':
      return `smarthost:${d.host}:${d.port}`;
    case 'mx':
      return `mx:${d.domain}`;
    case 'unroutable':
      return `unroutable:${d.reason}`;
  }
};

export interface RouteGroup {
  destination: Destination;
  recipients: string[];
}

/** Groups recipients by destination, keeping the order they came in */
export function groupByDestination(recipients: readonly string[], config: Config): RouteGroup[] {
  const groups = new Map<string, RouteGroup>();
  for (const recipient of recipients) {
    const destination = route(recipient, config);
    const key = destinationKey(destination);
    const group = groups.get(key) ?? { destination, recipients: [] };
    group.recipients.push(recipient);
    groups.set(key, group);
  }
  return [...groups.values()];
}
