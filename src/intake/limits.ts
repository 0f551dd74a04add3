/** Per-client message-rate limit (pure bookkeeping; the clock is passed in). Connections per client are counted from the open sessions (sessions.ts) */

const WINDOW_MS = 60_000;
/** How often the map of clients is swept; a sweep walks every client, so not on every message */
const PRUNE_EVERY_MS = 1_000;
/** Expired times kept before a compaction is worth its copy */
const COMPACT_AFTER = 64;

/**
 * The times of one client's messages in the last minute, oldest first. Expired
 * times are skipped by moving `head`, and the array is compacted only when the
 * skipped part outweighs the live part, so a message costs O(1) however high
 * the limit is set.
 */
interface RecentTimes {
  times: number[];
  head: number;
}

export class ClientLimits {
  private readonly recent = new Map<string, RecentTimes>();
  private lastPrune = -Infinity;

  /** Counts a message against the client's last minute; false when it is over `maxPerMinute` */
  takeMessage(client: string, maxPerMinute: number, now: number): boolean {
    let window = this.recent.get(client);
    if (!window) this.recent.set(client, (window = { times: [], head: 0 }));
    const { times } = window;
    while (window.head < times.length && now - times[window.head]! >= WINDOW_MS) window.head++;
    if (window.head > COMPACT_AFTER && window.head * 2 > times.length) {
      times.splice(0, window.head);
      window.head = 0;
    }
    if (times.length - window.head >= maxPerMinute) return false;
    times.push(now);
    return true;
  }

  /** Forgets clients that sent nothing for a minute, so the map stays small; cheap to call on every message */
  prune(now: number): void {
    if (now - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = now;
    for (const [client, { times }] of this.recent)
      if (times.length === 0 || now - times[times.length - 1]! >= WINDOW_MS)
        this.recent.delete(client);
  }

  /** How many clients are being tracked */
  get clients(): number {
    return this.recent.size;
  }
}
