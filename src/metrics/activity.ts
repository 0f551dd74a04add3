/**
 * Today's counts and the most recent delivery results, for the dashboard
 * and the digest. In memory: a restart starts the day's counts afresh.
 */
import { outcomeText } from '../deliver/outcome.js';
import type { AttemptReport } from '../queue/runner.js';

export type ResultStatus = 'delivered' | 'local' | 'deferred' | 'bounced';

export interface RecentDelivery {
  at: Date;
  id: string;
  from: string;
  to: string;
  status: ResultStatus;
  text: string;
}

export interface DayCounts {
  day: string;
  accepted: number;
  rejected: number;
  delivered: number;
  local: number;
  deferred: number;
  bounced: number;
}

const RECENT_LIMIT = 25;

/** The local calendar day, "2026-11-26" */
export const dayOf = (at: Date): string =>
  `${at.getFullYear()}-${String(at.getMonth() + 1).padStart(2, '0')}-${String(at.getDate()).padStart(2, '0')}`;

const emptyDay = (day: string): DayCounts => ({
  day,
  accepted: 0,
  rejected: 0,
  delivered: 0,
  local: 0,
  deferred: 0,
  bounced: 0,
});

export class Activity {
  private counts: DayCounts = emptyDay(dayOf(new Date()));
  private readonly recentItems: RecentDelivery[] = [];

  accepted(at = new Date()): void {
    this.today(at).accepted++;
  }

  rejected(at = new Date()): void {
    this.today(at).rejected++;
  }

  attempt(report: AttemptReport, at = new Date()): void {
    const counts = this.today(at);
    for (const { address, outcome } of report.outcomes) {
      counts[outcome.status]++;
      const text = outcomeText(outcome);
      this.recentItems.unshift({
        at,
        id: report.id,
        from: report.from,
        to: address,
        status: outcome.status,
        text,
      });
    }
    this.recentItems.splice(RECENT_LIMIT);
  }

  today(at = new Date()): DayCounts {
    const day = dayOf(at);
    if (this.counts.day !== day) this.counts = emptyDay(day);
    return this.counts;
  }

  recent(): readonly RecentDelivery[] {
    return this.recentItems;
  }
}
