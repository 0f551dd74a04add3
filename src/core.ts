/**
 * The relay without its web console: storage, delivery, the queue, the
 * SMTP and POP3 listeners, what watches them, and the housekeeping jobs
 * (the queue sweep, mailbox retention, the probe, the digest). Built by the
 * composition root (src/app.ts); runs whole with the web module never loaded.
 * Starts storage first and listeners last; stops in reverse.
 */
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Bouncer } from './bounce/bouncer.js';
import type { ConfigStore } from './config/store.js';
import { Deliverer } from './deliver/deliverer.js';
import { DkimSigner } from './deliver/dkim.js';
import { MxDelivery } from './deliver/mx.js';
import { SmtpPool } from './deliver/smtp-pool.js';
import { UpstreamLimits } from './deliver/upstream-limits.js';
import { DeviceInventory } from './devices/inventory.js';
import { errorMessage } from './errors.js';
import { Intake } from './intake/server.js';
import { housekeeping } from './jobs/housekeeping.js';
import type { Logger } from './log.js';
import { MailboxStore } from './mailbox/store.js';
import { OAuthClient } from './oauth/client.js';
import { startObservers, type Observers } from './observe.js';
import { startPop3, type Pop3Server } from './pop3/server.js';
import { QueueCommands } from './queue/commands.js';
import { serveQueueControl } from './queue/control.js';
import { PacingFile } from './queue/pacing-file.js';
import { PacingGate } from './queue/pacing-gate.js';
import { QueueRunner } from './queue/runner.js';
import { Spool, controlSocketPath } from './spool/spool.js';
import { ensureDir } from './util/fsx.js';
import { checkListeners } from './util/listen-check.js';
import { claimDataDir } from './util/serve-lock.js';

export interface Core extends Omit<Observers, 'stop'> {
  smtp: AddressInfo;
  pop3: Pop3Server['addresses'];
  intake: Intake;
  spool: Spool;
  mailboxes: MailboxStore;
  runner: QueueRunner;
  queue: QueueCommands;
  oauth: OAuthClient;
  deliverer: Deliverer;
  dkim: DkimSigner;
  devices: DeviceInventory;
  /** The upstreams' sending limits and what was sent against them */
  pacing: PacingGate;
  /** How many messages were in the queue at start */
  recovered: number;
  stop(): Promise<void>;
}

/** How long in-flight work may take to finish on SIGTERM before we let go (the relay must exit within 10 s) */
const STOP_GRACE_MS = 5_000;

export async function startCore(store: ConfigStore, log: Logger): Promise<Core> {
  const config = () => store.config;
  const dataDir = path.resolve(config().dataDir);
  await checkListeners(config(), store.source);
  await ensureDir(dataDir);
  const releaseDataDir = await claimDataDir(dataDir, log);
  const spool = await Spool.open(dataDir, log);
  const recovered = await spool.recover();
  const mailboxes = await MailboxStore.open(dataDir, log);
  await mailboxes.recover();
  await mailboxes.ensure(config().mailbox.postmaster);

  const bouncer = new Bouncer({
    spool,
    config,
    log,
    postmasterExists: () => mailboxes.exists(config().mailbox.postmaster),
  });
  const oauth = await OAuthClient.open({ config, dataDir, log });
  // Opened before the deliverer: an admin-given device name can be the rewritten From's display name
  const devices = await DeviceInventory.open(dataDir, log);
  const dkim = new DkimSigner(dataDir);
  // One pool for the smarthost and MX hosts: connections are shared only between identical settings
  const pool = new SmtpPool();
  const mx = new MxDelivery({ config, log, pool });
  const upstreamLimits = await UpstreamLimits.open(dataDir, log);
  const deliverer = new Deliverer({
    config,
    mailboxes,
    mx,
    log,
    tokens: oauth,
    dkim,
    pool,
    limits: upstreamLimits,
    deviceName: (address) => devices.name(address),
  });
  const pacing = new PacingGate(await PacingFile.open(dataDir, log), config, log);
  const runner = new QueueRunner({ spool, deliverer, bouncer, config, log, pacing });
  const queue = new QueueCommands(
    spool,
    () => void runner.rescan(),
    (id) => runner.heldBack(id),
  );
  const stopRetryingOnChange = store.onChange(() => runner.retryAllNow());
  await runner.start();
  // The CLI's changes come through here: only this process writes the spool
  const control = await serveQueueControl(controlSocketPath(dataDir), queue, log).catch(
    (err: unknown) => {
      log.error(
        { err: errorMessage(err), socket: controlSocketPath(dataDir) },
        'The queue commands of the command line will not work while the server runs',
      );
      return { close: async () => undefined };
    },
  );

  const intake = new Intake({ config, spool, log, mailboxes, upstreams: upstreamLimits });
  const smtp = await intake.start();
  const pop3 = await startPop3({ config, mailboxes, log, dataDir });
  const { stop: stopObserving, ...observed } = await startObservers({
    store,
    log,
    intake,
    spool,
    mailboxes,
    runner,
    oauth,
    devices,
    pacing,
    pop3Events: pop3.events,
  });
  const jobs = housekeeping({
    store,
    config,
    log,
    spool,
    runner,
    mailboxes,
    mailboxLocks: pop3.locks,
    devices,
    deliverer,
    ...observed,
  });

  return {
    smtp,
    pop3: pop3.addresses,
    intake,
    spool,
    mailboxes,
    runner,
    queue,
    oauth,
    deliverer,
    dkim,
    devices,
    pacing,
    ...observed,
    recovered: recovered.messages,
    async stop() {
      stopRetryingOnChange();
      stopObserving();
      await jobs.stop();
      await Promise.all([intake.stop(), pop3.stop(), runner.stop(STOP_GRACE_MS), control.close()]);
      await Promise.all([devices.flush(), pacing.close()]);
      await spool.close();
      deliverer.close();
      oauth.stop();
      await releaseDataDir();
    },
  };
}
