/**
 * A stored message on its way to a POP3 client: RETR sends it whole, TOP only
 * the header and the first n body lines; either way dot-stuffed and ended
 * with "." (RFC 1939 §3). Streams chunk by chunk: a 50 MB scan never sits in
 * memory.
 */
import type net from 'node:net';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const DOT_BUFFER = Buffer.from('.');
const CRLF = Buffer.from('\r\n');
const TERMINATOR = Buffer.from('.\r\n');

/** Doubles a "." at the start of every line and appends the ".\r\n" terminator line */
export class DotStuffer extends Transform {
  private atLineStart = true;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (chunk.length === 0) return callback();
    // Views into the chunk, not copies: a message full of dotted lines costs no extra memory
    let start = 0;
    if (this.atLineStart && chunk[0] === DOT) this.push(DOT_BUFFER);
    for (
      let lf = chunk.indexOf(LF);
      lf !== -1 && lf + 1 < chunk.length;
      lf = chunk.indexOf(LF, lf + 1)
    ) {
      if (chunk[lf + 1] !== DOT) continue;
      this.push(chunk.subarray(start, lf + 1));
      this.push(DOT_BUFFER);
      start = lf + 1;
    }
    this.atLineStart = chunk[chunk.length - 1] === LF;
    callback(null, chunk.subarray(start));
  }

  override _flush(callback: TransformCallback): void {
    // A message that does not end with a line break still gets its terminator on a line of its own
    callback(null, this.atLineStart ? TERMINATOR : Buffer.concat([CRLF, TERMINATOR]));
  }
}

/**
 * The header, the blank line and then `bodyLines` lines of the body (TOP).
 * Returning early stops reading the file: TOP 1 0 on a 50 MB message reads a few KB.
 */
export async function* headerAndLines(
  source: AsyncIterable<Buffer>,
  bodyLines: number,
): AsyncGenerator<Buffer> {
  let inHeader = true;
  let bodyLeft = bodyLines;
  let lineLength = 0;
  let firstByte = -1;
  for await (const chunk of source) {
    let start = 0;
    for (let lf = chunk.indexOf(LF); lf !== -1; lf = chunk.indexOf(LF, start)) {
      const length = lineLength + (lf - start);
      const first = lineLength === 0 ? (chunk[start] ?? LF) : firstByte;
      const blank = length === 0 || (length === 1 && first === CR);
      start = lf + 1;
      lineLength = 0;
      if (inHeader) {
        if (blank) inHeader = false;
        if (!inHeader && bodyLeft === 0) return yield chunk.subarray(0, start);
        continue;
      }
      if (--bodyLeft === 0) return yield chunk.subarray(0, start);
    }
    if (lineLength === 0 && start < chunk.length) firstByte = chunk[start] ?? -1;
    lineLength += chunk.length - start;
    yield chunk;
  }
}

/** Sends message `uid` from `source`: whole, or its header and `bodyLines` body lines. The socket stays open */
export async function streamMessage(
  source: Readable,
  socket: net.Socket,
  uid: string,
  bodyLines?: number,
): Promise<void> {
  // pipeline(..., socket, { end: false }) never settles on a socket that is already closed, and the
  // session would keep the mailbox locked forever: a client that hung up gets nothing more
  if (!socket.writable) {
    source.destroy();
    throw new Error(`The client hung up before message ${uid} was sent`);
  }
  // A failure midway destroys the socket, as nothing else would make sense
  if (bodyLines === undefined) await pipeline(source, new DotStuffer(), socket, { end: false });
  else
    await pipeline(
      source,
      (chunks: AsyncIterable<Buffer>) => headerAndLines(chunks, bodyLines),
      new DotStuffer(),
      socket,
      { end: false },
    );
}
