/**
 * The housekeeping timetable: which job runs when. The jobs themselves live
 * in their own modules; this file only wires them to the schedule.
 */
import type { Alerter } from '../alerts/alerter.js';
import type { UpstreamHealth } from '../alerts/upstream-health.js';
import type { Config } from '../config/schema.js';
import type { ConfigStore } from '../config/store.js';
import type { Deliverer } from '../deliver/deliverer.js';
import type { DeviceInventory } from '../devices/inventory.js';
import type { Logger } from '../log.js';
import type { MailboxLocks } from '../mailbox/locks.js';
import { enforceMailboxLimits } from '../mailbox/limits.js';
import type { MailboxStore } from '../mailbox/store.js';
import type { Activity } from '../metrics/activity.js';
import { queueCounts, type RelayMetrics } from '../metrics/metrics.js';
import type { QueueRunner } from '../queue/runner.js';
import type { Spool } from '../spool/spool.js';
import { queueDigest } from './digest.js';
import { probeUpstream } from './probe.js';
import { Scheduler } from './scheduler.js';
import { cleanSpoolTemp } from './spool-cleanup.js';

export interface HousekeepingDeps {
  store: ConfigStore;
  config: () => Config;
  log: Logger;
  spool: Spool;
  runner: QueueRunner;
  mailboxes: MailboxStore;
  mailboxLocks: MailboxLocks;
  health: UpstreamHealth;
  metrics: RelayMetrics;
  activity: Activity;
  devices: DeviceInventory;
  alerter: Alerter;
  deliverer: Pick<Deliverer, 'probeSmarthost'>;
}

const DIGEST = 'digest';

export function housekeeping(deps: HousekeepingDeps): { stop(): Promise<void> } {
  const { config, log } = deps;
  const scheduler = new Scheduler(log);

  const probe = async () => {
    const result = await probeUpstream(config(), deps.deliverer);
    if (result.ok === true) deps.health.success(result.text);
    else if (result.ok === false) {
      deps.health.failure(result.text);
      deps.metrics.upstreamError();
      log.warn({ probe: result.text }, 'Upstream probe failed');
    }
    await deps.alerter.check();
  };

  // A safety net beside the runner's own timers: picks up anything another process changed
  scheduler.set({ name: 'queue-sweep', schedule: '* * * * *', run: () => deps.runner.rescan() });
  scheduler.set({ name: 'upstream-probe', schedule: '*/5 * * * *', run: probe });
  // Time-based alerts (a failure that simply goes on) need a clock, not only events
  scheduler.set({
    name: 'alert-check',
    schedule: '*/15 * * * * *',
    run: () => deps.alerter.check(),
  });
  scheduler.set({
    name: 'spool-cleanup',
    schedule: '17 * * * *',
    run: async () => {
      const removed = await cleanSpoolTemp(deps.spool.dir('tmp'));
      if (removed) log.info({ removed }, 'Removed stale files from the spool');
    },
  });
  scheduler.set({
    name: 'mailbox-limits',
    schedule: '23 * * * *',
    run: () =>
      enforceMailboxLimits({ mailboxes: deps.mailboxes, locks: deps.mailboxLocks, config, log }),
  });

  const scheduleDigest = (current: Config) => {
    const { schedule, to } = current.alerts.digest;
    if (!to) return scheduler.remove(DIGEST);
    scheduler.set({
      name: DIGEST,
      schedule,
      run: async () => {
        const facts = {
          today: deps.activity.today(),
          queue: await queueCounts(deps.spool),
          health: deps.health.snapshot(),
          devices: deps.devices.list().length,
        };
        const id = await queueDigest(deps.spool, config(), facts);
        log.info({ queueId: id }, 'Daily digest queued');
      },
    });
  };
  scheduleDigest(config());
  const stopFollowingConfig = deps.store.onChange(scheduleDigest);
  // The dashboard should know about the upstream without waiting five minutes
  scheduler.runSoon('upstream-probe', 1_000);
  // A box that was off at :23, or restarted after a retention change, applies the limits soon after start
  scheduler.runSoon('mailbox-limits', 2_000);
  return {
    async stop() {
      stopFollowingConfig();
      await scheduler.stop();
    },
  };
}
