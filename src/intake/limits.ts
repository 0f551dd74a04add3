/** Per-client connection and message-rate limits (pure bookkeeping; the clock is passed in) */

const WINDOW_MS = 60_000;

export class ClientLimits {
  private readonly connections = new Map<string, number>();
  private readonly recent = new Map<string, number[]>();

  /** Registers a connection; false when the client already has `max` open */
  openConnection(client: string, max: number): boolean {
    const open = this.connections.get(client) ?? 0;
    if (open >= max) return false;
    this.connections.set(client, open + 1);
    return true;
  }

  closeConnection(client: string): void {
    const open = (this.connections.get(client) ?? 1) - 1;
    if (open <= 0) this.connections.delete(client);
    else this.connections.set(client, open);
  }

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
    for (const [client, times] of this.recent) if (times.every((t) => now - t >= WINDOW_MS)) this.recent.delete(client);
  }
}
