/**
 * The queue manager's view of the queue: one entry per queued message, each
 * in one phase. Every change of phase goes through this class, which keeps
 * two indexes in step with the entries so the runner's questions cost little
 * with a long backlog: the due messages grouped by the destinations they go
 * to (finding the next one that may start costs a step per destination, not
 * per queued message) and the waiting ones (so a timer can wake for the
 * next). Counts per destination are derived from the running entries.
 */
import type { RouteGroup } from '../route/router.js';

/** Where a message's pending recipients go; computed once per attempt, when the message falls due */
export interface Routing {
  groups: RouteGroup[];
  /** The distinct destination keys of the groups: the slots the attempt takes, one per destination */
  destinations: string[];
}

export type Phase =
  /** Not before `until` (ms since the epoch): a backoff, or a message the command line is working on */
  | { name: 'waiting'; until: number }
  /** May start once each of its destinations has a free slot */
  | { name: 'due'; routing: Routing }
  /** An attempt is in progress; `done` settles when it has written its outcome */
  | { name: 'running'; routing: Routing; done: Promise<void> }
  /** On hold: never started until a person releases it */
  | { name: 'held' };

export interface Scheduled<Id extends string = string> {
  id: Id;
  /** The recipients still to deliver, as the spool has them */
  recipients: readonly string[];
  phase: Phase;
  /** When it last changed, on this schedule's own clock (see `version`) */
  changed: number;
}

export class Schedule<Id extends string> {
  private readonly entries = new Map<Id, Scheduled<Id>>();
  /** Due messages by the destinations they go to (key: the destinations joined), oldest first in each group */
  private readonly due = new Map<string, { destinations: string[]; ids: Set<Id> }>();
  private readonly waiting = new Set<Id>();
  private readonly running = new Set<Id>();
  /** No waiting message is due before this; exact unless `earliestStale` (the earliest one left) */
  private earliest = Infinity;
  private earliestStale = false;
  private clock = 0;

  /** `routeOf` is asked once when a message falls due (and again after `reroute`) */
  constructor(private readonly routeOf: (recipients: readonly string[]) => Routing) {}

  /** Counts every change: a reader of the spool notes it before reading, to know what changed while it read */
  get version(): number {
    return this.clock;
  }

  get size(): number {
    return this.entries.size;
  }

  get inFlight(): number {
    return this.running.size;
  }

  get(id: Id): Scheduled<Id> | undefined {
    return this.entries.get(id);
  }

  ids(): Id[] {
    return [...this.entries.keys()];
  }

  /**
   * A message to try at `until` (ms since the epoch); a time that is not a
   * number, or not in the future, means now. One already due to the same
   * recipients stays as it is (in its place, with its routing).
   */
  wait(id: Id, recipients: readonly string[], until: number, now = Date.now()): void {
    if (until > now) return this.set(id, recipients, { name: 'waiting', until });
    const known = this.entries.get(id);
    if (known?.phase.name === 'due' && sameList(known.recipients, recipients)) return;
    this.set(id, recipients, this.dueNow(recipients));
  }

  hold(id: Id, recipients: readonly string[]): void {
    this.set(id, recipients, { name: 'held' });
  }

  /** A due message's attempt has begun */
  start(id: Id, done: Promise<void>): void {
    const entry = this.entries.get(id);
    if (entry?.phase.name !== 'due') throw new Error(`Message ${id} is not due`);
    this.set(id, entry.recipients, { name: 'running', routing: entry.phase.routing, done });
  }

  forget(id: Id): void {
    this.unindex(id);
    this.entries.delete(id);
    this.clock++;
  }

  /** Makes every waiting message due now (after a settings change, or "retry --all") */
  allDueNow(): void {
    for (const id of [...this.waiting]) {
      const entry = this.entries.get(id)!;
      this.set(id, entry.recipients, this.dueNow(entry.recipients));
    }
  }

