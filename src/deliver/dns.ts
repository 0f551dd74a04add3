/**
 * DNS lookups for delivery with Node's resolver: the servers in
 * `delivery.dns.servers` when set, else the system's, with a bounded time.
 * Answers are values: found, the name does not exist, no records of that
 * type, or a failure to retry later — never a thrown error.
 */
import { Resolver } from 'node:dns/promises';
import type { Config } from '../config/schema.js';
import { errnoCode, errorMessage } from '../errors.js';
import { parseDuration } from '../util/duration.js';

export type Lookup<T> =
  | { kind: 'found'; records: T[] }
  /** NXDOMAIN: the name does not exist (a permanent answer) */
  | { kind: 'nxdomain' }
  /** The name exists but has no records of this type */
  | { kind: 'nodata' }
  /** SERVFAIL, timeout, refused, unreachable: ask again later */
  | { kind: 'failed'; error: string };

export interface MxRecord {
  exchange: string;
  priority: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** Two tries share the configured time, so one lost UDP packet is not a failure */
const TRIES = 2;

function makeResolver(servers: readonly string[], timeoutMs: number): Resolver {
  const resolver = new Resolver({
    timeout: Math.max(Math.floor(timeoutMs / (TRIES + 1)), 100),
    tries: TRIES,
  });
  if (servers.length) resolver.setServers([...servers]);
  return resolver;
}

export class Dns {
  private resolver: Resolver | undefined;
  private signature = '';

  constructor(private readonly config: () => Config) {}

  mx(name: string): Promise<Lookup<MxRecord>> {
    return this.lookup('MX', name, (r) => r.resolveMx(name));
  }

  a(name: string): Promise<Lookup<string>> {
    return this.lookup('A', name, (r) => r.resolve4(name));
  }

  aaaa(name: string): Promise<Lookup<string>> {
    return this.lookup('AAAA', name, (r) => r.resolve6(name));
  }

  /** TXT records, each with its strings joined (RFC 7208 section 3.3 style) */
  async txt(name: string): Promise<Lookup<string>> {
    const answer = await this.lookup('TXT', name, (r) => r.resolveTxt(name));
    return answer.kind === 'found'
      ? { kind: 'found', records: answer.records.map((chunks) => chunks.join('')) }
      : answer;
  }

  /** IPv4 then IPv6 addresses of a host; "failed" only when neither answered */
  async addresses(name: string): Promise<Lookup<string>> {
    const [v4, v6] = await Promise.all([this.a(name), this.aaaa(name)]);
    const records = [
      ...(v4.kind === 'found' ? v4.records : []),
      ...(v6.kind === 'found' ? v6.records : []),
    ];
    if (records.length) return { kind: 'found', records };
    if (v4.kind === 'failed') return v4;
    if (v6.kind === 'failed') return v6;
    return v4.kind === 'nxdomain' ? v4 : { kind: 'nodata' };
  }

  private async lookup<T>(
    type: string,
    name: string,
    query: (resolver: Resolver) => Promise<T[]>,
  ): Promise<Lookup<T>> {
    const { servers, timeout } = this.config().delivery.dns;
    const timeoutMs = parseDuration(timeout) ?? DEFAULT_TIMEOUT_MS;
    try {
      return { kind: 'found', records: await query(this.current(servers, timeoutMs)) };
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOTFOUND') return { kind: 'nxdomain' };
      if (code === 'ENODATA') return { kind: 'nodata' };
      return {
        kind: 'failed',
        error: `DNS lookup of ${type} "${name}" failed: ${code ?? errorMessage(err)}`,
      };
    }
  }

  /** One resolver per settings; a settings change takes effect at the next lookup */
  private current(servers: readonly string[], timeoutMs: number): Resolver {
    const signature = `${servers.join(',')}/${timeoutMs}`;
    if (!this.resolver || signature !== this.signature) {
      this.resolver = makeResolver(servers, timeoutMs);
      this.signature = signature;
    }
    return this.resolver;
  }
}
