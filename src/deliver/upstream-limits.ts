/**
 * The largest message each upstream accepts (RFC 1870 SIZE): learned from
 * its EHLO reply every time we use a connection to it, or known fixed for an
 * upstream without EHLO (Microsoft Graph). Intake uses it to refuse a scan
 * that cannot go on while the person is still at the device.
 *
 * Kept in upstream-limits.json in the data dir so it is known after a
 * restart, and written (atomically) only when a limit changes, never per
 * delivery: the box runs on an SD card.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import { errnoCode, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { Destination } from '../route/router.js';
import { writeFileAtomic } from '../util/fsx.js';

export const LIMITS_FILE = 'upstream-limits.json';

/**
 * Microsoft Graph: Exchange Online's largest message (MaxSendSize/
 * MaxReceiveSize) is 35 MB by default and 150 MB at most; Microsoft's
 * "Exchange Online limits" page counts the message as sent, base64 included.
 */
export const GRAPH_DEFAULT_LIMIT = 35 * 1024 * 1024;

/** MX mode learns one limit per destination domain; beyond this many the longest-unchanged go */
const MAX_REMEMBERED = 500;

export interface UpstreamLimit {
  bytes: number;
  /** Who said so, for a person: "smtp.office365.com", "mx1.example.com for example.com" */
  name: string;
}

interface Learned extends UpstreamLimit {
  /** When this limit was first heard (not refreshed per delivery, so nothing is written then) */
  since: string;
}

/** Called with the SIZE an upstream host advertised (null: no limit given) and the host's name */
export type SizeListener = (size: number | null, host: string) => void;

/** Which upstream a destination's mail goes to; null for mail that never leaves the box (a new kind must be named here: no implicit undefined) */
export function upstreamKey(destination: Destination): string | null {
  switch (destination.kind) {
    case 'smarthost':
      return `smarthost ${destination.host}:${destination.port}`;
    case 'mx':
      return `mx ${destination.domain}`;
    case 'host':
      return `host ${destination.host}:${destination.port}`;
    case 'graph':
      return 'graph';
    case 'local':
    case 'unroutable':
      return null;
  }
}

/** The SIZE in the connection's last EHLO reply; null when it gave none (or SIZE without a number) */
export function ehloSize(connection: SMTPConnection): number | null {
  // nodemailer parses SIZE into this field (smtp-connection _parseEhloExtensions) but does not export it
  const size = (connection as unknown as { _maxAllowedSize?: number })._maxAllowedSize;
  return typeof size === 'number' && size > 0 ? size : null;
}

const isLearned = (value: unknown): value is Learned => {
  const entry = value as Partial<Learned> | null;
  return (
    !!entry &&
    Number.isSafeInteger(entry.bytes) &&
    (entry.bytes as number) > 0 &&
    typeof entry.name === 'string' &&
    typeof entry.since === 'string'
  );
};

export class UpstreamLimits {
  /** Limits known without an EHLO to learn them from */
  private readonly fixed = new Map<string, UpstreamLimit>([
    ['graph', { bytes: GRAPH_DEFAULT_LIMIT, name: 'Microsoft Graph' }],
  ]);
  private saving: Promise<void> = Promise.resolve();
  /** A write is queued and has not started: later changes ride along with it */
  private saveQueued = false;

  private constructor(
    private readonly file: string,
    private readonly learned: Map<string, Learned>,
    private readonly log: Logger,
  ) {}

  /** Reads what earlier runs learned; a missing or unreadable file only means nothing is known yet */
  static async open(dataDir: string, log: Logger): Promise<UpstreamLimits> {
    const file = path.join(dataDir, LIMITS_FILE);
    const learned = new Map<string, Learned>();
    try {
      const stored = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      for (const [key, value] of Object.entries(stored))
        if (isLearned(value)) learned.set(key, value);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT')
        log.warn(
          { file, err: errorMessage(err) },
          'Upstream size limits not read; they are learned again at the next delivery',
        );
    }
    return new UpstreamLimits(file, learned, log);
  }

  /** The limit of the upstream `key` names: a fixed one first, else the last one its EHLO gave */
  limitOf(key: string | null): UpstreamLimit | undefined {
    if (key === null) return undefined;
    const known = this.fixed.get(key) ?? this.learned.get(key);
    return known && { bytes: known.bytes, name: known.name };
  }

  /** What the SMTP client tells after EHLO, for mail to `destination` */
  listener(destination: Destination): SizeListener | undefined {
    const key = upstreamKey(destination);
    if (key === null) return undefined;
    const named = (host: string) =>
      destination.kind === 'mx' ? `${host} for ${destination.domain}` : host;
    return (size, host) => this.heard(key, named(host), size);
  }

  /** Records what an upstream advertised; writes the file only when that differs from what we knew */
  heard(key: string, name: string, size: number | null): void {
    const known = this.learned.get(key);
    if (size === null ? !known : known?.bytes === size && known.name === name) return;
    if (size === null) this.learned.delete(key);
    else this.remember(key, { bytes: size, name, since: new Date().toISOString() });
    this.log.info(
      { upstream: key, host: name, bytes: size },
      size === null
        ? 'The upstream no longer advertises a message size limit'
        : 'Learned the message size limit of an upstream from its EHLO',
    );
    this.save();
  }

  /** Resolves once every change so far is on disk (or failed and was logged) */
  flush(): Promise<void> {
    return this.saving;
  }

  private remember(key: string, entry: Learned): void {
    this.learned.delete(key);
    this.learned.set(key, entry);
    // Insertion order is change order: the first keys are the longest unchanged
    for (const old of this.learned.keys()) {
      if (this.learned.size <= MAX_REMEMBERED) break;
      this.learned.delete(old);
    }
  }

  /** One write at a time, of the state as it is when the write starts: a burst of changes costs one or two writes */
  private save(): void {
    if (this.saveQueued) return;
    this.saveQueued = true;
    this.saving = this.saving.then(async () => {
      this.saveQueued = false;
      try {
        await writeFileAtomic(
          this.file,
          JSON.stringify(Object.fromEntries(this.learned), null, 2) + '\n',
          0o644,
        );
      } catch (err) {
        this.log.warn(
          { file: this.file, err: errorMessage(err) },
          'Upstream size limits not saved; they are learned again after a restart',
        );
      }
    });
  }
}
