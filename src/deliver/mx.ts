/**
 * Direct delivery (RFC 5321 section 5): find the domain's MX hosts (or the
 * host a per-domain override names), narrow them by the domain's MTA-STS
 * policy, then try each address in order until one answers the transaction.
 * Refused, timed out, a 4xx greeting or a failed TLS check: the next host.
 * Connections are reused between messages to the same host (smtp-pool.ts).
 */
import type { Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { HostDestination, MxDestination } from '../route/router.js';
import { parseDuration } from '../util/duration.js';
import { Dns } from './dns.js';
import { lookupExchanges, resolveHosts, type MxHost, type MxName } from './mx-resolve.js';
import { MtaSts } from './mta-sts.js';
import { policyAllows, type StsPolicy } from './mta-sts-policy.js';
import { deferred, fromHostFailures, settingProblem } from './failure-policy.js';
import { allRecipients, type Failure, type RecipientOutcome } from './outcome.js';
import { attemptDelivery, type Attempt, type Envelope, type SmtpTarget } from './smtp-client.js';
import type { SmtpPool } from './smtp-pool.js';
import { stricter, tlsSettings, type TlsPolicy } from '../tls/policy.js';

export interface MxDeliveryOptions {
  config: () => Config;
  log: Logger;
  /** Connections kept open between messages (shared with the smarthost's; the composition root owns it) */
  pool: SmtpPool;
}

/** Postfix tries 5 addresses per delivery (smtp_mx_address_limit); a few more costs little */
const MAX_ADDRESSES = 10;

type Plan =
  | { kind: 'ready'; hosts: MxHost[]; port: number; tls: TlsPolicy; sts: StsPolicy | null }
  | { kind: 'failed'; failure: Failure };

export class MxDelivery {
  private readonly dns: Dns;
  private readonly mtaSts: MtaSts;
  private readonly pool: SmtpPool;

  constructor(private readonly options: MxDeliveryOptions) {
    this.dns = new Dns(options.config);
    this.mtaSts = new MtaSts({ config: options.config, dns: this.dns, log: options.log });
    this.pool = options.pool;
  }

  async deliver(
    destination: MxDestination | HostDestination,
    envelope: Envelope,
    openBody: () => Promise<Readable>,
  ): Promise<RecipientOutcome[]> {
    const plan =
      destination.kind === 'mx' ? await this.planMx(destination) : await this.planHost(destination);
    if (plan.kind === 'failed') return allRecipients(envelope.to, plan.failure);
    return this.tryHosts(plan, envelope, openBody);
  }

  private async planMx(destination: MxDestination): Promise<Plan> {
    const { domain } = destination;
    const exchanges = await lookupExchanges(this.dns, domain);
    if (exchanges.kind !== 'found') return exchanges;
    const sts = await this.mtaSts.policyFor(domain);
    const allowed = this.applySts(domain, exchanges.hosts, sts);
    if (!allowed.length) {
      const names = exchanges.hosts.map((h) => h.name).join(', ');
      // A TLS policy refusal: the domain may fix its policy or its MX records
      return {
        kind: 'failed',
        failure: deferred(
          `MTA-STS policy of "${domain}" allows none of its MX hosts (${names}); policy mx: ${sts?.mx.join(', ')}`,
        ),
      };
    }
    return this.ready(
      allowed,
      this.options.config().delivery.mx.port,
      sts?.mode === 'enforce' ? stricter(destination.tls, 'verify') : destination.tls,
      sts,
    );
  }

  private async planHost(destination: HostDestination): Promise<Plan> {
    const plan = await this.ready(
      [{ name: destination.host.toLowerCase(), preference: 0 }],
      destination.port,
      destination.tls,
      null,
    );
    // A host the admin named that has no address is a setting to fix, however final DNS sounds
    return plan.kind === 'failed' && plan.failure.status === 'bounced'
      ? { kind: 'failed', failure: settingProblem(plan.failure, 'delivery.domains host') }
      : plan;
  }

  private async ready(
    names: MxName[],
    port: number,
    tls: TlsPolicy,
    sts: StsPolicy | null,
  ): Promise<Plan> {
    const resolved = await resolveHosts(this.dns, names);
    if (resolved.kind !== 'found') return resolved;
    return { kind: 'ready', hosts: resolved.hosts, port, tls, sts };
  }

  /** Enforce: only matching hosts. Testing: every host, mismatches logged (RFC 8461 section 5) */
  private applySts(domain: string, hosts: MxName[], sts: StsPolicy | null): MxName[] {
    if (!sts || sts.mode === 'none') return hosts;
    const mismatched = hosts.filter((host) => !policyAllows(sts, host.name));
    if (mismatched.length) {
      const names = mismatched.map((h) => h.name);
      this.options.log.warn(
        { domain, mode: sts.mode, mx: names, policy: sts.mx },
        `MTA-STS: MX hosts not in the policy${sts.mode === 'enforce' ? ', not used' : ' (testing mode, used anyway)'}`,
      );
    }
    return sts.mode === 'enforce' ? hosts.filter((host) => policyAllows(sts, host.name)) : hosts;
  }

  private async tryHosts(
    plan: Extract<Plan, { kind: 'ready' }>,
    envelope: Envelope,
    openBody: () => Promise<Readable>,
  ): Promise<RecipientOutcome[]> {
    const candidates = plan.hosts
      .flatMap((host) => host.addresses.map((address) => ({ name: host.name, address })))
      .slice(0, MAX_ADDRESSES);
    const failures: Failure[] = [];
    for (const { name, address } of candidates) {
      const target = this.target(name, address, plan.port, plan.tls);
      const attempt = await this.attempt(target, plan.sts, envelope, openBody);
      if (attempt.kind === 'answered') {
        this.options.log.info(
          { mx: name, address, port: plan.port, tls: plan.tls },
          'MX host answered',
        );
        return attempt.outcomes;
      }
      this.options.log.info(
        { mx: name, address, port: plan.port, error: attempt.outcome.reason },
        'MX host unreachable; trying the next one',
      );
      failures.push(attempt.outcome);
    }
    return allRecipients(envelope.to, fromHostFailures(failures));
  }

  /**
   * In MTA-STS testing mode the verified connection is tried first; when only
   * its TLS check fails, that is logged and the host is tried again under the
   * domain's ordinary policy (RFC 8461 section 5: report, but deliver).
   */
  private async attempt(
    target: SmtpTarget,
    sts: StsPolicy | null,
    envelope: Envelope,
    openBody: () => Promise<Readable>,
  ): Promise<Attempt> {
    if (sts?.mode !== 'testing' || target.verify)
      return this.attemptMay(target, envelope, openBody);
    const strict = await attemptDelivery(
      { ...target, ...tlsSettings('verify') },
      envelope,
      openBody,
      this.pool,
    );
    if (strict.kind === 'answered' || !strict.tlsFailed) return strict;
    this.options.log.warn(
      { mx: target.servername, error: strict.outcome.reason },
      'MTA-STS (testing mode): TLS check failed; delivering anyway',
    );
    return this.attemptMay(target, envelope, openBody);
  }

  /**
   * Opportunistic TLS (policy "may", RFC 7435 section 3): a STARTTLS handshake
   * that fails (an old MX that only speaks TLS 1.0, a broken server) is no
   * worse than no STARTTLS at all, so the same host is tried again in plain
   * text, as Postfix does. Never for encrypt/verify, which are not "may".
   */
  private async attemptMay(
    target: SmtpTarget,
    envelope: Envelope,
    openBody: () => Promise<Readable>,
  ): Promise<Attempt> {
    const attempt = await attemptDelivery(target, envelope, openBody, this.pool);
    if (target.security !== 'opportunistic' || attempt.kind === 'answered' || !attempt.tlsFailed)
      return attempt;
    this.options.log.warn(
      { mx: target.servername, address: target.host, error: attempt.outcome.reason },
      'STARTTLS failed under TLS policy "may"; retrying this host without TLS',
    );
    return attemptDelivery({ ...target, ...tlsSettings('none') }, envelope, openBody, this.pool);
  }

  private target(name: string, address: string, port: number, tls: TlsPolicy): SmtpTarget {
    const config = this.options.config();
    return {
      host: address,
      port,
      // The certificate must name the MX host, not the address we connect to
      servername: name,
      ...tlsSettings(tls),
      caFile: config.delivery.tls.caFile || undefined,
      name: config.hostname,
      timeoutMs: parseDuration(config.delivery.timeout) ?? 120_000,
    };
  }
}
