/**
 * Removes leftovers from spool/tmp: a reception that died without cleaning
 * up (the process is killed mid-DATA) leaves a file nobody will finish.
 * Startup recovery does the same; this covers a box that runs for months.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** Anything this old in tmp/ can't be a reception in progress (the SMTP idle timeout is far shorter) */
const STALE_MS = 24 * 3_600_000;

export async function cleanSpoolTemp(tmpDir: string, now = Date.now()): Promise<number> {
  let removed = 0;
  for (const name of await fs.readdir(tmpDir)) {
    const file = path.join(tmpDir, name);
    const stat = await fs.stat(file).catch(() => undefined);
    if (!stat || now - stat.mtimeMs < STALE_MS) continue;
    await fs.rm(file, { force: true, recursive: true });
    removed++;
  }
  return removed;
}
