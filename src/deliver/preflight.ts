/**
 * The pre-flight check for a sender domain, as seen from the box: its MX,
 * SPF (does it allow our upstream?), DMARC (what happens to mail that fails)
 * and, when signing is on, the DKIM record. Each check ends in a verdict in
 * plain words and, when something is wrong, the fix.
 */
import type { Config } from '../config/schema.js';
import type { Dns, Lookup } from './dns.js';

export type CheckStatus = 'ok' | 'warning' | 'problem' | 'unknown';

export interface Check {
  name: 'mx' | 'spf' | 'dmarc' | 'dkim' | 'graph';
  status: CheckStatus;
  summary: string;
  fix?: string;
  /** The records found, as published */
  records: string[];
}

export interface Preflight {
  domain: string;
  checkedAt: string;
  /** The worst of the checks */
  status: CheckStatus;
  /** One sentence for a person: will mail sent as this domain arrive, and what to do first */
  verdict: string;
  checks: Check[];
}

export interface ExpectedDkim {
  selector: string;
  /** The base64 public key (the p= value) we sign with */
  publicKey: string;
}

/** RFC 7208 section 4.6.4: at most 10 lookups while evaluating SPF */
const MAX_SPF_LOOKUPS = 10;
const RANK: Record<CheckStatus, number> = { ok: 0, unknown: 1, warning: 2, problem: 3 };

/** The SPF include each well-known upstream needs */
export function upstreamSpfInclude(
  config: Config,
): { include: string; upstream: string } | undefined {
  if (config.delivery.mode === 'graph')
    return { include: 'spf.protection.outlook.com', upstream: 'Microsoft 365' };
  if (config.delivery.mode !== 'smarthost') return undefined;
  const host = config.delivery.smarthost.host.toLowerCase();
  if (/(^|\.)(office365\.com|outlook\.com|protection\.outlook\.com)$/.test(host))
    return { include: 'spf.protection.outlook.com', upstream: 'Microsoft 365' };
  if (/(^|\.)(gmail\.com|google\.com|googlemail\.com)$/.test(host))
    return { include: '_spf.google.com', upstream: 'Google Workspace' };
  return undefined;
}

const failedText = (lookup: Lookup<unknown>): string =>
  lookup.kind === 'failed' ? lookup.error : lookup.kind;

async function checkMx(dns: Dns, domain: string): Promise<Check> {
  const mx = await dns.mx(domain);
  if (mx.kind === 'found') {
    const hosts = [...mx.records].sort((a, b) => a.priority - b.priority).map((r) => r.exchange);
    if (hosts.length === 1 && (hosts[0] === '' || hosts[0] === '.'))
      return {
        name: 'mx',
        status: 'warning',
        summary: `${domain} says it takes no mail (null MX): replies to the rewritten sender bounce`,
        records: ['0 .'],
      };
    return {
      name: 'mx',
      status: 'ok',
      summary: `Mail for ${domain} goes to ${hosts.join(', ')}`,
      records: mx.records.map((r) => `${r.priority} ${r.exchange}`),
    };
  }
  if (mx.kind === 'nxdomain')
    return {
      name: 'mx',
      status: 'problem',
      summary: `The domain ${domain} does not exist in DNS`,
      fix: 'Check the spelling of the sender address',
      records: [],
    };
  if (mx.kind === 'nodata')
    return {
      name: 'mx',
      status: 'warning',
      summary: `${domain} has no MX record: replies to its addresses may not arrive`,
      fix: `Publish an MX record for ${domain}`,
      records: [],
    };
  return {
    name: 'mx',
    status: 'unknown',
    summary: `Could not look up the MX of ${domain}: ${failedText(mx)}`,
    records: [],
  };
}

const spfRecords = (records: string[]): string[] =>
  records.filter((r) => /^v=spf1(\s|$)/i.test(r.trim()));

/** Every domain reachable through include: and redirect=, within the lookup limit */
async function spfReach(
  dns: Dns,
  record: string,
): Promise<{ domains: Set<string>; complete: boolean }> {
  const domains = new Set<string>();
  const queue = [record];
  let lookups = 0;
  let complete = true;
  while (queue.length) {
    const terms = (queue.shift() ?? '').split(/\s+/);
    for (const term of terms) {
      const target = /^[+?~-]?include:(.+)$/i.exec(term)?.[1] ?? /^redirect=(.+)$/i.exec(term)?.[1];
      if (!target || domains.has(target.toLowerCase())) continue;
      domains.add(target.toLowerCase());
      if (++lookups > MAX_SPF_LOOKUPS) return { domains, complete: false };
      const answer = await dns.txt(target);
      if (answer.kind === 'found') queue.push(...spfRecords(answer.records));
      else if (answer.kind === 'failed') complete = false;
    }
  }
  return { domains, complete };
}

