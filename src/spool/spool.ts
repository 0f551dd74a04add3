/**
 * The durable queue. Layout under <dataDir>/spool:
 *
 *   tmp/        messages being received; anything here at startup is removed
 *   messages/   <id>.eml: the arrival record as the first line, then the message bytes (never modified)
 *   state/      <id>.json: delivery state, written after every attempt (absent = nothing tried yet)
 *   locks/      <id>: who is working on a message right now (server or CLI)
 *   corrupt/    damaged files moved aside for a person to look at
 *
 * A message is acknowledged only after its file is fsynced, renamed into
 * messages/ and the folder fsynced: a crash leaves no trace or a whole message.
 */
import { EventEmitter } from 'node:events';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RelayError, errnoCode, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { ensureDir, fsyncDir, unlinkIfThere, writeFileAtomic } from '../util/fsx.js';
import { isQueueId, type QueueId } from './ids.js';
import { LockDir, type Release } from '../util/locks.js';
import { initialState, parseArrival, parseState, type Arrival, type ClientInfo, type DeliveryState, type QueueEntry } from './records.js';

const MAX_ARRIVAL_LINE = 4 * 1024 * 1024;
const FREE_SPACE_MAX_AGE_MS = 1_000;
const TRUST_ESTIMATE_ABOVE_BYTES = 256 * 1024 * 1024;
const SPOOL_DIRS = ['tmp', 'messages', 'state', 'locks', 'corrupt'] as const;
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
  changed: [QueueId];
}

/** A write error while receiving: 452 for a full disk, 451 otherwise; never 250 */
export function storageError(err: unknown): RelayError {
  if (err instanceof RelayError) return err;
  const code = errnoCode(err);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new RelayError('Insufficient system storage, try again later', { kind: 'temporary', smtpCode: 452, enhanced: '4.3.1', cause: err });
  }
  return new RelayError(`Local error while queueing: ${code ?? errorMessage(err)}`, { kind: 'temporary', smtpCode: 451, enhanced: '4.3.0', cause: err });
}

export class Spool extends EventEmitter<SpoolEvents> {
  readonly root: string;
  private readonly locks: LockDir;
  private free: { at: number; bytes: Promise<number>; takenSince: number } | undefined;

  private constructor(root: string, private readonly log: Logger) {
    super();
    this.root = root;
    this.locks = new LockDir(this.dir('locks'), log);
  }

  static async open(dataDir: string, log: Logger): Promise<Spool> {
    const spool = new Spool(path.resolve(dataDir, 'spool'), log);
    for (const name of SPOOL_DIRS) await ensureDir(spool.dir(name));
    return spool;
  }

  dir(name: SpoolDir): string {
    return path.join(this.root, name);
  }

  private messageFile(id: QueueId): string {
    return path.join(this.dir('messages'), `${id}.eml`);
  }

  private stateFile(id: QueueId): string {
    return path.join(this.dir('state'), `${id}.json`);
  }

  /**
   * Streams a message (through `transforms`) into the spool and returns once it
   * is durable. If the stream fails (size limit, client gone) or the disk does,
   * nothing is left behind.
   */
  async accept(message: NewMessage, source: Readable, transforms: Transform[] = [], now = new Date()): Promise<{ id: QueueId; size: number }> {
    const { id } = message;
    const arrival: Arrival = { v: 1, id, from: message.from, to: message.to, receivedAt: now.toISOString(), client: message.client };
    let size = 0;
    const temp = path.join(this.dir('tmp'), `${id}.eml`);
    const header = Buffer.from(`${JSON.stringify(arrival)}\n`);
    try {
      // flush: the file is fsynced before the stream reports 'close', which pipeline waits for
      const file = createWriteStream(temp, { flags: 'wx', mode: 0o600, flush: true });
      file.write(header);
      await pipeline([source, ...transforms, file]);
      size = file.bytesWritten - header.length;
      await fs.rename(temp, this.messageFile(id));
      await fsyncDir(this.dir('messages'));
    } catch (err) {
      await fs.rm(temp, { force: true }).catch(() => undefined);
      throw storageError(err);
    }
    if (this.free) this.free.takenSince += header.length + size;
    try {
      this.emit('accepted', { arrival, state: initialState(arrival), size, bodyOffset: header.length });
    } catch (err) {
      // The message is safe on disk and the device must hear 250, or it sends it again; the queue sweep finds it
      this.log.error({ queueId: id, err: errorMessage(err) }, 'Could not schedule a new message at once');
    }
    return { id, size };
  }

