/** Per-client message-rate limit (pure bookkeeping; the clock is passed in). Connections per client are counted from the open sessions (sessions.ts) */

const WINDOW_MS = 60_000;

export class ClientLimits {
  private readonly recent = new Map<string, number[]>();

  /** Counts a message against the client's last minute; false when it is over `maxPerMinute` */
  takeMessage(client: string, maxPerMinute: number, now: number): boolean {
    const times = (this.recent.get(client) ?? []).filter((t) => now - t < WINDOW_MS);
    if (times.length >= maxPerMinute) {
      this.recent.set(client, times);
      return false;
    }
    times.push(now);
    this.recent.set(client, times);
    return true;
  }

  /** Forgets clients that sent nothing for a minute, so the map stays small */
  prune(now: number): void {
    for (const [client, times] of this.recent)
      if (times.every((t) => now - t >= WINDOW_MS)) this.recent.delete(client);
  }
}
