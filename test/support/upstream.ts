/**
 * A real upstream for tests: smtp-server (the stock library, not our adapted
 * one) on loopback, with a real certificate, optionally requiring STARTTLS and
 * AUTH. Records every message it accepts, byte for byte.
 */
import type { AddressInfo, Socket } from 'node:net';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { makeCerts } from './certs.js';

export interface ReceivedMessage {
  from: string;
  to: string[];
  raw: Buffer;
  secure: boolean;
  user: string | undefined;
}

/** A reply to force: [code, text] */
export type Reply = [number, string];

export interface UpstreamOptions {
  host?: string;
  port?: number;
  /** Refuse MAIL until STARTTLS has been done */
  requireTls?: boolean;
  /** Implicit TLS from the first byte (port 465 style) */
  implicitTls?: boolean;
  /** Offer STARTTLS at all (default true) */
  offerTls?: boolean;
  auth?: { user: string; pass: string };
  /** Which certificate to present */
  certificate?: 'good' | 'wrongname' | 'expired' | 'selfsigned';
  rcptReply?: (address: string) => Reply | undefined;
  /** Called per DATA with the 1-based attempt number of this upstream */
  dataReply?: (attempt: number, message: ReceivedMessage) => Reply | undefined;
  /** Wait this long before answering each DATA (a slow destination) */
  dataDelayMs?: number;
  /** After answering the DATA with this 1-based attempt number, close that connection (the server ending a reused session) */
  closeAfterData?: (attempt: number) => boolean;
  /** Record every SMTP command verb the clients send, in `commands` */
  recordCommands?: boolean;
  extra?: Partial<SMTPServerOptions>;
}

export interface Upstream {
  port: number;
  host: string;
  messages: ReceivedMessage[];
  dataAttempts: number;
  /** TCP connections accepted so far */
  connections: number;
  /** Connections open now */
  openConnections: number;
  /** The most connections that were open at the same time */
  peakConnections: number;
  /** Command verbs in arrival order ("EHLO", "MAIL", "RSET", ...), with recordCommands */
  commands: string[];
  /** Resolves once `count` messages have been accepted */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  close(): Promise<void>;
}

/**
 * Relay settings that send through `upstream` as the smarthost over verified
 * STARTTLS (trusting the test CA); `delivery` adds or replaces delivery keys.
 */
export function viaSmarthost(
  upstream: Pick<Upstream, 'port'>,
  delivery: Record<string, unknown> = {},
  smarthost: Record<string, unknown> = {},
) {
  return {
    delivery: {
      smarthost: { host: '127.0.0.1', port: upstream.port, security: 'starttls', ...smarthost },
      tls: { verify: true, caFile: makeCerts().caFile },
      ...delivery,
    },
  };
}

/** smtp-server's open sessions (not in its typings): each has the session id and close() */
const connectionsOf = (server: SMTPServer): Set<{ id: string; close(): void }> =>
  (server as unknown as { connections: Set<{ id: string; close(): void }> }).connections;

const reject = ([code, text]: Reply): Error =>
  Object.assign(new Error(text), { responseCode: code });

export async function startUpstream(options: UpstreamOptions = {}): Promise<Upstream> {
  const certs = makeCerts();
  const pair = {
    good: [certs.key, certs.cert],
    wrongname: [certs.wrongNameKey, certs.wrongNameCert],
    expired: [certs.expiredKey, certs.expiredCert],
    selfsigned: [certs.selfSignedKey, certs.selfSignedCert],
  }[options.certificate ?? 'good'];
  const messages: ReceivedMessage[] = [];
  const waiters: (() => void)[] = [];
  const state = { dataAttempts: 0, connections: 0, open: 0, peakConnections: 0 };
  const commands: string[] = [];
  const recordCommands = {
    debug: (entry: { tnx?: string; command?: string }) =>
      void (entry.tnx === 'command' && entry.command && commands.push(entry.command)),
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
  };
  const server = new SMTPServer({
    key: pair[0],
    cert: pair[1],
    secure: options.implicitTls ?? false,
    hideSTARTTLS: options.offerTls === false,
    disabledCommands: [
      ...(options.auth ? [] : ['AUTH']),
      ...(options.offerTls === false ? ['STARTTLS'] : []),
    ],
    authOptional: !options.auth,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: options.recordCommands
      ? (recordCommands as unknown as SMTPServerOptions['logger'])
      : false,
    disableReverseLookup: true,
    onAuth(auth, _session, callback) {
      if (
        options.auth &&
        auth.username === options.auth.user &&
        auth.password === options.auth.pass
      )
        return callback(null, { user: auth.username });
      callback(reject([535, '5.7.8 Authentication credentials invalid']));
    },
    onMailFrom(_address, session: SMTPServerSession, callback) {
      if (options.requireTls && !session.secure)
        return callback(reject([530, '5.7.0 Must issue a STARTTLS command first']));
      callback();
    },
    onRcptTo(address, _session, callback) {
      const reply = options.rcptReply?.(address.address);
      callback(reply ? reject(reply) : undefined);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        state.dataAttempts++;
        const message: ReceivedMessage = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
          secure: session.secure,
          user: typeof session.user === 'string' ? session.user : undefined,
        };
        const attempt = state.dataAttempts;
        const reply = options.dataReply?.(attempt, message);
        const answer = () => {
          if (reply) callback(reject(reply));
          else {
            messages.push(message);
            waiters.splice(0).forEach((wake) => wake());
            callback(null, 'Ok: accepted by test upstream');
          }
          // After the reply is written: the client has its answer, then loses the connection
          if (options.closeAfterData?.(attempt))
            setImmediate(() =>
              [...connectionsOf(server)].find((c) => c.id === session.id)?.close(),
            );
        };
        if (options.dataDelayMs) setTimeout(answer, options.dataDelayMs);
        else answer();
      });
    },
    ...options.extra,
  });
  // A relay killed mid-delivery resets its connection; that is expected, not a test failure
  server.on('error', () => undefined);
  server.server.on('connection', (socket: Socket) => {
    state.connections++;
    state.open++;
    state.peakConnections = Math.max(state.peakConnections, state.open);
    socket.once('close', () => state.open--);
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, rejectListen) => {
    server.server.once('error', rejectListen);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    host,
    messages,
    get dataAttempts() {
      return state.dataAttempts;
    },
    get connections() {
      return state.connections;
    },
    get openConnections() {
      return state.open;
    },
    get peakConnections() {
      return state.peakConnections;
    },
    commands,
    waitFor(count, timeoutMs = 15_000) {
      return new Promise((resolve, rejectWait) => {
        const timer = setTimeout(
          () =>
            rejectWait(
              new Error(`Upstream got ${messages.length} of ${count} messages in ${timeoutMs} ms`),
            ),
          timeoutMs,
        );
        const check = () => {
          if (messages.length >= count) {
            clearTimeout(timer);
            resolve(messages);
          } else waiters.push(check);
        };
        check();
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
