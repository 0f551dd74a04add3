/**
 * The queue manager: knows when each message is due (a small in-memory
 * schedule rebuilt from the spool), runs a bounded number of deliveries at
 * once, and writes every outcome back to the spool before moving on.
 */
import { EventEmitter } from 'node:events';
import type { Config } from '../config/schema.js';
import type { Bouncer } from '../bounce/bouncer.js';
import type { Deliverer } from '../deliver/deliverer.js';
import type { RecipientOutcome } from '../deliver/outcome.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { groupByDestination } from '../route/router.js';
import type { QueueId } from '../spool/ids.js';
import { BusyError } from '../spool/lock.js';
import { pendingRecipients, type DeliveryState, type QueueEntry } from '../spool/records.js';
import { parseDuration } from '../util/duration.js';
import type { Spool } from '../spool/spool.js';
import { applyOutcomes } from './apply.js';
import { retryPolicy } from './backoff.js';

export interface AttemptReport {
  id: QueueId;
  from: string;
  outcomes: RecipientOutcome[];
  finished: boolean;
  durationMs: number;
  receivedAt: string;
}

export interface RunnerEvents {
  attempt: [AttemptReport];
}

export interface RunnerOptions {
  spool: Spool;
  deliverer: Deliverer;
  bouncer: Bouncer;
  config: () => Config;
  log: Logger;
}

/** A timer can't wait longer than this; longer waits are re-armed */
const MAX_TIMER_MS = 60_000;

export class QueueRunner extends EventEmitter<RunnerEvents> {
  private readonly due = new Map<QueueId, number>();
  private readonly active = new Map<QueueId, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;

  constructor(private readonly options: RunnerOptions) {
    super();
    options.spool.on('accepted', (id) => this.schedule(id, Date.now()));
  }

  /** Rebuilds the schedule from the spool and starts delivering */
  async start(): Promise<void> {
    this.stopped = false;
    await this.rescan();
  }

  /** Re-reads the spool: picks up what the CLI changed (retry, hold, release, delete) */
  async rescan(): Promise<void> {
    const entries = await this.options.spool.list();
    this.due.clear();
    for (const entry of entries) this.scheduleEntry(entry);
    this.pump();
  }

  /** Makes every waiting message due now (after a settings change, or "retry --all") */
  retryAllNow(): void {
    for (const id of this.due.keys()) this.due.set(id, Date.now());
    this.pump();
  }

  /** Stops starting deliveries; waits for those in flight up to `graceMs` */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const inFlight = Promise.allSettled([...this.active.values()]);
    await Promise.race([inFlight, new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
  }

  get inFlight(): number {
    return this.active.size;
  }

  schedule(id: QueueId, at: number): void {
    this.due.set(id, at);
    this.pump();
  }

  private scheduleEntry(entry: QueueEntry): void {
    if (entry.state.held || pendingRecipients(entry.state).length === 0) return;
    this.due.set(entry.arrival.id, Date.parse(entry.state.nextAttempt) || Date.now());
  }

  /** Starts every due message the concurrency limit allows, then sleeps until the next one */
  private pump(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const now = Date.now();
    const limit = this.options.config().delivery.concurrency;
    const ready = [...this.due.entries()].filter(([id, at]) => at <= now && !this.active.has(id)).sort((a, b) => a[1] - b[1]);
    for (const [id] of ready) {
      if (this.active.size >= limit) break;
      this.due.delete(id);
      const run = this.attempt(id).finally(() => {
        this.active.delete(id);
        this.pump();
      });
      this.active.set(id, run);
    }
    const next = Math.min(...[...this.due.entries()].filter(([id]) => !this.active.has(id)).map(([, at]) => at));
    if (Number.isFinite(next)) {
      this.timer = setTimeout(() => this.pump(), Math.min(Math.max(next - Date.now(), 0), MAX_TIMER_MS));
      this.timer.unref();
    }
  }

  private async attempt(id: QueueId): Promise<void> {
    const log = this.options.log.child({ queueId: id });
    try {
      await this.options.spool.withLock(id, () => this.deliver(id, log));
    } catch (err) {
      if (err instanceof BusyError) {
        // The CLI is working on it; look again shortly
        this.due.set(id, Date.now() + 2_000);
        return;
      }
      log.error({ err: errorMessage(err) }, 'Delivery attempt failed; will retry');
      this.due.set(id, Date.now() + 60_000);
    }
  }

  private dueForDelayWarning(entry: QueueEntry, state: DeliveryState): boolean {
    const after = parseDuration(this.options.config().delivery.delayWarning);
    return after !== null && !state.delayWarned && Date.now() - Date.parse(entry.arrival.receivedAt) >= after;
  }

  private async deliver(id: QueueId, log: Logger): Promise<void> {
    const { spool, deliverer, bouncer } = this.options;
    const entry = await spool.get(id);
    if (!entry || entry.state.held) return;
    const config = this.options.config();
    const started = Date.now();
    const pending = pendingRecipients(entry.state).map((r) => r.address);
    const groups = groupByDestination(pending, config);
    const outcomes = (
      await Promise.all(
        groups.map((group) =>
          deliverer.deliver({
            queueId: id,
            from: entry.arrival.from,
            recipients: group.recipients,
            destination: group.destination,
            openBody: () => spool.openBody(id),
            client: entry.arrival.client,
            size: entry.size,
          }),
        ),
      )
    ).flat();
    const result = applyOutcomes(entry.arrival, entry.state, outcomes, new Date(), retryPolicy(config));
    for (const { address, outcome } of outcomes) {
      if (outcome.status === 'deferred' || outcome.status === 'bounced') log.warn({ rcpt: address, status: outcome.status, error: outcome.error }, `Recipient ${outcome.status}`);
      else log.info({ rcpt: address, status: outcome.status, detail: outcome.detail }, `Recipient ${outcome.status}`);
    }
    if (result.bounced.length) await bouncer.report({ ...entry, state: result.state }, result.bounced);
    if (!result.finished && this.dueForDelayWarning(entry, result.state)) {
      result.state.delayWarned = true;
      await bouncer.report({ ...entry, state: result.state }, pendingRecipients(result.state), 'delayed');
    }
    if (result.finished) {
      await spool.remove(id);
      log.info({ attempts: result.state.attempts }, 'Message done, removed from the queue');
    } else {
      await spool.saveState(id, result.state);
      this.due.set(id, Date.parse(result.state.nextAttempt));
      log.info({ attempts: result.state.attempts, nextAttempt: result.state.nextAttempt }, 'Message deferred');
    }
    this.emit('attempt', { id, from: entry.arrival.from, outcomes, finished: result.finished, durationMs: Date.now() - started, receivedAt: entry.arrival.receivedAt });
  }
}
