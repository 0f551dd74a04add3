/**
 * Slows password guessing, for every login we offer (POP3, the web page).
 *
 * A login waits for its turn BEFORE its password is checked, and every wrong
 * password makes the next turn come later: per client address, per account
 * (a POP3 mailbox, known or not) and, optionally, for all logins together.
 * One check at a time per key, so guesses sent at once are checked one after
 * another, each after the wait the previous failure earned; right passwords
 * earn no wait, so good logins sent at once only queue for a moment. A client
 * that hangs up before its turn had nothing checked: hanging up early gains
 * nothing. A turn that would come later than `maxWaitMs` is refused at once,
 * with when to come back, and few logins may wait per key, so guessers never
 * hold connections for long.
 *
 * An address that logged in to an account is trusted for that account: it
 * skips the account's wait, so guessing against a mailbox from elsewhere does
 * not lock its owner out. Failures are forgotten after a quiet period.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** A key's wait after its n-th failure: `baseMs`, doubling, at most `maxMs` (equal values: a fixed pace) */
export interface Backoff {
  baseMs: number;
  maxMs: number;
}

export interface LoginThrottleOptions {
  perClient: Backoff;
  /** Per account name as typed (known or not, so the answer tells nothing) */
  perAccount?: Backoff;
  /** All logins together: a cap on the guessing rate from any number of addresses */
  overall?: Backoff;
  /** A longer wait is refused instead of slept */
  maxWaitMs: number;
  /** How many logins may wait on one key; more are refused at once */
  maxWaiting: number;
  forgetAfterMs: number;
  /** How long a successful address stays trusted for its account */
  trustForMs: number;
  /** Bounds memory when many addresses fail */
  maxEntries: number;
}

/** Check the password now and say how it went; or come back after `retryAfterMs` */
export type LoginTurn =
  | { allowed: true; waitedMs: number; attempt: LoginAttempt }
  | { allowed: false; retryAfterMs: number };

/** Exactly one of these must be called once the password is checked: the keys stay busy until then */
export interface LoginAttempt {
  failed(): void;
  succeeded(): void;
}

interface Entry {
  failures: number;
  /** No check on this key starts before this time */
  readyAt: number;
  last: number;
  checking: boolean;
  waiting: number;
}

type Kind = 'client' | 'account' | 'overall';

interface Key {
  kind: Kind;
  name: string;
  backoff: Backoff;
  entry: Entry;
}

const DEFAULTS = {
  maxWaiting: 5,
  forgetAfterMs: 15 * 60_000,
  trustForMs: 24 * 3_600_000,
  maxEntries: 10_000,
} as const;

/** How often a waiting login looks whether a busy key is free again (a check takes tens of milliseconds) */
const POLL_MS = 20;

const gap = (backoff: Backoff, failures: number): number =>
  Math.min(backoff.baseMs * 2 ** Math.min(Math.max(failures - 1, 0), 30), backoff.maxMs);

/** Stores as the newest (maps keep insertion order) and drops the oldest beyond `max` */
function setNewest<T>(map: Map<string, T>, key: string, value: T, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value as string);
}

export class LoginThrottle {
  private readonly options: LoginThrottleOptions;
  private readonly entries = new Map<string, Entry>();
  private readonly trusted = new Map<string, number>();

