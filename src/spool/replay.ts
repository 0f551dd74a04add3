/**
 * What the spool holds about each queued message, and how a journal record
 * read back at startup changes it.
 */
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { isQueueId, type QueueId } from './ids.js';
import { RecordType, segmentFile, type JournalRecord, type Placement } from './journal.js';
import {
  initialState,
  parseArrival,
  parseState,
  type Arrival,
  type QueueEntry,
} from './records.js';

export interface FileArrivalRecord {
  arrival: Arrival;
  /** Relative to the spool folder */
  file: string;
  offset: number;
  size: number;
}

/** Where a message's bytes are */
export interface BodyPlace {
  file: string;
  offset: number;
}

/** What the spool holds about a queued message */
export interface Stored {
  entry: QueueEntry;
  body: BodyPlace;
  /** The segments of its arrival record and of its latest state record */
  arrivalSegment: number;
  stateSegment?: number;
  /** Its bytes' own file (larger messages), deleted once it is done */
  ownFile?: string;
}

/**
 * Applies one journal record to the queue in memory, `stored`: an arrival
 * adds a message, a state replaces its state, a removal deletes it and
 * returns what it removed. 'damaged': a record with a valid checksum that
 * does not parse.
 */
export function applyRecord(
  record: JournalRecord,
  stored: Map<QueueId, Stored>,
  paths: { journalDir: string; root: string },
): Stored | undefined | 'damaged' {
  const { payload } = record;
  switch (record.type) {
    case RecordType.Arrival: {
      const jsonLength = payload.length >= 4 ? payload.readUInt32LE(0) : Infinity;
      const arrival =
        jsonLength + 4 <= payload.length
          ? parseArrival(payload.subarray(4, 4 + jsonLength).toString('utf8'))
          : null;
      if (!arrival) return 'damaged';
      stored.set(
        arrival.id,
        inlineStored(
          arrival,
          segmentFile(paths.journalDir, record.segment),
          record,
          4 + jsonLength,
          payload.length - 4 - jsonLength,
        ),
      );
      return undefined;
    }
    case RecordType.ArrivalFile: {
      const data = parseJson(payload) as Partial<FileArrivalRecord> | undefined;
      const arrival = data?.arrival && parseArrival(JSON.stringify(data.arrival));
      if (
        !arrival ||
        typeof data.file !== 'string' ||
        typeof data.offset !== 'number' ||
        typeof data.size !== 'number' ||
        path.isAbsolute(data.file) ||
        data.file.includes('..')
      )
        return 'damaged';
      stored.set(
        arrival.id,
        fileStored(
          { arrival, file: data.file, offset: data.offset, size: data.size },
          paths.root,
          record.segment,
        ),
      );
      return undefined;
    }
    case RecordType.State: {
      const data = parseJson(payload) as { id?: unknown; state?: unknown } | undefined;
      const known =
        typeof data?.id === 'string' && isQueueId(data.id) ? stored.get(data.id) : undefined;
      // The state of a message removed since: its arrival's segment is gone
      if (!known) return data && typeof data.id === 'string' ? undefined : 'damaged';
      const state = parseState(JSON.stringify(data!.state), known.entry.arrival);
      if (!state) return 'damaged';
      known.entry = { ...known.entry, state };
      known.stateSegment = record.segment;
      return undefined;
    }
    case RecordType.Remove: {
      const id = payload.toString('latin1') as QueueId;
      const removed = stored.get(id);
      stored.delete(id);
      return removed;
    }
  }
}

export function inlineStored(
  arrival: Arrival,
  file: string,
  place: Placement,
  bodyStart: number,
  size: number,
): Stored {
  return {
    entry: { arrival, state: initialState(arrival), size },
    body: { file, offset: place.payloadOffset + bodyStart },
    arrivalSegment: place.segment,
  };
}

export function fileStored(record: FileArrivalRecord, root: string, segment: number): Stored {
  const file = path.join(root, record.file);
  return {
    entry: { arrival: record.arrival, state: initialState(record.arrival), size: record.size },
    body: { file, offset: record.offset },
    arrivalSegment: segment,
    ownFile: file,
  };
}

export function readBody(stored: Stored): Readable {
  const { file, offset } = stored.body;
  const { size } = stored.entry;
  return size === 0
    ? Readable.from([])
    : createReadStream(file, { start: offset, end: offset + size - 1 });
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}
