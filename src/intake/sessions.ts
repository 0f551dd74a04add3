/**
 * The open SMTP sessions as the pressure policy sees them, and the closing it
 * decides on. The listeners' connection sets say what is open: the library
 * takes a connection out of its set the moment the server closes it (QUIT, a
 * 421), not when the client gets round to closing its socket, so a client that
 * reconnects right after QUIT finds its slot free again.
 */
// smtp-server's server side of a device's session (not nodemailer's, which deliver/ uses for the upstream)
import type { SMTPConnection as DeviceSession } from 'smtp-server/lib/smtp-connection.js';
import { formatDuration } from '../util/duration.js';
import type { LegacySMTPServer } from './legacy-server.js';
import {
  bodyProgressed,
  giveWay,
  progressDeadlineMs,
  stalled,
  underStress,
  type SessionState,
} from './pressure.js';

/** Where a session is with a message body: none, arriving from the client, or in and awaiting our reply */
type Body = 'none' | 'arriving' | 'in';

interface Tracked {
  client: string;
  lastProgress: number;
  body: Body;
  /** The socket's bytesRead at the last progress, to measure a body's rate */
  bytesAtProgress: number;
}

type Watched = SessionState & { connection: DeviceSession };

/** What a sweep or a full listener closed since the last report */
export interface Reclaimed {
  stalled: number;
  madeRoom: number;
}

/** The library's idle timeout when none is set (smtp-server's SOCKET_TIMEOUT) */
const LIBRARY_IDLE_MS = 60_000;

export class SessionWatch {
  private readonly sessions = new Map<string, Tracked>();
  private madeRoom = 0;

  constructor(
    private readonly servers: readonly LegacySMTPServer[],
    private readonly now: () => number = Date.now,
  ) {}

  /** Open sessions of `client` on every listener, counting only those the server has not closed */
  connectionsFrom(client: string): number {
    let open = 0;
    for (const connection of this.connections())
      if (this.sessions.get(connection.id)?.client === client) open++;
    return open;
  }

  /** A session was admitted: its connect is its first progress */
  opened(id: string, client: string): void {
    this.sessions.set(id, { client, lastProgress: this.now(), body: 'none', bytesAtProgress: 0 });
  }

  /** MAIL or RCPT was accepted */
  progressed(id: string): void {
    const session = this.sessions.get(id);
    if (session) session.lastProgress = this.now();
  }

  /** DATA was accepted: the body starts arriving; `in` once it is all there; `none` once we replied (progress) */
  body(id: string, body: Body): void {
    const session = this.sessions.get(id);
    if (!session) return;
    session.body = body;
    if (body === 'in') return;
    session.lastProgress = this.now();
    session.bytesAtProgress = this.find(id)?._socket.bytesRead ?? 0;
  }

  closed(id: string): void {
    this.sessions.delete(id);
  }

  /** Closes the session of `server` that gives way to a newcomer; false when none may */
  readonly makeRoom = (server: LegacySMTPServer): boolean => {
    const connection = giveWay(this.states(server))?.connection;
    if (!connection) return false;
    connection.send(
      421,
      `4.4.2 ${connection.name} Idle connection closed: the relay is full and another client is waiting, try again later`,
    );
    this.madeRoom++;
    return true;
  };

  /** Closes every session past its progress deadline; returns what was closed since the last sweep */
  sweep(): Reclaimed {
    let count = 0;
    for (const server of this.servers) {
      const { maxClients = Infinity, socketTimeout = LIBRARY_IDLE_MS } = server.options;
      const open = server.connections.size;
      const deadlineMs = progressDeadlineMs(open, maxClients, socketTimeout);
      const why = underStress(open, maxClients) ? ' while the relay is busy' : '';
      for (const { connection } of stalled(this.states(server), this.now(), deadlineMs)) {
        connection.send(
          421,
          `4.4.2 ${connection.name} No mail transaction progress in ${formatDuration(deadlineMs)}${why} (NOOP, RSET and HELO do not count), closing connection`,
        );
        count++;
      }
    }
    const reclaimed = { stalled: count, madeRoom: this.madeRoom };
    this.madeRoom = 0;
    return reclaimed;
  }

  private *connections(): Iterable<DeviceSession> {
    for (const server of this.servers) yield* server.connections;
  }

  private find(id: string): DeviceSession | undefined {
    for (const connection of this.connections()) if (connection.id === id) return connection;
    return undefined;
  }

  /** A body arriving at MIN_DATA_RATE or faster is progress; a trickle is not */
  private measureBody(session: Tracked, connection: DeviceSession, now: number): void {
    const read = connection._socket.bytesRead;
    if (!bodyProgressed(read - session.bytesAtProgress, now - session.lastProgress)) return;
    session.lastProgress = now;
    session.bytesAtProgress = read;
  }

  /** Sessions admitted by onConnect (one still being greeted is not one yet), their body rates measured up to now */
  private states(server: LegacySMTPServer): Watched[] {
    const now = this.now();
    const states: Watched[] = [];
    for (const connection of server.connections) {
      const tracked = this.sessions.get(connection.id);
      if (!tracked) continue;
      if (tracked.body === 'arriving') this.measureBody(tracked, connection, now);
      const { client, lastProgress, body } = tracked;
      states.push({
        id: connection.id,
        client,
        lastProgress,
        inTransaction: Boolean(connection.session.envelope?.mailFrom),
        awaitingReply: body === 'in',
        connection,
      });
    }
    return states;
  }
}
