/**
 * Carries one group of recipients (one destination) of one message: into a
 * local mailbox, to the smarthost, to the domain's MX hosts, or to the host
 * a per-domain override names.
 */
import type { Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { MailboxStore } from '../mailbox/store.js';
import type { AccessTokenSource } from '../oauth/client.js';
import type { Destination, HostDestination, MxDestination } from '../route/router.js';
import type { ClientInfo } from '../spool/records.js';
import { parseDuration } from '../util/duration.js';
import type { DkimSigner } from './dkim.js';
import { fromException, fromUnroutable } from './failure-policy.js';
import type { MxDelivery } from './mx.js';
import { outboundParts } from './outbound.js';
import { allRecipients, type RecipientOutcome } from './outcome.js';
import type { SmtpAuth } from './smtp-auth.js';
import { greet, sendOne, type SmtpTarget } from './smtp-client.js';
import type { SmtpPool } from './smtp-pool.js';
import type { UpstreamLimits } from './upstream-limits.js';
import { GraphSender } from './graph/send-mail.js';

export interface DeliveryJob {
  queueId: string;
  from: string;
  recipients: string[];
  destination: Destination;
  openBody: () => Promise<Readable>;
  /** The device that sent it (the arrival's client): per-device sender rewrite and display name */
  client?: ClientInfo;
  /** Message size in bytes: how long a transaction may take grows with it */
  size?: number;
}

type RelayDestination =
  | Extract<Destination, { kind: 'smarthost' | 'graph' }>
  | MxDestination
  | HostDestination;

/** Everything comes from the composition root (app.ts): the page shares the DKIM signer and the OAuth2 client */
export interface DelivererOptions {
  config: () => Config;
  mailboxes: MailboxStore;
  mx: MxDelivery;
  log: Logger;
  /** The admin-given name of a device by its address (the device inventory), for the rewritten From's display name */
  deviceName: (address: string) => string | undefined;
  dkim: DkimSigner;
  /** The process's one OAuth2 client, for `smarthost.auth` "oauth2" */
  tokens: AccessTokenSource;
  /** Connections kept open between messages, shared with MX delivery */
  pool: SmtpPool;
  /** Learns each upstream's message size limit from its EHLO */
  limits: UpstreamLimits;
}

/** What the upstream probe found: it answered EHLO (with the TLS the settings ask for), or why not */
export type Greeting = { ok: true; text: string } | { ok: false; text: string };

/** Password or OAuth2 per `smarthost.auth` */
function smarthostAuth(config: Config, tokens: AccessTokenSource): SmtpAuth | undefined {
  const { smarthost } = config.delivery;
  if (smarthost.auth === 'oauth2') return { method: 'oauth2', user: smarthost.user, tokens };
  return smarthost.user
    ? { method: 'password', user: smarthost.user, pass: smarthost.password }
    : undefined;
}

function smarthostTarget(config: Config, tokens: AccessTokenSource): SmtpTarget {
  const { smarthost, tls } = config.delivery;
  return {
    host: smarthost.host,
    port: smarthost.port,
    security: smarthost.security,
    verify: tls.verify,
    caFile: tls.caFile || undefined,
    auth: smarthostAuth(config, tokens),
    name: config.hostname,
    timeoutMs: parseDuration(config.delivery.timeout) ?? 120_000,
  };
}

/**
 * The one way mail leaves: the queue, the page's test mail and the upstream
 * probe all come through here, so they see the same rewriting, signing, TLS
 * and login. Never throws: whatever goes wrong becomes each recipient's
 * outcome (failure-policy.ts), so it counts as an attempt.
 */
export class Deliverer {
  private readonly graph: GraphSender;

  constructor(private readonly options: DelivererOptions) {
    this.graph = new GraphSender({ config: options.config, tokens: options.tokens });
  }

  /** Closes the connections kept open for reuse (at shutdown) */
  close(): void {
    this.options.pool.close();
  }

  async deliver(job: DeliveryJob): Promise<RecipientOutcome[]> {
    const { destination } = job;
    try {
      switch (destination.kind) {
        case 'local':
          return await this.deliverLocal(job, destination.mailbox);
        case 'smarthost':
        case 'mx':
        case 'host':
        case 'graph':
          return await this.relay(job, destination);
        case 'unroutable':
          return allRecipients(
            job.recipients,
            fromUnroutable(destination.cause, destination.reason),
          );
      }
    } catch (err) {
      this.options.log.error(
        { queueId: job.queueId, err: errorMessage(err) },
        'Delivery failed on this box',
      );
      return allRecipients(job.recipients, fromException(err, 'on this box'));
    }
  }

  /** The smarthost's greeting, EHLO and TLS as a delivery would see them; no login and no message */
  async probeSmarthost(timeoutMs: number): Promise<Greeting> {
    const target = { ...smarthostTarget(this.options.config(), this.options.tokens), timeoutMs };
    const where = `${target.host}:${target.port}`;
    try {
      const { secure } = await greet(target);
      return { ok: true, text: `${where} answered EHLO${secure ? ' over TLS' : ''}` };
    } catch (err) {
      return { ok: false, text: `${where}: ${errorMessage(err)}` };
    }
  }

  /**
   * Each part (recipients sharing a sender rewrite) is its own transaction. A
   * part that fails on our side (DKIM key unreadable, body that cannot be
   * opened) is that part's outcome: the parts already sent keep theirs.
   */
  private async relay(
    job: DeliveryJob,
    destination: RelayDestination,
  ): Promise<RecipientOutcome[]> {
    const { config: currentConfig, deviceName, dkim, limits, log, mx, pool, tokens } = this.options;
    const config = currentConfig();
    const context = {
      client: job.client,
      deviceName: job.client && deviceName(job.client.address),
    };
    const outcomes: RecipientOutcome[] = [];
    for (const part of outboundParts(job, config, context)) {
      if (part.plan.envelopeFrom || part.plan.headerFrom)
        log.info(
          {
            queueId: job.queueId,
            envelopeFrom: part.envelope.from,
            headerFrom: part.plan.headerFrom || undefined,
          },
          'Sender aligned',
        );
      const envelope = {
        ...part.envelope,
        size: job.size,
        heardSize: limits.listener(destination),
      };
      try {
        const openBody = dkim.wrap(config, part.openBody);
        // Not signed for Graph: Microsoft 365 rebuilds the message (and signs it with the domain's key there), which no signature of ours survives
        if (destination.kind === 'graph')
          outcomes.push(...(await this.graph.send(envelope, part.openBody)));
        else
          outcomes.push(
            ...(destination.kind === 'smarthost'
              ? await sendOne(smarthostTarget(config, tokens), envelope, openBody, pool)
              : await mx.deliver(destination, envelope, openBody)),
          );
      } catch (err) {
        outcomes.push(
          ...allRecipients(envelope.to, fromException(err, 'on this box, before sending')),
        );
      }
    }
    return outcomes;
  }

  private async deliverLocal(job: DeliveryJob, mailbox: string): Promise<RecipientOutcome[]> {
    try {
      const stored = await this.options.mailboxes.deliver(
        mailbox,
        await job.openBody(),
        job.queueId,
      );
      return allRecipients(job.recipients, {
        status: 'local',
        detail: `mailbox ${mailbox} (${stored.uid})`,
      });
    } catch (err) {
      return allRecipients(job.recipients, fromException(err, 'local delivery'));
    }
  }
}
