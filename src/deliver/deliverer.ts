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
import type { Destination } from '../route/router.js';
import { parseDuration } from '../util/duration.js';
import type { MxDelivery } from './mx.js';
import { allRecipients, type RecipientOutcome } from './outcome.js';
import { OAuthClient, type AccessTokenSource } from '../oauth/client.js';
import type { SmtpAuth } from './smtp-auth.js';
import { sendOne, type SmtpTarget } from './smtp-client.js';

export interface DeliveryJob {
  queueId: string;
  from: string;
  recipients: string[];
  destination: Destination;
  openBody: () => Promise<Readable>;
}

export interface DelivererOptions {
  config: () => Config;
  mailboxes: MailboxStore;
  mx: MxDelivery;
  log: Logger;
  /** The process's one OAuth2 client (shared with the web page); made here on first use when not given */
  oauth?: OAuthClient;
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

  constructor(private readonly options: DelivererOptions) {
    if (options.oauth) this.oauth = Promise.resolve(options.oauth);
  }

  /** The OAuth2 client, for the page's status and sign-in */
  oauthClient(): Promise<OAuthClient> {
    const { config, log } = this.options;
    this.oauth ??= OAuthClient.open({ config, dataDir: path.resolve(config().dataDir), log });
    return this.oauth;
  }

  async deliver(job: DeliveryJob): Promise<RecipientOutcome[]> {
    const { destination } = job;
    switch (destination.kind) {
      case 'local':
        return this.deliverLocal(job, destination.mailbox);
      case 'smarthost':
        return sendOne(smarthostTarget(this.options.config(), await this.oauthClient()), { from: job.from, to: job.recipients }, job.openBody);
      case 'mx':
      case 'host':
        return this.options.mx.deliver(destination, { from: job.from, to: job.recipients }, job.openBody);
      case 'unroutable':
        return allRecipients(job.recipients, destination.permanent ? { status: 'bounced', error: destination.reason } : { status: 'deferred', error: destination.reason });
    }
  }

  private async deliverLocal(job: DeliveryJob, mailbox: string): Promise<RecipientOutcome[]> {
    try {
      const stored = await this.options.mailboxes.deliver(mailbox, await job.openBody(), job.queueId);
      return allRecipients(job.recipients, { status: 'local', detail: `mailbox ${mailbox} (${stored.uid})` });
    } catch (err) {
      const permanent = err instanceof RelayError && err.kind === 'permanent';
      const error = `${errorMessage(err)} (local delivery)`;
      return allRecipients(job.recipients, permanent ? { status: 'bounced', error } : { status: 'deferred', error });
    }
  }
}
