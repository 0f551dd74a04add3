/**
 * Per-device SMTP transcripts: the last few sessions of each client, commands
 * and replies, kept in memory for the "why can't the printer send?" moment.
 * smtp-server hands us every command and reply through its logger interface,
 * already with AUTH credentials redacted; message bodies are never logged by it.
 * A failed TLS handshake, the typical symptom of an old device, is noted too:
 * after STARTTLS in the session's own transcript, on the implicit-TLS port
 * (where no session exists yet) as a one-line transcript of its own.
 */
import { format } from 'node:util';

export interface TranscriptLine {
  at: string;
  /** C: client -> relay, S: relay -> client, E: what happened to the connection (a failed TLS handshake) */
  dir: 'C' | 'S' | 'E';
  text: string;
}

export interface Transcript {
  session: string;
  client: string;
  startedAt: string;
  lines: TranscriptLine[];
  /** True when lines were dropped because the session was very long */
  truncated: boolean;
}

export interface TranscriptLimits {
  sessionsPerClient: number;
  linesPerSession: number;
  lineLength: number;
  clients: number;
}

const DEFAULT_LIMITS: TranscriptLimits = {
  sessionsPerClient: 10,
  linesPerSession: 200,
  lineLength: 300,
  clients: 500,
};

type LogEntry = { tnx?: string; cid?: string; err?: unknown };

/** What smtp-server attaches to an error from a TLS handshake (its normalizeTLSError) */
interface TlsErrorMeta {
  stage: 'connect';
  tlsProtocol?: string | null;
  remoteAddress?: string;
}

function tlsMeta(err: unknown): TlsErrorMeta | undefined {
  const meta = (err as { meta?: Partial<TlsErrorMeta> } | undefined)?.meta;
  return meta?.stage === 'connect' ? (meta as TlsErrorMeta) : undefined;
}

/** OpenSSL's "...:error:0A000102:SSL routines:func:unsupported protocol:file:line:" -> "unsupported protocol" */
function opensslReason(message: string): string {
  const parts = message.split(':');
  return parts.length >= 6 && parts[1] === 'error' ? (parts[5] ?? message) : message.trim();
}

/** The transcript line for a failed handshake, with the fix when it is the usual old-device case */
export function handshakeLine(err: unknown): string {
  const code = String((err as { code?: unknown }).code ?? '');
  const reason = opensslReason(String((err as { message?: unknown }).message ?? 'unknown error'));
  const offered = tlsMeta(err)?.tlsProtocol;
  const old =
    code === 'ERR_SSL_UNSUPPORTED_PROTOCOL' ||
    /unsupported protocol|no shared cipher|version too low/i.test(reason);
  return `TLS handshake failed: ${reason}${offered ? ` (device offered ${offered})` : ''}${old ? '; an old device needs smtp.tls.profile "legacy"' : ''}`;
}

export class TranscriptLog {
  private readonly open = new Map<string, Transcript>();
  /** Client address -> finished sessions, newest last; Map order doubles as least-recently-used */
  private readonly byClient = new Map<string, Transcript[]>();
  /** Makes the ids of handshake-only transcripts unique */
  private handshakes = 0;

  constructor(private readonly limits: TranscriptLimits = DEFAULT_LIMITS) {}

  start(session: string, client: string): void {
    this.open.set(session, {
      session,
      client,
      startedAt: new Date().toISOString(),
      lines: [],
      truncated: false,
    });
  }

  finish(session: string): void {
    const transcript = this.open.get(session);
    if (!transcript) return;
    this.open.delete(session);
    const list = this.byClient.get(transcript.client) ?? [];
    this.byClient.delete(transcript.client);
    this.byClient.set(
      transcript.client,
      [...list, transcript].slice(-this.limits.sessionsPerClient),
    );
    if (this.byClient.size > this.limits.clients)
      this.byClient.delete(this.byClient.keys().next().value as string);
  }

  /** Finished and ongoing sessions of one client, oldest first */
  forClient(client: string): Transcript[] {
    const ongoing = [...this.open.values()].filter((t) => t.client === client);
    return [...(this.byClient.get(client) ?? []), ...ongoing];
  }

  /** A bunyan-style logger for smtp-server's `logger` option */
  get sink(): Record<
    'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal',
    (entry: LogEntry, ...args: unknown[]) => void
  > {
    const record = (entry: LogEntry, ...args: unknown[]) => this.record(entry, args);
    // A connection's error is logged as ("%s %s %s", session id, client, message)
    const error = (entry: LogEntry, ...args: unknown[]) =>
      this.sessionError(String(args[1] ?? ''), entry.err);
    const ignore = () => undefined;
    return { trace: ignore, debug: record, info: ignore, warn: ignore, error, fatal: ignore };
  }

  /**
   * A listener's error (smtp-server's "error" event): a handshake that failed on
   * the implicit-TLS port, before any session, becomes a transcript of its own
   */
  serverError(err: unknown): void {
    const client = tlsMeta(err)?.remoteAddress;
    if (!client) return;
    const session = `tls-${Date.now().toString(36)}-${(this.handshakes++).toString(36)}`;
    this.start(session, client);
    this.note(session, handshakeLine(err));
    this.finish(session);
  }

  private sessionError(session: string, err: unknown): void {
    if (tlsMeta(err)) this.note(session, handshakeLine(err));
  }

  /** One E line; the library reports some failures twice, so a repeat is not added */
  private note(session: string, text: string): void {
    const transcript = this.open.get(session);
    if (!transcript || transcript.lines.at(-1)?.text === text) return;
    this.push(transcript, 'E', text);
  }

  private record(entry: LogEntry, args: unknown[]): void {
    const transcript = entry.cid ? this.open.get(entry.cid) : undefined;
    if (!transcript || (entry.tnx !== 'command' && entry.tnx !== 'send' && entry.tnx !== 'data'))
      return;
    // Commands and replies come as ('C:' | 'S:', text) and need no formatting
    const [prefix, text] = args;
    const plain =
      args.length === 2 && (prefix === 'C:' || prefix === 'S:') && typeof text === 'string';
    const line = plain ? `${prefix} ${text}` : format(...args);
    const dir = line.startsWith('S:') ? 'S' : 'C';
    // A multi-line reply (EHLO's) reads best one line each, as on the wire
    for (const text of line
      .replace(/^[CS]:\s*/, '')
      .split(/\r?\n/)
      .filter(Boolean))
      this.push(transcript, dir, text);
  }

  private push(transcript: Transcript, dir: TranscriptLine['dir'], text: string): void {
    if (transcript.lines.length >= this.limits.linesPerSession) {
      transcript.truncated = true;
      return;
    }
    transcript.lines.push({
      at: new Date().toISOString(),
      dir,
      text: text.replace(/[^\x20-\x7e]/g, '?').slice(0, this.limits.lineLength),
    });
  }
}
