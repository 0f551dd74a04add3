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

/** Keys whose values never reach a log line, at any of the first three levels of a logged object */
const SECRET_KEYS = new Set([
  'password',
  'pass',
  'secret',
  'token',
  'accessToken',
  'refreshToken',
  'authorization',
]);
const REDACT_DEPTH = 3;
const CENSOR = '[redacted]';

/**
 * Returns the object with secret values replaced, copying only what changes.
 * Replaces pino's path redaction, which copied and re-serialized every logged
 * object (wildcard paths) at three lines per relayed message. A child
 * logger's bindings are not passed through it (pino applies the bindings
 * formatter to the root only): bind ids, never credentials.
 */
function redactSecrets<T extends object>(value: T, depth = 1): T {
  let out = value;
  for (const key in value) {
    const field: unknown = value[key];
    const clean = SECRET_KEYS.has(key)
      ? CENSOR
      : depth < REDACT_DEPTH && isPlainRecord(field)
        ? redactSecrets(field, depth + 1)
        : field;
    if (clean === field) continue;
    if (out === value) out = copyOf(value);
    (out as Record<string, unknown>)[key] = clean;
  }
  return out;
}

/** An error's message and stack are not enumerable, and a spread would drop them */
function copyOf<T extends object>(value: T): T {
  return value instanceof Error
    ? { ...value, type: value.name, message: value.message, stack: value.stack }
    : { ...value };
}

/** Objects to look into; not arrays, nor a Buffer, whose every byte is an enumerable key */
function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !ArrayBuffer.isView(value)
  );
}

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
      formatters: { log: redactSecrets },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that drops everything, for CLI commands that only print results */
export const silentLogger = (): Logger => pino({ level: 'silent' });