async function checkSpf(dns: Dns, config: Config, domain: string): Promise<Check> {
  const answer = await dns.txt(domain);
  if (answer.kind === 'failed')
    return {
      name: 'spf',
      status: 'unknown',
      summary: `Could not look up the SPF record of ${domain}: ${answer.error}`,
      records: [],
    };
  const records = answer.kind === 'found' ? spfRecords(answer.records) : [];
  const expected = upstreamSpfInclude(config);
  const addFix = expected
    ? `add include:${expected.include}`
    : config.delivery.mode === 'mx'
      ? "add this site's public IP address (ip4:...)"
      : `add the SPF include your upstream (${config.delivery.smarthost.host || 'not set'}) documents`;
  if (records.length === 0)
    return {
      name: 'spf',
      status: 'warning',
      summary: `${domain} has no SPF record: receivers cannot tell which servers may send for it`,
      fix: `Publish a TXT record at ${domain}: "v=spf1 ${expected ? `include:${expected.include}` : 'ip4:<your public IP>'} -all"`,
      records: [],
    };
  if (records.length > 1)
    return {
      name: 'spf',
      status: 'problem',
      summary: `${domain} has ${records.length} SPF records: receivers treat that as an error (permerror)`,
      fix: 'Merge them into one TXT record',
      records,
    };
  const record = records[0] ?? '';
  if (/(^|\s)\+?all(\s|$)/i.test(record))
    return {
      name: 'spf',
      status: 'warning',
      summary: `The SPF record of ${domain} ends in "+all": it lets anyone send as ${domain}`,
      fix: 'End it with "-all" or "~all"',
      records,
    };
  if (!expected)
    return {
      name: 'spf',
      status: 'ok',
      summary: `${domain} has an SPF record; make sure it covers ${config.delivery.mode === 'mx' ? "this site's public IP address" : config.delivery.smarthost.host || 'your upstream'}`,
      fix: addFix,
      records,
    };
  const reach = await spfReach(dns, record);
  if (reach.domains.has(expected.include))
    return {
      name: 'spf',
      status: 'ok',
      summary: `SPF of ${domain} includes ${expected.upstream} (${expected.include})`,
      records,
    };
  if (!reach.complete)
    return {
      name: 'spf',
      status: 'unknown',
      summary: `Could not follow every include of the SPF record of ${domain} (DNS failure or more than ${MAX_SPF_LOOKUPS} lookups)`,
      records,
    };
  return {
    name: 'spf',
    status: 'problem',
    summary: `SPF does not include your upstream (${expected.upstream}): mail for ${domain} fails SPF`,
    fix: `Add include:${expected.include} to the SPF record of ${domain}`,
    records,
  };
}

function dmarcTags(record: string): Map<string, string> {
  return new Map(
    record
      .split(';')
      .map((part) =>
        part
          .trim()
          .split('=')
          .map((s) => s.trim()),
      )
      .filter((kv): kv is [string, string] => kv.length === 2 && Boolean(kv[0]))
      .map(([k, v]) => [k.toLowerCase(), v]),
  );
}

