/**
 * Which queued messages may start, and when the next one falls due. Messages
 * due now are grouped by the destinations they go to, so finding the next one
 * to start costs a step per destination, not per queued message: with a long
 * backlog for one busy smarthost, the queue manager doesn't walk the whole
 * backlog after every delivery (that walk cost 0.78 ms per delivery with
 * 10,000 queued, on the 2-CPU x86 test machine; a Pi is several times slower).
 */

interface Group<Id> {
  destinations: string[];
  /** Oldest first */
  ids: Set<Id>;
}

export interface Startable<Id> {
  id: Id;
  destinations: string[];
}

export class Schedule<Id extends string> {
  /** Not due yet: when each falls due (ms since the epoch) */
  private readonly later = new Map<Id, number>();
  /** Due now, by destinations, in the order the groups formed */
  private readonly ready = new Map<string, Group<Id>>();
  private readonly groupOf = new Map<Id, string>();
  /** No message in `later` is due before this; exact unless `earliestStale` (the earliest one left) */
  private earliest = Infinity;
  private earliestStale = false;

  /** `destinationsOf` is asked once when a message becomes due (and again after `regroup`) */
  constructor(private readonly destinationsOf: (id: Id) => string[]) {}

  get size(): number {
    return this.later.size + this.groupOf.size;
  }

  /** (Re)schedules a message for `at`; a time that isn't a number means now */
  set(id: Id, at: number, now = Date.now()): void {
    this.delete(id);
    if (!(at > now)) return this.makeReady(id);
    this.later.set(id, at);
    this.earliest = Math.min(this.earliest, at);
  }

  delete(id: Id): void {
    const at = this.later.get(id);
    if (at !== undefined) {
      this.later.delete(id);
      if (at <= this.earliest) this.earliestStale = true;
    }
    const key = this.groupOf.get(id);
    if (key === undefined) return;
    this.groupOf.delete(id);
    const group = this.ready.get(key)!;
    group.ids.delete(id);
    if (group.ids.size === 0) this.ready.delete(key);
  }

  /** Forgets every message, or every one `keep` does not want */
  clear(keep: (id: Id) => boolean = () => false): void {
    for (const id of [...this.later.keys(), ...this.groupOf.keys()]) if (!keep(id)) this.delete(id);
  }

  /** Makes every waiting message due now */
  allDueNow(): void {
    for (const id of this.later.keys()) this.makeReady(id);
    this.later.clear();
    this.earliest = Infinity;
    this.earliestStale = false;
  }

  /** Where messages go changed (the settings did): asks for every due message's destinations again */
  regroup(): void {
    const due = [...this.groupOf.keys()];
    this.ready.clear();
    this.groupOf.clear();
    for (const id of due) this.makeReady(id);
  }

  /**
   * Takes the oldest due message of the first group that `hasRoom`, skipping
   * those `isRunning` (a rescan can schedule a message whose attempt is still
   * running). Undefined when nothing can start now.
   */
  take(now: number, isRunning: (id: Id) => boolean, hasRoom: (destinations: string[]) => boolean): Startable<Id> | undefined {
    if (this.earliest <= now) this.promote(now);
    for (const group of this.ready.values()) {
      if (!hasRoom(group.destinations)) continue;
      for (const id of group.ids) {
        if (isRunning(id)) continue;
        this.delete(id);
        return { id, destinations: group.destinations };
      }
    }
    return undefined;
  }

  /** When the next waiting message falls due, always after `now` (what is due by then moves to ready); Infinity if none waits */
  nextAt(now: number): number {
    if (this.earliestStale || this.earliest <= now) this.promote(now);
    return this.earliest;
  }

  private makeReady(id: Id): void {
    const destinations = this.destinationsOf(id);
    const key = destinations.join('\n');
    let group = this.ready.get(key);
    if (!group) this.ready.set(key, (group = { destinations, ids: new Set() }));
    group.ids.add(id);
    this.groupOf.set(id, key);
  }

  /** Moves what has fallen due into the ready groups; one pass over the waiting messages */
  private promote(now: number): void {
    let earliest = Infinity;
    for (const [id, at] of this.later) {
      if (at <= now) {
        this.later.delete(id);
        this.makeReady(id);
      } else earliest = Math.min(earliest, at);
    }
    this.earliest = earliest;
    this.earliestStale = false;
  }
}
