/**
 * Per-message locks shared by every process that touches the spool (the
 * running server, the CLI): a symbolic link whose target is the owner's pid.
 * Creating it is one atomic system call that fails if the lock exists, and it
 * is never seen half-written. A lock whose process is gone is stale and taken
 * over. Plain files holding the pid (earlier versions, file systems without
 * symbolic links) are understood too.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { RelayError } from '../errors.js';
import { isPidAlive, unlinkIfThere } from '../util/fsx.js';

export type Release = () => Promise<void>;

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

  /** Removes locks left by processes that no longer run (a crash, kill -9) */
  async removeStale(): Promise<void> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    await Promise.all(names.map((name) => this.removeIfStale(path.join(this.dir, name))));
  }

  private async removeIfStale(file: string): Promise<boolean> {
    const owner = await ownerOf(file);
    if (owner ? isPidAlive(owner) : await isFresh(file)) return false;
    await fs.rm(file, { force: true });
    return true;
  }
}

async function createLock(file: string): Promise<void> {
  try {
    await fs.symlink(String(process.pid), file);
  } catch (err) {
    // A file system without symbolic links (FAT): a plain file holding the pid
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    const handle = await fs.open(file, 'wx', 0o600);
    await handle.writeFile(String(process.pid)).finally(() => handle.close());
  }
}

/** The pid holding a lock; 0 when unknown */
async function ownerOf(file: string): Promise<number> {
  const target = await fs.readlink(file).catch((err: NodeJS.ErrnoException) => (err.code === 'EINVAL' ? fs.readFile(file, 'utf8').catch(() => '0') : '0'));
  return Number(target) || 0;
}

/** An empty plain lock file may have been created an instant ago, its pid on the way */
async function isFresh(file: string): Promise<boolean> {
  const stat = await fs.lstat(file).catch(() => undefined);
  return stat !== undefined && Date.now() - stat.mtimeMs < 10_000;
}
