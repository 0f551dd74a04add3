/** The dashboard's facts, gathered once for the page and for GET /api/status */
import type { OAuthStatus } from '../oauth/client.js';
import type { Config } from '../config/schema.js';
import { promises as fs } from 'node:fs';
import type { HealthSnapshot } from '../alerts/upstream-health.js';
import type { UpstreamLimit } from '../deliver/upstream-limits.js';
import type { AlertState } from '../alerts/rules.js';
import type { DayCounts, RecentDelivery } from '../metrics/activity.js';
import { queueCounts, type QueueCounts } from '../metrics/metrics.js';
import { VERSION } from '../version.js';
import { wideNetworks } from '../config/networks.js';
import { clockProblem } from '../util/clock.js';
import type { WebServices } from './context.js';
import { graphTarget } from '../deliver/graph/sender-mailbox.js';
import type { UpstreamPace } from '../queue/pacing-gate.js';

export interface Overview {
  version: string;
  hostname: string;
  uptimeSeconds: number;
  upstream: HealthSnapshot & {
    mode: Config['delivery']['mode'];
    target: string;
    signIn: OAuthStatus | null;
    sizeLimit: UpstreamLimit | null;
  };
  /** Each paced upstream: sent in the last 24 hours against its limit, and whether mail is held back */
  pacing: UpstreamPace[];
  queue: QueueCounts;
  today: DayCounts;
  recent: readonly RecentDelivery[];
  disk: { path: string; freeBytes: number; totalBytes: number };
  alerts: AlertState;
  configPersistent: boolean;
  /** allowNetworks entries that let the world send (only with smtp.allowWideNetworks) */
  wideNetworks: string[];
  /** Why the clock cannot be right, when it cannot */
  clockProblem: string | null;
}

/** What the dashboard reads */
export type OverviewServices = Pick<
  WebServices,
  | 'store'
  | 'dataDir'
  | 'startedAt'
  | 'health'
  | 'oauth'
  | 'spool'
  | 'activity'
  | 'alerter'
  | 'intake'
  | 'pacing'
>;

export async function overview(services: OverviewServices, now = new Date()): Promise<Overview> {
  const config = services.store.config;
  const { smarthost } = config.delivery;
  const stats = await fs.statfs(services.dataDir);
  return {
    version: VERSION,
    hostname: config.hostname,
    uptimeSeconds: Math.round((now.getTime() - services.startedAt.getTime()) / 1000),
    upstream: {
      ...services.health.snapshot(),
      mode: config.delivery.mode,
      target:
        config.delivery.mode === 'graph'
          ? graphTarget(config)
          : config.delivery.mode === 'mx'
            ? "direct to each domain's MX hosts"
            : smarthost.host
              ? `${smarthost.host}:${smarthost.port} (${smarthost.security})`
              : '',
      signIn:
        config.delivery.mode === 'graph' ||
        (config.delivery.mode === 'smarthost' && smarthost.auth === 'oauth2')
          ? services.oauth.status()
          : null,
      sizeLimit: services.intake.mainUpstreamLimit() ?? null,
    },
    pacing: services.pacing.status(now.getTime()),
    queue: await queueCounts(services.spool),
    today: services.activity.today(now),
    recent: services.activity.recent(),
    disk: {
      path: services.dataDir,
      freeBytes: stats.bavail * stats.bsize,
      totalBytes: stats.blocks * stats.bsize,
    },
    alerts: services.alerter.current(),
    configPersistent: services.store.persistent,
    wideNetworks: wideNetworks(config.smtp.allowNetworks),
    clockProblem: clockProblem(now.getTime()) ?? null,
  };
}
