/**
 * One SMTP transaction to one upstream host with nodemailer's SMTP connection:
 * connect (TLS as the policy says), authenticate when configured, send one
 * message to its recipients, and report each recipient's outcome.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { Readable } from 'node:stream';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { allRecipients, type RecipientOutcome } from './outcome.js';
import { classifyFailure, describeFailure, type SmtpFailure } from './classify.js';

export type TlsMode = 'starttls' | 'tls' | 'none' | 'opportunistic';

export interface SmtpTarget {
  host: string;
  port: number;
  security: TlsMode;
  /** Verify the server certificate (chain and name) */
  verify: boolean;
  /** Extra trusted CA certificates (PEM file), added to Node's bundled store */
  caFile?: string;
  auth?: { user: string; pass: string };
  /** Our EHLO name */
  name: string;
  /** Certificate name to check; defaults to host */
  servername?: string;
  timeoutMs: number;
}

export interface Envelope {
  from: string;
  to: string[];
}

function trustStore(caFile: string | undefined): string[] | undefined {
  if (!caFile) return undefined;
  return [...tls.rootCertificates, readFileSync(caFile, 'utf8')];
}

function connectionOptions(target: SmtpTarget): ConstructorParameters<typeof SMTPConnection>[0] {
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
      servername: target.servername ?? target.host,
      ca: trustStore(target.caFile),
      minVersion: 'TLSv1.2',
    },
    logger: false,
  };
}

const asFailure = (err: unknown): SmtpFailure => (err instanceof Error ? (err as SmtpFailure) : { message: String(err) });

export async function sendOne(target: SmtpTarget, envelope: Envelope, body: Readable): Promise<RecipientOutcome[]> {
  const where = `${target.host}:${target.port}`;
  const connection = new SMTPConnection(connectionOptions(target));
  connection.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      connection.once('error', reject);
      connection.connect(() => {
        connection.removeListener('error', reject);
        resolve();
      });
    });
    if (target.auth?.user) {
      await new Promise<void>((resolve, reject) => connection.login({ user: target.auth!.user, pass: target.auth!.pass }, (err) => (err ? reject(err) : resolve())));
    }
    const info = await new Promise<SMTPConnection.SentMessageInfo>((resolve, reject) =>
      connection.send({ from: envelope.from, to: envelope.to }, body, (err, result) => (err ? reject(err) : resolve(result))),
    );
    return outcomesFromInfo(envelope, info, where);
  } catch (err) {
    body.destroy();
    return outcomesFromError(envelope, err, where);
  } finally {
    connection.quit();
    connection.close();
  }
}

function outcomesFromInfo(envelope: Envelope, info: SMTPConnection.SentMessageInfo, where: string): RecipientOutcome[] {
  const rejected = new Map<string, SmtpFailure>();
  for (const failure of (info.rejectedErrors ?? []) as (SmtpFailure & { recipient?: string })[]) {
    if (failure.recipient) rejected.set(failure.recipient, failure);
  }
  const detail = `${where} said: ${String(info.response ?? '').trim()}`;
  return envelope.to.map((address) => {
    const failure = rejected.get(address);
    return { address, outcome: failure ? classifyFailure(failure, where) : { status: 'delivered', detail } };
  });
}

function outcomesFromError(envelope: Envelope, err: unknown, where: string): RecipientOutcome[] {
  const failure = asFailure(err) as SmtpFailure & { rejectedErrors?: (SmtpFailure & { recipient?: string })[] };
  if (failure.rejectedErrors?.length) {
    // Every recipient refused at RCPT, each with its own reply
    const byRecipient = new Map(failure.rejectedErrors.map((f) => [f.recipient, f]));
    return envelope.to.map((address) => ({ address, outcome: classifyFailure(byRecipient.get(address) ?? failure, where) }));
  }
  return allRecipients(envelope.to, classifyFailure(failure, where));
}

