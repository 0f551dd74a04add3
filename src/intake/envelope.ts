/**
 * The checks of MAIL FROM and RCPT TO: address syntax, size, the client's
 * message rate, disk space, where a device may send, and local mailboxes.
 * Each throws the RelayError the client is to hear.
 */
import type { SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import { smtpReject } from '../errors.js';
import { mailboxName, parseAddress } from '../route/address.js';
import { isLocalDomain } from '../route/router.js';
import type { Admission } from './admission.js';
import { ClientLimits } from './limits.js';
import type { IntakeOptions } from './server.js';
import { declaredSize, ownRule, recipientRule } from './size-limits.js';

/** Keep a little room so the spool's own records can still be written when the disk is nearly full */
const MIN_FREE_BYTES = 1024 * 1024;

export class EnvelopeChecks {
  private readonly limits = new ClientLimits();

  constructor(
    private readonly options: Required<IntakeOptions>,
    private readonly admission: Admission,
  ) {}

  async mailFrom(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    if (address.address && !parseAddress(address.address))
      throw smtpReject(553, '5.1.7', `Bad sender address syntax "${address.address}"`);
    const config = this.options.config();
    const { smtp } = config;
    const declared = declaredSize(address);
    const own = ownRule(config);
    if (declared > own.bytes) throw own.refusal(declared);
    const maxMessagesPerMinute =
      smtp.devices[session.remoteAddress]?.maxMessagesPerMinute ?? smtp.maxMessagesPerMinute;
    const now = Date.now();
    this.limits.prune(now);
    if (!this.limits.takeMessage(session.remoteAddress, maxMessagesPerMinute, now)) {
      throw smtpReject(
        450,
        '4.7.1',
        `Too many messages from ${session.remoteAddress} (limit ${maxMessagesPerMinute} a minute), try again shortly`,
      );
    }
    const free = await this.options.spool.freeBytes();
    if (free < MIN_FREE_BYTES + declared) {
      this.options.log.error(
        { session: session.id, free, declared },
        'Refusing mail: the data disk is full',
      );
      throw smtpReject(452, '4.3.1', 'Insufficient system storage, try again later');
    }
  }

  rcptTo(address: SMTPServerAddress, session: SMTPServerSession): void {
    const config = this.options.config();
    const client = session.remoteAddress;
    if (!this.admission.allows(client)) {
      this.options.log.warn(
        { session: session.id, client, rcpt: address.address },
        'Refused a client outside smtp.allowNetworks',
      );
      throw smtpReject(
        554,
        '5.7.1',
        `Relay access denied: client ${client} is not in the allowed networks`,
      );
    }
    const parsed = parseAddress(address.address);
    if (!parsed)
      throw smtpReject(553, '5.1.3', `Bad recipient address syntax "${address.address}"`);
    if (parsed.domain.startsWith('['))
      throw smtpReject(553, '5.1.3', 'Address literals are not accepted as recipients');
    const allowed = config.smtp.devices[client]?.allowDomains;
    if (
      allowed &&
      !isLocalDomain(parsed.domain, config) &&
      !allowed.some((d) => d.toLowerCase() === parsed.domain)
    ) {
      throw smtpReject(550, '5.7.1', `This device may only send to ${allowed.join(', ')}`);
    }
    if (
      isLocalDomain(parsed.domain, config) &&
      !this.options.mailboxes.exists(mailboxName(parsed.local))
    ) {
      throw smtpReject(550, '5.1.1', `No such mailbox here: ${address.address}`);
    }
    // A declared size too large for the upstream this recipient's mail goes to: refused for this recipient only
    const declared = declaredSize(session.envelope.mailFrom);
    const rule = recipientRule(address.address, config, this.options.upstreams);
    if (declared > rule.bytes) throw rule.refusal(declared);
  }
}
