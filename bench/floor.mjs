/**
 * The library floor for `make bench`: the least a relay built on the design
 * card's libraries can do per message, with none of edge-relay's own work
 * (no policy, no records, no retries, no logging, no metrics).
 *
 *   smtp-server (edge-relay's subclass, without the 100 ms greeting wait)
 *   -> the message streamed to a file, fsynced, renamed, folder fsynced, then 250
 *   -> nodemailer's pooled SMTP transport to the sink (4 connections, as edge-relay)
 *   -> on success the file is unlinked and the folder fsynced
 *
 * Plain JavaScript, run by plain `node` like edge-relay itself: a TypeScript
 * loader would add its own memory to the figures.
 * Usage: node bench/floor.mjs SMTP_PORT SINK_PORT DIR
 */
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import nodemailer from 'nodemailer';
import { LegacySMTPServer } from '../build/intake/legacy-server.js';

const [port, sinkPort, dir] = process.argv.slice(2);
const tmp = path.join(dir, 'tmp');
const queue = path.join(dir, 'queue');
await fs.mkdir(tmp, { recursive: true });
await fs.mkdir(queue, { recursive: true });

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

async function forward(file, envelope) {
  try {
    await upstream.sendMail({ envelope, raw: createReadStream(file) });
    await fs.unlink(file);
    await fsyncDir(queue);
  } catch (err) {
    console.error(`floor: ${err.message}`);
  }
}

let sequence = 0;
const server = new LegacySMTPServer({
  disableReverseLookup: true,
  authOptional: true,
  logger: false,
  size: 100 * 1024 * 1024,
  onData(stream, session, callback) {
    const id = String(sequence++);
    const envelope = {
      from: session.envelope.mailFrom.address,
      to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
    };
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
  },
});
server.listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
