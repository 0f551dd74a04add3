/**
 * The queue as the journal tells it: every queued message's records, in
 * memory and kept in step with what is appended, and the journal segments
 * those records keep alive (a segment is deleted once nothing in it is
 * needed). Spool decides what to write; this writes it and keeps count.
 */
import { promises as fs } from 'node:fs';
import { errnoCode, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { unlinkIfThere } from '../util/fsx.js';
import type { QueueId } from './ids.js';
import { Journal, RecordType, segmentFile, type JournalRecord } from './journal.js';
import {
  applyRecord,
  fileStored,
  inlineStored,
  type FileArrivalRecord,
  type Stored,
} from './replay.js';
import type { Arrival, DeliveryState } from './records.js';

export interface SpoolPaths {
  /** The spool's directory, which file arrival records are relative to */
  root: string;
  journalDir: string;
}

export class QueueJournal {
  private readonly stored = new Map<QueueId, Stored>();
  private journal!: Journal;
  /** What replaying found damaged: records that did not parse, segments with a torn tail */
  readonly replayed = { corrupt: 0, torn: 0 };

  private constructor(
    private readonly paths: SpoolPaths,
    private readonly log: Logger,
  ) {}

  /** Reads the journal into memory; `writable`: ready to append to it */
  static async open(paths: SpoolPaths, log: Logger, writable: boolean): Promise<QueueJournal> {
    const queue = new QueueJournal(paths, log);
    await queue.load(writable);
    return queue;
  }

  /** Device flushes issued so far */
  get flushes(): number {
    return this.journal.flushes;
  }

  /** Calls `listener` once, when the next flush has been issued */
  onNextFlush(listener: () => void): void {
    this.journal.onNextFlush(listener);
  }

  /** Flushes what is pending and closes the journal */
  close(): Promise<void> {
    return this.journal.close();
  }

  get(id: QueueId): Stored | undefined {
    return this.stored.get(id);
  }

  has(id: QueueId): boolean {
    return this.stored.has(id);
  }

  /** The ids of every message in the queue, oldest first */
  ids(): QueueId[] {
    return [...this.stored.keys()].sort();
  }

  get size(): number {
    return this.stored.size;
  }

  /** A message whose bytes go into the journal with its arrival record */
  async addInline(arrival: Arrival, bytes: Buffer): Promise<Stored> {
    const json = Buffer.from(JSON.stringify(arrival));
    const length = Buffer.alloc(4);
    length.writeUInt32LE(json.length);
    const place = await this.journal.append(RecordType.Arrival, [length, json, bytes], true);
    const stored = inlineStored(
      arrival,
      segmentFile(this.paths.journalDir, place.segment),
      place,
      4 + json.length,
      bytes.length,
    );
    this.add(stored);
    return stored;
  }

  /** A message whose bytes are in a file of their own, with its state if it already has one */
  async addFile(record: FileArrivalRecord, state: DeliveryState | undefined): Promise<Stored> {
    const place = await this.journal.append(
      RecordType.ArrivalFile,
      [Buffer.from(JSON.stringify(record))],
      state === undefined,
    );
    const stored = fileStored(record, this.paths.root, place.segment);
    this.add(stored);
    if (state) await this.saveState(stored, state, true);
    return stored;
  }

  /** Replaces a message's delivery state; `durable`: flushed before this returns */
  async saveState(stored: Stored, state: DeliveryState, durable: boolean): Promise<void> {
    const record = Buffer.from(JSON.stringify({ id: stored.entry.arrival.id, state }));
    const place = await this.journal.append(RecordType.State, [record], durable);
    const before = stored.stateSegment;
    stored.entry = { ...stored.entry, state };
    stored.stateSegment = place.segment;
    this.journal.hold(place.segment);
    if (before !== undefined) this.journal.release(before);
  }

  /** Removes a message, if it is queued; `durable` as for saveState */
  async remove(id: QueueId, durable: boolean): Promise<void> {
    const stored = this.stored.get(id);
    if (!stored) return;
    const place = await this.journal.append(RecordType.Remove, [Buffer.from(id)], durable);
    this.stored.delete(id);
    this.forget(stored, place.segment);
  }

  /** The records of a removed message are no longer needed; its own file goes once the removal is durable */
  private forget(stored: Stored, removedIn: number): void {
    this.journal.cancels(removedIn, stored.arrivalSegment);
    this.journal.release(stored.arrivalSegment);
    if (stored.stateSegment !== undefined) this.journal.release(stored.stateSegment);
    const file = stored.ownFile;
    if (file) {
      this.journal
        .flush()
        .then(() => unlinkIfThere(file))
        .catch((err: unknown) =>
          this.log.warn(
            { file, err: errorMessage(err) },
            'Could not delete a delivered message file',
          ),
        );
    }
  }

  private add(stored: Stored): void {
    this.stored.set(stored.entry.arrival.id, stored);
    this.journal.hold(stored.arrivalSegment);
  }

  private async load(writable: boolean): Promise<void> {
    const removals: [number, number][] = [];
    const { journal, tornSegments } = await Journal.open(
      this.paths.journalDir,
      this.log,
      (record) => {
        const removed = this.replay(record);
        if (removed) removals.push([record.segment, removed.arrivalSegment]);
      },
    );
    this.journal = journal;
    this.replayed.torn = tornSegments;
    for (const [id, stored] of this.stored) {
      if (stored.ownFile && !(await exists(stored.ownFile))) {
        // Its removal was not yet durable when the power went, its file's deletion was
        this.log.warn(
          { queueId: id, file: stored.ownFile },
          'A message file is gone; the message was delivered before a restart',
        );
        this.stored.delete(id);
        continue;
      }
      journal.hold(stored.arrivalSegment);
      if (stored.stateSegment !== undefined) journal.hold(stored.stateSegment);
    }
    for (const [at, arrivalSegment] of removals) journal.cancels(at, arrivalSegment);
    if (writable) await journal.startWriting();
  }

  /** Applies one journal record to the queue in memory; a removal returns what it removed */
  private replay(record: JournalRecord): Stored | undefined {
    const stored = applyRecord(record, this.stored, this.paths);
    if (stored === 'damaged') {
      // A record with a valid checksum that does not parse: written by a newer version, or a bug
      this.replayed.corrupt++;
      this.log.error(
        { segment: record.segment, offset: record.payloadOffset, type: record.type },
        'A spool record could not be read; skipped',
      );
    }
    return stored === 'damaged' ? undefined : stored;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}
