/**
 * Where each recipient goes (pure): a local mailbox, the smarthost, the
 * recipient domain's MX hosts, or a host named for that domain in
 * `delivery.domains`. Recipients of one message that share a destination
 * travel together in one transaction.
 */
import type { Config } from '../config/schema.js';
import type { TlsPolicy } from '../tls/policy.js';
import { mailboxName, parseAddress } from './address.js';

export type MxDestination = { kind: 'mx'; domain: string; tls: TlsPolicy };
/** A per-domain override to one host (name or address), delivered like an MX host without the MX lookup */
export type HostDestination = { kind: 'host'; host: string; port: number; tls: TlsPolicy };

export type Destination =
  | { kind: 'local'; mailbox: string }
  | { kind: 'smarthost'; host: string; port: number }
  | MxDestination
  | HostDestination
  /** Microsoft Graph's sendMail (delivery.mode "graph"): one destination for every relayed recipient */
  | { kind: 'graph' }
  | { kind: 'unroutable'; reason: string; cause: UnroutableCause };

/** Why there is no way: a malformed address, or a setting missing. Whether that bounces is deliver/failure-policy.ts's call */
export type UnroutableCause = 'bad-address' | 'setting';

type DomainOverride = Config['delivery']['domains'][string];

export const NO_UPSTREAM =
  'No upstream configured: set delivery.smarthost.host (or delivery.mode "mx") in the settings';

export function isLocalDomain(domain: string, config: Config): boolean {
  const wanted = domain.toLowerCase();
  return config.mailbox.localDomains.some((local) => local.toLowerCase() === wanted);
}

export function route(recipient: string, config: Config): Destination {
  const address = parseAddress(recipient);
  if (!address)
    return {
      kind: 'unroutable',
      reason: `Bad recipient address "${recipient}"`,
      cause: 'bad-address',
    };
  if (isLocalDomain(address.domain, config))
    return { kind: 'local', mailbox: mailboxName(address.local) };
  const override = domainOverride(address.domain, config);
  const tls = override?.tls ?? config.delivery.mx.tls;
  switch (override?.route ?? config.delivery.mode) {
    case 'mx':
      return { kind: 'mx', domain: address.domain, tls };
    case 'host':
      if (!override?.host)
        return {
          kind: 'unroutable',
          reason: `No host set for "${address.domain}" in delivery.domains`,
          cause: 'setting',
        };
      return {
        kind: 'host',
        host: override.host,
        port: override.port ?? config.delivery.mx.port,
        tls,
      };
    case 'smarthost':
      return smarthost(config);
    case 'graph':
      return { kind: 'graph' };
  }
}

/** The override for a domain: exact name, case-insensitive */
function domainOverride(domain: string, config: Config): DomainOverride | undefined {
  const entry = Object.entries(config.delivery.domains).find(
    ([name]) => name.toLowerCase() === domain,
  );
  return entry?.[1];
}

function smarthost(config: Config): Destination {
  const { host, port } = config.delivery.smarthost;
  if (!host) return { kind: 'unroutable', reason: NO_UPSTREAM, cause: 'setting' };
  return { kind: 'smarthost', host, port };
}

export const destinationKey = (d: Destination): string => {
  switch (d.kind) {
    case 'local':
      return `local:${d.mailbox}`;
    case 'smarthost':
      return `smarthost:${d.host}:${d.port}`;
    case 'mx':
      return `mx:${d.domain}:${d.tls}`;
    case 'host':
      return `host:${d.host}:${d.port}:${d.tls}`;
    case 'graph':
      return 'graph';
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
