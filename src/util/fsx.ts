/**
 * The durable-write primitives every store uses: data is on disk before a
 * rename makes it visible, and the rename itself is on disk before we say so.
 */
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';

async function syncDirNow(dir: string): Promise<void> {
  const handle = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Per folder: the fsync running now, and the one queued behind it that later callers share */
const dirSyncs = new Map<string, { running: Promise<void>; next?: Promise<void> }>();

/**
 * Makes renames in `dir` durable. Group commit: callers that arrive while an
 * fsync of the folder is running share the single one that starts after it
 * (it must start after their rename to cover it), so 20 devices sending at
 * once cost a few folder fsyncs, not 20.
 */
export function fsyncDir(dir: string): Promise<void> {
  const current = dirSyncs.get(dir);
  if (!current) {
    const running = syncDirNow(dir).finally(() => advance(dir));
    dirSyncs.set(dir, { running });
    return running;
  }
  current.next ??= current.running.catch(() => undefined).then(() => syncDirNow(dir));
  return current.next;
}

function advance(dir: string): void {
  const current = dirSyncs.get(dir);
  if (!current?.next) {
    dirSyncs.delete(dir);
    return;
  }
  const running = current.next.finally(() => advance(dir));
  // The callers hold `next` and see its error; this copy only keeps the queue moving
  running.catch(() => undefined);
  dirSyncs.set(dir, { running });
}

/** Write a whole file atomically: temp file in the same folder, fsync, rename, fsync folder */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  mode = 0o600,
): Promise<void> {
  const dir = path.dirname(file);
  const temp = path.join(
    dir,
    `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`,
  );
  const handle = await fs.open(temp, 'w', mode);
  try {
    await handle.writeFile(data);
    await handle.chmod(mode);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await fs.rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await fs.rename(temp, file);
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

/** Removes a file; one already gone is fine. Cheaper than fs.rm, which looks before it leaps */
export async function unlinkIfThere(file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

export async function ensureDir(dir: string, mode = 0o700): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode });
}

export async function readJsonFile<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
