/**
 * The library floor for `make bench`: the least a relay built on the design
 * card's libraries can do per message, with none of edge-relay's own work
 * (no policy, no records, no retries, no logging, no metrics).
 *
 *   smtp-server (edge-relay's subclass, without the 100 ms greeting wait)
 *   -> the message made durable (STORE below), then 250
 *   -> nodemailer's pooled SMTP transport to the sink (4 connections, as edge-relay)
 *
 * At rest it holds what the design card's two other libraries cost a relay
 * that idles: lowdb has read the settings, node-cron schedules a minute's
 * queue sweep (it works out each next run with Intl, which loads ICU's data).
 *
 * STORE, how a message is made durable before its 250:
 *   file     (default) streamed to a file of its own, fsynced, renamed, folder
 *            fsynced (2 flushes per message, as Postfix and a folder queue do);
 *            on delivery the file is unlinked and the folder fsynced. Memory
 *            stays flat in message size: the figures on this machine use it.
 *   journal  the least costly durable way on a card: the message (buffered in
 *            memory) is appended as one record (u32 length, u32 CRC-32, u32
 *            envelope length, envelope JSON, message) to one file written full
 *            of zeros at start, so appending changes no file-system metadata;
 *            one fdatasync makes it durable, shared by every message written
 *            while the previous one ran (group commit). Nothing is written
 *            after delivery (no removal, no "delivered" mark) and the file is
 *            never replayed: a floor, not a relay. A message that no longer
 *            fits in the JOURNAL_BYTES file is refused with 452.
 *
 * Plain JavaScript, run by plain `node` like edge-relay itself: a TypeScript
 * loader would add its own memory to the figures.
 * Usage: node bench/floor.mjs SMTP_PORT SINK_PORT DIR [file|journal]
 */
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import { Low } from 'lowdb';
import { JSONFile } from 'lowdb/node';
import cron from 'node-cron';
import nodemailer from 'nodemailer';
import { LegacySMTPServer } from '../build/intake/legacy-server.js';

const [port, sinkPort, dir, store = 'file'] = process.argv.slice(2);
/** Enough for the card runs of bench/card.ts (about 2,200 messages of 2 KB) many times over */
const JOURNAL_BYTES = 64 * 1024 * 1024;

const upstream = nodemailer.createTransport({
  host: '127.0.0.1',
  port: Number(sinkPort),
  secure: false,
  ignoreTLS: true,
  pool: true,
  maxConnections: 4,
  maxMessages: 100,
});

async function fsyncDir(folder) {
  const handle = await fs.open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function envelopeOf(session) {
  return {
    from: session.envelope.mailFrom.address,
    to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
  };
}

/** One file per message: write, fsync, rename, fsync the folder; unlink once delivered */
async function fileStore() {
  const tmp = path.join(dir, 'tmp');
  const queue = path.join(dir, 'queue');
  await fs.mkdir(tmp, { recursive: true });
  await fs.mkdir(queue, { recursive: true });
  let sequence = 0;

  async function forward(file, envelope) {
    try {
      await upstream.sendMail({ envelope, raw: createReadStream(file) });
      await fs.unlink(file);
      await fsyncDir(queue);
    } catch (err) {
      console.error(`floor: ${err.message}`);
    }
  }

  return (stream, session, callback) => {
    const id = String(sequence++);
    const envelope = envelopeOf(session);
    const temp = path.join(tmp, id);
    const file = path.join(queue, id);
    pipeline(stream, createWriteStream(temp, { flush: true }))
      .then(() => fs.rename(temp, file))
      .then(() => fsyncDir(queue))
      .then(
        () => {
          callback(null, `queued as ${id}`);
          void forward(file, envelope);
        },
        (err) => callback(err),
      );
  };
}

/** One pre-zeroed file, appended to; one fdatasync per batch of messages (group commit) */
async function journalStore() {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, 'journal');
  const journal = await fs.open(file, 'w+');
  const zeros = Buffer.alloc(1024 * 1024);
  for (let at = 0; at < JOURNAL_BYTES; at += zeros.length)
    await journal.write(zeros, 0, zeros.length, at);
  await journal.sync();
  await fsyncDir(dir);

  let writeAt = 0;
  /** Messages written since the running flush started: the next flush covers them */
  let waiting = [];
  let flushing = false;

  async function flushWhileWaiting() {
    flushing = true;
    try {
      while (waiting.length > 0) {
        const batch = waiting;
        waiting = [];
        try {
          await journal.datasync();
          for (const { resolve } of batch) resolve();
        } catch (err) {
          for (const { reject } of batch) reject(err);
        }
      }
    } finally {
      flushing = false;
    }
  }

  function durable() {
    return new Promise((resolve, reject) => {
      waiting.push({ resolve, reject });
      if (!flushing) void flushWhileWaiting();
    });
  }

  function record(envelope, message) {
    const head = Buffer.alloc(12);
    const envelopeJson = Buffer.from(JSON.stringify(envelope));
    head.writeUInt32LE(4 + envelopeJson.length + message.length, 0);
    head.writeUInt32LE(envelopeJson.length, 8);
    head.writeUInt32LE(crc32(message, crc32(envelopeJson, crc32(head.subarray(8)))), 4);
    return Buffer.concat([head, envelopeJson, message]);
  }

  async function append(bytes) {
    if (writeAt + bytes.length > JOURNAL_BYTES)
      throw Object.assign(new Error('Journal full'), { responseCode: 452 });
    const at = writeAt;
    writeAt += bytes.length;
    await journal.write(bytes, 0, bytes.length, at);
    await durable();
  }

  let sequence = 0;
  return (stream, session, callback) => {
    const id = String(sequence++);
    const envelope = envelopeOf(session);
    const chunks = [];
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.on('end', () => {
      const message = Buffer.concat(chunks);
      append(record(envelope, message)).then(
        () => {
          callback(null, `queued as ${id}`);
          upstream
            .sendMail({ envelope, raw: message })
            .catch((err) => console.error(`floor: ${err.message}`));
        },
        (err) => callback(err),
      );
    });
  };
}

const stores = { file: fileStore, journal: journalStore };
if (!stores[store]) throw new Error(`Unknown store "${store}": file or journal`);
const onData = await stores[store]();

const server = new LegacySMTPServer({
  disableReverseLookup: true,
  authOptional: true,
  logger: false,
  size: 100 * 1024 * 1024,
  onData,
});
const settings = new Low(new JSONFile(path.join(dir, 'settings.json')), { sweep: '* * * * *' });
await settings.read();
cron.schedule(settings.data.sweep, () => {});
server.listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
