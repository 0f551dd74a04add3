/**
 * The composition root: builds the relay's core (every service and job, see
 * src/core.ts), then the web console on top of it with the services it
 * shows; stops the console first. Also where the process's signals and the
 * config file's watch are wired.
 */
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { ConfigStore } from './config/store.js';
import { wideNetworks, wideNetworksWarning } from './config/networks.js';
import { startCore, type Core } from './core.js';
import type { Logger } from './log.js';
import { NO_UPSTREAM } from './route/router.js';
import { clockProblem } from './util/clock.js';
import { startWebConsole } from './web/console.js';

export type Relay = Pick<Core, 'smtp' | 'intake' | 'spool' | 'mailboxes' | 'runner' | 'queue'> & {
  stop(): Promise<void>;
};

const hostPort = (address: AddressInfo): string => `${address.address}:${address.port}`;

export async function startRelay(store: ConfigStore, log: Logger): Promise<Relay> {
  const startedAt = new Date();
  const core = await startCore(store, log);
  const { queue, spool, mailboxes, devices, metrics, activity, health, alerter, oauth, intake } =
    core;
  const webConsole = await startWebConsole({
    store,
    log,
    startedAt,
    queue,
    spool,
    mailboxes,
    devices,
    metrics,
    activity,
    health,
    alerter,
    oauth,
    intake,
    dkim: core.dkim,
    deliverer: core.deliverer,
    pacing: core.pacing,
  });
  const config = store.config;
  const listening = {
    smtp: hostPort(core.smtp),
    ...(core.intake.tlsAddress && { smtps: hostPort(core.intake.tlsAddress) }),
    pop3: hostPort(core.pop3.pop3),
    ...(core.pop3.pop3s && { pop3s: hostPort(core.pop3.pop3s) }),
    web: hostPort(webConsole.web),
  };
  log.info(
    {
      ...listening,
      dataDir: path.resolve(config.dataDir),
      config: store.source,
      queued: core.recovered,
    },
    'edge-relay is running',
  );
  if (config.delivery.mode === 'smarthost' && !config.delivery.smarthost.host)
    log.warn(NO_UPSTREAM);
  const clock = clockProblem();
  if (clock) log.warn(clock);
  const open = wideNetworks(config.smtp.allowNetworks);
  if (open.length) log.warn({ networks: open }, wideNetworksWarning(open));

  // `systemctl reload edge-relay`; without a handler SIGHUP would end the process
  const onReload = () => void store.reloadLogged(log, 'SIGHUP');
  process.on('SIGHUP', onReload);
  store.watch(log);

  return {
    ...core,
    async stop() {
      process.off('SIGHUP', onReload);
      store.close();
      await webConsole.stop();
      await core.stop();
      log.info('edge-relay stopped');
    },
  };
}
