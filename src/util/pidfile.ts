/** One server per data dir; the pid file also lets the CLI nudge the running server */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { RelayError } from '../errors.js';
import { isPidAlive } from './fsx.js';

export const pidFile = (dataDir: string): string => path.resolve(dataDir, 'edge-relay.pid');

export async function runningServerPid(dataDir: string): Promise<number | undefined> {
  const pid = Number(await fs.readFile(pidFile(dataDir), 'utf8').catch(() => ''));
  return pid && pid !== process.pid && isPidAlive(pid) ? pid : undefined;
}

export async function claimPidFile(dataDir: string): Promise<() => Promise<void>> {
  const other = await runningServerPid(dataDir);
  if (other) throw new RelayError(`Another edge-relay (pid ${other}) is already serving ${path.resolve(dataDir)}`, { kind: 'config' });
  await fs.writeFile(pidFile(dataDir), String(process.pid), { mode: 0o644 });
  return () => fs.rm(pidFile(dataDir), { force: true });
}

/** Asks a running server to re-read the spool now; harmless when none runs */
export async function nudgeServer(dataDir: string): Promise<void> {
  const pid = await runningServerPid(dataDir);
  if (pid) process.kill(pid, 'SIGUSR2');
}
