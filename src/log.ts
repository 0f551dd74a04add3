/**
 * One logger for the process. JSON lines on stdout; lines about a message
 * carry `queueId`, lines about a connection carry `session`. Anything that
 * looks like a secret is redacted before it is written.
 *
 * Lines are written asynchronously (pino flushes what is pending when the
 * process exits): a synchronous write per line sat between a message's flush
 * and its `250`.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

const REDACT = [
  'password',
  '*.password',
  '*.*.password',
  'pass',
  '*.pass',
  'secret',
  '*.secret',
  'token',
  '*.token',
  'accessToken',
  '*.accessToken',
  'refreshToken',
  '*.refreshToken',
  'authorization',
  '*.authorization',
];

export interface LoggerOptions {
  level?: string;
  /** Where lines go; defaults to stdout */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.EDGE_RELAY_LOG_LEVEL ?? 'info';
  return pino(
    {
      level,
      base: undefined,
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that drops everything, for CLI commands that only print results */
export const silentLogger = (): Logger => pino({ level: 'silent' });
