/**
 * The durable queue. Layout under <dataDir>/spool:
 *
 *   journal/    <seq>.seg: the append-only journal (see journal.ts): arrivals
 *               with their bytes (messages up to INLINE_MAX), delivery states, removals
 *   files/      <id>.eml: the bytes of a larger message, in a file of its own
 *   tmp/        a larger message being received; anything here at startup is removed
 *   corrupt/    damaged files moved aside for a person to look at
 *   writer      the lock of the one process that writes the journal (the server)
 *   control.sock  how the CLI asks that process to change the queue (queue/control.ts)
 *
 * What is flushed before it counts: a new message (the device hears 250 only
 * once a flush covering it has completed) and a person's change (hold,
 * release, retry, delete). A delivery's outcome is appended without a flush
 * of its own: the next flush carries it. Lost in a power cut before then, it
 * costs at most one duplicate delivery, never a lost message.
 *
 * The whole queue's records (not the message bytes) are kept in memory, in
 * step with the journal (queue-journal.ts).
 */
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable, type Transform } from 'node:stream';
import { RelayError, errorMessage, storageFailure } from '../errors.js';
import type { Logger } from '../log.js';
import { ensureDir, fsyncDir } from '../util/fsx.js';
import { pipeThrough } from '../util/streams.js';
import { BusyError, LockDir, type Release } from '../util/locks.js';
import { BodySink } from './body-sink.js';
import type { QueueId } from './ids.js';
import { FreeSpace } from './free-space.js';
import { RecentBodies } from './recent-bodies.js';
import { DeliveryHandoff } from './handoff.js';
import { migrateLegacySpool } from './legacy.js';
import { QueueJournal } from './queue-journal.js';
import { readBody, type FileArrivalRecord, type Stored } from './replay.js';
import type { Arrival, ClientInfo, DeliveryState, QueueEntry } from './records.js';

/** Messages up to this size go into the journal; larger ones into a file of their own */
export const INLINE_MAX = 128 * 1024;
/** Memory for the bodies of the messages taken in last (see recent-bodies.ts) */
const RECENT_BODIES_BYTES = 1024 * 1024;
/** The longest a new message waits for the card's next flush before going to delivery */
const HANDOFF_MAX_WAIT_MS = 20;
const SPOOL_DIRS = ['journal', 'files', 'tmp', 'corrupt'] as const;
type SpoolDir = (typeof SPOOL_DIRS)[number];

export interface NewMessage {
  id: QueueId;
  from: string;
  to: string[];
  client: ClientInfo;
}

export interface SpoolEvents {
  /** A new message is durable: its entry as written, every recipient still to deliver */
  accepted: [QueueEntry];
}

export interface OpenOptions {
  /** false: only read the queue as it is (the CLI beside a running server) */
  writable?: boolean;
}

/** A write error while receiving: 452 for a full disk or quota, 451 otherwise; never 250 */
export const storageError = (err: unknown): RelayError => storageFailure(err, 'queueing');

/** The socket the writing process (the server) listens on for the CLI's requests */
export const controlSocketPath = (dataDir: string): string =>
  path.resolve(dataDir, 'spool', 'control.sock');

const notQueued = (id: QueueId) =>
  new RelayError(`Message ${id} is not in the queue`, { kind: 'not-found' });

export class Spool extends EventEmitter<SpoolEvents> {
  readonly root: string;
  /** Messages being worked on now (a delivery, a person's change): one at a time */
  private readonly busy = new Set<QueueId>();
  private queue!: QueueJournal;
  private releaseWriter: Release | undefined;
  private readonly free: FreeSpace;
  private readonly recent = new RecentBodies(RECENT_BODIES_BYTES);
  private readonly handoff = new DeliveryHandoff<QueueEntry>(
    (listener) => this.queue.onNextFlush(listener),
    (entry) => this.announce(entry),
    HANDOFF_MAX_WAIT_MS,
  );

