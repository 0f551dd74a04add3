/**
 * One POP3 connection: reads command lines, dispatches them through the
 * command table, and owns what commands cannot do alone: replies, streaming
 * messages, login (login.ts), STLS and the UPDATE state.
 * A connection that ends without QUIT deletes nothing.
 */
import { once } from 'node:events';
import type net from 'node:net';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { Pop3Backend, StoredMessage } from './backend.js';
import { COMMANDS, type CommandContext, type SessionState } from './commands.js';
import { LineReader } from './lines.js';
import { Logins, type LoginRefusal } from './login.js';
import { streamMessage } from './message-stream.js';
import { handshake } from './stls.js';
import { printable } from './text.js';
import type { LoginThrottle } from '../util/login-throttle.js';

export interface SessionOptions {
  id: string;
  socket: net.Socket;
  /** Already encrypted (the implicit-TLS port) */
  secure: boolean;
  backend: Pop3Backend;
  throttle: LoginThrottle;
  secureContext: tls.SecureContext;
  requireTlsForLogin: boolean;
  /** Closes a session that fetched, deleted or logged in to nothing for this long */
  idleTimeoutMs: number;
  log: Logger;
  /** Told every login's result, for the metrics */
  onLogin: (result: Pop3LoginResult) => void;
}

/** How a login ended: in, wrong name or password, the mailbox open in another session, or refused unchecked (throttled) */
export type Pop3LoginResult = 'ok' | 'failed' | 'in_use' | 'throttled';

/** Generous next to RFC 2449's 255 octets: AUTH PLAIN with a long password still fits */
export const MAX_LINE = 4096;
/** After this many -ERR replies the client is confused or hostile: hang up */
export const MAX_ERRORS = 20;
/** How long a closed session waits for the client to hang up before dropping it */
const LINGER_MS = 2_000;

export class Session implements CommandContext {
  private socket: net.Socket;
  private encrypted: boolean;
  private state: SessionState = { name: 'authorization', user: null };
  private readonly reader = new LineReader(MAX_LINE);
  private readonly client: string;
  private readonly log: Logger;
  private errors = 0;
  private busy = false;
  /** QUIT done or TLS failed: stop after the current command */
  private closing = false;
  /** The server is stopping */
  private stopping = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly connectedAt = Date.now();
  /** Closed to make room: never chosen twice */
  private evicted = false;
  private readonly logins: Logins;

  constructor(private readonly options: SessionOptions) {
    this.socket = options.socket;
    this.encrypted = options.secure;
    this.client = options.socket.remoteAddress ?? 'unknown';
    this.log = options.log.child({ session: options.id, client: this.client });
    this.logins = new Logins(options, this.client, this.log);
  }

  get secure(): boolean {
    return this.encrypted;
  }

  get loginAllowed(): boolean {
    return this.encrypted || !this.options.requireTlsForLogin;
  }

  async run(): Promise<void> {
    this.watch(this.socket);
    this.stirred();
    this.reader.attach(this.socket);
    this.log.debug({ secure: this.encrypted }, 'POP3 connection');
    try {
      await this.ok('edge-relay POP3 server ready');
      await this.loop();
    } catch (err) {
      this.log.info({ err: errorMessage(err) }, 'POP3 connection lost');
    } finally {
      this.finish();
    }
  }

  /** Server stop: ends the session after its current command */
  shutdown(): void {
    this.stopping = true;
    if (!this.busy) this.reader.stop();
  }

  private async loop(): Promise<void> {
    for (;;) {
      const line = this.stopping ? null : await this.reader.next();
      if (this.stopping)
        return this.write('-ERR [SYS/TEMP] edge-relay is shutting down, try again in a minute\r\n');
      if (!line) return;
      this.busy = true;
      try {
        if (line.kind === 'too-long') await this.err(`Line longer than ${MAX_LINE} octets ignored`);
        else await this.dispatch(line.text);
      } finally {
        this.busy = false;
      }
      if (this.closing) return;
      if (this.errors >= MAX_ERRORS) {
        this.log.warn({ errors: this.errors }, 'POP3 client made too many errors; closing');
        return this.write('-ERR Too many errors, closing the connection\r\n');
      }
    }
  }

  private async dispatch(text: string): Promise<void> {
    const space = text.indexOf(' ');
    const verb = (space === -1 ? text : text.slice(0, space)).toUpperCase();
    // PASS keeps its argument exactly: passwords may contain and end with spaces (RFC 1939 §7)
    const args = space === -1 ? '' : text.slice(space + 1);
    const command = COMMANDS.get(verb);
    if (!command)
      return this.err(verb ? `Unknown command "${printable(verb)}"` : 'Empty command line');
    const running = command.run(this, this.state, args);
    if (running && command.progress) {
      // Before and after: a long RETR to a client that reads is not idle, one that stalls is
      this.stirred();
      await running;
      return this.stirred();
    }
    if (running) return running;
    return this.err(
      `${verb} is not valid ${this.state.name === 'authorization' ? 'before logging in' : 'after logging in'}`,
    );
  }

  private watch(socket: net.Socket): void {
    socket.on('error', (err) => this.log.debug({ err: errorMessage(err) }, 'POP3 socket error'));
  }

