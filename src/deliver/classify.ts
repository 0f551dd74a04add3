/**
 * Turns what an upstream did into a per-recipient outcome (pure). Decided on
 * nodemailer's error codes and the SMTP reply code, never on message text.
 */
import type { Outcome } from './outcome.js';

export interface SmtpFailure {
  code?: string;
  responseCode?: number;
  response?: string;
  message: string;
  command?: string;
}

/** Connection-level failures that are ours or the network's, never the message's fault */
const TEMPORARY_CODES = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ETLS', 'EPROTOCOL', 'ESTREAM', 'EAUTH', 'ENOAUTH', 'ECONNREFUSED', 'ECONNRESET']);

/** "550 5.1.1 No such user" from the server, or a readable description of what went wrong */
export function describeFailure(failure: SmtpFailure, where: string): string {
  const reply = failure.response?.replace(/\s+/g, ' ').trim();
  if (reply && /^\d{3}/.test(reply)) return `${reply} (${where}${failure.command ? `, after ${failure.command}` : ''})`;
  const code = failure.code && !failure.message.includes(failure.code) ? `${failure.code}: ` : '';
  return `${code}${failure.message} (${where})`;
}

/** nodemailer's name for the connection phase: a reply there is the greeting */
const GREETING = 'CONN';

/**
 * 5xx replies to the message or a recipient bounce; everything else is retried.
 * Authentication is retried even on 535: it is a setting for the admin to fix,
 * not a reason to throw devices' mail away. A 5xx greeting says nothing about
 * the message (an overloaded or misconfigured host, or one that blocks us for
 * now), so it is retried too, as Postfix does (smtp_skip_5xx_greeting).
 */
export function classifyFailure(failure: SmtpFailure, where: string): Outcome {
  const error = describeFailure(failure, where);
  const permanentReply = (failure.responseCode ?? 0) >= 500;
  if (failure.code === 'EAUTH' || failure.code === 'ENOAUTH' || failure.command === GREETING) return { status: 'deferred', error };
  if (permanentReply && !TEMPORARY_CODES.has(failure.code ?? '')) return { status: 'bounced', error };
  if (permanentReply && failure.code === 'EPROTOCOL') return { status: 'bounced', error };
  return { status: 'deferred', error };
}
