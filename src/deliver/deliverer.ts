/**
 * Carries one group of recipients (one destination) of one message: into a
 * local mailbox, to the smarthost, to the domain's MX hosts, or to the host
 * a per-domain override names.
 */
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import { RelayError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { MailboxStore } from '../mailbox/store.js';
import type { Destination, HostDestination, MxDestination } from '../route/router.js';
import type { ClientInfo } from '../spool/records.js';
import { parseDuration } from '../util/duration.js';
import type { MxDelivery } from './mx.js';
import { allRecipients, type Outcome, type RecipientOutcome } from './outcome.js';
import { DkimSigner } from './dkim.js';
import { outboundParts } from './outbound.js';
import { OAuthClient, type AccessTokenSource } from '../oauth/client.js';
import type { SmtpAuth } from './smtp-auth.js';
import { sendOne, type SmtpTarget } from './smtp-client.js';
import { SmtpPool } from './smtp-pool.js';
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

type RelayDestination = Extract<Destination, { kind: 'smarthost' | 'graph' }> | MxDestination | HostDestination;

export interface DelivererOptions {
  config: () => Config;
  mailboxes: MailboxStore;
  mx: MxDelivery;
  log: Logger;
  /** The admin-given name of a device by its address (the device inventory), for the rewritten From's display name */
  deviceName?: (address: string) => string | undefined;
  /** The DKIM signer (shared with the page, which shows its DNS record); made here when not given */
  dkim?: DkimSigner;
  /** The process's one OAuth2 client (shared with the web page); made here on first use when not given */
  oauth?: OAuthClient;
  /** Connections to the smarthost kept open between messages; made here when not given */
  pool?: SmtpPool;
}

/** Password or OAuth2 per `smarthost.auth`; without a token source OAuth2 fails with a clear reason */
function smarthostAuth(config: Config, tokens: AccessTokenSource | undefined): SmtpAuth | undefined {
  const { smarthost } = config.delivery;
  if (smarthost.auth === 'oauth2') return { method: 'oauth2', user: smarthost.user, tokens: tokens ?? NO_TOKENS };
  return smarthost.user ? { method: 'password', user: smarthost.user, pass: smarthost.password } : undefined;
}

const NO_TOKENS: AccessTokenSource = {
  accessToken: () => Promise.reject(new RelayError('OAuth2 tokens are not available here (no token source passed to smarthostTarget)', { kind: 'temporary' })),
};

export function smarthostTarget(config: Config, tokens?: AccessTokenSource): SmtpTarget {
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

export class Deliverer {
  private oauth: Promise<OAuthClient> | undefined;
  private graph: GraphSender | undefined;
  private readonly pool: SmtpPool;
  /** For the page: the DNS record to publish is `dkim.record(domain, selector)` */
  readonly dkim: DkimSigner;

  constructor(private readonly options: DelivererOptions) {
    if (options.oauth) this.oauth = Promise.resolve(options.oauth);
    this.dkim = options.dkim ?? new DkimSigner(path.resolve(options.config().dataDir));
    this.pool = options.pool ?? new SmtpPool();
  }

  /** Closes the connections kept open for reuse (at shutdown) */
  close(): void {
    this.pool.close();
    this.options.mx.close();
  }

  /** The OAuth2 client, for the page's status and sign-in */
  oauthClient(): Promise<OAuthClient> {
    const { config, log } = this.options;
    this.oauth ??= OAuthClient.open({ config, dataDir: path.resolve(config().dataDir), log });
    return this.oauth;
  }

  /** Delivery through Microsoft Graph, with the process's one OAuth2 client (delivery.mode "graph") */
  private async graphSender(): Promise<GraphSender> {
    const tokens = await this.oauthClient();
    this.graph ??= new GraphSender({ config: this.options.config, tokens });
    return this.graph;
  }

  async deliver(job: DeliveryJob): Promise<RecipientOutcome[]> {
    const { destination } = job;
    switch (destination.kind) {
      case 'local':
        return this.deliverLocal(job, destination.mailbox);
      case 'smarthost':
      case 'mx':
      case 'host':
      case 'graph':
        return this.relay(job, destination);
      case 'unroutable':
        return allRecipients(job.recipients, destination.permanent ? { status: 'bounced', error: destination.reason } : { status: 'deferred', error: destination.reason });
    }
  }

  /**
   * Each part (recipients sharing a sender rewrite) is its own transaction. A
   * part that fails on our side (DKIM key unreadable, body that cannot be
   * opened) is that part's outcome: the parts already sent keep theirs.
   */
  private async relay(job: DeliveryJob, destination: RelayDestination): Promise<RecipientOutcome[]> {
    const config = this.options.config();
    const context = { client: job.client, deviceName: job.client && this.options.deviceName?.(job.client.address) };
    const outcomes: RecipientOutcome[] = [];
    for (const part of outboundParts(job, config, context)) {
      if (part.plan.envelopeFrom || part.plan.headerFrom) this.options.log.info({ queueId: job.queueId, envelopeFrom: part.envelope.from, headerFrom: part.plan.headerFrom || undefined }, 'Sender aligned');
      const envelope = { ...part.envelope, size: job.size };
      try {
        const openBody = this.dkim.wrap(config, part.openBody);
        // Not signed for Graph: Microsoft 365 rebuilds the message (and signs it with the domain's key there), which no signature of ours survives
        if (destination.kind === 'graph') outcomes.push(...(await (await this.graphSender()).send(envelope, part.openBody)));
        else outcomes.push(...(destination.kind === 'smarthost' ? await sendOne(smarthostTarget(config, await this.oauthClient()), envelope, openBody, this.pool) : await this.options.mx.deliver(destination, envelope, openBody)));
      } catch (err) {
        outcomes.push(...allRecipients(envelope.to, localFailure(err, 'on this box, before sending')));
      }
    }
    return outcomes;
  }

  private async deliverLocal(job: DeliveryJob, mailbox: string): Promise<RecipientOutcome[]> {
    try {
      const stored = await this.options.mailboxes.deliver(mailbox, await job.openBody(), job.queueId);
      return allRecipients(job.recipients, { status: 'local', detail: `mailbox ${mailbox} (${stored.uid})` });
    } catch (err) {
      return allRecipients(job.recipients, localFailure(err, 'local delivery'));
    }
  }
}

/** A failure on our side: retried (and expired at maxAge like any deferral) unless it says it is permanent */
function localFailure(err: unknown, where: string): Outcome {
  const error = `${errorMessage(err)} (${where})`;
  return err instanceof RelayError && err.kind === 'permanent' ? { status: 'bounced', error } : { status: 'deferred', error };
}
