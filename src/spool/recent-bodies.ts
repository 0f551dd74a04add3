/**
 * The bytes of the messages taken in last, kept in memory up to a small
 * budget: the delivery that starts right after the `250` then sends them
 * without opening, reading and closing the segment again (CPU on the path of
 * a device that sends one message after another). Oldest go first; what is
 * not here is read from the journal as before.
 */
import type { QueueId } from './ids.js';

export class RecentBodies {
  private readonly bodies = new Map<QueueId, Buffer>();
  private bytes = 0;

  constructor(private readonly budget: number) {}

  keep(id: QueueId, body: Buffer): void {
    if (body.length > this.budget) return;
    this.forget(id);
    this.bodies.set(id, body);
    this.bytes += body.length;
    // A Map iterates in insertion order: the first is the oldest
    for (const [oldest] of this.bodies) {
      if (this.bytes <= this.budget) break;
      this.forget(oldest);
    }
  }

  get(id: QueueId): Buffer | undefined {
    return this.bodies.get(id);
  }

  forget(id: QueueId): void {
    const body = this.bodies.get(id);
    if (!body) return;
    this.bodies.delete(id);
    this.bytes -= body.length;
  }
}
