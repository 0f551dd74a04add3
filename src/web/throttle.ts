/**
 * A growing delay after wrong passwords (or setup tokens), per client
 * address: 0.5 s after the first, doubling up to 16 s; a success clears it.
 * Guessing slows to a crawl while a typo costs half a second.
 */
const BASE_MS = 500;
const MAX_MS = 16_000;
const MAX_CLIENTS = 10_000;
/** Failures older than this are forgiven */
const FORGET_MS = 15 * 60_000;

export class LoginThrottle {
  private readonly failures = new Map<string, { count: number; last: number }>();

  delayFor(client: string, now = Date.now()): number {
    const entry = this.failures.get(client);
    if (!entry || now - entry.last > FORGET_MS) return 0;
    return Math.min(BASE_MS * 2 ** (entry.count - 1), MAX_MS);
  }

  /** Waits the client's current delay: call before checking a password */
  async wait(client: string): Promise<void> {
    const ms = this.delayFor(client);
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
  }

  failed(client: string, now = Date.now()): void {
    const entry = this.failures.get(client);
    const count = entry && now - entry.last <= FORGET_MS ? entry.count + 1 : 1;
    this.failures.delete(client);
    this.failures.set(client, { count, last: now });
    if (this.failures.size > MAX_CLIENTS) this.failures.delete(this.failures.keys().next().value as string);
  }

  succeeded(client: string): void {
    this.failures.delete(client);
  }
}
