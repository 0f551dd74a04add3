/**
 * What Microsoft Graph's answer means for the recipients (pure): the one
 * place where Graph's status codes and error codes become an outcome.
 *
 * Throttling (429) and server trouble (5xx) are retried, after at least the
 * Retry-After Graph asked for. A refusal of the app itself (401, 403: no
 * Mail.Send permission, consent revoked, an application access policy) is a
 * setting for the admin to fix, so it is retried like an SMTP 535 and says
 * what to fix; a refusal of this message or its sender (unknown mailbox,
 * send-as denied, too large) bounces.
 */
import { bounced, deferred } from '../failure-policy.js';
import type { Outcome } from '../outcome.js';
import type { GraphReply } from './graph-http.js';

export interface GraphContext {
  /** The mailbox the message was sent from */
  mailbox: string;
  tenant: string;
  clientId: string;
  /** What was being done, e.g. "sendMail" */
  step: string;
}

/** Graph's own error code and first sentence, e.g. "ErrorAccessDenied: Access is denied" */
export function graphError(body: Record<string, unknown>): { code: string; message: string } {
  const error =
    body.error && typeof body.error === 'object' ? (body.error as Record<string, unknown>) : {};
  const code = typeof error.code === 'string' ? error.code : '';
  const message = typeof error.message === 'string' ? (error.message.split(/\r?\n/)[0] ?? '') : '';
  return { code, message };
}

export const consentLink = (tenant: string, clientId: string): string =>
  `https://login.microsoftonline.com/${encodeURIComponent(tenant || 'organizations')}/adminconsent?client_id=${encodeURIComponent(clientId)}`;

/** The sentence for an admin whose app may not send as the mailbox */
export function permissionSentence(context: GraphContext): string {
  // Only sendMail itself gets by with Mail.Send; a draft and its uploads are writes to the mailbox
  const permission =
    context.step === 'sendMail'
      ? 'the application permission Mail.Send'
      : 'the application permissions Mail.Send and Mail.ReadWrite (a message over 3 MB goes as a draft)';
  return `The app may not send as ${context.mailbox}: it needs ${permission} (Microsoft Graph > Application permissions) with admin consent, and no application access policy that leaves ${context.mailbox} out. Grant consent at ${consentLink(context.tenant, context.clientId)}`;
}

const SENDER_CODES = new Set([
  'ErrorInvalidUser',
  'MailboxNotEnabledForRESTAPI',
  'ResourceNotFound',
  'ErrorSendAsDenied',
  'ErrorNonExistentMailbox',
]);

export function graphOutcome(reply: GraphReply, context: GraphContext): Outcome {
  const { code, message } = graphError(reply.body);
  const said = `HTTP ${reply.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`;
  const where = `Microsoft Graph ${context.step} as ${context.mailbox}`;
  const wait = reply.retryAfterMs === undefined ? {} : { retryAfterMs: reply.retryAfterMs };
  if (reply.status === 429)
    return deferred(
      `${where}: throttled (${said}); waiting ${Math.ceil((reply.retryAfterMs ?? 0) / 1000)}s as asked`,
      { ...wait, throttled: true },
    );
  if (reply.status >= 500 || reply.status === 0)
    return deferred(`${where}: the service is in trouble (${said})`, wait);
  if (reply.status === 401 || (reply.status === 403 && !SENDER_CODES.has(code)))
    return deferred(`${where} was refused (${said}). ${permissionSentence(context)}`);
  if (reply.status === 404 || SENDER_CODES.has(code))
    return bounced(
      `${where} was refused (${said}): ${context.mailbox} is not a mailbox in the tenant that Microsoft Graph can send from, or the app may not send as that address`,
      '5.7.1',
    );
  if (reply.status === 413 || code === 'ErrorMessageSizeExceeded')
    return bounced(
      `${where} was refused: the message is too large for Microsoft 365 (${said})`,
      '5.3.4',
    );
  return bounced(`${where} was refused (${said})`, '5.0.0');
}
