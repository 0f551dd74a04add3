/**
 * A real Deliverer for in-process tests, built as the composition root
 * builds it (app.ts), over a data dir of the test's own.
 */
import type { Config } from '../../src/config/schema.js';
import { Deliverer, type DelivererOptions } from '../../src/deliver/deliverer.js';
import { DkimSigner } from '../../src/deliver/dkim.js';
import { MxDelivery } from '../../src/deliver/mx.js';
import { SmtpPool } from '../../src/deliver/smtp-pool.js';
import { UpstreamLimits } from '../../src/deliver/upstream-limits.js';
import { silentLogger } from '../../src/log.js';
import { MailboxStore } from '../../src/mailbox/store.js';

const NO_TOKENS = { accessToken: () => Promise.reject(new Error('No OAuth2 in this test')) };

export async function testDeliverer(
  config: () => Config,
  overrides: Partial<DelivererOptions> = {},
): Promise<Deliverer> {
  const log = overrides.log ?? silentLogger();
  const pool = new SmtpPool();
  const mailboxes = overrides.mailboxes ?? (await MailboxStore.open(config().dataDir, log));
  const mx = new MxDelivery({ config, log, pool });
  const limits = overrides.limits ?? (await UpstreamLimits.open(config().dataDir, log));
  return new Deliverer({
    config,
    mailboxes,
    mx,
    log,
    dkim: new DkimSigner(config().dataDir),
    tokens: NO_TOKENS,
    pool,
    deviceName: () => undefined,
    ...overrides,
    limits,
  });
}