  /**
   * Restarts the idle clock. Only logging in and fetching or deleting mail do:
   * any traffic would let a client that sends NOOP every few seconds keep its
   * connection slot and its mailbox's lock for ever
   */
  private stirred(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.idle(), this.options.idleTimeoutMs);
  }

  private idle(): void {
    this.log.info(
      { mailbox: this.state.name === 'transaction' ? this.state.maildrop.mailbox : undefined },
      'POP3 session idle for too long; closing',
    );
    this.close('-ERR Idle for too long, closing the connection\r\n');
  }

  private close(lastLine: string): void {
    hangUp(this.socket, lastLine);
    this.reader.stop();
    if (this.busy) this.socket.destroy();
  }

  /** Connected at least `ms` ago and still not logged in, nor in the middle of a command */
  notLoggedInFor(ms: number): boolean {
    return (
      !this.evicted &&
      !this.busy &&
      this.state.name === 'authorization' &&
      Date.now() - this.connectedAt >= ms
    );
  }

  /** Closes the session to make room for a new client (the server is full) */
  evict(): void {
    this.evicted = true;
    this.log.info('POP3 connection closed to make room: it had not logged in');
    this.close(
      '-ERR [SYS/TEMP] The server is full and this connection has not logged in; closing it\r\n',
    );
  }

  private async write(data: string): Promise<void> {
    const socket = this.socket;
    if (!socket.writable) return;
    if (socket.write(data)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
  }

  ok(text: string): Promise<void> {
    return this.write(`+OK ${text}\r\n`);
  }

  err(text: string): Promise<void> {
    this.errors++;
    return this.write(`-ERR ${text}\r\n`);
  }

  multiline(first: string, lines: readonly string[]): Promise<void> {
    return this.write([`+OK ${first}`, ...lines, '.', ''].join('\r\n'));
  }

  async prompt(text: string): Promise<string | null> {
    await this.write(`+ ${text}\r\n`);
    const line = await this.reader.next();
    if (!line) return null;
    return line.kind === 'line' ? line.text : '';
  }

  async send(mailbox: string, message: StoredMessage, bodyLines?: number): Promise<void> {
    let source: Readable;
    try {
      source = this.options.backend.read(mailbox, message.uid);
      await once(source, 'ready');
    } catch (err) {
      this.log.error(
        { mailbox, uid: message.uid, err: errorMessage(err) },
        'Cannot read a message for POP3',
      );
      return this.err(`[SYS/TEMP] Cannot read message ${message.uid}`);
    }
    await this.ok(
      bodyLines === undefined
        ? `${message.size} octets`
        : `Header and ${bodyLines} body lines follow`,
    );
    await streamMessage(source, this.socket, message.uid, bodyLines);
  }

  async login(user: string, password: string): Promise<void> {
    const checked = await this.logins.check(user, password, this.socket);
    if (!checked) return;
    if ('refused' in checked) return this.refuseLogin(checked);
    this.stirred();
    const opened = await this.logins.open(checked.mailbox);
    if ('refused' in opened) return this.refuseLogin(opened);
    const { maildrop } = opened;
    this.state = { name: 'transaction', maildrop, release: opened.release };
    const { count, bytes } = maildrop.stat();
    this.log.info(
      { mailbox: maildrop.mailbox, messages: count, bytes, secure: this.encrypted },
      'POP3 login',
    );
    this.options.onLogin('ok');
    return this.ok(`Mailbox ${maildrop.mailbox} has ${count} messages (${bytes} octets)`);
  }

  private refuseLogin({ refused, hangUp }: LoginRefusal): Promise<void> {
    if (hangUp) this.closing = true;
    return this.err(refused);
  }

  async startTls(): Promise<void> {
    await this.ok('Begin TLS negotiation');
    // Whatever the client sent in clear text after STLS is dropped, never read as encrypted input
    this.reader.detach();
    const plain = this.socket;
    const secure = new tls.TLSSocket(plain, {
      isServer: true,
      secureContext: this.options.secureContext,
    });
    this.socket = secure;
    this.watch(secure);
    try {
      await handshake(secure, this.options.idleTimeoutMs);
    } catch (err) {
      this.log.info({ err: errorMessage(err) }, 'POP3 STLS handshake failed');
      this.closing = true;
      secure.destroy();
      return;
    }
    this.encrypted = true;
    this.state = { name: 'authorization', user: null };
    this.reader.attach(secure);
    this.log.debug({ protocol: secure.getProtocol() }, 'POP3 STLS done');
  }

  async quit(): Promise<void> {
    const state = this.state;
    this.closing = true;
    if (state.name !== 'transaction') return this.ok('edge-relay signing off');
    this.state = { name: 'update' };
    const { mailbox } = state.maildrop;
    const uids = state.maildrop.deletedUids();
    try {
      await this.options.backend.commitDeletions(mailbox, uids);
    } catch (err) {
      this.log.error({ mailbox, uids, err: errorMessage(err) }, 'POP3 deletions failed');
      return this.err(`[SYS/TEMP] Could not delete the marked messages: ${errorMessage(err)}`);
    } finally {
      state.release();
    }
    if (uids.length)
      this.log.info({ mailbox, deleted: uids.length, uids }, 'POP3 deleted messages');
    return this.ok(`edge-relay signing off (${uids.length} messages deleted)`);
  }

  /** Releases the mailbox without touching it, and hangs up */
  private finish(): void {
    clearTimeout(this.idleTimer);
    const state = this.state;
    if (state.name === 'transaction') {
      state.release();
      const marked = state.maildrop.deletedUids().length;
      this.log.info(
        { mailbox: state.maildrop.mailbox, marked },
        marked
          ? 'POP3 session ended without QUIT; nothing deleted'
          : 'POP3 session ended without QUIT',
      );
    }
    this.reader.detach();
    hangUp(this.socket);
  }
}

/** Sends a last line and closes; a client that does not close its side in time is dropped */
export function hangUp(socket: net.Socket, lastLine = ''): void {
  if (!socket.writableEnded) socket.end(lastLine);
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
