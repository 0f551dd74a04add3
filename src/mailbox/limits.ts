/**
 * Retention and quota per mailbox (mailbox.retention, mailbox.quota): first
 * messages older than the retention go, then the oldest until the mailbox is
 * under quota. Every removal is logged. A mailbox open in a POP3 session is
 * left alone this round: its session's numbering must not change under it.
 * Housekeeping calls enforceMailboxLimits() on a schedule.
 */
import type { Config } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { parseDuration } from '../util/duration.js';
import type { MailboxLocks } from './locks.js';
import type { MailboxMessage, MailboxStore } from './store.js';

export type RemovalReason = 'retention' | 'quota';

export interface Removal {
  uid: string;
  size: number;
  reason: RemovalReason;
}

export interface LimitPolicy {
  retentionMs: number;
  quotaBytes: number;
  now: Date;
}

/** Pure: which messages go, given the mailbox's messages oldest first */
export function planRemovals(messages: readonly MailboxMessage[], policy: LimitPolicy): Removal[] {
  const cutoff = policy.now.getTime() - policy.retentionMs;
  const removals: Removal[] = [];
  let bytes = messages.reduce((sum, m) => sum + m.size, 0);
  const oldestFirst = [...messages].sort(
    (a, b) => a.deliveredAt.getTime() - b.deliveredAt.getTime(),
  );
  for (const message of oldestFirst) {
    const reason: RemovalReason | null =
      message.deliveredAt.getTime() < cutoff
        ? 'retention'
        : bytes > policy.quotaBytes
          ? 'quota'
          : null;
    if (!reason) break;
    removals.push({ uid: message.uid, size: message.size, reason });
    bytes -= message.size;
  }
  return removals;
}

export interface LimitsOptions {
  mailboxes: MailboxStore;
  locks: MailboxLocks;
  config: () => Config;
  log: Logger;
  now?: () => Date;
}

export interface LimitsReport {
  removed: number;
  bytes: number;
  /** Mailboxes skipped because a session had them open */
  busy: string[];
}

/** Applies retention and quota to one mailbox, or to all when `only` is not given */
export async function enforceMailboxLimits(
  options: LimitsOptions,
  only?: string,
): Promise<LimitsReport> {
  const { mailboxes, locks, log } = options;
  const config = options.config().mailbox;
  const policy: LimitPolicy = {
    retentionMs: parseDuration(config.retention) ?? Infinity,
    quotaBytes: config.quota,
    now: options.now?.() ?? new Date(),
  };
  const report: LimitsReport = { removed: 0, bytes: 0, busy: [] };
  for (const mailbox of only === undefined ? await mailboxes.names() : [only]) {
    const release = locks.tryAcquire(mailbox, 'mailbox retention and quota');
    if (!release) {
      log.info(
        { mailbox, holder: locks.holder(mailbox) },
        'Mailbox limits skipped: the mailbox is in use',
      );
      report.busy.push(mailbox);
      continue;
    }
    try {
      for (const removal of planRemovals(await mailboxes.list(mailbox), policy)) {
        await mailboxes.removeMessage(mailbox, removal.uid);
        log.info(
          { mailbox, ...removal },
          removal.reason === 'retention'
            ? `Removed a message older than ${config.retention}`
            : 'Removed the oldest message: mailbox over quota',
        );
        report.removed++;
        report.bytes += removal.size;
      }
    } catch (err) {
      log.error({ mailbox, err: errorMessage(err) }, 'Could not apply mailbox limits');
    } finally {
      release();
    }
  }
  return report;
}
