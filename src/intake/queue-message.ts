/**
 * DATA: the message gets its Received header and any missing ones, the
 * copies the settings ask for, and goes into the spool; `queued` hears of it
 * once the spool says it is durable, and its queue id is returned.
 */
import type { Readable } from 'node:stream';
import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { errorMessage } from '../errors.js';
import { newQueueId } from '../spool/ids.js';
import { copyRecipients } from './copies.js';
import { MessageFixer } from './message-fixer.js';
import { missingHeaders, receivedHeader } from './received.js';
import type { IntakeEvents, IntakeOptions } from './server.js';
import { messageRule } from './size-limits.js';

export type QueuedMessage = IntakeEvents['queued'][0];

export async function queueMessage(
  stream: SMTPServerDataStream,
  session: SMTPServerSession,
  options: Required<IntakeOptions>,
  queued: (message: QueuedMessage) => void,
): Promise<string> {
  const config = options.config();
  const now = new Date();
  const id = newQueueId(now.getTime());
  const helo = session.hostNameAppearsAs || '';
  const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
  const given = session.envelope.rcptTo.map((r) => r.address);
  const recipients = [
    ...given,
    ...copyRecipients(config, { from, client: session.remoteAddress, recipients: given }, (name) =>
      options.mailboxes.exists(name),
    ),
  ];
  const fixer = new MessageFixer({
    limit: messageRule(recipients, config, options.upstreams),
    prepend: receivedHeader({
      helo,
      clientAddress: session.remoteAddress,
      byHost: config.hostname,
      protocol: session.transmissionType || 'SMTP',
      queueId: id,
      recipients,
      date: now,
    }),
    missing: (has) => missingHeaders(has, id, config.hostname, now),
  });
  const log = options.log.child({ queueId: id, session: session.id });
  try {
    const { size } = await options.spool.accept(
      { id, from, to: recipients, client: { address: session.remoteAddress, helo } },
      stream as Readable,
      [fixer],
      now,
    );
    log.info({ from, to: recipients, client: session.remoteAddress, helo, size }, 'Message queued');
    queued({ id, client: session.remoteAddress, helo, at: now, from, to: recipients, size });
    return id;
  } catch (err) {
    log.warn({ client: session.remoteAddress, err: errorMessage(err) }, 'Message not accepted');
    throw err;
  }
}