  constructor(
    options: Pick<LoginThrottleOptions, 'perClient' | 'maxWaitMs'> & Partial<LoginThrottleOptions>,
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  /**
   * Waits for the turn of a login from `client` to `account`. Resolves null
   * when `hungUp` fires first: the client left, and nothing was checked
   */
  take(client: string, account?: string): Promise<LoginTurn>;
  take(client: string, account: string, hungUp: AbortSignal): Promise<LoginTurn | null>;
  async take(client: string, account?: string, hungUp?: AbortSignal): Promise<LoginTurn | null> {
    const started = Date.now();
    this.prune(started);
    const keys = this.keysFor(client, account, started);
    const far = this.readyAt(keys) - started;
    if (far > this.options.maxWaitMs) return this.refusal(keys, started);
    if (keys.some(({ entry }) => entry.waiting >= this.options.maxWaiting))
      return this.refusal(keys, started);
    const deadline = started + this.options.maxWaitMs;
    for (const { entry } of keys) entry.waiting++;
    try {
      for (;;) {
        const now = Date.now();
        const readyAt = this.readyAt(keys);
        if (now >= readyAt && keys.every(({ entry }) => !entry.checking)) break;
        if (readyAt > deadline || now >= deadline) return this.refusal(keys, now);
        await sleep(
          Math.max(1, Math.min(now < readyAt ? readyAt - now : POLL_MS, deadline - now)),
          undefined,
          { signal: hungUp },
        );
      }
    } catch (err) {
      if (hungUp?.aborted) return null;
      throw err;
    } finally {
      for (const { entry } of keys) entry.waiting--;
    }
    for (const { entry } of keys) entry.checking = true;
    return {
      allowed: true,
      waitedMs: Date.now() - started,
      attempt: this.attempt(client, account, keys),
    };
  }

  /** True when `client` failed recently: its connections are the first to be limited */
  suspect(client: string): boolean {
    const entry = this.entries.get(`client:${client}`);
    return !!entry && entry.failures > 0 && Date.now() - entry.last < this.options.forgetAfterMs;
  }

  /** Come back when the wait would be short enough, and not sooner than a second */
  private refusal(keys: Key[], now: number): LoginTurn {
    return {
      allowed: false,
      retryAfterMs: Math.max(this.readyAt(keys) - this.options.maxWaitMs - now, 1_000),
    };
  }

  private readyAt(keys: Key[]): number {
    return Math.max(0, ...keys.map(({ entry }) => entry.readyAt));
  }

  private keysFor(client: string, account: string | undefined, now: number): Key[] {
    const { perClient, perAccount, overall } = this.options;
    const wanted: [Kind, string, Backoff | undefined][] = [
      ['client', `client:${client}`, perClient],
      [
        'account',
        `account:${account}`,
        account !== undefined && !this.isTrusted(client, account, now) ? perAccount : undefined,
      ],
      ['overall', 'overall', overall],
    ];
    return wanted.flatMap(([kind, name, backoff]) =>
      backoff ? [{ kind, name, backoff, entry: this.entry(name, now) }] : [],
    );
  }

  private attempt(client: string, account: string | undefined, keys: Key[]): LoginAttempt {
    let reported = false;
    const report = (change: (key: Key, now: number) => void) => {
      if (reported) return;
      reported = true;
      const now = Date.now();
      for (const key of keys) {
        key.entry.checking = false;
        change(key, now);
      }
    };
    return {
      failed: () =>
        report(({ name, backoff, entry }, now) => {
          entry.failures++;
          entry.readyAt = Math.max(entry.readyAt, now + gap(backoff, entry.failures));
          entry.last = now;
          setNewest(this.entries, name, entry, this.options.maxEntries);
        }),
      succeeded: () => {
        // The address knew the password: its own failures go; the account's stand (they may be someone else's)
        report(({ kind, name, entry }) => {
          if (kind === 'client' && !entry.waiting) this.entries.delete(name);
          else if (kind === 'client') entry.failures = entry.readyAt = 0;
        });
        if (account !== undefined)
          setNewest(this.trusted, `${account}\0${client}`, Date.now(), this.options.maxEntries);
      },
    };
  }

  private isTrusted(client: string, account: string, now: number): boolean {
    const since = this.trusted.get(`${account}\0${client}`);
    return since !== undefined && now - since < this.options.trustForMs;
  }

  /** The key's entry, kept in the map while logins use it; fresh when its failures are forgotten */
  private entry(name: string, now: number): Entry {
    const known = this.entries.get(name);
    if (known && (known.checking || known.waiting || now - known.last < this.options.forgetAfterMs))
      return known;
    const entry: Entry = { failures: 0, readyAt: 0, last: now, checking: false, waiting: 0 };
    setNewest(this.entries, name, entry, this.options.maxEntries);
    return entry;
  }

  /** Drops forgotten entries from the oldest end */
  private prune(now: number): void {
    for (const [name, entry] of this.entries) {
      if (now - entry.last < this.options.forgetAfterMs || entry.checking || entry.waiting) break;
      this.entries.delete(name);
    }
  }
}
