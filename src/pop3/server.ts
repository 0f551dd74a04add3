/**
 * The POP3 listeners: the plain port (STLS offered) and, when configured, an
 * implicit-TLS port (995 style). Caps concurrent connections with a clear
 * -ERR, and on stop lets each session finish its current command.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Config } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { MailboxLocks } from '../mailbox/locks.js';
import type { MailboxStore } from '../mailbox/store.js';
import { parseDuration } from '../util/duration.js';
import { loadOrCreateCertificate } from '../util/tls-cert.js';
import { mailboxBackend } from './backend.js';
import { hangUp, Session, type Pop3LoginResult } from './session.js';
import { LoginThrottle } from '../util/login-throttle.js';

export interface Pop3Options {
  config: () => Config;
  mailboxes: MailboxStore;
  log: Logger;
  dataDir: string;
  /** Shared with housekeeping (retention, quota) so it never touches a mailbox a session has open */
  locks?: MailboxLocks;
}

export interface Pop3Events {
  login: [result: Pop3LoginResult];
}

export interface Pop3Server {
  addresses: { pop3: AddressInfo; pop3s?: AddressInfo };
  locks: MailboxLocks;
  /** Login results, for the metrics (the server is built before them) */
  events: EventEmitter<Pop3Events>;
  stop(): Promise<void>;
}

/** How long stop() lets sessions finish their current command (a RETR, a QUIT's deletions) */
const STOP_GRACE_MS = 4_000;
const DEFAULT_IDLE_MS = 10 * 60_000;
/**
 * Guessing: each failure doubles the wait before the next check, per address
 * and per mailbox (0.5 s, 1 s, 2 s ... 30 s). A turn more than 5 s away, or
 * behind 5 others, is refused at once, so guessers hold few connections
 */
const THROTTLE = {
  perClient: { baseMs: 500, maxMs: 30_000 },
  perAccount: { baseMs: 500, maxMs: 30_000 },
  maxWaitMs: 5_000,
  maxWaiting: 5,
} as const;
/** The share of connection slots that only addresses without recent failed logins may take */
const CLEAN_SHARE = 0.2;
/**
 * When the server is full, a new client from an address without failed
 * logins takes the place of the oldest connection that has not logged in for
 * this long (a real client logs in within milliseconds of connecting)
 */
const LOGIN_GRACE_MS = 2_000;

/** How many connections `client` may find open and still be let in */
function connectionLimit(maxConnections: number, suspect: boolean): number {
  return suspect ? maxConnections - Math.floor(maxConnections * CLEAN_SHARE) : maxConnections;
}

export async function startPop3(options: Pop3Options): Promise<Pop3Server> {
  const { config, log } = options;
  const settings = config().pop3;
  const certificate = await loadOrCreateCertificate({
    dataDir: options.dataDir,
    name: 'pop3',
    certFile: settings.tls.certFile,
    keyFile: settings.tls.keyFile,
    hostname: config().hostname,
    log,
  });
  const tlsOptions = {
    key: certificate.key,
    cert: certificate.cert,
    minVersion: 'TLSv1.2',
  } as const;
  const secureContext = tls.createSecureContext(tlsOptions);
  const locks = options.locks ?? new MailboxLocks();
  const backend = mailboxBackend(options.mailboxes, locks);
  const throttle = new LoginThrottle(THROTTLE);
  const events = new EventEmitter<Pop3Events>();
  const sessions = new Map<Session, Promise<void>>();
  const sockets = new Set<net.Socket>();

  /** Every raw connection, also those still in a TLS handshake, so stop() can end them all */
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  };

  const accept = (socket: net.Socket, secure: boolean) => {
    socket.on('error', (err) => log.debug({ err: errorMessage(err) }, 'POP3 socket error'));
    const current = config().pop3;
    const suspect = throttle.suspect(socket.remoteAddress ?? 'unknown');
    const limit = connectionLimit(current.maxConnections, suspect);
    if (sessions.size >= limit && (suspect || !makeRoom())) {
      log.warn(
        { client: socket.remoteAddress, limit, suspect },
        'POP3 connection refused: too many connections',
      );
      const why = suspect
        ? `; after failed logins from your address only ${limit} may be open`
        : '';
      hangUp(
        socket,
        `-ERR [SYS/TEMP] Too many POP3 connections (limit ${current.maxConnections}${why}), try again later\r\n`,
      );
      return;
    }
    const session = new Session({
      id: randomBytes(5).toString('hex'),
      socket,
      secure,
      backend,
      throttle,
      secureContext,
      requireTlsForLogin: current.requireTlsForLogin,
      idleTimeoutMs: parseDuration(current.idleTimeout) ?? DEFAULT_IDLE_MS,
      log,
      onLogin: (result) => events.emit('login', result),
    });
    sessions.set(
      session,
      session.run().finally(() => sessions.delete(session)),
    );
  };

  /** Closes the longest-waiting connection that has not logged in; false when there is none */
  const makeRoom = (): boolean => {
    // Sessions are kept in the order they connected: the first match is the oldest
    const idle = [...sessions.keys()].find((session) => session.notLoggedInFor(LOGIN_GRACE_MS));
    idle?.evict();
    return idle !== undefined;
  };

  const plain = net.createServer((socket) => accept(socket, false));
  plain.on('connection', track);
  const servers: net.Server[] = [plain];
  const pop3 = await listen(plain, settings.port, settings.host);
  let pop3s: AddressInfo | undefined;
  if (settings.tls.port) {
    const server = tls.createServer(tlsOptions, (socket) => accept(socket, true));
    server.on('connection', track);
    server.on('tlsClientError', (err, socket) =>
      log.info({ client: socket.remoteAddress, err: errorMessage(err) }, 'POP3S handshake failed'),
    );
    servers.push(server);
    pop3s = await listen(server, settings.tls.port, settings.host);
  }

  return {
    addresses: pop3s ? { pop3, pop3s } : { pop3 },
    locks,
    events,
    async stop() {
      const closed = servers.map(
        (server) => new Promise<void>((resolve) => server.close(() => resolve())),
      );
      for (const session of sessions.keys()) session.shutdown();
      const grace = new Promise<void>((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref());
      await Promise.race([Promise.all(sessions.values()), grace]);
      for (const socket of sockets) socket.destroy();
      await Promise.all(closed);
    },
  };
}

async function listen(server: net.Server, port: number, host: string): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}
