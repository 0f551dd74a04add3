/**
 * One SMTP transaction to one upstream host with nodemailer's SMTP connection:
 * connect (TLS as the policy says) and authenticate when configured, or reuse
 * a pooled connection, send one message to its recipients, and report each
 * recipient's outcome. A failure
 * before the transaction began (connect, greeting, EHLO, TLS) is told apart,
 * so MX delivery can move on to the next host.
 */
import net from 'node:net';
import type { Readable } from 'node:stream';
// nodemailer's client side of a session with the upstream (not smtp-server's, which intake uses for devices)
import UpstreamConnection from 'nodemailer/lib/smtp-connection';
import type { TlsMode } from '../tls/policy.js';
import { trustStore } from '../tls/trust.js';
import { formatDuration } from '../util/duration.js';
import { deferred, fromSmtpFailure, type SmtpFailure } from './failure-policy.js';
import { allRecipients, type Failure, type RecipientOutcome } from './outcome.js';
import { login, type SmtpAuth } from './smtp-auth.js';
import { closeConnection, type Lease, type SmtpPool } from './smtp-pool.js';
import { ehloSize, type SizeListener } from './upstream-limits.js';

export interface SmtpTarget {
  host: string;
  port: number;
  security: TlsMode;
  /** Verify the server certificate (chain and name) */
  verify: boolean;
  /** Extra trusted CA certificates (PEM file), added to Node's bundled store */
  caFile?: string;
  auth?: SmtpAuth;
  /** Our EHLO name */
  name: string;
  /** Certificate name to check and to name the host in errors (the MX name when host is its address); defaults to host */
  servername?: string;
  timeoutMs: number;
}

export interface Envelope {
  from: string;
  to: string[];
  /** Message size in bytes, when known: allows slow links more time */
  size?: number;
  /** Told the SIZE the upstream's EHLO advertised, at every connection used (upstream-limits.ts) */
  heardSize?: SizeListener;
}

/** The slowest upload we wait for (64 kbit/s): a 50 MB scan gets ~100 minutes on top of the base */
const MIN_BYTES_PER_SECOND = 8 * 1024;

/**
 * The whole transaction's deadline. The socket timeout only fires on silence,
 * so an upstream that drips one byte a second would otherwise hold a delivery
 * slot for ever.
 */
export const transactionDeadlineMs = (target: SmtpTarget, envelope: Envelope): number =>
  3 * target.timeoutMs + Math.ceil(((envelope.size ?? 0) / MIN_BYTES_PER_SECOND) * 1000);

function connectionOptions(
  target: SmtpTarget,
): ConstructorParameters<typeof UpstreamConnection>[0] {
  return {
    host: target.host,
    port: target.port,
    name: target.name,
    secure: target.security === 'tls',
    requireTLS: target.security === 'starttls',
    ignoreTLS: target.security === 'none',
    opportunisticTLS: target.security === 'opportunistic',
    connectionTimeout: Math.min(target.timeoutMs, 30_000),
    greetingTimeout: Math.min(target.timeoutMs, 30_000),
    socketTimeout: target.timeoutMs,
    tls: {
      rejectUnauthorized: target.verify,
      // No SNI for an address (RFC 6066); Node then checks the certificate against the address
      servername: target.servername ?? (net.isIP(target.host) ? undefined : target.host),
      ca: trustStore(target.caFile),
      minVersion: 'TLSv1.2',
    },
    logger: false,
  };
}

const asFailure = (err: unknown): SmtpFailure =>
  err instanceof Error ? (err as SmtpFailure) : { message: String(err) };

/** What one connection achieved */
export type Attempt =
  /** The server answered the transaction: each recipient has its outcome */
  | { kind: 'answered'; outcomes: RecipientOutcome[] }
  /** No transaction happened (refused, timeout, greeting, EHLO, TLS): another host may do better */
  | { kind: 'unreachable'; outcome: Failure; tlsFailed: boolean };

export const describeTarget = (target: SmtpTarget): string =>
  `${target.servername ?? target.host}:${target.port}`;

function connect(connection: UpstreamConnection): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    connection.once('error', reject);
    connection.connect(() => {
      connection.removeListener('error', reject);
      resolve();
    });
  });
}

/** Connect, greeting, EHLO and TLS as `target` says, then QUIT (the upstream probe); secure when encrypted */
export async function greet(target: SmtpTarget): Promise<{ secure: boolean }> {
  const connection = new UpstreamConnection(connectionOptions(target));
  connection.on('error', () => undefined);
  try {
    await connect(connection);
    return { secure: connection.secure };
  } finally {
    closeConnection(connection);
  }
}

/** A new connection: connected, TLS as the target says, logged in */
async function open(target: SmtpTarget): Promise<UpstreamConnection> {
  const connection = new UpstreamConnection(connectionOptions(target));
  connection.on('error', () => undefined);
  try {
    await connect(connection);
    if (target.auth) await login(connection, target.auth);
    return connection;
  } catch (err) {
    // STARTTLS refused, or the handshake (certificate check included) failed
    const tlsFailed = asFailure(err).code === 'ETLS' || connection.upgrading === true;
    closeConnection(connection);
    throw Object.assign(asFailure(err), { tlsFailed });
  }
}

