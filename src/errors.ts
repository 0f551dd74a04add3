/**
 * Errors as values that know how they surface on the wire. An SMTP hook rejects
 * with `responseCode`; the CLI exits by `kind`. Where one reaches a delivery,
 * deliver/failure-policy.ts turns it into the recipient's outcome.
 */

/**
 * temporary / permanent: for a client of this box (a device, a delivery), try
 * again or not. not-found: the request names a message or mailbox that is
 * not there (the page answers 400). config / usage: the CLI exits 2.
 */
export type ErrorKind = 'temporary' | 'permanent' | 'not-found' | 'config' | 'usage';

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
  new RelayError(message, {
    kind: smtpCode >= 500 ? 'permanent' : 'temporary',
    smtpCode,
    enhanced,
  });

/**
 * A file-system failure while storing mail (the spool, a mailbox), as the
 * reply a client sees: a full disk or an exhausted quota is 452 4.3.1 (mail
 * system full, RFC 3463), anything else 451 4.3.0. `storing` says what we
 * were doing, e.g. "queueing".
 */
export function storageFailure(err: unknown, storing: string): RelayError {
  if (err instanceof RelayError) return err;
  const code = errnoCode(err);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    const why = code === 'EDQUOT' ? 'disk quota exceeded' : 'disk full';
    return new RelayError(
      `Insufficient system storage (${why}) while ${storing}, try again later`,
      { kind: 'temporary', smtpCode: 452, enhanced: '4.3.1', cause: err },
    );
  }
  return new RelayError(`Local error while ${storing}: ${code ?? errorMessage(err)}`, {
    kind: 'temporary',
    smtpCode: 451,
    enhanced: '4.3.0',
    cause: err,
  });
}

/** Node's errno code of a system error, if it is one */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
    ? err.code
    : undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
