/**
 * Sends bounce reports. A report is a new message in the spool (so it is as
 * durable as any other), from the null sender, to the postmaster mailbox and,
 * when configured, to the original sender. A bounce is never bounced.
 */
import { Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { newQueueId } from '../spool/ids.js';
import type { QueueEntry, RecipientState } from '../spool/records.js';
import type { Spool } from '../spool/spool.js';
import { buildDsn, type DsnAction } from './dsn.js';

const MAX_HEADER_BYTES = 64 * 1024;

export interface BouncerOptions {
  spool: Spool;
  config: () => Config;
  log: Logger;
  postmasterExists: () => boolean;
}

export class Bouncer {
  constructor(private readonly options: BouncerOptions) {}

  /** Who gets the report about a message from `sender` */
  recipients(sender: string): string[] {
    const config = this.options.config();
    const postmaster = `${config.mailbox.postmaster}@${config.mailbox.localDomains[0] ?? config.hostname}`;
    const to = new Set<string>();
    if (this.options.postmasterExists() && config.mailbox.localDomains.length) to.add(postmaster);
    if ((config.delivery.bounce.notifySender || to.size === 0) && sender) to.add(sender);
    return [...to];
  }

  async report(
    entry: QueueEntry,
    failed: RecipientState[],
    action: DsnAction = 'failed',
  ): Promise<void> {
    const { arrival } = entry;
    const log = this.options.log.child({ queueId: arrival.id });
    if (!arrival.from) {
      log.warn(
        { recipients: failed.map((f) => f.address), action },
        'Not reporting on a bounce report',
      );
      return;
    }
    const to = this.recipients(arrival.from);
    const config = this.options.config();
    const report = buildDsn({
      action,
      reportingMta: config.hostname,
      queueId: arrival.id,
      arrivalDate: arrival.receivedAt,
      originalSender: arrival.from,
      failed: failed.map((f) => ({
        address: f.address,
        error: f.lastError ?? 'Unknown error',
        dsnStatus: f.dsnStatus,
      })),
      originalHeaders: await this.originalHeaders(entry),
      to: to[0] ?? arrival.from,
      date: new Date(),
    });
    const id = newQueueId();
    await this.options.spool.accept(
      { id, from: '', to, client: { address: '127.0.0.1', helo: config.hostname } },
      Readable.from([Buffer.from(report)]),
    );
    log.info(
      { bounceId: id, to, action, recipients: failed.map((f) => f.address) },
      action === 'failed' ? 'Bounce report queued' : 'Delay warning queued',
    );
  }

  private async originalHeaders(entry: QueueEntry): Promise<string> {
    const body = this.options.spool.bodyOf(entry);
    let text = '';
    for await (const chunk of body) {
      text += (chunk as Buffer).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end >= 0 || text.length > MAX_HEADER_BYTES) {
        body.destroy();
        return text.slice(0, end >= 0 ? end + 2 : MAX_HEADER_BYTES);
      }
    }
    return text;
  }
}
