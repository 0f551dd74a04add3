/**
 * When a message that heard `250` goes to delivery: as the card starts its
 * next flush, or `maxWaitMs` after the `250` when no flush comes.
 *
 * Why not at once: while the card flushes, the relay's CPU only waits. A
 * delivery started right after the `250` runs instead while the next device
 * is sending its commands, and delays that device's own `250`; with one
 * device sending message after message to a 4 ms card, that was about a
 * millisecond per message (docs/performance.md). Started with the next flush,
 * the delivery fills the wait. A lone message waits `maxWaitMs` at most.
 */
export class DeliveryHandoff<Entry> {
  private batch: Entry[] | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly onNextFlush: (listener: () => void) => void,
    private readonly handOver: (entry: Entry) => void,
    private readonly maxWaitMs: number,
  ) {}

  add(entry: Entry): void {
    if (this.batch) {
      this.batch.push(entry);
      return;
    }
    const batch = (this.batch = [entry]);
    const release = () => this.release(batch);
    this.timer = setTimeout(release, this.maxWaitMs);
    // After the flush is issued, not inside the journal's call that issues it
    this.onNextFlush(() => setImmediate(release));
  }

  /** Drops what waits: those messages are durable, and the next start's sweep finds them */
  stop(): void {
    clearTimeout(this.timer);
    this.batch = undefined;
  }

  private release(batch: Entry[]): void {
    if (this.batch !== batch) return;
    clearTimeout(this.timer);
    this.batch = undefined;
    batch.forEach((entry) => this.handOver(entry));
  }
}