  /** The ids of every message in the queue, oldest first */
  async ids(): Promise<QueueId[]> {
    const names = await fs.readdir(this.dir('messages'));
    return names
      .filter((name) => name.endsWith('.eml'))
      .map((name) => name.slice(0, -4))
      .filter(isQueueId)
      .sort();
  }

  async get(id: QueueId): Promise<QueueEntry | undefined> {
    const head = await this.readArrival(id);
    if (!head) return undefined;
    const state = await this.readState(head.arrival);
    return { arrival: head.arrival, state: state ?? initialState(head.arrival), size: head.size, bodyOffset: head.offset };
  }

  /**
   * An entry whose arrival record we already hold, as it is on disk now: the
   * arrival never changes, but the CLI may have changed the state or deleted
   * the message since. Two small reads instead of reading the message's head again.
   */
  async refresh(known: QueueEntry): Promise<QueueEntry | undefined> {
    const { arrival } = known;
    const [state, present] = await Promise.all([
      this.readState(arrival),
      fs.access(this.messageFile(arrival.id)).then(
        () => true,
        (err) => (errnoCode(err) === 'ENOENT' ? false : Promise.reject(err)),
      ),
    ]);
    return present ? { ...known, state: state ?? initialState(arrival) } : undefined;
  }

  async list(): Promise<QueueEntry[]> {
    const entries = await Promise.all((await this.ids()).map((id) => this.get(id)));
    return entries.filter((entry): entry is QueueEntry => entry !== undefined);
  }

  /** The message bytes as received, without the arrival record */
  async openBody(id: QueueId): Promise<Readable> {
    const head = await this.readArrival(id);
    if (!head) throw new RelayError(`Message ${id} is not in the queue`, { kind: 'permanent' });
    return createReadStream(this.messageFile(id), { start: head.offset });
  }

  /** The message bytes of an entry already read: no second read of its arrival record */
  bodyOf(entry: QueueEntry): Readable {
    return createReadStream(this.messageFile(entry.arrival.id), { start: entry.bodyOffset });
  }

  async saveState(id: QueueId, state: DeliveryState): Promise<void> {
    await writeFileAtomic(this.stateFile(id), JSON.stringify(state), 0o600);
    this.emit('changed', id);
  }

  /** Removes a finished or deleted message: the message file first, so a crash can't resurrect it */
  async remove(id: QueueId): Promise<void> {
    await unlinkIfThere(this.messageFile(id));
    await fsyncDir(this.dir('messages'));
    await unlinkIfThere(this.stateFile(id));
    this.emit('changed', id);
  }

