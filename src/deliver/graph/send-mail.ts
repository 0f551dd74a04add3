/**
 * Delivery through Microsoft Graph: the message as it leaves the relay
 * (sender alignment, DKIM, safe lines), as MIME, sent from one mailbox with
 * `sendMail`; a message over Graph's request limit goes as a draft plus
 * upload sessions (upload-session.ts). Graph's answers become outcomes in
 * graph-outcome.ts. A mailbox Graph asked to wait for (Retry-After) gets no
 * request before that time: its messages are deferred until then.
 */
import type { Config } from '../../config/schema.js';
import type { AccessTokenSource } from '../../oauth/client.js';
import { bounced, deferred, fromException } from '../failure-policy.js';
import { HeaderSectionEditor } from '../header-section.js';
import { through } from '../outbound.js';
import { allRecipients, type Outcome, type RecipientOutcome } from '../outcome.js';
import type { Envelope } from '../smtp-client.js';
import { graphOutcome } from './graph-outcome.js';
import { GraphSession } from './graph-session.js';
import { measure, type OpenMessage } from './mime-parts.js';
import { graphHeaders, senderMailbox } from './sender-mailbox.js';
import { mimeBody, sendLarge, type StepResult } from './upload-session.js';

/** One request may carry 4 MB; base64 makes 3 bytes into 4, so 3 MiB of message fit */
export const DIRECT_LIMIT_BYTES = 3 * 1024 * 1024;

export interface GraphSenderOptions {
  config: () => Config;
  tokens: AccessTokenSource;
}

export class GraphSender {
  /** Per mailbox: no request before this instant (ms), as Graph's Retry-After asked */
  private readonly notBefore = new Map<string, number>();

  constructor(private readonly options: GraphSenderOptions) {}

  async send(envelope: Envelope, openBody: OpenMessage): Promise<RecipientOutcome[]> {
    return allRecipients(envelope.to, await this.attempt(envelope, openBody));
  }

  private async attempt(envelope: Envelope, openBody: OpenMessage): Promise<Outcome> {
    const config = this.options.config();
    const seen = { from: '' };
    const open: OpenMessage = async () =>
      through(
        await openBody(),
        new HeaderSectionEditor((headers) => {
          const edited = graphHeaders(headers, envelope.to);
          seen.from = edited.from;
          return edited.headers;
        }),
      );
    try {
      const size = await measure(open);
      const sender = senderMailbox(config, seen.from);
      if ('problem' in sender) return bounced(sender.problem, '5.7.1');
      const waitUntil = this.notBefore.get(sender.mailbox) ?? 0;
      if (Date.now() < waitUntil)
        return deferred(
          `Microsoft Graph asked to wait before sending as ${sender.mailbox} again (Retry-After): not before ${new Date(waitUntil).toISOString()}`,
          { retryAfterMs: waitUntil - Date.now(), throttled: true },
        );
      const session = new GraphSession(config, this.options.tokens, sender.mailbox);
      const result =
        size <= DIRECT_LIMIT_BYTES
          ? await sendDirect(session, open, size)
          : await sendLarge(session, open, DIRECT_LIMIT_BYTES);
      return result.ok
        ? { status: 'delivered', detail: result.detail }
        : this.refused(config, session.mailbox, result);
    } catch (err) {
      return fromException(err, 'Microsoft Graph');
    }
  }

  private refused(
    config: Config,
    mailbox: string,
    result: Extract<StepResult, { ok: false }>,
  ): Outcome {
    const { tenant, clientId } = config.delivery.graph;
    const outcome = graphOutcome(result.reply, { mailbox, tenant, clientId, step: result.step });
    if (outcome.status === 'deferred' && outcome.retryAfterMs !== undefined)
      this.notBefore.set(mailbox, Date.now() + outcome.retryAfterMs);
    return outcome;
  }
}

async function sendDirect(
  session: GraphSession,
  open: OpenMessage,
  size: number,
): Promise<StepResult> {
  const reply = await session.call({
    method: 'POST',
    path: '/sendMail',
    stream: mimeBody(open, size),
  });
  if (reply.status === 202)
    return {
      ok: true,
      detail: `Microsoft Graph accepted it for sending as ${session.mailbox} (sendMail, 202)`,
    };
  return { ok: false, step: 'sendMail', reply };
}