  private constructor(
    root: string,
    private readonly log: Logger,
  ) {
    super();
    this.root = root;
    this.free = new FreeSpace(root);
  }

  /**
   * Reads the journal into memory. Writable (the default) also takes the
   * writer lock: only one process appends to the journal. BusyError when
   * another one (a running server) holds it.
   */
  static async open(dataDir: string, log: Logger, options: OpenOptions = {}): Promise<Spool> {
    const spool = new Spool(path.resolve(dataDir, 'spool'), log);
    for (const name of SPOOL_DIRS) await ensureDir(spool.dir(name));
    const writable = options.writable ?? true;
    if (writable) spool.releaseWriter = await new LockDir(spool.root, log).acquire('writer');
    try {
      spool.queue = await QueueJournal.open(
        { root: spool.root, journalDir: spool.dir('journal') },
        log,
        writable,
      );
    } catch (err) {
      await spool.releaseWriter?.();
      throw err;
    }
    return spool;
  }

  dir(name: SpoolDir): string {
    return path.join(this.root, name);
  }

  /** Flushes what is pending and lets go of the journal */
  async close(): Promise<void> {
    this.handoff.stop();
    await this.queue.close();
    await this.releaseWriter?.();
    this.releaseWriter = undefined;
  }

  /** Device flushes issued so far (`make bench`, tests) */
  get flushes(): number {
    return this.queue.flushes;
  }

  /**
   * Streams a message (through `transforms`) into the spool and returns once it
   * is durable. If the stream fails (size limit, client gone) or the disk does,
   * nothing is left behind.
   */
  async accept(
    message: NewMessage,
    source: Readable,
    transforms: Transform[] = [],
    now = new Date(),
  ): Promise<{ id: QueueId; size: number }> {
    const { id } = message;
    const arrival: Arrival = {
      v: 1,
      id,
      from: message.from,
      to: message.to,
      receivedAt: now.toISOString(),
      client: message.client,
    };
    const temp = path.join(this.dir('tmp'), `${id}.eml`);
    const sink = new BodySink(INLINE_MAX, temp);
    let stored: Stored;
    try {
      await pipeThrough(source, transforms, sink);
      const body = sink.received;
      stored =
        body.kind === 'inline'
          ? await this.appendInline(arrival, body.bytes)
          : await this.appendFile(arrival, temp, body.size);
    } catch (err) {
      await sink.discard().catch(() => undefined);
      throw storageError(err);
    }
    this.free.took(stored.entry.size);
    // After the device has heard 250, with the card's next flush (handoff.ts)
    this.handoff.add(stored.entry);
    return { id, size: stored.entry.size };
  }

  private announce(entry: QueueEntry): void {
    try {
      this.emit('accepted', entry);
    } catch (err) {
      // The message is safe on disk and the device heard 250; the queue sweep finds it
      this.log.error(
        { queueId: entry.arrival.id, err: errorMessage(err) },
        'Could not schedule a new message at once',
      );
    }
  }

  private async appendInline(arrival: Arrival, bytes: Buffer): Promise<Stored> {
    const stored = await this.queue.addInline(arrival, bytes);
    this.recent.keep(arrival.id, bytes);
    return stored;
  }

  /** A larger message: its file is durable under files/ before the arrival record that names it */
  private async appendFile(arrival: Arrival, temp: string, size: number): Promise<Stored> {
    const name = path.join('files', `${arrival.id}.eml`);
    await fs.rename(temp, path.join(this.root, name));
    await fsyncDir(this.dir('files'));
    return this.adopt({ arrival, file: name, offset: 0, size }, undefined);
  }

  /**
   * Records a message whose bytes are in a file: a larger one, or one taken
   * in from the earlier layout (its file stays where it is, named by a
   * durable arrival record, with its state if it had one).
   */
  adopt(record: FileArrivalRecord, state: DeliveryState | undefined): Promise<Stored> {
    return this.queue.addFile(record, state);
  }

