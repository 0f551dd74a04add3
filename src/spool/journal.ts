/**
 * The spool's append-only journal: checksummed records in fixed-size,
 * pre-written segment files (journal/<seq>.seg), made durable by group commit.
 *
 * Why this shape (an SD card completes one cache flush at a time and wears
 * with every block written):
 * - a segment is written in full (zeros, or an old segment's bytes) before it
 *   is used, so appending and `fdatasync` change no file-system metadata:
 *   ext4 writes the data blocks and nothing else;
 * - one flush covers every record written before it started: writers that
 *   finish while a flush runs share the next one (group commit);
 * - a record carries a CRC-32 over its segment's number, type and payload, so
 *   a torn tail (a power cut mid-write) or an old segment's leftovers end the
 *   replay of that segment; only records that no flush covered can be there.
 * - a segment is reused (renamed) or removed once nothing in it is needed.
 *
 * Record: u32 payload length, u32 CRC-32, u8 type, payload.
 */
import { promises as fs, writevSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../log.js';
import { errorMessage } from '../errors.js';
import { fsyncDir, unlinkIfThere } from '../util/fsx.js';

export const SEGMENT_BYTES = 1024 * 1024;
export const RECORD_HEADER_BYTES = 9;
/** Old segments kept for reuse: a new segment then costs a rename, not a megabyte of zeros */
const SPARES_KEPT = 2;
const ZERO_CHUNK = Buffer.alloc(64 * 1024);
const SEGMENT_NAME = /^(\d{10})\.seg$/;
const SPARE_NAME = /^spare-[0-9a-z]+\.seg$/;

export enum RecordType {
  /** u32 arrival-JSON length, arrival JSON, the message bytes */
  Arrival = 1,
  /** JSON: a message whose bytes live in a file of their own */
  ArrivalFile = 2,
  /** JSON: { id, state } — replaces the message's delivery state */
  State = 3,
  /** The queue id: the message left the queue */
  Remove = 4,
}

export interface JournalRecord {
  type: RecordType;
  payload: Buffer;
  segment: number;
  /** Where the payload starts in the segment file */
  payloadOffset: number;
}

export interface Placement {
  segment: number;
  payloadOffset: number;
}

interface Segment {
  seq: number;
  file: string;
  handle?: fs.FileHandle;
  writeAt: number;
  /** Records that are still needed: arrivals of queued messages and their latest state */
  live: number;
  /** Segments holding arrivals that this segment's removal records cancel: this one must outlive them */
  cancels: Set<number>;
  /** A write here failed: what follows it could not be read back, so nothing more goes here */
  failed?: unknown;
}

export const segmentFile = (dir: string, seq: number) =>
  path.join(dir, `${String(seq).padStart(10, '0')}.seg`);

function checksum(seq: number, type: number, parts: readonly Buffer[]): number {
  const head = Buffer.alloc(5);
  head.writeUInt32LE(seq >>> 0, 0);
  head.writeUInt8(type, 4);
  return parts.reduce((crc, part) => crc32(part, crc), crc32(head));
}

/** Every valid record of a segment, in order; stops at the first that is torn, stale or absent */
export function parseSegment(
  seq: number,
  bytes: Buffer,
): { records: JournalRecord[]; end: number; torn: boolean } {
  const records: JournalRecord[] = [];
  let at = 0;
  while (at + RECORD_HEADER_BYTES <= bytes.length) {
    const length = bytes.readUInt32LE(at);
    const crc = bytes.readUInt32LE(at + 4);
    const type = bytes.readUInt8(at + 8);
    const start = at + RECORD_HEADER_BYTES;
    // Zeros (never written) or an old segment's bytes at an arbitrary offset: the clean end
    if (!(type in RecordType) || start + length > bytes.length) break;
    const payload = bytes.subarray(start, start + length);
    // A plausible header whose checksum fails: a record the power cut caught half-written
    if (checksum(seq, type, [payload]) !== crc) return { records, end: at, torn: true };
    records.push({ type, payload, segment: seq, payloadOffset: start });
    at = start + length;
  }
  return { records, end: at, torn: false };
}

export class Journal {
  private readonly segments = new Map<number, Segment>();
  private current!: Segment;
  private next: Promise<Segment> | undefined;
  private readonly spares: string[] = [];
  /** Segments written to since the last flush started */
  private readonly dirty = new Set<Segment>();
  private flushing: Promise<void> | undefined;
  private queuedFlush: Promise<void> | undefined;
  private retiring = new Set<number>();
  private flushStartListeners: Array<() => void> = [];
  /** Flushes issued (for tests and `make bench`) */
  flushes = 0;

  private constructor(
    readonly dir: string,
    private readonly log: Logger,
  ) {}

  /**
   * Reads every segment, oldest first, through `onRecord`. The caller then
   * says which records are needed (hold, cancels) before `startWriting`.
   */
  static async open(
    dir: string,
    log: Logger,
    onRecord: (record: JournalRecord) => void,
  ): Promise<{ journal: Journal; tornSegments: number }> {
    const journal = new Journal(dir, log);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    let torn = 0;
    for (const name of (await fs.readdir(dir)).sort()) {
      if (SPARE_NAME.test(name)) journal.spares.push(path.join(dir, name));
      const seq = Number(SEGMENT_NAME.exec(name)?.[1] ?? NaN);
      if (!Number.isFinite(seq)) continue;
      const file = path.join(dir, name);
      const bytes = await fs.readFile(file);
      const { records, end, torn: tornHere } = parseSegment(seq, bytes);
      if (tornHere) torn++;
      journal.segments.set(seq, { seq, file, writeAt: end, live: 0, cancels: new Set() });
      records.forEach(onRecord);
    }
    return { journal, tornSegments: torn };
  }

  /**
   * Appending starts in a fresh segment, so nothing is ever written after a
   * torn tail; segments that hold nothing needed go.
   */
  async startWriting(): Promise<void> {
    const lastSeq = Math.max(0, ...this.segments.keys());
    this.current = await this.prepare(lastSeq + 1);
    for (const seq of this.segments.keys()) this.retireWhenDone(seq);
  }

  /** A record in `segment` became needed (an arrival, a message's latest state) */
  hold(segment: number): void {
    const seg = this.segments.get(segment);
    if (seg) seg.live++;
  }

  /** A record in `segment` is no longer needed */
  release(segment: number): void {
    const seg = this.segments.get(segment);
    if (!seg) return;
    seg.live--;
    this.retireWhenDone(segment);
  }

  /** A removal record in `at` cancels an arrival in `arrivalSegment`: `at` is kept while that one exists */
  cancels(at: number, arrivalSegment: number): void {
    if (at !== arrivalSegment && this.segments.has(arrivalSegment))
      this.segments.get(at)?.cancels.add(arrivalSegment);
  }

  /**
   * Appends one record; with `durable` resolves only once a flush that
   * started after the write has completed. Returns where the payload is.
   */
  async append(type: RecordType, parts: readonly Buffer[], durable: boolean): Promise<Placement> {
    const length = parts.reduce((sum, part) => sum + part.length, 0);
    const total = RECORD_HEADER_BYTES + length;
    if (total > SEGMENT_BYTES)
      throw new Error(`A spool record of ${total} bytes does not fit in a segment`);
    const seg = await this.room(total);
    const at = seg.writeAt;
    seg.writeAt += total;
    if (!this.next && seg.writeAt > SEGMENT_BYTES / 2) this.prepareNext();
    const header = Buffer.alloc(RECORD_HEADER_BYTES);
    header.writeUInt32LE(length, 0);
    header.writeUInt32LE(checksum(seg.seq, type, parts), 4);
    header.writeUInt8(type, 8);
    this.write(seg, [header, ...parts], at, total);
    this.dirty.add(seg);
    if (durable) await this.flush();
    return { segment: seg.seq, payloadOffset: at + RECORD_HEADER_BYTES };
  }

  /**
   * A synchronous write: the record lands in the page cache in microseconds,
   * and the flush that covers it can start in the same turn instead of after
   * a round trip through the thread pool (one session's wait for `250`).
   * Writes are thereby in order, so a flush never makes a record durable
   * behind a gap (zeros, where replay would stop) left by a write still running.
   */
  private write(seg: Segment, buffers: Buffer[], at: number, total: number): void {
    if (seg.failed) throw seg.failed;
    try {
      const written = writevSync(seg.handle!.fd, buffers, at);
      if (written !== total)
        throw new Error(`Short write to a spool segment (${written} of ${total} bytes)`);
    } catch (err) {
      seg.failed = err;
      throw err;
    }
  }

  /**
   * Group commit: makes everything written so far durable. A caller that
   * comes while a flush runs shares the one that starts when it ends (which
   * must start after the caller's write, to cover it).
   */
  flush(): Promise<void> {
    if (!this.flushing) return this.flushNow();
    this.queuedFlush ??= this.flushing
      .catch(() => undefined)
      .then(() => {
        this.queuedFlush = undefined;
        return this.flushNow();
      });
    return this.queuedFlush;
  }

  private flushNow(): Promise<void> {
    const segments = [...this.dirty];
    this.dirty.clear();
    this.flushes += segments.length;
    const run: Promise<void> = Promise.all(segments.map((seg) => seg.handle!.datasync())).then(
      () => {
        if (this.flushing === run) this.flushing = undefined;
      },
      (err: unknown) => {
        if (this.flushing === run) this.flushing = undefined;
        segments.forEach((seg) => this.dirty.add(seg));
        throw err;
      },
    );
    this.flushing = run;
    const listeners = this.flushStartListeners;
    this.flushStartListeners = [];
    listeners.forEach((listener) => listener());
    return run;
  }

  /** Calls `listener` once, when the next flush has been issued (the device is busy with it) */
  onNextFlush(listener: () => void): void {
    this.flushStartListeners.push(listener);
  }

  async close(): Promise<void> {
    await this.flush().catch(() => undefined);
    await Promise.all([...this.segments.values()].map((seg) => seg.handle?.close()));
    const spare = await this.next?.catch(() => undefined);
    await spare?.handle?.close();
  }

  /** The segment the next `bytes` go to; moves on to a new one when the current is full */
  private async room(bytes: number): Promise<Segment> {
    while (this.current.failed !== undefined || this.current.writeAt + bytes > SEGMENT_BYTES) {
      const full = this.current;
      const next = await this.prepareNext();
      if (this.current === full) {
        this.current = next;
        this.next = undefined;
        this.retireWhenDone(full.seq);
      }
    }
    return this.current;
  }

  private prepareNext(): Promise<Segment> {
    if (!this.next) {
      const next = this.prepare(this.current.seq + 1);
      // A failure (a full disk) reaches the writer that needs the segment; a later one tries again
      next.catch((err: unknown) => {
        if (this.next === next) this.next = undefined;
        this.log.warn({ err: errorMessage(err) }, 'Could not prepare the next spool segment');
      });
      this.next = next;
    }
    return this.next;
  }

  /** A segment ready to append to: an old one renamed, or a new one written full of zeros, its name on disk */
  private async prepare(seq: number): Promise<Segment> {
    const file = segmentFile(this.dir, seq);
    const spare = this.spares.shift();
    if (spare) await fs.rename(spare, file);
    else await writeZeroed(file, path.join(this.dir, `new-${seq}.tmp`));
    await this.giveToOwner(file);
    await fsyncDir(this.dir);
    const seg: Segment = {
      seq,
      file,
      writeAt: 0,
      live: 0,
      cancels: new Set(),
      handle: await fs.open(file, 'r+'),
    };
    this.segments.set(seq, seg);
    return seg;
  }

  /**
   * `sudo edge-relay queue hold ...` with the service stopped runs as root:
   * a segment it makes must stay writable by the service's own user, who owns the folder.
   */
  private async giveToOwner(file: string): Promise<void> {
    if (process.getuid?.() !== 0) return;
    const { uid, gid } = await fs.stat(this.dir);
    if (uid !== 0) await fs.chown(file, uid, gid);
  }

  /**
   * A segment none of whose records is needed goes, once a flush has made the
   * records that superseded them durable (the latest state of a message lives
   * on in a later segment; a removal must not be undone by a lost write).
   */
  private retireWhenDone(seq: number): void {
    if (this.retiring.has(seq) || !this.isDone(seq)) return;
    this.retiring.add(seq);
    void this.flush()
      .then(() => (this.isDone(seq) ? this.retire(seq) : undefined))
      .catch((err: unknown) =>
        this.log.warn({ segment: seq, err: errorMessage(err) }, 'Could not retire a spool segment'),
      )
      .finally(() => this.retiring.delete(seq));
  }

  private isDone(seq: number): boolean {
    const seg = this.segments.get(seq);
    if (!seg || seg === this.current || seg.live > 0) return false;
    return [...seg.cancels].every((other) => !this.segments.has(other));
  }

  private async retire(seq: number): Promise<void> {
    const seg = this.segments.get(seq)!;
    this.segments.delete(seq);
    await seg.handle?.close();
    if (this.spares.length < SPARES_KEPT) {
      const spare = path.join(this.dir, `spare-${seq.toString(36)}.seg`);
      await fs.rename(seg.file, spare);
      this.spares.push(spare);
    } else {
      await unlinkIfThere(seg.file);
    }
    for (const other of this.segments.keys())
      if (this.segments.get(other)!.cancels.delete(seq)) this.retireWhenDone(other);
  }
}

async function writeZeroed(file: string, temp: string): Promise<void> {
  const handle = await fs.open(temp, 'w', 0o600);
  try {
    for (let at = 0; at < SEGMENT_BYTES; at += ZERO_CHUNK.length)
      await handle.write(ZERO_CHUNK, 0, ZERO_CHUNK.length, at);
    await handle.sync();
    await handle.close();
    await fs.rename(temp, file);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlinkIfThere(temp);
    throw err;
  }
}
