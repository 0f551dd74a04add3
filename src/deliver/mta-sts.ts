/**
 * MTA-STS policy discovery (RFC 8461 section 3 and 5): the `_mta-sts` TXT
 * record says a policy exists and its id; the policy is fetched over HTTPS
 * (certificate verified, no redirects) from mta-sts.<domain> and cached in
 * the data dir for its max_age (mta-sts-cache.ts), across restarts. When
 * discovery fails, a still-valid cached policy is used; without one,
 * delivery goes on as if there were no policy.
 */
import https from 'node:https';
import path from 'node:path';
import type { Config } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { Dns } from './dns.js';
import { StsCache } from './mta-sts-cache.js';
import { parseStsPolicy, parseStsRecord, type StsPolicy } from './mta-sts-policy.js';
import { trustStore } from '../tls/trust.js';

const POLICY_PATH = '/.well-known/mta-sts.txt';
/** Section 3.3: policies are small; anything larger is not one */
const MAX_POLICY_BYTES = 64 * 1024;
const FETCH_TIMEOUT_MS = 15_000;

export interface MtaStsOptions {
  config: () => Config;
  dns: Dns;
  log: Logger;
  now?: () => number;
}

export class MtaSts {
  private readonly cache: StsCache;

  constructor(private readonly options: MtaStsOptions) {
    this.cache = new StsCache({
      dataDir: path.resolve(options.config().dataDir),
      log: options.log,
      now: options.now ?? Date.now,
    });
  }

  /** The policy that applies to mail for `domain` now, or null when none does */
  async policyFor(domain: string): Promise<StsPolicy | null> {
    const { config, dns, log } = this.options;
    if (!config().delivery.mtaSts.enabled) return null;
    const now = (this.options.now ?? Date.now)();
    const valid = await this.cache.get(domain);
    const txt = await dns.txt(`_mta-sts.${domain}`);
    const record = txt.kind === 'found' ? parseStsRecord(txt.records) : null;
    if (!record?.ok) return valid?.policy ?? null;
    if (valid && valid.id === record.value.id) return valid.policy;
    try {
      const policy = await this.fetchPolicy(domain);
      await this.cache.set(domain, {
        id: record.value.id,
        policy,
        expiresAt: now + policy.maxAgeSeconds * 1000,
      });
      log.info(
        { domain, mode: policy.mode, mx: policy.mx, maxAge: policy.maxAgeSeconds },
        'MTA-STS policy fetched',
      );
      return policy;
    } catch (err) {
      log.warn(
        { domain, err: errorMessage(err) },
        valid
          ? 'MTA-STS policy fetch failed; using the cached policy'
          : 'MTA-STS policy fetch failed; delivering without a policy',
      );
      return valid?.policy ?? null;
    }
  }

  private async fetchPolicy(domain: string): Promise<StsPolicy> {
    const host = `mta-sts.${domain}`;
    const addresses = await this.options.dns.addresses(host);
    if (addresses.kind !== 'found') throw new Error(`No address for "${host}"`);
    const text = await fetchText(addresses.records[0] ?? '', host, this.options.config());
    const parsed = parseStsPolicy(text);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.value;
  }
}

/** GET the policy from `address`, verifying the certificate for `host` (section 3.3) */
function fetchText(address: string, host: string, config: Config): Promise<string> {
  const { mtaSts, tls } = config.delivery;
  return new Promise((resolve, reject) => {
    const request = https.get(
      {
        host: address,
        servername: host,
        port: mtaSts.port,
        path: POLICY_PATH,
        headers: { host },
        ca: trustStore(tls.caFile || undefined),
        rejectUnauthorized: true,
        agent: false,
        timeout: FETCH_TIMEOUT_MS,
      },
      (response) => {
        const type = String(response.headers['content-type'] ?? '');
        if (response.statusCode !== 200)
          return fail(`HTTP ${response.statusCode ?? '?'} from https://${host}${POLICY_PATH}`);
        if (!/^text\/plain\b/i.test(type))
          return fail(
            `Content-Type "${type}" from https://${host}${POLICY_PATH}, expected text/plain`,
          );
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_POLICY_BYTES)
            return fail(
              `Policy at https://${host}${POLICY_PATH} is larger than ${MAX_POLICY_BYTES} bytes`,
            );
          chunks.push(chunk);
        });
        response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        response.on('error', reject);
      },
    );
    const fail = (message: string) => {
      request.destroy();
      reject(new Error(message));
    };
    request.on('timeout', () => fail(`Timed out fetching https://${host}${POLICY_PATH}`));
    request.on('error', reject);
  });
}
