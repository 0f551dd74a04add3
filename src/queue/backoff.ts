/** Retry timing (pure) */
import type { Config } from '../config/schema.js';
import { parseDuration } from '../util/duration.js';

export interface RetryPolicy {
  /** Waits between attempts; the last one repeats */
  delaysMs: number[];
  maxAgeMs: number;
}

export function retryPolicy(config: Config): RetryPolicy {
  return {
    delaysMs: config.delivery.retry.delays.map((d) => parseDuration(d) ?? 60_000),
    maxAgeMs: parseDuration(config.delivery.retry.maxAge) ?? 5 * 86_400_000,
  };
}

/** The wait after the given number of attempts (1 = after the first) */
export function delayAfter(attempts: number, policy: RetryPolicy): number {
  const index = Math.min(Math.max(attempts, 1), policy.delaysMs.length) - 1;
  return policy.delaysMs[index] ?? 60_000;
}
