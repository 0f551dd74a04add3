/**
 * Per-device SMTP transcripts: the last few sessions of each client, commands
 * and replies, kept in memory for the "why can't the printer send?" moment.
 * smtp-server hands us every command and reply through its logger interface,
 * already with AUTH credentials redacted; message bodies are never logged by it.
 */
import { format } from 'node:util';

export interface TranscriptLine {
  at: string;
  /** C: client -> relay, S: relay -> client */
  dir: 'C' | 'S';
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

const DEFAULT_LIMITS: TranscriptLimits = { sessionsPerClient: 10, linesPerSession: 200, lineLength: 300, clients: 500 };

type LogEntry = { tnx?: string; cid?: string };

export class TranscriptLog {
  private readonly open = new Map<string, Transcript>();
  /** Client address -> finished sessions, newest last; Map order doubles as least-recently-used */
  private readonly byClient = new Map<string, Transcript[]>();

  constructor(private readonly limits: TranscriptLimits = DEFAULT_LIMITS) {}

  start(session: string, client: string): void {
    this.open.set(session, { session, client, startedAt: new Date().toISOString(), lines: [], truncated: false });
  }

  finish(session: string): void {
    const transcript = this.open.get(session);
    if (!transcript) return;
    this.open.delete(session);
    const list = this.byClient.get(transcript.client) ?? [];
    this.byClient.delete(transcript.client);
    this.byClient.set(transcript.client, [...list, transcript].slice(-this.limits.sessionsPerClient));
    if (this.byClient.size > this.limits.clients) this.byClient.delete(this.byClient.keys().next().value as string);
  }

  /** Finished and ongoing sessions of one client, oldest first */
  forClient(client: string): Transcript[] {
    const ongoing = [...this.open.values()].filter((t) => t.client === client);
    return [...(this.byClient.get(client) ?? []), ...ongoing];
  }

  /** A bunyan-style logger for smtp-server's `logger` option */
  get sink(): Record<'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal', (entry: LogEntry, ...args: unknown[]) => void> {
    const record = (entry: LogEntry, ...args: unknown[]) => this.record(entry, args);
    const ignore = () => undefined;
    return { trace: ignore, debug: record, info: ignore, warn: ignore, error: ignore, fatal: ignore };
  }

  private record(entry: LogEntry, args: unknown[]): void {
    const transcript = entry.cid ? this.open.get(entry.cid) : undefined;
    if (!transcript || (entry.tnx !== 'command' && entry.tnx !== 'send' && entry.tnx !== 'data')) return;
    const line = format(...args);
    const dir = line.startsWith('S:') ? 'S' : 'C';
    const text = line.replace(/^[CS]:\s*/, '');
    if (transcript.lines.length >= this.limits.linesPerSession) {
      transcript.truncated = true;
      return;
    }
    transcript.lines.push({ at: new Date().toISOString(), dir, text: text.replace(/[^\x20-\x7e]/g, '?').slice(0, this.limits.lineLength) });
  }
}
