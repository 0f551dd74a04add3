/** What the web layer is given, and what each request carries after authentication */
import type { Context, Hono } from 'hono';
import type { AdminCredentials } from '../web-auth/credentials.js';
import type { Alerter } from '../alerts/alerter.js';
import type { PacingGate } from '../queue/pacing-gate.js';
import type { UpstreamHealth } from '../alerts/upstream-health.js';
import type { ConfigStore } from '../config/store.js';
import type { DeviceInventory } from '../devices/inventory.js';
import type { Deliverer } from '../deliver/deliverer.js';
import type { DkimSigner } from '../deliver/dkim.js';
import type { Intake } from '../intake/server.js';
import type { Logger } from '../log.js';
import type { OAuthClient } from '../oauth/client.js';
import type { MailboxStore } from '../mailbox/store.js';
import type { Activity } from '../metrics/activity.js';
import type { RelayMetrics } from '../metrics/metrics.js';
import type { QueueCommands } from '../queue/commands.js';
import type { Spool } from '../spool/spool.js';
import type { Session } from './sessions.js';
import type { SessionStore } from './sessions.js';
import type { SetupToken } from '../web-auth/setup-token.js';
import type { LoginThrottle } from '../util/login-throttle.js';
import type { ApiTokens, TokenInfo } from '../web-auth/tokens.js';

export interface WebServices {
  store: ConfigStore;
  credentials: AdminCredentials;
  queue: QueueCommands;
  spool: Spool;
  mailboxes: MailboxStore;
  devices: DeviceInventory;
  metrics: RelayMetrics;
  activity: Activity;
  health: UpstreamHealth;
  alerter: Alerter;
  tokens: ApiTokens;
  setup: SetupToken;
  log: Logger;
  startedAt: Date;
  dataDir: string;
  oauth: OAuthClient;
  dkim: DkimSigner;
  deliverer: Deliverer;
  intake: Intake;
  pacing: PacingGate;
}

/** Built by the server for the routes */
export interface WebState extends WebServices {
  sessions: SessionStore;
  throttle: LoginThrottle;
  https: boolean;
}

export type Principal = { kind: 'session'; session: Session } | { kind: 'token'; token: TokenInfo };

export interface WebEnv {
  Variables: { principal: Principal };
}

export type WebApp = Hono<WebEnv>;
export type WebContext = Context<WebEnv>;

/** The session of a page request (pages are never reached with a token) */
export function sessionOf(c: WebContext): Session {
  const principal = c.get('principal');
  if (principal.kind !== 'session') throw new Error('Pages need a browser session');
  return principal.session;
}

/** Reads a flash message once */
export function takeFlash(session: Session): Session['flash'] {
  const flash = session.flash;
  delete session.flash;
  return flash;
}
