/**
 * One server per data dir. The server holds a lock in the data dir for as
 * long as it runs (locks.ts: it names the process by pid, boot id and start
 * time, so a lock left by a crash or a power cut is known as stale even when
 * another process has the pid by now), and the CLI finds the server there to
 * signal it (config reload). It lives in the data dir, not a runtime folder, because the data
 * dir is what it guards: every command finds it from the config alone.
 */
import path from 'node:path';
import { RelayError } from '../errors.js';
import type { Logger } from '../log.js';
import { unlinkIfThere } from './fsx.js';
import { LockDir, type Release } from './locks.js';

const SERVE_LOCK = 'serve.lock';
/** Earlier versions' pid file: a bare pid, which after a reboot can name any process. Nothing reads it now */
const OLD_PID_FILE = 'edge-relay.pid';

export async function claimDataDir(dataDir: string, log: Logger): Promise<Release> {
  const taken = await new LockDir(dataDir, log).take(SERVE_LOCK);
  if ('holder' in taken) {
    const pid = taken.holder.identity ? ` (pid ${taken.holder.identity.pid})` : '';
    // Not exit 2 (bad configuration): once the other server stops, systemd's restart must bring this one up
    throw new RelayError(`Another edge-relay${pid} is already serving ${path.resolve(dataDir)}`, {
      kind: 'temporary',
    });
  }
  await unlinkIfThere(path.join(dataDir, OLD_PID_FILE));
  return taken.release;
}

/**
 * Signals the server that really holds the data dir (never whatever process
 * has its old pid now): SIGHUP reads the config file again. Returns the
 * server's pid, or undefined when none runs.
 */
export async function signalServer(dataDir: string, signal: 'SIGHUP'): Promise<number | undefined> {
  const server = await new LockDir(dataDir).runningHolder(SERVE_LOCK);
  if (!server?.identity) return undefined;
  try {
    process.kill(server.identity.pid, signal);
    return server.identity.pid;
  } catch (err) {
    // Stopped a moment ago: it reads everything afresh when it starts again
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    return undefined;
  }
}
