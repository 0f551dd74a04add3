/** Whether a relay's memory settles after a storm of hostile sessions (the fuzz tests) */
import assert from 'node:assert/strict';
import { rssKb } from './faults.js';
import { eventually } from './wait.js';

/** Allowed growth of RSS over the warmed-up baseline once the storm is over */
export const RSS_SLACK_KB = 64 * 1024;

/**
 * Waits until the resident set of process `pid` is back within RSS_SLACK_KB of
 * `baselineKb`; resolves with that reading, or fails naming the last one.
 */
export function rssBackNearBaseline(pid: number, baselineKb: number): Promise<number> {
  return eventually(
    `RSS within ${RSS_SLACK_KB} kB of ${baselineKb} kB`,
    () => {
      const now = rssKb(pid);
      return now <= baselineKb + RSS_SLACK_KB ? now : undefined;
    },
    { timeoutMs: 30_000, everyMs: 1000 },
  ).catch((err: Error) => assert.fail(`${err.message}; RSS is ${rssKb(pid)} kB`));
}
