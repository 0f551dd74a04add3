/**
 * Locks shared by every process that touches the data dir (the running
 * server, the CLI): queue messages, and the small JSON files both may change
 * (mailbox users, API tokens). A lock is a symbolic link whose target is the
 * owner's pid and the boot it ran in ("pid@boot-id"). Creating it is one
 * atomic system call that fails if the lock exists, and it is never seen
 * half-written. A lock whose process is gone, or is from an earlier boot (a
 * power cut: after a reboot its pid may belong to any process, even the relay
 * itself), is stale and taken over. A bare pid (earlier versions) and plain
 * files holding one (file systems without symbolic links) are understood too.
 */
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { RelayError } from '../errors.js';
import { isPidAlive, readJsonFile, unlinkIfThere, writeFileAtomic } from './fsx.js';

/** How long a change to a shared JSON file waits for another process's change to finish */
const JSON_LOCK_WAIT_MS = 5_000;
const JSON_LOCK_POLL_MS = 20;

export type Release = () => Promise<void>;

/** The kernel's id of this boot; "" where there is none to read */
const BOOT_ID = ((): string => {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
})();

/** What a lock names: "pid@boot-id" */
export const lockOwnerText = (pid = process.pid): string => (BOOT_ID ? `${pid}@${BOOT_ID}` : String(pid));

interface Owner {
  pid: number;
  /** "" for locks written without one */
  boot: string;
}

export class BusyError extends RelayError {
  constructor(what: string) {
    super(`${what} is being worked on right now; try again in a moment`, { kind: 'temporary', smtpCode: 451, enhanced: '4.3.0' });
    this.name = 'BusyError';
  }
}

export class LockDir {
  constructor(private readonly dir: string) {}

  async acquire(name: string): Promise<Release> {
    const file = path.join(this.dir, name);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await createLock(file);
        return () => unlinkIfThere(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (!(await this.removeIfStale(file))) break;
      }
    }
    throw new BusyError(`Message ${name}`);
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

  /** Removes locks left by processes that no longer run (a crash, kill -9) */
  async removeStale(): Promise<void> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    await Promise.all(names.map((name) => this.removeIfStale(path.join(this.dir, name))));
  }

  private async removeIfStale(file: string): Promise<boolean> {
    const owner = await ownerOf(file);
    if (owner ? isRunning(owner) : await isFresh(file)) return false;
    await fs.rm(file, { force: true });
    return true;
  }
}

async function createLock(file: string): Promise<void> {
  try {
    await fs.symlink(lockOwnerText(), file);
  } catch (err) {
    // A file system without symbolic links (FAT): a plain file holding the pid
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    const handle = await fs.open(file, 'wx', 0o600);
    await handle.writeFile(lockOwnerText()).finally(() => handle.close());
  }
}

/** The process holding a lock; undefined when unknown */
async function ownerOf(file: string): Promise<Owner | undefined> {
  const target = await fs.readlink(file).catch((err: NodeJS.ErrnoException) => (err.code === 'EINVAL' ? fs.readFile(file, 'utf8').catch(() => '') : ''));
  const [pid, boot = ''] = target.split('@');
  return Number(pid) ? { pid: Number(pid), boot } : undefined;
}

function isRunning(owner: Owner): boolean {
  if (owner.boot && BOOT_ID && owner.boot !== BOOT_ID) return false;
  return isPidAlive(owner.pid);
}

/** An empty plain lock file may have been created an instant ago, its pid on the way */
async function isFresh(file: string): Promise<boolean> {
  const stat = await fs.lstat(file).catch(() => undefined);
  return stat !== undefined && Date.now() - stat.mtimeMs < 10_000;
}

/**
 * Read, change and write a JSON file as one step, also against another
 * process doing the same (the CLI beside the running server): without it,
 * two changes at once each write their own copy and one is lost.
 */
export async function updateJsonFile<T, R>(file: string, empty: () => T, change: (data: T) => R | Promise<R>): Promise<R> {
  const release = await new LockDir(path.dirname(file)).acquireWaiting(`.${path.basename(file)}.lock`, JSON_LOCK_WAIT_MS);
  try {
    const data = (await readJsonFile<T>(file)) ?? empty();
    const result = await change(data);
    await writeFileAtomic(file, JSON.stringify(data, null, 2), 0o600);
    return result;
  } finally {
    await release();
  }
}
