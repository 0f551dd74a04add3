/**
 * Errors as values that know how they surface on the wire. An SMTP hook rejects
 * with `responseCode`; the queue classifies by `kind`; the CLI exits with `exitCode`.
 */

export type ErrorKind = 'temporary' | 'permanent' | 'config' | 'usage';

export interface RelayErrorOptions {
  kind: ErrorKind;
  /** SMTP reply code this error maps to when it reaches a client */
  smtpCode?: number;
  /** Enhanced status code (RFC 3463), e.g. "4.3.1" */
  enhanced?: string;
  cause?: unknown;
}

export class RelayError extends Error {
  readonly kind: ErrorKind;
  readonly smtpCode: number;
  readonly enhanced: string;

  constructor(message: string, options: RelayErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RelayError';
    this.kind = options.kind;
    this.smtpCode = options.smtpCode ?? (options.kind === 'permanent' ? 550 : 451);
    this.enhanced = options.enhanced ?? (this.smtpCode >= 500 ? '5.0.0' : '4.0.0');
  }

  /** The shape smtp-server expects from a rejecting hook */
  get responseCode(): number {
    return this.smtpCode;
  }

  /** "452 4.3.1 Insufficient system storage" style text for replies and logs */
  toReply(): string {
    return `${this.smtpCode} ${this.enhanced} ${this.message}`;
  }
}

/** Invalid configuration or bad command-line usage: the CLI exits 2 */
export class ConfigError extends RelayError {
  constructor(message: string, cause?: unknown) {
    super(message, { kind: 'config', cause });
    this.name = 'ConfigError';
  }
}

export class UsageError extends RelayError {
  constructor(message: string) {
    super(message, { kind: 'usage' });
    this.name = 'UsageError';
  }
}

export const smtpReject = (smtpCode: number, enhanced: string, message: string): RelayError =>
  new RelayError(message, { kind: smtpCode >= 500 ? 'permanent' : 'temporary', smtpCode, enhanced });

/** Node's errno code of a system error, if it is one */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
