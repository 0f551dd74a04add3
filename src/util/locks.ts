/**
 * Locks shared by every process that touches the data dir (the running
 * server, the CLI): queue messages, and the small JSON files both may change
 * (mailbox users, API tokens), and the data dir itself (one server at a time).
 * A lock is a symbolic link whose target names the holder (process-identity.ts:
 * pid, boot id, start time). Creating it is one atomic system call that fails
 * if the lock exists, and it is never seen half-written. A lock whose holder no
 * longer runs is stale and taken over, also when another process has its pid
 * by now. Plain files (file systems without symbolic links) and bare pids
 * (earlier versions) are understood too.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { RelayError } from '../errors.js';
import type { Logger } from '../log.js';
import { readJsonFile, unlinkIfThere, writeFileAtomic } from './fsx.js';
import {
  SELF,
  formatIdentity,
  isRunning,
  parseIdentity,
  type ProcessIdentity,
} from './process-identity.js';

/** How long a change to a shared JSON file waits for another process's change to finish */
const JSON_LOCK_WAIT_MS = 5_000;
const JSON_LOCK_POLL_MS = 20;

export type Release = () => Promise<void>;

export class BusyError extends RelayError {
  constructor(what: string) {
    super(`${what} is being worked on right now; try again in a moment`, {
      kind: 'temporary',
      smtpCode: 451,
      enhanced: '4.3.0',
    });
    this.name = 'BusyError';
  }
}

/** What trying a lock gives: the lock, or the running process that has it */
export type Taken = { release: Release } | { holder: Holder };

/** A lock's holder; `identity` is unknown while a plain lock file's holder is still writing it */
export interface Holder {
  identity: ProcessIdentity | undefined;
}

export class LockDir {
  /** `log` hears about every stale lock taken over */
  constructor(
    private readonly dir: string,
    private readonly log?: Logger,
  ) {}

  async acquire(name: string): Promise<Release> {
    const taken = await this.take(name);
    if ('holder' in taken) throw new BusyError(`Message ${name}`);
    return taken.release;
  }

  /** Takes the lock, or names the running process that has it (a stale lock is taken over) */
  async take(name: string): Promise<Taken> {
    const file = path.join(this.dir, name);
    let holder: Holder = { identity: undefined };
    for (let attempt = 0; attempt < 2; attempt++) {
      if (await createLock(file)) return { release: () => unlinkIfThere(file) };
      const found = await inspect(file);
      if (found.running) return { holder: found };
      holder = found;
      await this.discard(file, found);
    }
    return { holder };
  }

  /** The running holder of lock `name`; undefined when the lock is free or stale */
  async runningHolder(name: string): Promise<Holder | undefined> {
    const found = await inspect(path.join(this.dir, name));
    return found.running ? found : undefined;
  }

  /** Like acquire, but a busy lock is tried again until `waitMs` has passed */
  async acquireWaiting(name: string, waitMs: number): Promise<Release> {
    const until = Date.now() + waitMs;
    for (;;) {
      try {
        return await this.acquire(name);
      } catch (err) {
        if (!(err instanceof BusyError) || Date.now() >= until) throw err;
        await new Promise((resolve) => setTimeout(resolve, JSON_LOCK_POLL_MS));
      }
    }
  }

  /** Removes locks left by processes that no longer run (a crash, kill -9, a power cut) */
  async removeStale(): Promise<void> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    await Promise.all(
      names.map(async (name) => {
        const file = path.join(this.dir, name);
        const found = await inspect(file);
        if (!found.running) await this.discard(file, found);
      }),
    );
  }

  private async discard(file: string, stale: Holder): Promise<void> {
    await fs.rm(file, { force: true });
    if (stale.identity)
      this.log?.warn(
        { lock: file, holder: formatIdentity(stale.identity) },
        'Took over a lock whose holder no longer runs',
      );
  }
}

/** Creates the lock naming this process; false when it exists already */
async function createLock(file: string): Promise<boolean> {
  const record = formatIdentity(SELF);
  try {
    await fs.symlink(record, file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    // A file system without symbolic links (FAT): a plain file naming the holder
    if (code !== 'EPERM') throw err;
  }
  const handle = await fs.open(file, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') return undefined;
    throw err;
  });
  if (!handle) return false;
  await handle.writeFile(record).finally(() => handle.close());
  return true;
}

async function inspect(file: string): Promise<Holder & { running: boolean }> {
  const record = await fs
    .readlink(file)
    .catch((err: NodeJS.ErrnoException) =>
      err.code === 'EINVAL' ? fs.readFile(file, 'utf8').catch(() => '') : '',
    );
  const identity = parseIdentity(record);
  return { identity, running: identity ? isRunning(identity) : await isFresh(file) };
}

/** An empty plain lock file may have been created an instant ago, its holder's name on the way */
async function isFresh(file: string): Promise<boolean> {
  const stat = await fs.lstat(file).catch(() => undefined);
  return stat !== undefined && Date.now() - stat.mtimeMs < 10_000;
}

/**
 * Read, change and write a JSON file as one step, also against another
 * process doing the same (the CLI beside the running server): without it,
 * two changes at once each write their own copy and one is lost.
 */
export async function updateJsonFile<T, R>(
  file: string,
  empty: () => T,
  change: (data: T) => R | Promise<R>,
): Promise<R> {
  const release = await new LockDir(path.dirname(file)).acquireWaiting(
    `.${path.basename(file)}.lock`,
    JSON_LOCK_WAIT_MS,
  );
  try {
    const data = (await readJsonFile<T>(file)) ?? empty();
    const result = await change(data);
    await writeFileAtomic(file, JSON.stringify(data, null, 2), 0o600);
    return result;
  } finally {
    await release();
  }
}
