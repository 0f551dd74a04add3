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
import { destinationKey, groupByDestination, type RouteGroup } from '../route/router.js';
import type { QueueId } from '../spool/ids.js';
import { BusyError } from '../util/locks.js';
import {
  isFinished,
  pendingRecipients,
  unreportedBounces,
  type DeliveryState,
  type QueueEntry,
} from '../spool/records.js';
import { parseDuration } from '../util/duration.js';
import type { Spool } from '../spool/spool.js';
import { applyOutcomes } from './apply.js';
import { delayAfter, retryPolicy } from './backoff.js';
import type { PacingGate } from './pacing-gate.js';
import { Schedule, type Routing } from './schedule.js';

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
  /** Holds back mail over an upstream's limits; without it nothing is paced */
  pacing?: PacingGate;
}

/** A timer can't wait longer than this; longer waits are re-armed */
const MAX_TIMER_MS = 60_000;
/** How soon a message the command line is working on is looked at again */
const BUSY_RETRY_MS = 2_000;

/** What an attempt leaves behind: the message's next phase, or nothing when it left the queue */
type AfterAttempt =
  | { next: 'wait'; recipients: readonly string[]; until: number }
  | { next: 'hold'; recipients: readonly string[] }
  | { next: 'leave' };

/** Where the recipients go under the given settings: one group per destination */
function routeRecipients(recipients: readonly string[], config: Config): Routing {
  const groups = groupByDestination(recipients, config);
  return { groups, destinations: groups.map((group) => destinationKey(group.destination)) };
}

export class QueueRunner extends EventEmitter<RunnerEvents> {
  /** Every queued message and its phase (waiting, due, running, held) */
  private readonly schedule = new Schedule<QueueId>((recipients) =>
    routeRecipients(recipients, this.options.config()),
  );
  /** The settings the due messages were routed with */
  private routedWith: Config | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;

  private readonly onAccepted = (entry: QueueEntry) => this.arrived(entry);

  constructor(private readonly options: RunnerOptions) {
    super();
  }

  /** Rebuilds the schedule from the spool and starts delivering, new arrivals at once */
  async start(): Promise<void> {
    this.stopped = false;
    this.options.spool.on('accepted', this.onAccepted);
    await this.rescan();
  }

