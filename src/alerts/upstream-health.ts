/**
 * What we know about the upstream right now: the last success, the last
 * error, and since when it has been failing. Fed by real deliveries and by
 * the probe job; read by the dashboard, /metrics and the alert rules.
 */
import { EventEmitter } from 'node:events';
import type { Config } from '../config/schema.js';
import type { AttemptReport } from '../queue/runner.js';
import { route } from '../route/router.js';

export interface Sighting {
  at: Date;
  text: string;
}

export type Reachability = 'unknown' | 'reachable' | 'failing' | 'not-configured';

export interface HealthSnapshot {
  reachability: Reachability;
  lastSuccess: Sighting | null;
  lastError: Sighting | null;
  /** When the current run of failures began; null while healthy */
  failingSince: Date | null;
}

export interface HealthEvents {
  change: [HealthSnapshot];
}

export class UpstreamHealth extends EventEmitter<HealthEvents> {
  private lastSuccess: Sighting | null = null;
  private lastError: Sighting | null = null;
  private failingSince: Date | null = null;
  private configured = true;

  success(text: string, at = new Date()): void {
    this.lastSuccess = { at, text };
    this.failingSince = null;
    this.emit('change', this.snapshot());
  }

  failure(text: string, at = new Date()): void {
    this.lastError = { at, text };
    this.failingSince ??= at;
    this.emit('change', this.snapshot());
  }

  /** No upstream is set: not a failure to alert about, a step the admin still has to take */
  setConfigured(configured: boolean): void {
    if (configured === this.configured) return;
    this.configured = configured;
    if (!configured) this.failingSince = null;
    this.emit('change', this.snapshot());
  }

  snapshot(): HealthSnapshot {
    return {
      reachability: this.reachability(),
      lastSuccess: this.lastSuccess,
      lastError: this.lastError,
      failingSince: this.failingSince,
    };
  }

  private reachability(): Reachability {
    if (!this.configured) return 'not-configured';
    if (this.failingSince) return 'failing';
    return this.lastSuccess ? 'reachable' : 'unknown';
  }
}

/** What one delivery attempt says about the upstream: only relayed recipients count, and the last one speaks */
export function upstreamSignal(
  report: AttemptReport,
  config: Config,
): { ok: boolean; text: string } | undefined {
  const relayed = report.outcomes.filter(({ address }) => RELAYED.has(route(address, config).kind));
  const last = relayed.at(-1)?.outcome;
  if (!last || last.status === 'bounced' || last.status === 'local') return undefined;
  return last.status === 'delivered'
    ? { ok: true, text: last.detail }
    : { ok: false, text: last.reason };
}

const RELAYED: ReadonlySet<string> = new Set(['smarthost', 'mx', 'host', 'graph']);

/** Smarthost mode without a host, Graph mode without an app: nothing to reach yet */
export const upstreamConfigured = (config: Config): boolean => {
  const { mode, smarthost, graph } = config.delivery;
  if (mode === 'graph') return graph.clientId !== '';
  return mode === 'mx' || smarthost.host !== '';
};
