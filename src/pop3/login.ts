/**
 * Logging in to a mailbox (PASS, AUTH PLAIN): the throttle's turn,
 * the password, then the mailbox's lock and its messages. Each step that
 * fails says so in the reply the client is to hear; the session decides
 * what to do with a success.
 */
import type net from 'node:net';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { Release } from '../mailbox/locks.js';
import type { LoginTurn } from '../util/login-throttle.js';
import type { StoredMessage } from './backend.js';
import { Maildrop } from './maildrop.js';
import type { SessionOptions } from './session.js';
import { printable } from './text.js';

/** Mailbox names are at most this long: a longer one is wrong, and need not be remembered whole */
const MAX_NAME = 64;

/** A login that did not get in: the -ERR text, and whether to close the connection after it */
export interface LoginRefusal {
  refused: string;
  hangUp: boolean;
}

const refusal = (refused: string, hangUp = false): LoginRefusal => ({ refused, hangUp });

export class Logins {
  constructor(
    private readonly options: Pick<SessionOptions, 'id' | 'backend' | 'throttle' | 'onLogin'>,
    private readonly client: string,
    private readonly log: Logger,
  ) {}

  /** The mailbox `user` and `password` open; null when the client hung up before its turn came */
  async check(
    user: string,
    password: string,
    socket: net.Socket,
  ): Promise<{ mailbox: string } | LoginRefusal | null> {
    // The wait comes before the check: a client that hangs up early has had nothing checked
    const turn = await this.turnToLogin(user.toLowerCase().slice(0, MAX_NAME), socket);
    if (!turn) return null;
    if (!turn.allowed) {
      const seconds = Math.ceil(turn.retryAfterMs / 1000);
      this.log.warn(
        { user: printable(user), retryAfterSeconds: seconds },
        'POP3 login refused unchecked: too many logins from this address or to this mailbox',
      );
      this.options.onLogin('throttled');
      // Closing frees the connection slot for clients that do not misbehave
      return refusal(
        `[SYS/TEMP] Too many logins from this address or to this mailbox; try again in ${seconds} seconds`,
        true,
      );
    }
    let mailbox: string | null = null;
    try {
      mailbox = await this.options.backend.authenticate(user, password);
    } finally {
      if (mailbox) turn.attempt.succeeded();
      else turn.attempt.failed();
    }
    if (!mailbox) {
      this.log.warn({ user: printable(user), waitedMs: turn.waitedMs }, 'POP3 login failed');
      this.options.onLogin('failed');
      return refusal('[AUTH] Wrong mailbox name or password');
    }
    return { mailbox };
  }

  /** Locks the mailbox for this session and lists its messages */
  async open(mailbox: string): Promise<{ maildrop: Maildrop; release: Release } | LoginRefusal> {
    const { backend } = this.options;
    const release = backend.lock(mailbox, `POP3 session ${this.options.id} from ${this.client}`);
    if (!release) {
      this.log.info(
        { mailbox, holder: backend.lockHolder(mailbox) },
        'POP3 login refused: mailbox in use',
      );
      this.options.onLogin('in_use');
      return refusal(
        `[IN-USE] Mailbox "${mailbox}" is open in another session; try again when that one ends`,
      );
    }
    let messages: StoredMessage[];
    try {
      messages = await backend.list(mailbox);
    } catch (err) {
      release();
      this.log.error({ mailbox, err: errorMessage(err) }, 'Cannot open a mailbox for POP3');
      return refusal(`[SYS/TEMP] Cannot open mailbox "${mailbox}"`);
    }
    return { maildrop: new Maildrop(mailbox, messages), release };
  }

  /** Waits for the throttle's turn; null when the client hung up meanwhile (its password was never checked) */
  private async turnToLogin(account: string, socket: net.Socket): Promise<LoginTurn | null> {
    const hungUp = new AbortController();
    const abort = () => hungUp.abort();
    // Lines pipelined before a hang-up are still read: a login among them has nobody left to answer
    if (socket.destroyed) abort();
    else socket.once('close', abort);
    try {
      const turn = hungUp.signal.aborted
        ? null
        : await this.options.throttle.take(this.client, account, hungUp.signal);
      if (!turn) this.log.info('POP3 client hung up while its login waited; nothing was checked');
      return turn;
    } finally {
      socket.off('close', abort);
    }
  }
}
