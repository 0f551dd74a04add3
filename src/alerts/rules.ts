/**
 * When to alert (pure). Each alert is either quiet or firing; a notice goes
 * out only on a change of state, so a long outage means one alert and one
 * "recovered", never a storm.
 */

export type AlertKind = 'upstream' | 'queue';

export type AlertState = Record<AlertKind, { firing: boolean; since: string | null }>;

export const QUIET: AlertState = { upstream: { firing: false, since: null }, queue: { firing: false, since: null } };

export interface Observation {
  now: Date;
  /** Start of the current run of upstream failures; null while healthy or not configured */
  failingSince: Date | null;
  failingForMs: number;
  queueDepth: number;
  /** 0 = queue alerts off */
  queueThreshold: number;
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
  return wasFiring ? obs.queueDepth > Math.floor(obs.queueThreshold / 2) : obs.queueDepth > obs.queueThreshold;
}

export function evaluate(state: AlertState, obs: Observation): { state: AlertState; transitions: Transition[] } {
  const next: AlertState = { upstream: { ...state.upstream }, queue: { ...state.queue } };
  const transitions: Transition[] = [];
  const firing: Record<AlertKind, boolean> = { upstream: upstreamFiring(obs, state.upstream.firing), queue: queueFiring(obs, state.queue.firing) };
  for (const kind of ['upstream', 'queue'] as const) {
    if (firing[kind] === state[kind].firing) continue;
    next[kind] = { firing: firing[kind], since: firing[kind] ? obs.now.toISOString() : null };
    transitions.push({ kind, change: firing[kind] ? 'firing' : 'recovered' });
  }
  return { state: next, transitions };
}