  /** Where messages go changed (the settings did): routes every due message again; running ones keep theirs */
  reroute(): void {
    const due = [...this.due.values()].flatMap((group) => [...group.ids]).sort();
    for (const id of due) {
      const { recipients } = this.entries.get(id)!;
      this.set(id, recipients, this.dueNow(recipients));
    }
  }

  /**
   * The oldest due message of the first group where it `mayStart` (its
   * destinations have room, and their pacing lets it go), after moving what
   * has fallen due by `now` into the groups. Only the oldest of each group is
   * asked: a later one to the same destinations never overtakes it.
   * Undefined when nothing can start now.
   */
  startable(
    now: number,
    mayStart: (destinations: string[], routing: Routing) => boolean,
  ): { id: Id; routing: Routing } | undefined {
    if (this.earliest <= now) this.promote(now);
    for (const group of this.due.values()) {
      // Every id in a group is due: the first is the oldest
      const [oldest] = group.ids;
      const phase = oldest === undefined ? undefined : this.entries.get(oldest)?.phase;
      if (
        oldest !== undefined &&
        phase?.name === 'due' &&
        mayStart(group.destinations, phase.routing)
      )
        return { id: oldest, routing: phase.routing };
    }
    return undefined;
  }

  /** How many attempts are running to each destination */
  runningPerDestination(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const id of this.running) {
      const phase = this.entries.get(id)!.phase;
      if (phase.name === 'running')
        for (const key of phase.routing.destinations) counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return counts;
  }

  /** Every attempt in progress */
  attempts(): Promise<void>[] {
    return [...this.running].map(
      (id) => (this.entries.get(id)!.phase as Extract<Phase, { name: 'running' }>).done,
    );
  }

  /** When the next waiting message falls due, always after `now` (what is due by then becomes due); Infinity if none waits */
  nextAt(now: number): number {
    if (this.earliestStale || this.earliest <= now) this.promote(now);
    return this.earliest;
  }

  private dueNow(recipients: readonly string[]): Phase {
    return { name: 'due', routing: this.routeOf(recipients) };
  }

  private set(id: Id, recipients: readonly string[], phase: Phase): void {
    this.unindex(id);
    this.entries.set(id, { id, recipients, phase, changed: ++this.clock });
    switch (phase.name) {
      case 'waiting':
        this.waiting.add(id);
        this.earliest = Math.min(this.earliest, phase.until);
        break;
      case 'due': {
        const key = phase.routing.destinations.join('\n');
        let group = this.due.get(key);
        if (!group)
          this.due.set(key, (group = { destinations: phase.routing.destinations, ids: new Set() }));
        group.ids.add(id);
        break;
      }
      case 'running':
        this.running.add(id);
        break;
      case 'held':
        break;
    }
  }

  /** Takes a message out of the index of its current phase */
  private unindex(id: Id): void {
    const phase = this.entries.get(id)?.phase;
    switch (phase?.name) {
      case 'waiting':
        this.waiting.delete(id);
        if (phase.until <= this.earliest) this.earliestStale = true;
        break;
      case 'due': {
        const key = phase.routing.destinations.join('\n');
        const group = this.due.get(key)!;
        group.ids.delete(id);
        if (group.ids.size === 0) this.due.delete(key);
        break;
      }
      case 'running':
        this.running.delete(id);
        break;
    }
  }

  /** Makes due what has fallen due; one pass over the waiting messages */
  private promote(now: number): void {
    let earliest = Infinity;
    for (const id of [...this.waiting]) {
      const entry = this.entries.get(id)!;
      const { until } = entry.phase as Extract<Phase, { name: 'waiting' }>;
      if (until <= now) this.set(id, entry.recipients, this.dueNow(entry.recipients));
      else earliest = Math.min(earliest, until);
    }
    this.earliest = earliest;
    this.earliestStale = false;
  }
}

const sameList = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((item, i) => item === b[i]);