async function checkDmarc(dns: Dns, domain: string): Promise<Check> {
  const name = `_dmarc.${domain}`;
  const answer = await dns.txt(name);
  if (answer.kind === 'failed')
    return {
      name: 'dmarc',
      status: 'unknown',
      summary: `Could not look up ${name}: ${answer.error}`,
      records: [],
    };
  const records =
    answer.kind === 'found'
      ? answer.records.filter((r) => /^v=DMARC1(\s|;|$)/i.test(r.trim()))
      : [];
  if (records.length === 0)
    return {
      name: 'dmarc',
      status: 'warning',
      summary: `${domain} has no DMARC record: Gmail and Yahoo expect one from bulk senders, and receivers guess what to do with mail that fails`,
      fix: `Publish a TXT record at ${name}: "v=DMARC1; p=none; rua=mailto:dmarc@${domain}" and tighten it later`,
      records: [],
    };
  if (records.length > 1)
    return {
      name: 'dmarc',
      status: 'problem',
      summary: `${name} has ${records.length} DMARC records: receivers ignore them all`,
      fix: 'Keep exactly one',
      records,
    };
  const policy = (dmarcTags(records[0] ?? '').get('p') ?? '').toLowerCase();
  if (policy === 'reject' || policy === 'quarantine') {
    return {
      name: 'dmarc',
      status: 'ok',
      summary: `DMARC of ${domain} is p=${policy}: mail whose From is @${domain} must pass SPF or DKIM for ${domain}, or it is ${policy === 'reject' ? 'refused' : 'put in spam'}. Turn on sender alignment so devices send as a verified ${domain} address`,
      records,
    };
  }
  if (policy === 'none')
    return {
      name: 'dmarc',
      status: 'ok',
      summary: `DMARC of ${domain} is p=none (monitoring only): failing mail is still delivered`,
      records,
    };
  return {
    name: 'dmarc',
    status: 'problem',
    summary: `The DMARC record at ${name} has no valid policy (p=none, quarantine or reject)`,
    fix: 'Add p=none (or quarantine/reject) to the record',
    records,
  };
}

async function checkDkim(dns: Dns, domain: string, expected: ExpectedDkim): Promise<Check> {
  const name = `${expected.selector}._domainkey.${domain}`;
  const answer = await dns.txt(name);
  const fix = `Publish a TXT record at ${name}: "v=DKIM1; k=rsa; p=${expected.publicKey}"`;
  if (answer.kind === 'failed')
    return {
      name: 'dkim',
      status: 'unknown',
      summary: `Could not look up ${name}: ${answer.error}`,
      records: [],
    };
  const records = answer.kind === 'found' ? answer.records : [];
  const published = records
    .map((r) => /(?:^|;)\s*p=([^;]*)/.exec(r)?.[1]?.replace(/\s+/g, ''))
    .filter(Boolean);
  if (published.includes(expected.publicKey))
    return {
      name: 'dkim',
      status: 'ok',
      summary: `The DKIM key at ${name} matches the key this box signs with`,
      records,
    };
  if (published.length === 0)
    return {
      name: 'dkim',
      status: 'problem',
      summary: `No DKIM key is published at ${name}: signed mail will not verify`,
      fix,
      records,
    };
  return {
    name: 'dkim',
    status: 'problem',
    summary: `The DKIM key at ${name} is not the one this box signs with`,
    fix,
    records,
  };
}

const listed = (checks: Check[]): string => checks.map((c) => c.name.toUpperCase()).join(' and ');

/** The overall verdict in plain words, led by the most serious finding */
export function verdict(domain: string, status: CheckStatus, checks: Check[]): string {
  const having = (wanted: CheckStatus) => checks.filter((c) => c.status === wanted);
  switch (status) {
    case 'ok':
      return `Mail sent as ${domain} through this box should be accepted: ${listed(checks)} are in order.`;
    case 'problem': {
      const problems = having('problem');
      return `Mail sent as ${domain} is likely to be refused or put in spam until you fix ${listed(problems)}: ${problems[0]?.summary ?? ''}.`;
    }
    case 'warning': {
      const warnings = having('warning');
      return `Mail sent as ${domain} will probably arrive, but some receivers may distrust it until you fix ${listed(warnings)}: ${warnings[0]?.summary ?? ''}.`;
    }
    case 'unknown':
      return `The check could not finish: this box got no answer for ${listed(having('unknown'))} of ${domain}. Check its DNS servers (Settings) and try again.`;
  }
}

/** `upstream`: a check of the upstream for this domain (Microsoft Graph: sign-in, permissions, mailbox) */
export async function preflight(
  dns: Dns,
  config: Config,
  domain: string,
  dkim?: ExpectedDkim,
  upstream?: (domain: string) => Promise<Check>,
): Promise<Preflight> {
  const name = domain.trim().toLowerCase().replace(/\.$/, '');
  const checks = await Promise.all([
    checkMx(dns, name),
    checkSpf(dns, config, name),
    checkDmarc(dns, name),
    ...(dkim ? [checkDkim(dns, name, dkim)] : []),
    ...(upstream ? [upstream(name)] : []),
  ]);
  const status = checks.reduce<CheckStatus>(
    (worst, check) => (RANK[check.status] > RANK[worst] ? check.status : worst),
    'ok',
  );
  return {
    domain: name,
    checkedAt: new Date().toISOString(),
    status,
    verdict: verdict(name, status, checks),
    checks,
  };
}
