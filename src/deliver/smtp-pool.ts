/**
 * Connection reuse: an SMTP connection that just carried a message waits a
 * few seconds for the next message to the same upstream (same host, port,
 * TLS and login), so a burst of scans costs one TCP+TLS+AUTH, not one per
 * message. Before reuse the connection must answer RSET; one that fails, or
 * that the server closes while idle, is dropped and never used again.
 */
import { createHash } from 'node:crypto';
// nodemailer's client side of a session with the upstream (not smtp-server's, which intake uses for devices)
import type UpstreamConnection from 'nodemailer/lib/smtp-connection';
import type { SmtpTarget } from './smtp-client.js';

export interface PoolLimits {
  /** Messages one connection carries before it is closed (Postfix: smtp_connection_reuse_count_limit) */
  maxMessages: number;
  /** How long an unused connection stays open */
  idleMs: number;
}

export const DEFAULT_POOL_LIMITS: PoolLimits = { maxMessages: 100, idleMs: 5_000 };

/** A connection lent to one transaction */
export interface Lease {
  /** null: this connection is never shared */
  key: string | null;
  connection: UpstreamConnection;
  /** Messages it carried before this one: 0 for a fresh connection */
  sent: number;
}

interface Idle extends Lease {
  key: string;
  timer: NodeJS.Timeout;
  onEnd: () => void;
}

/**
 * Connections are shared only between identical settings; the password is
 * hashed, never kept in a readable key. OAuth2 sessions are not shared: each
 * message presents the current token, so a revoked consent or token stops
 * mail at the next message, not up to 100 messages later.
 */
export function poolKey(target: SmtpTarget): string | null {
  if (target.auth?.method === 'oauth2') return null;
  const auth = target.auth ? [target.auth.user, target.auth.pass] : [];
  const parts = [
    target.host,
    target.port,
    target.security,
    target.verify,
    target.caFile ?? '',
    target.servername ?? '',
    target.name,
    ...auth,
  ];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/** RSET: true when the server answered 2xx. A connection lost meanwhile never calls back, it errors or ends */
function reset(connection: UpstreamConnection): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      connection.removeListener('error', lost);
      connection.removeListener('end', lost);
      resolve(ok);
    };
    const lost = () => done(false);
    connection.once('error', lost);
    connection.once('end', lost);
    connection.reset((err) => done(!err));
  });
}

/** QUIT politely, then make sure the socket goes */
export function closeConnection(connection: UpstreamConnection): void {
  connection.quit();
  connection.close();
}

export class SmtpPool {
  private readonly idle = new Map<string, Idle[]>();
  private closed = false;

  constructor(private readonly limits: PoolLimits = DEFAULT_POOL_LIMITS) {}

  /** An idle connection to the same upstream that answers RSET, else a new one from `open` */
  async acquire(target: SmtpTarget, open: () => Promise<UpstreamConnection>): Promise<Lease> {
    const key = poolKey(target);
    for (let lease = key ? this.take(key) : undefined; key && lease; lease = this.take(key)) {
      if (await reset(lease.connection)) return lease;
      closeConnection(lease.connection);
    }
    return { key, connection: await open(), sent: 0 };
  }

  /** Back into the pool after a successful transaction, or closed */
  release(lease: Lease, reusable: boolean): void {
    const { connection, key } = lease;
    const sent = lease.sent + 1;
    if (!key || !reusable || this.closed || sent >= this.limits.maxMessages || connection.destroyed)
      return closeConnection(connection);
    const entry: Idle = {
      key,
      connection,
      sent,
      timer: setTimeout(() => this.drop(entry, true), this.limits.idleMs),
      // The server closed it while idle (its own timeout, a restart)
      onEnd: () => this.drop(entry, false),
    };
    entry.timer.unref();
    connection.once('end', entry.onEnd);
    this.idle.set(key, [...(this.idle.get(key) ?? []), entry]);
  }

  /** Closes every idle connection; later releases close theirs at once */
  close(): void {
    this.closed = true;
    for (const entries of [...this.idle.values()])
      entries.forEach((entry) => this.drop(entry, true));
  }

  private take(key: string): Lease | undefined {
    const entry = this.idle.get(key)?.pop();
    if (!entry) return undefined;
    this.forget(entry);
    return { key, connection: entry.connection, sent: entry.sent };
  }

  private drop(entry: Idle, close: boolean): void {
    this.forget(entry);
    if (close) closeConnection(entry.connection);
  }

  private forget(entry: Idle): void {
    clearTimeout(entry.timer);
    entry.connection.removeListener('end', entry.onEnd);
    const rest = (this.idle.get(entry.key) ?? []).filter((other) => other !== entry);
    if (rest.length) this.idle.set(entry.key, rest);
    else this.idle.delete(entry.key);
  }
}
