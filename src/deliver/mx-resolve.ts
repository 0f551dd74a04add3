/**
 * Where a domain's mail goes (RFC 5321 section 5.1, RFC 7505): its MX hosts in
 * preference order, or the domain itself when it has only an address
 * (implicit MX), or the failure that says why there is nowhere (whether it
 * is temporary is failure-policy.ts's call).
 */
import net from 'node:net';
import type { Dns, Lookup, MxRecord } from './dns.js';
import { fromDns } from './failure-policy.js';
import type { Failure } from './outcome.js';

export interface MxName {
  name: string;
  preference: number;
}

export interface MxHost extends MxName {
  addresses: string[];
}

type NoWhere = { kind: 'failed'; failure: Failure };

export type Exchanges = { kind: 'found'; hosts: MxName[]; implicit: boolean } | NoWhere;

export type Resolved = { kind: 'found'; hosts: MxHost[] } | NoWhere;

const nowhere = (...finding: Parameters<typeof fromDns>): NoWhere => ({
  kind: 'failed',
  failure: fromDns(...finding),
});

/** Enough hosts for any sane domain; a hostile zone can't make us try hundreds */
export const MAX_MX_HOSTS = 10;

const normaliseName = (name: string): string => name.toLowerCase().replace(/\.$/, '');

/** RFC 7505: "MX 0 ." — an exchange of "" (as Node reports the root) or "." */
const isNullExchange = (record: MxRecord): boolean => normaliseName(record.exchange) === '';

/**
 * Lowest preference first; hosts of equal preference in random order so
 * load spreads as the domain intended (RFC 5321 section 5.1). Pure but for
 * the `random` source, which tests pass in.
 */
export function orderMx(
  records: readonly MxRecord[],
  random: () => number = Math.random,
): MxName[] {
  const keyed = records
    .filter((record) => !isNullExchange(record))
    .map((record) => ({
      name: normaliseName(record.exchange),
      preference: record.priority,
      key: random(),
    }));
  keyed.sort((a, b) => a.preference - b.preference || a.key - b.key);
  const seen = new Set<string>();
  return keyed
    .filter(({ name }) => !seen.has(name) && seen.add(name))
    .map(({ name, preference }) => ({ name, preference }));
}

/** Decides from the MX answer (and, when there is none, the address answer) where mail for `domain` goes */
export function exchangesFrom(
  domain: string,
  mx: Lookup<MxRecord>,
  address: Lookup<string> | undefined,
): Exchanges {
  if (mx.kind === 'nxdomain')
    return nowhere('no-such-domain', `Domain "${domain}" does not exist (NXDOMAIN)`);
  if (mx.kind === 'failed') return nowhere('lookup-failed', mx.error);
  if (mx.kind === 'found') {
    const hosts = orderMx(mx.records);
    if (hosts.length)
      return { kind: 'found', hosts: hosts.slice(0, MAX_MX_HOSTS), implicit: false };
    return nowhere('null-mx', `Domain "${domain}" does not accept mail (null MX, RFC 7505)`);
  }
  // No MX records: the domain's own address is its implicit MX
  if (!address || address.kind === 'failed')
    return nowhere('lookup-failed', address?.error ?? `No MX records for "${domain}"`);
  if (address.kind === 'found')
    return { kind: 'found', hosts: [{ name: domain, preference: 0 }], implicit: true };
  return nowhere('no-address', `Domain "${domain}" has no MX and no address records`);
}

export async function lookupExchanges(dns: Dns, domain: string): Promise<Exchanges> {
  const mx = await dns.mx(domain);
  const address = mx.kind === 'nodata' ? await dns.addresses(domain) : undefined;
  return exchangesFrom(domain, mx, address);
}

/**
 * Addresses of each host, in order. Hosts without an address are skipped;
 * when none has one, a lookup that failed (DNS may come back) outweighs
 * names that definitively have no address.
 */
export async function resolveHosts(dns: Dns, hosts: readonly MxName[]): Promise<Resolved> {
  const answers = await Promise.all(
    hosts.map((host) => (net.isIP(host.name) ? literal(host.name) : dns.addresses(host.name))),
  );
  const found: MxHost[] = [];
  const problems: string[] = [];
  let lookupFailed = false;
  hosts.forEach((host, index) => {
    const answer = answers[index];
    if (answer?.kind === 'found') found.push({ ...host, addresses: answer.records });
    else if (answer?.kind === 'failed') {
      lookupFailed = true;
      problems.push(answer.error);
    } else problems.push(`No address for "${host.name}"`);
  });
  if (found.length) return { kind: 'found', hosts: found };
  const error = problems.join('; ') || 'No hosts to deliver to';
  return nowhere(lookupFailed ? 'lookup-failed' : 'no-address', error);
}

const literal = async (address: string): Promise<Lookup<string>> => ({
  kind: 'found',
  records: [address],
});