  lock(id: QueueId): Promise<Release> {
    return this.locks.acquire(id);
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

  /**
   * Free bytes on the spool's file system. Asked at every MAIL FROM, so with
   * plenty of room the file system is asked at most once a second, and what
   * this spool took in since is subtracted from its answer.
   */
  async freeBytes(): Promise<number> {
    if (this.free && Date.now() - this.free.at <= FREE_SPACE_MAX_AGE_MS) {
      const { bytes, takenSince } = this.free;
      const estimate = (await bytes) - takenSince;
      // Near full, ask every time: space freed a moment ago must count at once
      if (estimate > TRUST_ESTIMATE_ABOVE_BYTES) return estimate;
    }
    const free = { at: Date.now(), bytes: fs.statfs(this.root).then((stats) => stats.bavail * stats.bsize), takenSince: 0 };
    free.bytes.catch(() => (this.free = undefined));
    this.free = free;
    return free.bytes;
  }

  /**
   * Startup recovery: half-received files go, stale locks go, damaged records
   * are moved aside (never silently dropped) and their messages held.
   */
  async recover(): Promise<{ messages: number; removedTemp: number; corrupt: number }> {
    const temps = await fs.readdir(this.dir('tmp'));
    await Promise.all(temps.map((name) => fs.rm(path.join(this.dir('tmp'), name), { force: true, recursive: true })));
    await this.locks.removeStale();
    let corrupt = 0;
    const live = new Set<string>();
    for (const name of await fs.readdir(this.dir('messages'))) {
      const id = name.slice(0, -4);
      if (!name.endsWith('.eml') || !isQueueId(id)) {
        if (!name.startsWith('.')) {
          await this.moveAside(path.join(this.dir('messages'), name), 'not a message file');
          corrupt++;
        }
        continue;
      }
      const head = await this.readArrival(id).catch(() => undefined);
      if (!head) {
        await this.moveAside(this.messageFile(id), 'damaged arrival record');
        corrupt++;
        continue;
      }
      live.add(id);
      if (await this.recoverState(head.arrival)) corrupt++;
    }
    for (const name of await fs.readdir(this.dir('state'))) {
      const id = name.replace(/\.json$/, '');
      if (name.startsWith('.')) await fs.rm(path.join(this.dir('state'), name), { force: true });
      else if (!live.has(id)) {
        // The message was removed before its state (by design); finish the job
        await fs.rm(path.join(this.dir('state'), name), { force: true });
      }
    }
    if (temps.length || corrupt) this.log.warn({ removedTemp: temps.length, corrupt }, 'Spool recovered');
    return { messages: live.size, removedTemp: temps.length, corrupt };
  }

  /** A damaged state file: keep a copy aside and hold the message for a person to decide */
  private async recoverState(arrival: Arrival): Promise<boolean> {
    const file = this.stateFile(arrival.id);
    const text = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined || parseState(text, arrival)) return false;
    await this.moveAside(file, 'damaged delivery state', arrival.id);
    const state = initialState(arrival);
    state.held = true;
    state.lastError = 'Delivery state was damaged (copy in spool/corrupt); recipients may have been delivered already. Release to deliver again, or delete';
    await this.saveState(arrival.id, state);
    return true;
  }

  private async moveAside(file: string, reason: string, queueId?: string): Promise<void> {
    const target = path.join(this.dir('corrupt'), `${path.basename(file)}.${Date.now()}`);
    await fs.rename(file, target);
    this.log.error({ queueId, file: target, reason }, 'Moved a damaged spool file aside');
  }

  private async readArrival(id: QueueId): Promise<{ arrival: Arrival; offset: number; size: number } | undefined> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.messageFile(id), 'r');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const { size } = await handle.stat();
      const chunks: Buffer[] = [];
      let read = 0;
      while (read < Math.min(size, MAX_ARRIVAL_LINE)) {
        const chunk = Buffer.alloc(Math.min(64 * 1024, size - read));
        const { bytesRead } = await handle.read(chunk, 0, chunk.length, read);
        if (bytesRead === 0) break;
        const newline = chunk.subarray(0, bytesRead).indexOf(0x0a);
        if (newline >= 0) {
          chunks.push(chunk.subarray(0, newline));
          const offset = read + newline + 1;
          const arrival = parseArrival(Buffer.concat(chunks).toString('utf8'));
          if (!arrival || arrival.id !== id) throw new Error('damaged arrival record');
          return { arrival, offset, size: size - offset };
        }
        chunks.push(chunk.subarray(0, bytesRead));
        read += bytesRead;
      }
      throw new Error('damaged arrival record');
    } finally {
      await handle.close();
    }
  }

  private async readState(arrival: Arrival): Promise<DeliveryState | undefined> {
    const text = await fs.readFile(this.stateFile(arrival.id), 'utf8').catch((err) => {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    });
    if (text === undefined) return undefined;
    const state = parseState(text, arrival);
    if (!state) throw new RelayError(`Delivery state of ${arrival.id} is damaged`, { kind: 'temporary' });
    return state;
  }
}