/**
 * One transaction, over a pooled connection when `pool` has one for this
 * target. Only a transaction the server answered with success gives the
 * connection back; anything else closes it.
 */
export async function attemptDelivery(
  target: SmtpTarget,
  envelope: Envelope,
  openBody: () => Promise<Readable>,
  pool: SmtpPool,
): Promise<Attempt> {
  const where = describeTarget(target);
  const run: { phase: 'setup' | 'transaction'; lease?: Lease; timedOut: boolean } = {
    phase: 'setup',
    timedOut: false,
  };
  const limit = transactionDeadlineMs(target, envelope);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<Attempt>((resolve) => {
    timer = setTimeout(() => {
      run.timedOut = true;
      if (run.lease) closeConnection(run.lease.connection);
      const outcome = deferred(
        `ETIMEDOUT: no complete SMTP transaction within ${formatDuration(limit)} (${where})`,
      );
      resolve(
        run.phase === 'setup'
          ? { kind: 'unreachable', outcome, tlsFailed: false }
          : { kind: 'answered', outcomes: allRecipients(envelope.to, outcome) },
      );
    }, limit);
  });
  const work = async (): Promise<Attempt> => {
    try {
      run.lease = await pool.acquire(target, () => open(target));
    } catch (err) {
      const failure = asFailure(err) as SmtpFailure & { tlsFailed?: boolean };
      return {
        kind: 'unreachable',
        outcome: fromSmtpFailure(failure, where),
        tlsFailed: failure.tlsFailed === true,
      };
    }
    const lease = run.lease;
    envelope.heardSize?.(ehloSize(lease.connection), target.servername ?? target.host);
    let healthy = false;
    try {
      if (run.timedOut)
        return { kind: 'unreachable', outcome: deferred(`ETIMEDOUT (${where})`), tlsFailed: false };
      run.phase = 'transaction';
      const outcomes = await transaction(lease.connection, envelope, openBody, where);
      healthy = outcomes.ok;
      return { kind: 'answered', outcomes: outcomes.recipients };
    } finally {
      pool.release(lease, healthy && !run.timedOut);
    }
  };
  try {
    return await Promise.race([work(), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** MAIL, RCPT, DATA on an open connection; ok when the server accepted the message */
async function transaction(
  connection: UpstreamConnection,
  envelope: Envelope,
  openBody: () => Promise<Readable>,
  where: string,
): Promise<{ ok: boolean; recipients: RecipientOutcome[] }> {
  const body = await openBody();
  try {
    const info = await new Promise<UpstreamConnection.SentMessageInfo>((resolve, reject) =>
      connection.send({ from: envelope.from, to: envelope.to }, body, (err, result) =>
        err ? reject(err) : resolve(result),
      ),
    );
    return { ok: true, recipients: outcomesFromInfo(envelope, info, where) };
  } catch (err) {
    body.destroy();
    return { ok: false, recipients: outcomesFromError(envelope, err, where) };
  }
}

/** One host, no fallback: the smarthost */
export async function sendOne(
  target: SmtpTarget,
  envelope: Envelope,
  openBody: () => Promise<Readable>,
  pool: SmtpPool,
): Promise<RecipientOutcome[]> {
  const attempt = await attemptDelivery(target, envelope, openBody, pool);
  return attempt.kind === 'answered'
    ? attempt.outcomes
    : allRecipients(envelope.to, attempt.outcome);
}

function outcomesFromInfo(
  envelope: Envelope,
  info: UpstreamConnection.SentMessageInfo,
  where: string,
): RecipientOutcome[] {
  const rejected = new Map<string, SmtpFailure>();
  for (const failure of (info.rejectedErrors ?? []) as (SmtpFailure & { recipient?: string })[]) {
    if (failure.recipient) rejected.set(failure.recipient, failure);
  }
  const detail = `${where} said: ${String(info.response ?? '').trim()}`;
  return envelope.to.map((address) => {
    const failure = rejected.get(address);
    return {
      address,
      outcome: failure ? fromSmtpFailure(failure, where) : { status: 'delivered', detail },
    };
  });
}

function outcomesFromError(envelope: Envelope, err: unknown, where: string): RecipientOutcome[] {
  const failure = asFailure(err) as SmtpFailure & {
    rejectedErrors?: (SmtpFailure & { recipient?: string })[];
  };
  if (failure.rejectedErrors?.length) {
    // Every recipient refused at RCPT, each with its own reply
    const byRecipient = new Map(failure.rejectedErrors.map((f) => [f.recipient, f]));
    return envelope.to.map((address) => ({
      address,
      outcome: fromSmtpFailure(byRecipient.get(address) ?? failure, where),
    }));
  }
  return allRecipients(envelope.to, fromSmtpFailure(failure, where));
}
