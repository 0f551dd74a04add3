/**
 * Slows password guessing, for every login we offer (POP3, the web page).
 *
 * An attempt takes its turn BEFORE the password is checked, and counts as a
 * failure from that moment until it succeeds: a client that hangs up early,
 * or sends many guesses at once, gains nothing. Turns are kept per client
 * address, per account (a POP3 mailbox) and, optionally, for all attempts
 * together; each key's wait doubles with its failures up to a cap. A turn
 * further away than `maxWaitMs` is refused at once (the client is told when
 * to come back) instead of holding a connection while it sleeps.
 *
 * An address that logged in to an account is trusted for that account: it
 * skips the account's wait, so guessing against a mailbox from elsewhere does
 * not lock its owner out. Failures are forgotten after a quiet period.
 */

/** A key's wait after its n-th failure: `baseMs`, doubling, at most `maxMs` (equal values: a fixed pace) */
export interface Backoff {
  baseMs: number;
  maxMs: number;
}

export interface LoginThrottleOptions {
  perClient: Backoff;
  /** Per account name as typed (known or not, so the answer tells nothing) */
  perAccount?: Backoff;
  /** All attempts together: a cap on the guessing rate from any number of addresses */
  overall?: Backoff;
  /** A longer wait is refused instead of slept */
  maxWaitMs: number;
  forgetAfterMs: number;
  /** How long a successful address stays trusted for its account */
  trustForMs: number;
  /** Bounds memory when many addresses fail */
  maxEntries: number;
  now: () => number;
}

/** A turn: wait `waitMs`, check the password, then say how it went; or come back after `retryAfterMs` */
export type LoginTurn = { allowed: true; waitMs: number; attempt: LoginAttempt } | { allowed: false; retryAfterMs: number };

/** An attempt that is never reported (the client hung up) stays counted as a failure */
export interface LoginAttempt {
  failed(): void;
  succeeded(): void;
}

interface Entry {
  failures: number;
  /** No attempt on this key is checked before this time */
  readyAt: number;
  last: number;
}

type Kind = 'client' | 'account' | 'overall';

interface Reservation {
  kind: Kind;
  key: string;
  backoff: Backoff;
  entry: Entry;
  /** The key's readyAt as this attempt left it */
  reservedUntil: number;
}

const DEFAULTS: Omit<LoginThrottleOptions, 'perClient' | 'maxWaitMs'> = {
  forgetAfterMs: 15 * 60_000,
  trustForMs: 24 * 3_600_000,
  maxEntries: 10_000,
  now: Date.now,
};

/** Stores as the newest (maps keep insertion order) and drops the oldest beyond `max` */
function setNewest<T>(map: Map<string, T>, key: string, value: T, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value as string);
}

const gap = (backoff: Backoff, failures: number): number => Math.min(backoff.baseMs * 2 ** Math.min(Math.max(failures - 1, 0), 30), backoff.maxMs);

export class LoginThrottle {
  private readonly options: LoginThrottleOptions;
  private readonly entries = new Map<string, Entry>();
  private readonly trusted = new Map<string, number>();

  constructor(options: Pick<LoginThrottleOptions, 'perClient' | 'maxWaitMs'> & Partial<LoginThrottleOptions>) {
    this.options = { ...DEFAULTS, ...options };
  }

  /** Takes a turn for a login from `client` to `account` */
  begin(client: string, account?: string): LoginTurn {
    const now = this.options.now();
    this.prune(now);
    const keys = this.keysFor(client, account, now);
    const startAt = Math.max(now, ...keys.map(({ entry }) => entry.readyAt));
    if (startAt - now > this.options.maxWaitMs) return { allowed: false, retryAfterMs: startAt - now - this.options.maxWaitMs };
    const taken = keys.map((key) => {
      const { entry, backoff } = key;
      entry.failures++;
      entry.readyAt = startAt + gap(backoff, entry.failures);
      entry.last = now;
      setNewest(this.entries, key.key, entry, this.options.maxEntries);
      return { ...key, reservedUntil: entry.readyAt };
    });
    return { allowed: true, waitMs: startAt - now, attempt: this.attempt(client, account, startAt, taken) };
  }

  /** True when `client` failed recently: its connections are the first to be limited */
  suspect(client: string): boolean {
    const entry = this.entries.get(`client:${client}`);
    return !!entry && entry.failures > 0 && this.options.now() - entry.last < this.options.forgetAfterMs;
  }

  private keysFor(client: string, account: string | undefined, now: number): Omit<Reservation, 'reservedUntil'>[] {
    const { perClient, perAccount, overall } = this.options;
    const wanted: [Kind, string, Backoff | undefined][] = [
      ['client', `client:${client}`, perClient],
      ['account', `account:${account}`, account !== undefined && !this.isTrusted(client, account, now) ? perAccount : undefined],
      ['overall', 'overall', overall],
    ];
    return wanted.flatMap(([kind, key, backoff]) => (backoff ? [{ kind, key, backoff, entry: this.fresh(key, now) }] : []));
  }

  private attempt(client: string, account: string | undefined, startAt: number, keys: Reservation[]): LoginAttempt {
    let reported = false;
    return {
      failed: () => {
        if (reported) return;
        reported = true;
        // Measured from the answer, not the start: the next try waits the full time after hearing "wrong"
        const now = this.options.now();
        for (const { entry, backoff } of keys) entry.readyAt = Math.max(entry.readyAt, now + gap(backoff, entry.failures));
      },
      succeeded: () => {
        if (reported) return;
        reported = true;
        for (const { kind, key, entry, reservedUntil } of keys) {
          if (kind === 'client') {
            this.entries.delete(key);
            continue;
          }
          // This attempt was counted in advance and takes no turn from the next; earlier failures still stand
          entry.failures = Math.max(entry.failures - 1, 0);
          if (entry.readyAt === reservedUntil) entry.readyAt = startAt;
        }
        if (account !== undefined) setNewest(this.trusted, `${account}\0${client}`, this.options.now(), this.options.maxEntries);
      },
    };
  }

  private isTrusted(client: string, account: string, now: number): boolean {
    const since = this.trusted.get(`${account}\0${client}`);
    return since !== undefined && now - since < this.options.trustForMs;
  }

  /** The key's entry, or a new one when it is unknown or its failures are forgotten */
  private fresh(key: string, now: number): Entry {
    const entry = this.entries.get(key);
    if (entry && now - entry.last < this.options.forgetAfterMs) return entry;
    return { failures: 0, readyAt: 0, last: now };
  }

  /** Drops forgotten entries from the oldest end */
  private prune(now: number): void {
    for (const [key, entry] of this.entries) {
      if (now - entry.last < this.options.forgetAfterMs) break;
      this.entries.delete(key);
    }
  }
}
