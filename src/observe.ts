/**
 * Everything that watches the relay and reports on it: metrics, today's
 * activity, upstream health and the alerts. Built by the composition root
 * after the intake (it listens to its events) and stopped before it; the web
 * page and the housekeeping jobs read what it gathers.
 */
import path from 'node:path';
import { Alerter } from './alerts/alerter.js';
import { oauthNotice } from './alerts/notice.js';
import { UpstreamHealth, upstreamConfigured, upstreamSignal } from './alerts/upstream-health.js';
import type { ConfigStore } from './config/store.js';
import type { DeviceInventory } from './devices/inventory.js';
import type { Intake, IntakeEvents } from './intake/server.js';
import type { Logger } from './log.js';
import type { MailboxStore } from './mailbox/store.js';
import { Activity } from './metrics/activity.js';
import { RelayMetrics } from './metrics/metrics.js';
import type { OAuthClient, OAuthStatus } from './oauth/client.js';
import type { Pop3Server } from './pop3/server.js';
import type { PacingGate } from './queue/pacing-gate.js';
import type { AttemptReport, QueueRunner } from './queue/runner.js';
import type { Spool } from './spool/spool.js';

export interface ObservedServices {
  store: ConfigStore;
  log: Logger;
  intake: Intake;
  spool: Spool;
  mailboxes: MailboxStore;
  runner: QueueRunner;
  oauth: OAuthClient;
  devices: DeviceInventory;
  pacing: PacingGate;
  /** The POP3 server's login results, for the metrics */
  pop3Events: Pop3Server['events'];
}

export interface Observers {
  health: UpstreamHealth;
  activity: Activity;
  metrics: RelayMetrics;
  alerter: Alerter;
  /** Stops listening to the services' events */
  stop(): void;
}

export async function startObservers(services: ObservedServices): Promise<Observers> {
  const { store, intake, runner, oauth, devices, pop3Events } = services;
  const config = () => store.config;
  const health = new UpstreamHealth();
  health.setConfigured(upstreamConfigured(config()));
  const stopFollowingConfig = store.onChange((next) =>
    health.setConfigured(upstreamConfigured(next)),
  );
  const activity = new Activity();
  const metrics = new RelayMetrics(
    services.spool,
    () => health.snapshot(),
    () => services.pacing.status(Date.now()),
  );
  const dataDir = path.resolve(config().dataDir);
  const alerter = await Alerter.open({
    dataDir,
    config,
    health,
    mailboxes: services.mailboxes,
    queueDepth: async () => (await services.spool.ids()).length,
    paced: () => services.pacing.status(Date.now()),
    log: services.log,
  });

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
    void alerter.announce(
      oauthNotice(needsConsent ? 'firing' : 'recovered', config().hostname, status.reason),
    );
  };
  const onPop3Login = (result: Parameters<RelayMetrics['pop3Login']>[0]) =>
    metrics.pop3Login(result);
  oauth.on('status', onOAuthStatus);
  pop3Events.on('login', onPop3Login);
  intake.on('queued', onQueued);
  intake.on('rejected', onRejected);
  runner.on('attempt', onAttempt);

  return {
    health,
    activity,
    metrics,
    alerter,
    stop() {
      stopFollowingConfig();
      intake.off('queued', onQueued);
      intake.off('rejected', onRejected);
      runner.off('attempt', onAttempt);
      oauth.off('status', onOAuthStatus);
      pop3Events.off('login', onPop3Login);
    },
  };
}