  /** Re-reads the spool: picks up what the CLI changed (retry, hold, release, delete) */
  async rescan(): Promise<void> {
    const readAt = this.schedule.version;
    const entries = await this.options.spool.list();
    // What changed while the spool was read is newer here than in the list (a new arrival may be missing
    // from it, a deferral not yet in it): keep it as it is, or it waits for the next sweep or skips its backoff.
    // A running attempt decides its message's next phase itself.
    const keep = (id: QueueId) => {
      const known = this.schedule.get(id);
      return known !== undefined && (known.changed > readAt || known.phase.name === 'running');
    };
    const listed = new Set<QueueId>();
    for (const entry of entries) {
      listed.add(entry.arrival.id);
      if (!keep(entry.arrival.id)) this.follow(entry);
    }
    for (const id of this.schedule.ids())
      if (!listed.has(id) && !keep(id)) this.schedule.forget(id);
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
    this.options.spool.off('accepted', this.onAccepted);
    clearTimeout(this.timer);
    const inFlight = Promise.allSettled(this.schedule.attempts());
    await Promise.race([inFlight, new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
  }

  /** Why a due message is not started, when an upstream's pacing holds it back (for the queue listing) */
  heldBack(id: QueueId): string | undefined {
    const phase = this.schedule.get(id)?.phase;
    return phase?.name === 'due'
      ? this.options.pacing?.heldText(phase.routing.groups, Date.now())
      : undefined;
  }

  get inFlight(): number {
    return this.schedule.inFlight;
  }

  /** A new arrival starts at once if the limits allow */
  private arrived(entry: QueueEntry): void {
    this.schedule.wait(entry.arrival.id, pendingAddresses(entry.state), Date.now());
    this.pump();
  }

  /** Takes the message's phase from the spool's record of it */
  private follow(entry: QueueEntry): void {
    const { id } = entry.arrival;
    if (isFinished(entry.state)) this.schedule.forget(id);
    else if (entry.state.held) this.schedule.hold(id, pendingAddresses(entry.state));
    else this.schedule.wait(id, pendingAddresses(entry.state), Date.parse(entry.state.nextAttempt));
  }

  /** Routing depends on the settings: after a change every due message is routed again */
  private followSettings(): void {
    const config = this.options.config();
    if (config === this.routedWith) return;
    this.routedWith = config;
    this.schedule.reroute();
  }

  /**
   * Starts every due message the limits allow, oldest first; one whose
   * destination is full waits while later ones to other destinations start.
   * Due messages left waiting start when a delivery ends, so the timer only
   * wakes for future times, or for when an upstream's pacing lets held mail
   * go. A message held by the pacing stays due: no attempt, nothing written.
   */
  private pump(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.followSettings();
    const now = Date.now();
    const { concurrency, concurrencyPerDestination } = this.options.config().delivery;
    const running = this.schedule.runningPerDestination();
    const hasRoom = (destinations: string[]) =>
      destinations.every((key) => (running.get(key) ?? 0) < concurrencyPerDestination);
    // The earliest time held mail may go, should the pacing hold any back
    let heldUntil = Infinity;
    const mayStart = (destinations: string[], routing: Routing) => {
      if (!hasRoom(destinations)) return false;
      const hold = this.options.pacing?.holdFor(routing.groups, now);
      if (hold) heldUntil = Math.min(heldUntil, hold.until);
      return !hold;
    };
    while (this.schedule.inFlight < concurrency) {
      const next = this.schedule.startable(now, mayStart);
      if (!next) break;
      this.options.pacing?.started(next.routing.groups, now);
      this.launch(next.id, next.routing);
      for (const key of next.routing.destinations) running.set(key, (running.get(key) ?? 0) + 1);
    }
    const next = Math.min(this.schedule.nextAt(now), heldUntil);
    if (Number.isFinite(next)) {
      this.timer = setTimeout(
        () => this.pump(),
        Math.min(Math.max(next - Date.now(), 0), MAX_TIMER_MS),
      );
      this.timer.unref();
    }
  }

  private launch(id: QueueId, routing: Routing): void {
    const done = this.attempt(id, routing).then((after) => {
      this.settle(id, after);
      this.pump();
    });
    this.schedule.start(id, done);
  }

  private settle(id: QueueId, after: AfterAttempt): void {
    switch (after.next) {
      case 'wait':
        return this.schedule.wait(id, after.recipients, after.until);
      case 'hold':
        return this.schedule.hold(id, after.recipients);
      case 'leave':
        return this.schedule.forget(id);
    }
  }

  private async attempt(id: QueueId, routing: Routing): Promise<AfterAttempt> {
    const log = this.options.log.child({ queueId: id });
    const again = (afterMs: number): AfterAttempt => ({
      next: 'wait',
      recipients: this.schedule.get(id)?.recipients ?? [],
      until: Date.now() + afterMs,
    });
    try {
      return await this.options.spool.withLock(id, () => this.deliver(id, routing, log));
    } catch (err) {
      // The CLI is working on it; look again shortly
      if (err instanceof BusyError) return again(BUSY_RETRY_MS);
      // Mostly a full disk: retry on the normal schedule, so freed space is used soon
      const retryInMs = Math.min(delayAfter(1, retryPolicy(this.options.config())), MAX_TIMER_MS);
      log.error({ err: errorMessage(err), retryInMs }, 'Delivery attempt failed; will retry');
      return again(retryInMs);
    }
  }

  private dueForDelayWarning(entry: QueueEntry, state: DeliveryState): boolean {
    const after = parseDuration(this.options.config().delivery.delayWarning);
    return (
      after !== null &&
      !state.delayWarned &&
      Date.now() - Date.parse(entry.arrival.receivedAt) >= after
    );
  }

  private async deliver(id: QueueId, routing: Routing, log: Logger): Promise<AfterAttempt> {
    const entry = await this.options.spool.get(id);
    if (!entry) return { next: 'leave' };
    if (entry.state.held) return { next: 'hold', recipients: pendingAddresses(entry.state) };
    const started = Date.now();
    const pending = pendingAddresses(entry.state);
    const outcomes = pending.length
      ? await this.deliverTo(id, entry, groupsStillPending(routing, pending))
      : [];
    let state = entry.state;
    if (outcomes.length) {
      const result = applyOutcomes(
        entry.arrival,
        entry.state,
        outcomes,
        new Date(),
        retryPolicy(this.options.config()),
      );
      this.logOutcomes(outcomes, log);
      state = {
        ...result.state,
        unreported: [...(entry.state.unreported ?? []), ...result.bounced.map((r) => r.address)],
      };
      // The outcome is on disk before any report is written: a report that fails must not resend what was delivered
      await this.save(id, state, log);
    }
    state = await this.report(entry, state, log);
    const finished = isFinished(state);
    this.emit('attempt', {
      id,
      from: entry.arrival.from,
      outcomes,
      finished,
      durationMs: Date.now() - started,
      receivedAt: entry.arrival.receivedAt,
    });
    return finished
      ? { next: 'leave' }
      : { next: 'wait', recipients: pendingAddresses(state), until: Date.parse(state.nextAttempt) };
  }

  private async deliverTo(
    id: QueueId,
    entry: QueueEntry,
    groups: RouteGroup[],
  ): Promise<RecipientOutcome[]> {
    const { spool, deliverer, pacing } = this.options;
    const outcomes = await Promise.all(
      groups.map(async (group) => {
        const answered = await deliverer.deliver({
          queueId: id,
          from: entry.arrival.from,
          recipients: group.recipients,
          destination: group.destination,
          openBody: async () => spool.bodyOf(entry),
          client: entry.arrival.client,
          size: entry.size,
        });
        pacing?.answered(group, answered, Date.now());
        return answered;
      }),
    );
    return outcomes.flat();
  }

  private logOutcomes(outcomes: RecipientOutcome[], log: Logger): void {
    for (const { address, outcome } of outcomes) {
      if (outcome.status === 'deferred' || outcome.status === 'bounced')
        log.warn(
          { rcpt: address, status: outcome.status, error: outcome.reason },
          `Recipient ${outcome.status}`,
        );
      else
        log.info(
          { rcpt: address, status: outcome.status, detail: outcome.detail },
          `Recipient ${outcome.status}`,
        );
    }
  }

  /** Queues the bounce report and the delay warning the state calls for, saving after each */
  private async report(
    entry: QueueEntry,
    state: DeliveryState,
    log: Logger,
  ): Promise<DeliveryState> {
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
      log.info(
        { attempts: state.attempts, nextAttempt: state.nextAttempt },
        pendingRecipients(state).length
          ? 'Message deferred'
          : 'Message waits for its bounce report',
      );
    }
  }
}

const pendingAddresses = (state: DeliveryState): string[] =>
  pendingRecipients(state).map((r) => r.address);

/**
 * The routed groups, narrowed to the recipients the spool has as pending.
 * They are the same (only attempts change a message's recipients, and the
 * schedule routed the pending ones); the narrowing keeps a delivered
 * recipient from a second copy should they ever differ.
 */
function groupsStillPending(routing: Routing, pending: readonly string[]): RouteGroup[] {
  const still = new Set(pending);
  return routing.groups
    .map((group) => ({ ...group, recipients: group.recipients.filter((r) => still.has(r)) }))
    .filter((group) => group.recipients.length > 0);
}
