/**
 * The result of one delivery attempt for one recipient. Which failures are
 * temporary is decided in one place: failure-policy.ts.
 */
export type Delivered = { status: 'delivered'; detail: string };
export type Local = { status: 'local'; detail: string };
export type Deferred = {
  status: 'deferred';
  reason: string;
  /** The upstream asked for this wait (Retry-After): not retried sooner */
  retryAfterMs?: number;
  /** The upstream asked us to slow down: this attempt does not count toward the maximum queue age */
  throttled?: true;
};
/** `dsnStatus` is the RFC 3463 status the bounce report gives, e.g. "5.1.1" */
export type Bounced = { status: 'bounced'; reason: string; dsnStatus: string };

export type Failure = Deferred | Bounced;
export type Outcome = Delivered | Local | Failure;

export interface RecipientOutcome {
  address: string;
  outcome: Outcome;
}

export const allRecipients = (
  recipients: readonly string[],
  outcome: Outcome,
): RecipientOutcome[] => recipients.map((address) => ({ address, outcome }));

/** What to show for an outcome: where it went, or why not */
export const outcomeText = (outcome: Outcome): string =>
  outcome.status === 'deferred' || outcome.status === 'bounced' ? outcome.reason : outcome.detail;
