/**
 * A real upstream for tests: smtp-server (the stock library, not our adapted
 * one) on loopback, with a real certificate, optionally requiring STARTTLS and
 * AUTH. Records every message it accepts, byte for byte.
 */
import type { AddressInfo } from 'node:net';
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
  extra?: Partial<SMTPServerOptions>;
}

export interface Upstream {
  port: number;
  host: string;
  messages: ReceivedMessage[];
  dataAttempts: number;
  /** Resolves once `count` messages have been accepted */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  close(): Promise<void>;
}

/**
 * Relay settings that send through `upstream` as the smarthost over verified
 * STARTTLS (trusting the test CA); `delivery` adds or replaces delivery keys.
 */
export function viaSmarthost(upstream: Pick<Upstream, 'port'>, delivery: Record<string, unknown> = {}, smarthost: Record<string, unknown> = {}) {
  return {
    delivery: {
      smarthost: { host: '127.0.0.1', port: upstream.port, security: 'starttls', ...smarthost },
      tls: { verify: true, caFile: makeCerts().caFile },
      ...delivery,
    },
  };
}

const reject = ([code, text]: Reply): Error => Object.assign(new Error(text), { responseCode: code });

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
  const state = { dataAttempts: 0 };
  const server = new SMTPServer({
    key: pair[0],
    cert: pair[1],
    secure: options.implicitTls ?? false,
    hideSTARTTLS: options.offerTls === false,
    disabledCommands: [...(options.auth ? [] : ['AUTH']), ...(options.offerTls === false ? ['STARTTLS'] : [])],
    authOptional: !options.auth,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    disableReverseLookup: true,
    onAuth(auth, _session, callback) {
      if (options.auth && auth.username === options.auth.user && auth.password === options.auth.pass) return callback(null, { user: auth.username });
      callback(reject([535, '5.7.8 Authentication credentials invalid']));
    },
    onMailFrom(_address, session: SMTPServerSession, callback) {
      if (options.requireTls && !session.secure) return callback(reject([530, '5.7.0 Must issue a STARTTLS command first']));
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
        const reply = options.dataReply?.(state.dataAttempts, message);
        if (reply) return callback(reject(reply));
        messages.push(message);
        waiters.splice(0).forEach((wake) => wake());
        callback(null, 'Ok: accepted by test upstream');
      });
    },
    ...options.extra,
  });
  // A relay killed mid-delivery resets its connection; that is expected, not a test failure
  server.on('error', () => undefined);
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
    waitFor(count, timeoutMs = 15_000) {
      return new Promise((resolve, rejectWait) => {
        const timer = setTimeout(() => rejectWait(new Error(`Upstream got ${messages.length} of ${count} messages in ${timeoutMs} ms`)), timeoutMs);
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