  /** The ids of every message in the queue, oldest first */
  async ids(): Promise<QueueId[]> {
    return this.queue.ids();
  }

  async get(id: QueueId): Promise<QueueEntry | undefined> {
    return this.queue.get(id)?.entry;
  }

  async list(): Promise<QueueEntry[]> {
    return (await this.ids()).map((id) => this.queue.get(id)!.entry);
  }

  /** The message bytes as received, without the arrival record */
  async openBody(id: QueueId): Promise<Readable> {
    return this.body(id);
  }

  /** The message bytes of an entry already read */
  bodyOf(entry: QueueEntry): Readable {
    return this.body(entry.arrival.id);
  }

  private body(id: QueueId): Readable {
    const stored = this.queue.get(id);
    if (!stored) throw notQueued(id);
    const recent = this.recent.get(id);
    return recent ? Readable.from([recent], { objectMode: false }) : readBody(stored);
  }

  /**
   * Replaces a message's delivery state. `durable`: flushed before this
   * returns (a person's change); otherwise the next flush carries it.
   */
  async saveState(
    id: QueueId,
    state: DeliveryState,
    options: { durable?: boolean } = {},
  ): Promise<void> {
    const stored = this.queue.get(id);
    if (!stored) throw notQueued(id);
    await this.queue.saveState(stored, state, options.durable ?? false);
  }

  /** Removes a finished or deleted message; `durable` as for saveState */
  async remove(id: QueueId, options: { durable?: boolean } = {}): Promise<void> {
    await this.queue.remove(id, options.durable ?? false);
    this.recent.forget(id);
  }

  /** Marks a message as worked on; BusyError if it already is. In memory: only the writer changes the queue */
  async lock(id: QueueId): Promise<Release> {
    if (this.busy.has(id)) throw new BusyError(`Message ${id}`);
    this.busy.add(id);
    return async () => void this.busy.delete(id);
  }

  /** Runs `work` while holding the message's lock; the lock is released whatever happens */
  async withLock<T>(id: QueueId, work: () => Promise<T>): Promise<T> {
    const release = await this.lock(id);
    try {
      return await work();
    } finally {
      await release();
    }
  }

  /** Free bytes on the spool's file system (asked at every MAIL FROM; see free-space.ts) */
  freeBytes(): Promise<number> {
    return this.free.bytes();
  }

  /**
   * Startup recovery: half-received files go, messages from the earlier
   * layout (messages/, state/) move into the journal, and what replaying the
   * journal found damaged is reported.
   */
  async recover(): Promise<{
    messages: number;
    removedTemp: number;
    corrupt: number;
    tornTails: number;
  }> {
    const temps = await fs.readdir(this.dir('tmp'));
    await Promise.all(
      temps.map((name) =>
        fs.rm(path.join(this.dir('tmp'), name), { force: true, recursive: true }),
      ),
    );
    const legacy = await migrateLegacySpool(this, this.log);
    const { replayed } = this.queue;
    const corrupt = replayed.corrupt + legacy.corrupt;
    const result = {
      messages: this.queue.size,
      removedTemp: temps.length,
      corrupt,
      tornTails: replayed.torn,
    };
    if (temps.length || corrupt || replayed.torn)
      this.log.warn({ ...result, migrated: legacy.migrated }, 'Spool recovered');
    else if (legacy.migrated)
      this.log.info({ migrated: legacy.migrated }, 'Queued messages moved to the new spool layout');
    return result;
  }

  /** Whether a message is queued (for the migration) */
  has(id: QueueId): boolean {
    return this.queue.has(id);
  }

  /** Moves a damaged file aside for a person to look at */
  async moveAside(file: string, reason: string, queueId?: string): Promise<void> {
    const target = path.join(this.dir('corrupt'), `${path.basename(file)}.${Date.now()}`);
    await fs.rename(file, target);
    this.log.error({ queueId, file: target, reason }, 'Moved a damaged spool file aside');
  }
}
