/**
 * What a person can do to the queue, for the CLI and the web page alike.
 * Every change takes the message's lock, so it never races a delivery in
 * progress, is flushed before it is reported done, then tells the queue
 * runner to look again.
 */
import { RelayError, UsageError, errorMessage } from '../errors.js';
import type { QueueId } from '../spool/ids.js';
import { BusyError } from '../util/locks.js';
import { plural } from '../util/plural.js';
import {
  isFinished,
  toListItem,
  type DeliveryState,
  type QueueEntry,
  type QueueListItem,
} from '../spool/records.js';
import type { Spool } from '../spool/spool.js';
import type { QueueOps } from './control.js';

const LOCK_PATIENCE_MS = 10_000;
/** How many failed messages an error names (a person reads it; the rest are counted) */
const MAX_NAMED = 10;

export type QueueAction = 'retry' | 'hold' | 'release' | 'delete';

export class QueueCommands implements QueueOps {
  constructor(
    private readonly spool: Spool,
    /** Tells the queue runner that the spool changed */
    private readonly notify: () => void,
    /** Why the runner holds a due message back, if it does */
    private readonly heldBack: (id: QueueId) => string | undefined = () => undefined,
  ) {}

  async list(): Promise<QueueListItem[]> {
    return (await this.spool.list()).map((entry) => this.listItem(entry));
  }

  async show(id: QueueId): Promise<{ item: QueueListItem; headers: string }> {
    const entry = await this.require(id);
    return { item: this.listItem(entry), headers: await this.headers(id) };
  }

  private listItem(entry: QueueEntry): QueueListItem {
    const heldBack = this.heldBack(entry.arrival.id);
    return { ...toListItem(entry), ...(heldBack && { heldBack }) };
  }

  async apply(action: QueueAction, id: QueueId): Promise<void> {
    await this.withPatience(id, async () => {
      const entry = await this.require(id);
      if (action === 'delete') await this.spool.remove(id, { durable: true });
      else await this.spool.saveState(id, change(action, entry.state), { durable: true });
    });
    this.notify();
  }

  /**
   * Retries every message that is not on hold, in one pass over the spool,
   * and tells the server once; returns how many. Messages that could not be
   * changed are named in the error thrown after all the others are done.
   */
  async retryAll(): Promise<number> {
    let count = 0;
    const failed: string[] = [];
    for (const entry of await this.spool.list()) {
      if (entry.state.held) continue;
      try {
        if (await this.withPatience(entry.arrival.id, () => this.retryNow(entry))) count++;
      } catch (err) {
        failed.push(`${entry.arrival.id} (${errorMessage(err)})`);
      }
    }
    if (count) this.notify();
    if (failed.length) {
      const more = failed.length > MAX_NAMED ? `, and ${failed.length - MAX_NAMED} more` : '';
      throw new RelayError(
        `Retried ${plural(count, 'message')}; ${failed.length} could not be changed: ${failed.slice(0, MAX_NAMED).join(', ')}${more}`,
        { kind: 'temporary' },
      );
    }
    return count;
  }

  /** Under the lock: the state as it is now (a delivery may have just ended), made due; false when nothing is left to retry */
  private async retryNow(listed: QueueEntry): Promise<boolean> {
    const entry = await this.spool.get(listed.arrival.id);
    if (!entry || entry.state.held || isFinished(entry.state)) return false;
    await this.spool.saveState(entry.arrival.id, change('retry', entry.state));
    return true;
  }

  /** A delivery in progress holds the lock for a moment: wait for it rather than fail at once */
  private async withPatience<T>(id: QueueId, work: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + LOCK_PATIENCE_MS;
    for (;;) {
      try {
        return await this.spool.withLock(id, work);
      } catch (err) {
        if (!(err instanceof BusyError) || Date.now() > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  private async require(id: QueueId): Promise<QueueEntry> {
    const entry = await this.spool.get(id);
    if (!entry) throw new UsageError(`No message ${id} in the queue`);
    return entry;
  }

  /** The message's header section, for a person to read (bounded) */
  private async headers(id: QueueId): Promise<string> {
    const body = await this.spool.openBody(id);
    let text = '';
    for await (const chunk of body) {
      text += (chunk as Buffer).toString('utf8');
      if (text.includes('\r\n\r\n') || text.length > 65_536) break;
    }
    body.destroy();
    const end = text.indexOf('\r\n\r\n');
    return end >= 0 ? text.slice(0, end + 2) : text.slice(0, 65_536);
  }
}

function change(action: Exclude<QueueAction, 'delete'>, state: DeliveryState): DeliveryState {
  const now = new Date().toISOString();
  switch (action) {
    case 'retry':
      return { ...state, nextAttempt: now };
    case 'hold':
      return { ...state, held: true };
    case 'release':
      return { ...state, held: false, nextAttempt: now };
  }
}
