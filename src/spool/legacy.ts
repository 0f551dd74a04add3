/**
 * Upgrade from the earlier spool layout (before the journal): one file per
 * message in messages/<id>.eml (the arrival record as its first line, then
 * the bytes) and its delivery state in state/<id>.json. Each message file
 * stays where it is; a durable arrival record naming it (and its state) goes
 * into the journal, then its state file goes. A crash in between is harmless:
 * a message already in the journal is not taken in twice.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { errnoCode } from '../errors.js';
import type { Logger } from '../log.js';
import { isQueueId, type QueueId } from './ids.js';
import {
  initialState,
  parseArrival,
  parseState,
  type Arrival,
  type DeliveryState,
} from './records.js';
import type { Spool } from './spool.js';

const MAX_ARRIVAL_LINE = 4 * 1024 * 1024;

export async function migrateLegacySpool(
  spool: Spool,
  log: Logger,
): Promise<{ migrated: number; corrupt: number }> {
  const messagesDir = path.join(spool.root, 'messages');
  const stateDir = path.join(spool.root, 'state');
  const names = await fs
    .readdir(messagesDir)
    .catch((err) => (errnoCode(err) === 'ENOENT' ? [] : Promise.reject(err)));
  let migrated = 0;
  let corrupt = 0;
  for (const name of names) {
    const id = name.slice(0, -4);
    const file = path.join(messagesDir, name);
    if (!name.endsWith('.eml') || !isQueueId(id)) {
      if (!name.startsWith('.')) {
        await spool.moveAside(file, 'not a message file');
        corrupt++;
      }
      continue;
    }
    if (spool.has(id)) continue;
    const head = await readArrival(file, id).catch(() => undefined);
    if (!head) {
      await spool.moveAside(file, 'damaged arrival record');
      corrupt++;
      continue;
    }
    const state = await readLegacyState(spool, path.join(stateDir, `${id}.json`), head.arrival);
    if (state.damaged) corrupt++;
    await spool.adopt(
      {
        arrival: head.arrival,
        file: path.join('messages', name),
        offset: head.offset,
        size: head.size,
      },
      state.state,
    );
    await fs.rm(path.join(stateDir, `${id}.json`), { force: true });
    migrated++;
  }
  // States of messages gone before the upgrade, and the per-message locks of the earlier layout
  await fs.rm(stateDir, { recursive: true, force: true });
  await fs.rm(path.join(spool.root, 'locks'), { recursive: true, force: true });
  if (migrated)
    log.info({ migrated }, 'Moved queued messages from the earlier spool layout into the journal');
  return { migrated, corrupt };
}

/** A damaged state file: a copy goes aside and the message waits for a person to decide */
async function readLegacyState(
  spool: Spool,
  file: string,
  arrival: Arrival,
): Promise<{ state?: DeliveryState; damaged: boolean }> {
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return { damaged: false };
  const state = parseState(text, arrival);
  if (state) return { state, damaged: false };
  await spool.moveAside(file, 'damaged delivery state', arrival.id);
  const held = initialState(arrival);
  held.held = true;
  held.lastError =
    'Delivery state was damaged (copy in spool/corrupt); recipients may have been delivered already. Release to deliver again, or delete';
  return { state: held, damaged: true };
}

/** The arrival record on a legacy message file's first line, and where the message bytes start */
async function readArrival(
  file: string,
  id: QueueId,
): Promise<{ arrival: Arrival; offset: number; size: number }> {
  const handle = await fs.open(file, 'r');
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
        if (!arrival || arrival.id !== id) break;
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
