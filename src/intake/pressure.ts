/**
 * Who gives way when the SMTP listener fills up, and how long a session may go
 * without moving mail forward (pure: the sessions and the clock are passed in).
 *
 * - Progress, not chatter, keeps a session open. NOOP, RSET, HELO/EHLO, VRFY
 *   and the like reset the socket's idle timer but move no mail, so a host
 *   could hold a slot for ever with them. Progress is the connect, an accepted
 *   MAIL or RCPT, and a message body arriving at MIN_DATA_RATE or faster (a
 *   byte every few seconds in DATA is chatter too); a session without progress
 *   for the deadline is closed. The deadline is smtp.idleTimeout, shortened
 *   to STRESS_TIMEOUT_MS while the listener is STRESS_SHARE full (Postfix's
 *   stress mode uses 10 s the same way). A session whose body is in and that
 *   waits for our reply (the spool's fsync) is never closed.
 * - A full listener makes room instead of refusing the newcomer: the session
 *   that gives way has no message in progress, belongs to the client holding
 *   the most connections, and has gone longest without progress. A host
 *   holding many slots gives way long before a device holding one.
 */

export interface SessionState {
  id: string;
  client: string;
  /** Epoch ms of the connect, the last MAIL or RCPT accepted, or the last body bytes at MIN_DATA_RATE */
  lastProgress: number;
  /** MAIL was accepted and the message is not done: never closed to make room */
  inTransaction: boolean;
  /** The body is in and the session waits for our verdict: never stalled */
  awaitingReply: boolean;
}

/** The share of smtp.maxConnections from which the listener counts as under stress */
export const STRESS_SHARE = 0.8;
/** The progress deadline under stress (Postfix: smtpd_timeout = 10s in stress mode) */
export const STRESS_TIMEOUT_MS = 10_000;
/** Bytes a second a message body must average to count as progress (Postfix: smtpd_min_data_rate = 500) */
export const MIN_DATA_RATE = 500;

export const underStress = (open: number, maxConnections: number): boolean =>
  open >= Math.ceil(maxConnections * STRESS_SHARE);

/** How long a session may go without progress, with `open` of `maxConnections` in use */
export function progressDeadlineMs(
  open: number,
  maxConnections: number,
  idleTimeoutMs: number,
): number {
  return underStress(open, maxConnections)
    ? Math.min(idleTimeoutMs, STRESS_TIMEOUT_MS)
    : idleTimeoutMs;
}

/** Whether `bytes` of body received over the `elapsedMs` since the last progress are progress */
export const bodyProgressed = (bytes: number, elapsedMs: number): boolean =>
  bytes > 0 && bytes * 1000 >= MIN_DATA_RATE * elapsedMs;

/** The sessions that made no progress within `deadlineMs` */
export function stalled<S extends SessionState>(
  sessions: readonly S[],
  now: number,
  deadlineMs: number,
): S[] {
  return sessions.filter(
    (session) => !session.awaitingReply && now - session.lastProgress >= deadlineMs,
  );
}

/** The session to close so a newcomer fits; undefined when every session has a message in progress */
export function giveWay<S extends SessionState>(sessions: readonly S[]): S | undefined {
  const held = new Map<string, number>();
  for (const session of sessions) held.set(session.client, (held.get(session.client) ?? 0) + 1);
  const rank = (session: SessionState) => held.get(session.client) ?? 0;
  let chosen: S | undefined;
  for (const session of sessions) {
    if (session.inTransaction) continue;
    if (
      !chosen ||
      rank(session) > rank(chosen) ||
      (rank(session) === rank(chosen) && session.lastProgress < chosen.lastProgress)
    )
      chosen = session;
  }
  return chosen;
}
