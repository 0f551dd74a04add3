/**
 * The composition root: builds every service from the config, starts them
 * in order (storage first, listeners last) and stops them in reverse.
 */
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Bouncer } from './bounce/bouncer.js';
import type { ConfigStore } from './config/store.js';
import { wideNetworks, wideNetworksWarning } from './config/networks.js';
import { clockProblem } from './util/clock.js';
import { Deliverer } from './deliver/deliverer.js';
import { DkimSigner } from './deliver/dkim.js';
import { SmtpPool } from './deliver/smtp-pool.js';
import { DeviceInventory } from './devices/inventory.js';
import { MxDelivery } from './deliver/mx.js';
import { UpstreamLimits } from './deliver/upstream-limits.js';
import { Intake } from './intake/server.js';
import { errorMessage } from './errors.js';
import type { Logger } from './log.js';
import { MailboxStore } from './mailbox/store.js';
import { startPop3 } from './pop3/server.js';
import { QueueAdmin } from './queue/admin.js';
import { serveQueueControl } from './queue/control.js';
import { QueueRunner } from './queue/runner.js';
import { OAuthClient } from './oauth/client.js';
import { NO_UPSTREAM } from './route/router.js';
import { Spool, controlSocketPath } from './spool/spool.js';
import { ensureDir } from './util/fsx.js';
import { startAdmin } from './web/start.js';
import { claimDataDir } from './util/serve-lock.js';
import { checkListeners } from './util/listen-check.js';

export interface Relay {
  smtp: AddressInfo;
  intake: Intake;
  spool: Spool;
  mailboxes: MailboxStore;
  runner: QueueRunner;
  queue: QueueAdmin;
  stop(): Promise<void>;
}

const hostPort = (address: AddressInfo): string => `${address.address}:${address.port}`;

/** How long in-flight work may take to finish on SIGTERM before we let go (CONTRACT: exit within 10 s) */
const STOP_GRACE_MS = 5_000;

export async function startRelay(store: ConfigStore, log: Logger): Promise<Relay> {
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

  const bouncer = new Bouncer({ spool, config, log, postmasterExists: () => mailboxes.exists(config().mailbox.postmaster) });
  const oauth = await OAuthClient.open({ config, dataDir, log });
  // Opened before the deliverer: an admin-given device name can be the rewritten From's display name
  const devices = await DeviceInventory.open(dataDir, log);
  const dkim = new DkimSigner(dataDir);
  // One pool for the smarthost and MX hosts: connections are shared only between identical settings
  const pool = new SmtpPool();
  const mx = new MxDelivery({ config, log, pool });
  const upstreamLimits = await UpstreamLimits.open(dataDir, log);
  const deliverer = new Deliverer({ config, mailboxes, mx, log, tokens: oauth, dkim, pool, limits: upstreamLimits, deviceName: (address) => devices.name(address) });
  const runner = new QueueRunner({ spool, deliverer, bouncer, config, log });
  const queue = new QueueAdmin(spool, () => void runner.rescan());
  store.onChange(() => runner.retryAllNow());
  await runner.start();
  // The CLI's changes come through here: only this process writes the spool
  const control = await serveQueueControl(controlSocketPath(dataDir), queue, log).catch((err: unknown) => {
    log.error({ err: errorMessage(err), socket: controlSocketPath(dataDir) }, 'The queue commands of the command line will not work while the server runs');
    return { close: async () => undefined };
  });

  const intake = new Intake({ config, spool, log, mailboxes, upstreams: upstreamLimits });
  const smtp = await intake.start();
  const pop3 = await startPop3({ config, mailboxes, log, dataDir });
  const admin = await startAdmin({ store, log, intake, spool, mailboxes, mailboxLocks: pop3.locks, pop3Events: pop3.events, runner, queue, oauth, dkim, deliverer, devices });
  const listening = {
    smtp: hostPort(smtp),
    ...(intake.tlsAddress && { smtps: hostPort(intake.tlsAddress) }),
    pop3: hostPort(pop3.addresses.pop3),
    ...(pop3.addresses.pop3s && { pop3s: hostPort(pop3.addresses.pop3s) }),
    web: hostPort(admin.web),
  };
  log.info({ ...listening, dataDir, config: store.source, queued: recovered.messages }, 'edge-relay is running');
  if (config().delivery.mode === 'smarthost' && !config().delivery.smarthost.host) log.warn(NO_UPSTREAM);
  const clock = clockProblem();
  if (clock) log.warn(clock);
  const open = wideNetworks(config().smtp.allowNetworks);
  if (open.length) log.warn({ networks: open }, wideNetworksWarning(open));

  // `systemctl reload edge-relay`; without a handler SIGHUP would end the process
  const onReload = () => void store.reloadLogged(log, 'SIGHUP');
  process.on('SIGHUP', onReload);
  store.watch(log);

  return {
    smtp,
    intake,
    spool,
    mailboxes,
    runner,
    queue,
    async stop() {
      process.off('SIGHUP', onReload);
      store.close();
      await admin.stop();
      await Promise.all([intake.stop(), pop3.stop(), runner.stop(STOP_GRACE_MS), control.close()]);
      await spool.close();
      deliverer.close();
      oauth.stop();
      await releaseDataDir();
      log.info('edge-relay stopped');
    },
  };
}
