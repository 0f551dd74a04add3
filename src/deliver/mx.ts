/** Direct delivery to a domain's MX hosts (RFC 5321 section 5) */
import type { Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { allRecipients, type RecipientOutcome } from './outcome.js';
import type { Envelope } from './smtp-client.js';

export interface MxDeliveryOptions {
  config: () => Config;
  log: Logger;
}

export class MxDelivery {
  constructor(private readonly options: MxDeliveryOptions) {}

  async deliver(domain: string, envelope: Envelope, _openBody: () => Promise<Readable>): Promise<RecipientOutcome[]> {
    this.options.log.warn({ domain }, 'MX delivery is not available in this build');
    return allRecipients(envelope.to, { status: 'deferred', error: `MX delivery to ${domain} is not available yet` });
  }
}
