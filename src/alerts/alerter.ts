/**
 * Applies the alert rules and sends the notices: a mail into the postmaster
 * mailbox (works while the internet is down) and, if configured, a webhook.
 * The alert state is saved in <dataDir>/alerts.json so a restart during an
 * outage does not alert a second time.
 */
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { MailboxStore } from '../mailbox/store.js';
import { parseDuration } from '../util/duration.js';
import { readJsonFile, writeFileAtomic } from '../util/fsx.js';
import { composeNotice, noticeMail, webhookBody, type Notice } from './notice.js';
import { QUIET, evaluate, type AlertState, type DailyUsage } from './rules.js';
import type { UpstreamHealth } from './upstream-health.js';

export interface AlerterOptions {
  dataDir: string;
  config: () => Config;
  health: UpstreamHealth;
  mailboxes: MailboxStore;
  queueDepth: () => Promise<number>;
  /** What each paced upstream sent in the last 24 hours, against its daily limit */
  paced: () => readonly DailyUsage[];
  log: Logger;
}

const WEBHOOK_TIMEOUT_MS = 10_000;
const MIN_CHECK_GAP_MS = 1_000;

/** The alerts now firing, by kind */
const firingKinds = (state: AlertState): string[] =>
  Object.entries(state).flatMap(([kind, { firing }]) => (firing ? [kind] : []));

export class Alerter {
  private state: AlertState = QUIET;
  /** Evaluations run one at a time, so two triggers can't both send the same notice */
  private running: Promise<void> = Promise.resolve();
  private waiting: Promise<void> | undefined;
  private lastCheck = 0;

  private constructor(
    private readonly options: AlerterOptions,
    private readonly file: string,
  ) {}

  static async open(options: AlerterOptions): Promise<Alerter> {
    const alerter = new Alerter(options, path.join(options.dataDir, 'alerts.json'));
    const saved = await readJsonFile<AlertState>(alerter.file).catch(() => undefined);
    // A file saved before the daily cap alert existed has no dailyCap: it starts quiet
    if (saved?.upstream && saved.queue) alerter.state = { ...QUIET, ...saved };
    return alerter;
  }

  current(): AlertState {
    return this.state;
  }

  /**
   * Every delivery attempt asks for a check, and each reads the spool folder:
   * under a backlog they would queue by the thousand. A check that has not
   * started yet answers every request made meanwhile, and checks start at
   * most once a second.
   */
  check(): Promise<void> {
    if (this.waiting) return this.waiting;
    this.waiting = this.running
      .then(async () => {
        const wait = this.lastCheck + MIN_CHECK_GAP_MS - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        this.waiting = undefined;
        this.lastCheck = Date.now();
        const now = new Date();
        await this.evaluateOnce(now);
        // For an admin (and the tests) at debug level: the moment the alerts were last judged, and how
        this.options.log.debug(
          { at: now.toISOString(), firing: firingKinds(this.state) },
          'Alerts checked',
        );
      })
      .catch((err) => this.options.log.error({ err: errorMessage(err) }, 'Alert check failed'));
    this.running = this.waiting;
    return this.waiting;
  }

  private async evaluateOnce(now: Date): Promise<void> {
    const { config, health, queueDepth, paced } = this.options;
    const { alerts } = config();
    const snapshot = health.snapshot();
    const depth = await queueDepth();
    const failingForMs = parseDuration(alerts.upstreamFailingFor) ?? 15 * 60_000;
    const dailyUsage = paced();
    const result = evaluate(this.state, {
      now,
      failingSince: snapshot.failingSince,
      failingForMs,
      queueDepth: depth,
      queueThreshold: alerts.queueThreshold,
      dailyUsage,
      dailyCapPercent: alerts.dailyCapPercent,
    });
    if (result.transitions.length === 0) return;
    this.state = result.state;
    await writeFileAtomic(this.file, JSON.stringify(this.state), 0o600);
    const facts = {
      hostname: config().hostname,
      now,
      health: snapshot,
      queueDepth: depth,
      queueThreshold: alerts.queueThreshold,
      failingFor: alerts.upstreamFailingFor,
      dailyUsage,
      dailyCapPercent: alerts.dailyCapPercent,
    };
    for (const transition of result.transitions)
      await this.send(composeNotice(transition, facts), now);
  }

  /** A notice outside the rules (the OAuth2 sign-in); the caller sends it once per change */
  announce(notice: Notice, now = new Date()): Promise<void> {
    this.running = this.running
      .then(() => this.send(notice, now))
      .catch((err) => this.options.log.error({ err: errorMessage(err) }, 'Alert failed'));
    return this.running;
  }

  private async send(notice: Notice, now: Date): Promise<void> {
    const { config, mailboxes, log } = this.options;
    const { hostname, mailbox, alerts } = config();
    log.warn({ alert: notice.kind, state: notice.state }, notice.title);
    try {
      await mailboxes.deliver(
        mailbox.postmaster,
        Readable.from([Buffer.from(noticeMail(notice, hostname, now))]),
        'alert',
      );
    } catch (err) {
      log.error(
        { err: errorMessage(err), mailbox: mailbox.postmaster },
        'Could not store the alert in the postmaster mailbox',
      );
    }
    if (alerts.webhook) await this.post(alerts.webhook, webhookBody(notice, hostname, now));
  }

  private async post(url: string, body: string): Promise<void> {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      });
      if (!response.ok)
        this.options.log.warn({ status: response.status }, 'Alert webhook answered with an error');
    } catch (err) {
      this.options.log.warn({ err: errorMessage(err) }, 'Alert webhook could not be reached');
    }
  }
}
