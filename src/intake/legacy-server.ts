/**
 * smtp-server, adapted for LAN devices. These changes, all in subclasses of the
 * library's own classes (no monkey-patching), and all guarded by tests that
 * fail if the library's internals they rely on change (test/unit/legacy-server.test.ts):
 *
 * 1. No greeting delay. SMTPConnection.init() waits a hard-coded 100 ms before
 *    the 220 banner to catch early talkers. Printers open one connection per
 *    message, so that wait caps a device at ~10 messages/s. We greet at once.
 * 2. Bare LF line endings. Old devices end lines (and the data, "\n.\n") with
 *    LF alone; the library only ends DATA on CRLF.CRLF, so such a device hangs
 *    until timeout. The parser here turns every bare LF into CRLF before the
 *    library sees it. Everything we store and forward therefore has proper CRLF
 *    line endings, which also means we never pass a bare LF on to an upstream
 *    (the SMTP smuggling vector).
 * 3. Room for a newcomer. Over maxClients the library refuses the new
 *    connection, so whoever holds the slots (idle or NOOP-ing) locks every
 *    device out. Here the server first asks its `makeRoom` callback to close a
 *    session that may give way (see pressure.ts), and refuses only when none may.
 * 4. SIZE= judged by our hooks. The library refuses a declared size over the
 *    advertised SIZE at MAIL, in its own words and without an enhanced code;
 *    but in smarthost mode we advertise the smarthost's smaller limit, and a
 *    scan for a local mailbox must still pass. Intake decides (size-limits.ts):
 *    at MAIL against our own limit, at RCPT against that recipient's upstream.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
// smtp-server's server side of a device's session (not nodemailer's, which deliver/ uses for the upstream)
import {
  SMTPConnection as DeviceSession,
  type SMTPConnectionOptions,
} from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

const LF = 0x0a;
const CR = 0x0d;

/** Inserts CR before every LF that lacks one; `previous` is the byte before `chunk` */
export function crlfNormalize(chunk: Buffer, previous: number): Buffer {
  let bare = 0;
  for (let i = 0; i < chunk.length; i++) {
    if (chunk[i] === LF && (i === 0 ? previous : chunk[i - 1]) !== CR) bare++;
  }
  if (bare === 0) return chunk;
  const out = Buffer.allocUnsafe(chunk.length + bare);
  let o = 0;
  for (let i = 0; i < chunk.length; i++) {
    const byte = chunk[i] as number;
    if (byte === LF && (i === 0 ? previous : chunk[i - 1]) !== CR) out[o++] = CR;
    out[o++] = byte;
  }
  return out;
}

/**
 * The parser re-enters _write with the unread rest of a chunk it already saw
 * (after a command switches modes); normalizing is idempotent on such a
 * remainder because it never starts with a bare LF.
 */
export class LegacySMTPStream extends SMTPStream {
  private lastByte = -1;

  override _write(
    chunk: Buffer,
    encoding: BufferEncoding | 'buffer',
    next: (err?: Error | null) => void,
  ): void {
    if (!chunk || chunk.length === 0) return super._write(chunk, encoding, next);
    const normalized = crlfNormalize(chunk, this.lastByte);
    this.lastByte = normalized[normalized.length - 1] as number;
    super._write(normalized, encoding, next);
  }
}

type MailParams = Parameters<DeviceSession['_validateMailParams']>[0];

export class LegacySMTPConnection extends DeviceSession {
  /** Only LegacySMTPServer creates these connections */
  declare _server: LegacySMTPServer;

  /** The library's parser wiring, with our parser class */
  override _createParser(): SMTPStream {
    const parser = new LegacySMTPStream({
      maxCommandLength: this._server.options.maxCommandLength,
    });
    parser.oncommand = (command, callback) => this._onCommand(command, callback);
    parser.on('error', (err: Error) => this.send(421, `Error: ${err.message}`));
    return parser;
  }

  /** The library's checks of MAIL's parameters, SIZE= for its syntax only (its limit is the hooks' to judge) */
  override _validateMailParams(
    parsed: MailParams,
  ): ReturnType<DeviceSession['_validateMailParams']> {
    const args = parsed.args || {};
    if (typeof args.SIZE !== 'string' || !/^\d{1,20}$/.test(args.SIZE))
      return super._validateMailParams(parsed);
    return super._validateMailParams({
      ...parsed,
      args: Object.fromEntries(Object.entries(args).filter(([name]) => name !== 'SIZE')),
    });
  }

  /** The library's init() without the 100 ms early-talker wait, and making room before refusing */
  override init(): void {
    this._setListeners(() => {
      const { maxClients } = this._server.options;
      if (
        maxClients &&
        this._server.connections.size > maxClients &&
        !this._server.makeRoom(this)
      ) {
        return this.send(
          421,
          `${this.name} Too many connected clients, try again in a moment`,
          false,
        );
      }
      this.connectionReady();
    });
  }
}

/** Closes one open connection of `server` so `newcomer` fits; false when none may give way */
export type MakeRoom = (server: LegacySMTPServer, newcomer: DeviceSession) => boolean;

export class LegacySMTPServer extends SMTPServer {
  constructor(
    options: SMTPServerOptions,
    private readonly roomMaker: MakeRoom = () => false,
  ) {
    super(options);
  }

  makeRoom(newcomer: DeviceSession): boolean {
    return this.roomMaker(this, newcomer);
  }

  /** The library's connect() with our connection class */
  override connect(
    socket: net.Socket | tls.TLSSocket,
    socketOptions?: SMTPConnectionOptions | null,
  ): void {
    const connection = new LegacySMTPConnection(this, socket, socketOptions);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data) => this._onClientConnect(data));
    connection.init();
  }
}
