/**
 * Carries one group of recipients (one destination) of one message: into a
 * local mailbox, to the smarthost, to the domain's MX hosts, or to the host
 * a per-domain override names.
 */
import type { Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import { RelayError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { MailboxStore } from '../mailbox/store.js';
import type { Destination } from '../route/router.js';
import { parseDuration } from '../util/duration.js';
import type { MxDelivery } from './mx.js';
import { allRecipients, type RecipientOutcome } from './outcome.js';
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
}

export function smarthostTarget(config: Config): SmtpTarget {
  const { smarthost, tls } = config.delivery;
  return {
    host: smarthost.host,
    port: smarthost.port,
    security: smarthost.security,
    verify: tls.verify,
    caFile: tls.caFile || undefined,
    auth: smarthost.user ? { user: smarthost.user, pass: smarthost.password } : undefined,
    name: config.hostname,
    timeoutMs: parseDuration(config.delivery.timeout) ?? 120_000,
  };
}

export class Deliverer {
  constructor(private readonly options: DelivererOptions) {}

  async deliver(job: DeliveryJob): Promise<RecipientOutcome[]> {
    const { destination } = job;
    switch (destination.kind) {
      case 'local':
        return this.deliverLocal(job, destination.mailbox);
      case 'smarthost':
        return sendOne(smarthostTarget(this.options.config()), { from: job.from, to: job.recipients }, job.openBody);
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
