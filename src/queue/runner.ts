/**
 * The queue manager: knows when each message is due (a small in-memory
 * schedule rebuilt from the spool), runs a bounded number of deliveries at
 * once, in total and per destination (so one slow domain can't take every
 * slot), and writes every outcome back to the spool before moving on.
 */
import { EventEmitter } from 'node:events';
import type { Config } from '../config/schema.js';
import type { Bouncer } from '../bounce/bouncer.js';
import type { Deliverer } from '../deliver/deliverer.js';
import type { RecipientOutcome } from '../deliver/outcome.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { destinationKey, groupByDestination } from '../route/router.js';
import type { QueueId } from '../spool/ids.js';
import { BusyError } from '../util/locks.js';
import { isFinished, pendingRecipients, unreportedBounces, type DeliveryState, type QueueEntry } from '../spool/records.js';
import { parseDuration } from '../util/duration.js';
import type { Spool } from '../spool/spool.js';
import { applyOutcomes } from './apply.js';
import { delayAfter, retryPolicy } from './backoff.js';
import { Schedule } from './schedule.js';

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
  private readonly schedule = new Schedule<QueueId>((id) => this.destinationsOf(id));
  private readonly active = new Map<QueueId, Promise<void>>();
  /** The recipients still to deliver of each scheduled message: where it will go decides when it may start */
  private readonly pending = new Map<QueueId, string[]>();
  /** Deliveries in flight per destination key */
  private readonly busy = new Map<string, number>();
  /** The settings the schedule's groups were routed with */
  private groupedWith: Config | undefined;
  /** Rescans reading the spool right now, and the messages whose schedule changed meanwhile (arrived, or an attempt ended) */
  private scanning = 0;
  private readonly changedDuringScan = new Set<QueueId>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;

  constructor(private readonly options: RunnerOptions) {
    super();
    options.spool.on('accepted', (entry) => this.arrived(entry));
  }

  /** Rebuilds the schedule from the spool and starts delivering */
  async start(): Promise<void> {
    this.stopped = false;
    await this.rescan();
  }

  /** Re-reads the spool: picks up what the CLI changed (retry, hold, release, delete) */
  async rescan(): Promise<void> {
    this.scanning++;
    let entries: QueueEntry[];
    try {
      entries = await this.options.spool.list();
    } finally {
      this.scanning--;
    }
    // What changed while the folder was read is newer here than in the list (a new arrival may be missing
    // from it, a deferral not yet in it): keep it as it is, or it waits for the next sweep or skips its backoff
    const changed = new Set(this.changedDuringScan);
    if (this.scanning === 0) this.changedDuringScan.clear();
    const keep = (id: QueueId) => changed.has(id);
    this.schedule.clear(keep);
    for (const id of this.pending.keys()) if (!keep(id)) this.pending.delete(id);
    for (const entry of entries) if (!keep(entry.arrival.id)) this.scheduleEntry(entry);
    this.pump();
  }

  /** Makes every waiting message due now (after a settings change, or "retry --all") */
  retryAllNow(): void {
    this.schedule.allDueNow();
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

  /** A new arrival starts at once if the limits allow */
  private arrived(entry: QueueEntry): void {
    const id = entry.arrival.id;
    this.noteChange(id);
    this.setPending(id, pendingAddresses(entry.state));
    this.schedule.set(id, Date.now());
    this.pump();
  }

  private scheduleEntry(entry: QueueEntry): void {
    if (entry.state.held || isFinished(entry.state)) return;
    this.setPending(entry.arrival.id, pendingAddresses(entry.state));
    this.schedule.set(entry.arrival.id, Date.parse(entry.state.nextAttempt));
  }

  private noteChange(id: QueueId): void {
    if (this.scanning) this.changedDuringScan.add(id);
  }

  /** Routing depends on the settings: after a change every due message is routed again */
  private followSettings(): void {
    const config = this.options.config();
    if (config === this.groupedWith) return;
    this.groupedWith = config;
    this.schedule.regroup();
  }

  /** The destinations a message's pending recipients go to now (asked by the schedule once per message falling due) */
  private destinationsOf(id: QueueId): string[] {
    const recipients = this.pending.get(id) ?? [];
    return [...new Set(groupByDestination(recipients, this.options.config()).map((group) => destinationKey(group.destination)))];
  }

  private setPending(id: QueueId, recipients: string[] | undefined): void {
    if (recipients) {
      this.pending.set(id, recipients);
      return;
    }
    this.pending.delete(id);
    this.schedule.delete(id);
  }

  /**
   * Starts every due message the limits allow, oldest first; one whose
   * destination is full waits while later ones to other destinations start.
   * Due messages left waiting start when a delivery ends, so the timer only
   * wakes for future times.
   */
  private pump(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.followSettings();
    const now = Date.now();
    const { concurrency, concurrencyPerDestination } = this.options.config().delivery;
    const isRunning = (id: QueueId) => this.active.has(id);
    const hasRoom = (destinations: string[]) => destinations.every((key) => (this.busy.get(key) ?? 0) < concurrencyPerDestination);
    while (this.active.size < concurrency) {
      const next = this.schedule.take(now, isRunning, hasRoom);
      if (!next) break;
      this.launch(next.id, next.destinations);
    }
    const next = this.schedule.nextAt(now);
    if (Number.isFinite(next)) {
      this.timer = setTimeout(() => this.pump(), Math.min(Math.max(next - Date.now(), 0), MAX_TIMER_MS));
      this.timer.unref();
    }
  }

  private launch(id: QueueId, destinations: string[]): void {
    const count = (key: string, by: number) => this.busy.set(key, (this.busy.get(key) ?? 0) + by);
    destinations.forEach((key) => count(key, 1));
    const run = this.attempt(id).finally(() => {
      this.noteChange(id);
      destinations.forEach((key) => count(key, -1));
      this.active.delete(id);
      this.pump();
    });
    this.active.set(id, run);
  }

  private async attempt(id: QueueId): Promise<void> {
    const log = this.options.log.child({ queueId: id });
    try {
      await this.options.spool.withLock(id, () => this.deliver(id, log));
    } catch (err) {
      if (err instanceof BusyError) {
        // The CLI is working on it; look again shortly
        this.schedule.set(id, Date.now() + 2_000);
        return;
      }
      // Mostly a full disk: retry on the normal schedule, so freed space is used soon
      const retryInMs = Math.min(delayAfter(1, retryPolicy(this.options.config())), MAX_TIMER_MS);
      log.error({ err: errorMessage(err), retryInMs }, 'Delivery attempt failed; will retry');
      this.schedule.set(id, Date.now() + retryInMs);
    }
  }

  private dueForDelayWarning(entry: QueueEntry, state: DeliveryState): boolean {
    const after = parseDuration(this.options.config().delivery.delayWarning);
    return after !== null && !state.delayWarned && Date.now() - Date.parse(entry.arrival.receivedAt) >= after;
  }

  private async deliver(id: QueueId, log: Logger): Promise<void> {
    const entry = await this.read(id);
    if (!entry) return this.setPending(id, undefined);
    const started = Date.now();
    const pending = pendingAddresses(entry.state);
    const outcomes = pending.length ? await this.deliverTo(id, entry, pending) : [];
    let state = entry.state;
    if (outcomes.length) {
      const result = applyOutcomes(entry.arrival, entry.state, outcomes, new Date(), retryPolicy(this.options.config()));
      this.logOutcomes(outcomes, log);
      state = { ...result.state, unreported: [...(entry.state.unreported ?? []), ...result.bounced.map((r) => r.address)] };
      // The outcome is on disk before any report is written: a report that fails must not resend what was delivered
      await this.save(id, state, log);
    }
    state = await this.report(entry, state, log);
    if (isFinished(state)) this.setPending(id, undefined);
    else {
      this.setPending(id, pendingAddresses(state));
      this.schedule.set(id, Date.parse(state.nextAttempt));
    }
    this.emit('attempt', { id, from: entry.arrival.from, outcomes, finished: isFinished(state), durationMs: Date.now() - started, receivedAt: entry.arrival.receivedAt });
  }

  /** The message as the spool has it now; undefined when it is gone or held */
  private async read(id: QueueId): Promise<QueueEntry | undefined> {
    const entry = await this.options.spool.get(id);
    return entry && !entry.state.held ? entry : undefined;
  }

  private async deliverTo(id: QueueId, entry: QueueEntry, recipients: string[]): Promise<RecipientOutcome[]> {
    const { spool, deliverer } = this.options;
    const groups = groupByDestination(recipients, this.options.config());
    const outcomes = await Promise.all(
      groups.map((group) =>
        deliverer.deliver({
          queueId: id,
          from: entry.arrival.from,
          recipients: group.recipients,
          destination: group.destination,
          openBody: async () => spool.bodyOf(entry),
          client: entry.arrival.client,
          size: entry.size,
        }),
      ),
    );
    return outcomes.flat();
  }

  private logOutcomes(outcomes: RecipientOutcome[], log: Logger): void {
    for (const { address, outcome } of outcomes) {
      if (outcome.status === 'deferred' || outcome.status === 'bounced') log.warn({ rcpt: address, status: outcome.status, error: outcome.reason }, `Recipient ${outcome.status}`);
      else log.info({ rcpt: address, status: outcome.status, detail: outcome.detail }, `Recipient ${outcome.status}`);
    }
  }

  /** Queues the bounce report and the delay warning the state calls for, saving after each */
  private async report(entry: QueueEntry, state: DeliveryState, log: Logger): Promise<DeliveryState> {
    const { bouncer } = this.options;
    const id = entry.arrival.id;
    const bounced = unreportedBounces(state);
    if (bounced.length) {
      await bouncer.report({ ...entry, state }, bounced);
      state = { ...state, unreported: [] };
      await this.save(id, state, log);
    }
    if (pendingRecipients(state).length && this.dueForDelayWarning(entry, state)) {
      await bouncer.report({ ...entry, state }, pendingRecipients(state), 'delayed');
      state = { ...state, delayWarned: true };
      await this.save(id, state, log);
    }
    return state;
  }

  /** Writes the state, or removes the message once nothing is left to do */
  private async save(id: QueueId, state: DeliveryState, log: Logger): Promise<void> {
    if (isFinished(state)) {
      await this.options.spool.remove(id);
      log.info({ attempts: state.attempts }, 'Message done, removed from the queue');
    } else {
      await this.options.spool.saveState(id, state);
      log.info({ attempts: state.attempts, nextAttempt: state.nextAttempt }, pendingRecipients(state).length ? 'Message deferred' : 'Message waits for its bounce report');
    }
  }
}

const pendingAddresses = (state: DeliveryState): string[] => pendingRecipients(state).map((r) => r.address);
