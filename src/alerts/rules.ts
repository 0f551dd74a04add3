/**
 * When to alert (pure). Each alert is either quiet or firing; a notice goes
 * out only on a change of state, so a long outage means one alert and one
 * "recovered", never a storm.
 */

export type AlertKind = 'upstream' | 'queue' | 'dailyCap';

const KINDS: readonly AlertKind[] = ['upstream', 'queue', 'dailyCap'];

export type AlertState = Record<AlertKind, { firing: boolean; since: string | null }>;

export const QUIET: AlertState = {
  upstream: { firing: false, since: null },
  queue: { firing: false, since: null },
  dailyCap: { firing: false, since: null },
};

/** What an upstream with a daily recipient limit has sent in the last 24 hours */
export interface DailyUsage {
  label: string;
  sentToday: number;
  /** 0: no daily limit */
  dayLimit: number;
}

export interface Observation {
  now: Date;
  /** Start of the current run of upstream failures; null while healthy or not configured */
  failingSince: Date | null;
  failingForMs: number;
  queueDepth: number;
  /** 0 = queue alerts off */
  queueThreshold: number;
  dailyUsage: readonly DailyUsage[];
  /** 0 = daily cap alerts off */
  dailyCapPercent: number;
}

export interface Transition {
  kind: AlertKind;
  change: 'firing' | 'recovered';
}

function upstreamFiring(obs: Observation, wasFiring: boolean): boolean {
  if (!obs.failingSince) return false;
  // Once firing, stay firing until a success clears failingSince
  return wasFiring || obs.now.getTime() - obs.failingSince.getTime() >= obs.failingForMs;
}

/** Fires above the threshold; recovers at half of it, so a queue hovering near the line does not flap */
function queueFiring(obs: Observation, wasFiring: boolean): boolean {
  if (obs.queueThreshold <= 0) return false;
  return wasFiring
    ? obs.queueDepth > Math.floor(obs.queueThreshold / 2)
    : obs.queueDepth > obs.queueThreshold;
}

/** Points below the alert's share at which a daily cap alert recovers, so a count near the line does not flap */
export const DAILY_CAP_HYSTERESIS = 10;

/** The upstreams at or above `percent` of their daily recipient limit */
export function nearDailyCap(usage: readonly DailyUsage[], percent: number): DailyUsage[] {
  return usage.filter((u) => u.dayLimit > 0 && u.sentToday * 100 >= percent * u.dayLimit);
}

/** Fires when an upstream reaches the share of its daily limit; recovers when all are 10 points below it */
function dailyCapFiring(obs: Observation, wasFiring: boolean): boolean {
  if (obs.dailyCapPercent <= 0) return false;
  const line = wasFiring ? obs.dailyCapPercent - DAILY_CAP_HYSTERESIS : obs.dailyCapPercent;
  return nearDailyCap(obs.dailyUsage, Math.max(line, 0)).length > 0;
}

export function evaluate(
  state: AlertState,
  obs: Observation,
): { state: AlertState; transitions: Transition[] } {
  const next: AlertState = {
    upstream: { ...state.upstream },
    queue: { ...state.queue },
    dailyCap: { ...state.dailyCap },
  };
  const transitions: Transition[] = [];
  const firing: Record<AlertKind, boolean> = {
    upstream: upstreamFiring(obs, state.upstream.firing),
    queue: queueFiring(obs, state.queue.firing),
    dailyCap: dailyCapFiring(obs, state.dailyCap.firing),
  };
  for (const kind of KINDS) {
    if (firing[kind] === state[kind].firing) continue;
    next[kind] = { firing: firing[kind], since: firing[kind] ? obs.now.toISOString() : null };
    transitions.push({ kind, change: firing[kind] ? 'firing' : 'recovered' });
  }
  return { state: next, transitions };
}
