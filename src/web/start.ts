/**
 * Everything around the relay that watches and reports: device inventory,
 * metrics, upstream health, alerts, housekeeping jobs and the admin web
 * server. Built after the intake (it listens to its events), stopped first.
 */
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { AdminCredentials } from '../admin/credentials.js';
import { Alerter } from '../alerts/alerter.js';
import { oauthNotice } from '../alerts/notice.js';
import { UpstreamHealth, upstreamConfigured, upstreamSignal } from '../alerts/upstream-health.js';
import type { ConfigStore } from '../config/store.js';
import type { Deliverer } from '../deliver/deliverer.js';
import type { DkimSigner } from '../deliver/dkim.js';
import type { OAuthClient, OAuthStatus } from '../oauth/client.js';
import type { DeviceInventory } from '../devices/inventory.js';
import type { Intake, IntakeEvents } from '../intake/server.js';
import type { Logger } from '../log.js';
import type { MailboxLocks } from '../mailbox/locks.js';
import type { MailboxStore } from '../mailbox/store.js';
import { Activity } from '../metrics/activity.js';
import { RelayMetrics } from '../metrics/metrics.js';
import type { Pop3Server } from '../pop3/server.js';
import type { QueueAdmin } from '../queue/admin.js';
import type { AttemptReport, QueueRunner } from '../queue/runner.js';
import type { Spool } from '../spool/spool.js';
import { loadOrCreateCertificate } from '../util/tls-cert.js';
import { housekeeping } from '../jobs/housekeeping.js';
import { SetupToken } from '../admin/setup-token.js';
import { startWeb } from './server.js';
import { ApiTokens } from '../admin/tokens.js';

export interface AdminDeps {
  store: ConfigStore;
  log: Logger;
  intake: Intake;
  spool: Spool;
  mailboxes: MailboxStore;
  /** The POP3 server's locks, so retention never touches a mailbox a session has open */
  mailboxLocks: MailboxLocks;
  /** The POP3 server's login results, for the metrics */
  pop3Events: Pop3Server['events'];
  runner: QueueRunner;
  queue: QueueAdmin;
  oauth: OAuthClient;
  dkim: DkimSigner;
  deliverer: Deliverer;
  /** Opened by the composition root (the deliverer reads device names from it); saved here at stop */
  devices: DeviceInventory;
}

export interface AdminConsole {
  web: AddressInfo;
  stop(): Promise<void>;
}

export async function startAdmin(deps: AdminDeps): Promise<AdminConsole> {
  const { store, log, intake, spool, runner, devices } = deps;
  const config = () => store.config;
  const dataDir = path.resolve(config().dataDir);
  const health = new UpstreamHealth();
  health.setConfigured(upstreamConfigured(config()));
  store.onChange((next) => health.setConfigured(upstreamConfigured(next)));
  const activity = new Activity();
  const metrics = new RelayMetrics(spool, () => health.snapshot());
  const alerter = await Alerter.open({ dataDir, config, health, mailboxes: deps.mailboxes, queueDepth: async () => (await spool.ids()).length, log });

  const onQueued = (event: IntakeEvents['queued'][0]) => {
    devices.queued(event);
    metrics.messageAccepted();
    activity.accepted(event.at);
  };
  const onRejected = (event: IntakeEvents['rejected'][0]) => {
    devices.rejected(event);
    metrics.messageRejected(event.stage, event.code);
    activity.rejected(event.at);
  };
  const onAttempt = (report: AttemptReport) => {
    activity.attempt(report);
    metrics.attempt(report);
    devices.attempt(report);
    const signal = upstreamSignal(report, config());
    if (signal?.ok) health.success(signal.text);
    else if (signal) {
      health.failure(signal.text);
      metrics.upstreamError();
    }
    void alerter.check();
  };
  // One alert when the upstream sign-in needs an admin, one when it works again
  let consentAlerted = false;
  const onOAuthStatus = (status: OAuthStatus) => {
    const needsConsent = status.state === 'needs-consent';
    if (needsConsent === consentAlerted || (!needsConsent && status.state !== 'ok')) return;
    consentAlerted = needsConsent;
    void alerter.announce(oauthNotice(needsConsent ? 'firing' : 'recovered', config().hostname, status.reason));
  };
  const onPop3Login = (result: Parameters<RelayMetrics['pop3Login']>[0]) => metrics.pop3Login(result);
  deps.oauth.on('status', onOAuthStatus);
  deps.pop3Events.on('login', onPop3Login);
  intake.on('queued', onQueued);
  intake.on('rejected', onRejected);
  runner.on('attempt', onAttempt);

  const jobs = housekeeping({ ...deps, config, health, metrics, activity, devices, alerter });

  const credentials = new AdminCredentials(dataDir);
  const setup = new SetupToken(dataDir);
  if (!(await credentials.isSet())) {
    const setupToken = await setup.issue();
    log.warn({ setupToken, file: setup.file }, 'Admin password not set: open the web page and enter this setup token (or run "edge-relay admin password --password-stdin")');
  }
  const { web: webConfig, hostname } = config();
  const tls = webConfig.tls.enabled
    ? await loadOrCreateCertificate({ dataDir, name: 'web', certFile: webConfig.tls.certFile, keyFile: webConfig.tls.keyFile, hostname, log })
    : undefined;
  const web = await startWeb({
    ...deps,
    host: webConfig.host,
    port: webConfig.port,
    ...(tls ? { tls } : {}),
    credentials,
    devices,
    metrics,
    activity,
    health,
    alerter,
    tokens: new ApiTokens(dataDir),
    setup,
    startedAt: new Date(),
    dataDir,
  });

  return {
    web: web.address,
    async stop() {
      intake.off('queued', onQueued);
      intake.off('rejected', onRejected);
      runner.off('attempt', onAttempt);
      deps.oauth.off('status', onOAuthStatus);
      deps.pop3Events.off('login', onPop3Login);
      await Promise.all([jobs.stop(), web.stop()]);
      await devices.flush();
    },
  };
}
