/**
 * Keeps each upstream under the limits its provider enforces (messages a
 * minute, recipients a day), so the queue holds mail back instead of letting
 * the provider refuse it: Microsoft 365 and Gmail answer a burst over their
 * caps by blocking the account for hours. Pure: the caller passes the time.
 *
 * "A day" is the last 24 hours, as the providers count it, kept as one
 * counter per minute so the window slides without storing every message.
 */

export interface PaceLimits {
  /** 0: no limit */
  messagesPerMinute: number;
  /** 0: no limit */
  recipientsPerDay: number;
}

export type HoldReason = 'minute' | 'day' | 'throttled';

export type PaceDecision = { go: true } | { go: false; until: number; reason: HoldReason };

export interface UpstreamUsage {
  sentToday: number;
  /** 0: no daily limit */
  dayLimit: number;
  /** Set while the provider has asked us to wait */
  pausedUntil?: number;
}

/** What survives a restart: the daily counts and a provider's pause (the minute window is gone by then anyway) */
export interface PacingSnapshot {
  [upstream: string]: { minutes: Array<[minute: number, recipients: number]>; pausedUntil: number };
}

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
const DAY_MINUTES = DAY_MS / MINUTE_MS;

interface Ledger {
  /** Start times of the messages sent in the last minute */
  recentSends: number[];
  /** Recipients sent per minute (minute number since the epoch), oldest first */
  minutes: Array<[number, number]>;
  pausedUntil: number;
}

const minuteOf = (time: number): number => Math.floor(time / MINUTE_MS);

export class Pacer {
  private readonly ledgers = new Map<string, Ledger>();

  /** May a message with this many recipients go to the upstream now, and if not, until when must it wait? */
  check(upstream: string, limits: PaceLimits, recipients: number, now: number): PaceDecision {
    const ledger = this.ledger(upstream, now);
    if (ledger.pausedUntil > now)
      return { go: false, until: ledger.pausedUntil, reason: 'throttled' };
    const minuteFree = freeForMinute(ledger, limits, now);
    if (minuteFree !== true) return { go: false, until: minuteFree, reason: 'minute' };
    const dayFree = freeForDay(ledger, limits, recipients);
    if (dayFree !== true) return { go: false, until: dayFree, reason: 'day' };
    return { go: true };
  }

  /** Counts a message handed to the upstream (before the answer: a refused attempt still counted at the provider) */
  record(upstream: string, recipients: number, now: number): void {
    const ledger = this.ledger(upstream, now);
    ledger.recentSends.push(now);
    const minute = minuteOf(now);
    const last = ledger.minutes.at(-1);
    if (last && last[0] === minute) last[1] += recipients;
    else ledger.minutes.push([minute, recipients]);
  }

  /** The provider said "slow down": nothing goes to it before `until` */
  throttle(upstream: string, until: number, now: number): void {
    const ledger = this.ledger(upstream, now);
    ledger.pausedUntil = Math.max(ledger.pausedUntil, until);
  }

  usage(upstream: string, limits: PaceLimits, now: number): UpstreamUsage {
    const ledger = this.ledger(upstream, now);
    return {
      sentToday: sentInDay(ledger),
      dayLimit: limits.recipientsPerDay,
      ...(ledger.pausedUntil > now && { pausedUntil: ledger.pausedUntil }),
    };
  }

  /** When the provider's pause of this upstream ends; 0 when it is not paused (asks without making a ledger) */
  pausedUntil(upstream: string, now: number): number {
    const until = this.ledgers.get(upstream)?.pausedUntil ?? 0;
    return until > now ? until : 0;
  }

  upstreams(): string[] {
    return [...this.ledgers.keys()];
  }

  snapshot(now: number): PacingSnapshot {
    const snapshot: PacingSnapshot = {};
    for (const upstream of this.ledgers.keys()) {
      const ledger = this.ledger(upstream, now);
      if (ledger.minutes.length || ledger.pausedUntil > now)
        snapshot[upstream] = {
          minutes: ledger.minutes.map(([m, r]) => [m, r]),
          pausedUntil: ledger.pausedUntil,
        };
    }
    return snapshot;
  }

  restore(snapshot: PacingSnapshot, now: number): void {
    for (const [upstream, saved] of Object.entries(snapshot)) {
      if (!Array.isArray(saved?.minutes)) continue;
      const minutes = saved.minutes.filter(
        (pair): pair is [number, number] => Array.isArray(pair) && pair.every(Number.isFinite),
      );
      this.ledgers.set(upstream, {
        recentSends: [],
        minutes,
        pausedUntil: Number.isFinite(saved.pausedUntil) ? saved.pausedUntil : 0,
      });
      this.ledger(upstream, now);
    }
  }

  /** The upstream's ledger with what fell out of both windows dropped */
  private ledger(upstream: string, now: number): Ledger {
    let ledger = this.ledgers.get(upstream);
    if (!ledger) {
      ledger = { recentSends: [], minutes: [], pausedUntil: 0 };
      this.ledgers.set(upstream, ledger);
    }
    while (ledger.recentSends.length && (ledger.recentSends[0] ?? 0) <= now - MINUTE_MS)
      ledger.recentSends.shift();
    const oldestKept = minuteOf(now) - DAY_MINUTES + 1;
    while (ledger.minutes.length && (ledger.minutes[0]?.[0] ?? 0) < oldestKept)
      ledger.minutes.shift();
    return ledger;
  }
}

function freeForMinute(ledger: Ledger, limits: PaceLimits, now: number): true | number {
  if (!limits.messagesPerMinute || ledger.recentSends.length < limits.messagesPerMinute)
    return true;
  const oldestInWindow =
    ledger.recentSends[ledger.recentSends.length - limits.messagesPerMinute] ?? now;
  return oldestInWindow + MINUTE_MS;
}

/**
 * A message with more recipients than a whole day allows could never fit:
 * it goes when the window is empty rather than never.
 */
function freeForDay(ledger: Ledger, limits: PaceLimits, recipients: number): true | number {
  const limit = limits.recipientsPerDay;
  let used = sentInDay(ledger);
  if (!limit || used + recipients <= limit || used === 0) return true;
  for (const [minute, count] of ledger.minutes) {
    used -= count;
    if (used + recipients <= limit || used === 0) return (minute + DAY_MINUTES) * MINUTE_MS;
  }
  return true;
}

const sentInDay = (ledger: Ledger): number =>
  ledger.minutes.reduce((sum, [, count]) => sum + count, 0);
