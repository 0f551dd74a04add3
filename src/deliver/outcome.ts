/** The result of one delivery attempt for one recipient */
export type Outcome =
  | { status: 'delivered'; detail: string }
  | { status: 'local'; detail: string }
  | { status: 'deferred'; error: string }
  | { status: 'bounced'; error: string };

export interface RecipientOutcome {
  address: string;
  outcome: Outcome;
}

export const allRecipients = (recipients: readonly string[], outcome: Outcome): RecipientOutcome[] =>
  recipients.map((address) => ({ address, outcome }));
