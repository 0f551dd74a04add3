/**
 * Browser sessions, in memory (a restart logs everyone out, which is fine
 * for a box with one admin). A session starts anonymous, carrying only a
 * CSRF token for the login and setup forms; logging in replaces it with a
 * fresh id, so a planted cookie is worth nothing.
 */
import { randomBytes } from 'node:crypto';

export interface Flash {
  kind: 'ok' | 'error';
  text: string;
}

export interface Session {
  id: string;
  csrf: string;
  authenticated: boolean;
  expires: number;
  flash?: Flash;
}

export const SESSION_COOKIE = 'edge_relay_session';
const ANONYMOUS_TTL_MS = 3_600_000;
const MAX_SESSIONS = 1_000;

const randomToken = (): string => randomBytes(32).toString('base64url');

export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  get(id: string | undefined, now = Date.now()): Session | undefined {
    const session = id ? this.sessions.get(id) : undefined;
    if (session && session.expires <= now) {
      this.sessions.delete(session.id);
      return undefined;
    }
    return session;
  }

  anonymous(now = Date.now()): Session {
    return this.add({
      id: randomToken(),
      csrf: randomToken(),
      authenticated: false,
      expires: now + ANONYMOUS_TTL_MS,
    });
  }

  /** Logs in: the old session (if any) ends and a new id is issued */
  authenticate(previous: Session | undefined, ttlMs: number, now = Date.now()): Session {
    if (previous) this.sessions.delete(previous.id);
    return this.add({
      id: randomToken(),
      csrf: randomToken(),
      authenticated: true,
      expires: now + ttlMs,
    });
  }

  end(session: Session): void {
    this.sessions.delete(session.id);
  }

  /** Password changed or set up anew: every other login ends */
  endAll(): void {
    this.sessions.clear();
  }

  private add(session: Session): Session {
    if (this.sessions.size >= MAX_SESSIONS) {
      // Drop anonymous sessions first, then the oldest
      const victim =
        [...this.sessions.values()].find((s) => !s.authenticated) ??
        this.sessions.values().next().value;
      if (victim) this.sessions.delete(victim.id);
    }
    this.sessions.set(session.id, session);
    return session;
  }
}
