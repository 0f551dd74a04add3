/**
 * Folds one attempt's per-recipient outcomes into a message's delivery state
 * (pure): final recipients are marked, deferred ones wait on the backoff
 * schedule, and recipients that waited past maxAge expire into bounces.
 */
import type { RecipientOutcome } from '../deliver/outcome.js';
import { formatDuration } from '../util/duration.js';
import type { Arrival, DeliveryState, RecipientState } from '../spool/records.js';
import { delayAfter, type RetryPolicy } from './backoff.js';

export interface AppliedAttempt {
  state: DeliveryState;
  /** Recipients that failed for good in this attempt, with the reason */
  bounced: RecipientState[];
  finished: boolean;
}

export function applyOutcomes(arrival: Arrival, state: DeliveryState, outcomes: readonly RecipientOutcome[], now: Date, policy: RetryPolicy): AppliedAttempt {
  const byAddress = new Map(outcomes.map((o) => [o.address, o.outcome]));
  const expired = now.getTime() - Date.parse(arrival.receivedAt) >= policy.maxAgeMs;
  const bounced: RecipientState[] = [];
  let lastError: string | null = null;
  const recipients = state.recipients.map((recipient): RecipientState => {
    const outcome = byAddress.get(recipient.address);
    if (!outcome) return recipient;
    switch (outcome.status) {
      case 'delivered':
      case 'local':
        return { address: recipient.address, status: outcome.status, detail: outcome.detail };
      case 'bounced': {
        const done: RecipientState = { address: recipient.address, status: 'bounced', lastError: outcome.error };
        bounced.push(done);
        return done;
      }
      case 'deferred': {
        if (expired) {
          const done: RecipientState = { address: recipient.address, status: 'bounced', lastError: `Gave up after ${formatDuration(policy.maxAgeMs)} in the queue; last error: ${outcome.error}` };
          bounced.push(done);
          return done;
        }
        lastError = outcome.error;
        return { address: recipient.address, status: 'deferred', lastError: outcome.error };
      }
    }
  });
  const attempts = state.attempts + 1;
  const finished = recipients.every((r) => r.status !== 'queued' && r.status !== 'deferred');
  const nextAttempt = new Date(now.getTime() + delayAfter(attempts, policy)).toISOString();
  const error = lastError ?? bounced.at(-1)?.lastError ?? null;
  return { state: { ...state, attempts, recipients, lastError: error, nextAttempt }, bounced, finished };
}
