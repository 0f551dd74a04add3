/**
 * Slows down password guessing: each wrong password from an address waits
 * longer before its -ERR than the one before (0.5 s, 1 s, 2 s ... 30 s).
 * An address is forgotten after a quiet quarter of an hour. Right passwords
 * are never delayed.
 */

export interface ThrottleOptions {
  baseMs: number;
  maxMs: number;
  forgetAfterMs: number;
  /** Bounds memory when many addresses fail */
  maxAddresses: number;
  now: () => number;
}

const DEFAULTS: ThrottleOptions = { baseMs: 500, maxMs: 30_000, forgetAfterMs: 15 * 60_000, maxAddresses: 10_000, now: Date.now };

interface Failures {
  count: number;
  last: number;
}

export class LoginThrottle {
  private readonly options: ThrottleOptions;
  private readonly failures = new Map<string, Failures>();

  constructor(options: Partial<ThrottleOptions> = {}) {
    this.options = { ...DEFAULTS, ...options };
  }

  /** Records a wrong password from `address`; returns how long to wait before answering */
  failed(address: string): number {
    const now = this.options.now();
    const previous = this.failures.get(address);
    const count = previous && now - previous.last < this.options.forgetAfterMs ? previous.count + 1 : 1;
    this.failures.delete(address);
    this.failures.set(address, { count, last: now });
    this.prune(now);
    return Math.min(this.options.baseMs * 2 ** Math.min(count - 1, 30), this.options.maxMs);
  }

  /** Drops forgotten addresses, and the oldest ones beyond the cap (the map keeps insertion order) */
  private prune(now: number): void {
    for (const [address, entry] of this.failures) {
      if (this.failures.size <= this.options.maxAddresses && now - entry.last < this.options.forgetAfterMs) break;
      this.failures.delete(address);
    }
  }
}
