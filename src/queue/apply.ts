/**
 * Folds one attempt's per-recipient outcomes into a message's delivery state
 * (pure): final recipients are marked, deferred ones wait on the backoff
 * schedule (or longer, when the upstream asked for a longer wait), and
 * recipients that waited past maxAge expire into bounces. A throttled
 * deferral (the upstream asked us to slow down) neither expires nor counts
 * as an attempt: the message is fine, we were early.
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

export function applyOutcomes(
  arrival: Arrival,
  state: DeliveryState,
  outcomes: readonly RecipientOutcome[],
  now: Date,
  policy: RetryPolicy,
): AppliedAttempt {
  const byAddress = new Map(outcomes.map((o) => [o.address, o.outcome]));
  const expired = now.getTime() - Date.parse(arrival.receivedAt) >= policy.maxAgeMs;
  let waitMs = 0;
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
        const done: RecipientState = {
          address: recipient.address,
          status: 'bounced',
          lastError: outcome.reason,
          dsnStatus: outcome.dsnStatus,
        };
        bounced.push(done);
        return done;
      }
      case 'deferred': {
        waitMs = Math.max(waitMs, outcome.retryAfterMs ?? 0);
        if (expired && !outcome.throttled) {
          // RFC 3463 4.4.7: delivery time expired
          const reason = `Gave up after ${formatDuration(policy.maxAgeMs)} in the queue; last error: ${outcome.reason}`;
          const done: RecipientState = {
            address: recipient.address,
            status: 'bounced',
            lastError: reason,
            dsnStatus: '4.4.7',
          };
          bounced.push(done);
          return done;
        }
        lastError = outcome.reason;
        return { address: recipient.address, status: 'deferred', lastError: outcome.reason };
      }
    }
  });
  const throttledOnly = outcomes.every(
    ({ outcome }) => outcome.status === 'deferred' && outcome.throttled,
  );
  const attempts = throttledOnly ? state.attempts : state.attempts + 1;
  const finished = recipients.every((r) => r.status !== 'queued' && r.status !== 'deferred');
  const nextAttempt = new Date(
    now.getTime() + Math.max(delayAfter(attempts, policy), waitMs),
  ).toISOString();
  const error = lastError ?? bounced.at(-1)?.lastError ?? null;
  return {
    state: { ...state, attempts, recipients, lastError: error, nextAttempt },
    bounced,
    finished,
  };
}
