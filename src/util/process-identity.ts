/**
 * Who holds a lock, in terms that stay true across a crash and a reboot. A
 * pid alone does not: after a reboot any process may have it, and in a
 * container the relay is pid 1 every time it starts. So a holder is named by
 * its pid, the kernel's boot id and the process's start time (clock ticks
 * since boot, /proc/PID/stat field 22): no other process has all three.
 */
import { readFileSync } from 'node:fs';

export interface ProcessStart {
  bootId: string;
  ticks: number;
}

export interface ProcessIdentity {
  pid: number;
  /** Missing in records of earlier versions (a bare pid), and where /proc cannot be read */
  started?: ProcessStart;
}

const RECORD = /^(\d+)(?::(\d+):([0-9a-f-]+))?$/;

/** /proc/PID/stat, split after the command name (which may hold spaces and parentheses): index 0 is field 3 */
function statFields(pid: number | 'self'): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

const STATE = 0;
const START_TIME = 19;

function readBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

function readOwnIdentity(): ProcessIdentity {
  // /proc/self, not /proc/<pid>: in a pid namespace without its own /proc the two differ
  const ticks = Number(statFields('self')?.[START_TIME]);
  const bootId = readBootId();
  return {
    pid: process.pid,
    ...(bootId && Number.isSafeInteger(ticks) && { started: { bootId, ticks } }),
  };
}

/** This process; it never changes while the process lives */
export const SELF: Readonly<ProcessIdentity> = Object.freeze(readOwnIdentity());

export function formatIdentity(identity: ProcessIdentity): string {
  return identity.started
    ? `${identity.pid}:${identity.started.ticks}:${identity.started.bootId}`
    : String(identity.pid);
}

/** The holder a record names; undefined when it names none (empty, or being written) */
export function parseIdentity(text: string): ProcessIdentity | undefined {
  const match = RECORD.exec(text.trim());
  if (!match) return undefined;
  const [, pid, ticks, bootId] = match;
  const identity: ProcessIdentity = { pid: Number(pid) };
  if (ticks && bootId) identity.started = { bootId, ticks: Number(ticks) };
  return identity.pid > 0 ? identity : undefined;
}

/**
 * Whether the process a record names is still running. A record holding our
 * own pid is ours only if it has our start too: otherwise an earlier process
 * with our pid wrote it (pid 1 in a container, a restart after a reboot).
 */
export function isRunning(holder: ProcessIdentity): boolean {
  if (holder.pid === SELF.pid) return sameStart(holder.started, SELF.started);
  if (holder.started && SELF.started && holder.started.bootId !== SELF.started.bootId) return false;
  const ticks = liveStartTicks(holder.pid);
  if (ticks === undefined) return false;
  // Without a start to compare (an earlier version's record, or /proc hides the process) the live pid has to do
  return !holder.started || ticks === 'hidden' || ticks === holder.started.ticks;
}

function sameStart(a: ProcessStart | undefined, b: ProcessStart | undefined): boolean {
  return a?.bootId === b?.bootId && a?.ticks === b?.ticks;
}

/**
 * The start of the process `pid`; undefined when none runs (an exited process
 * not yet reaped counts as gone); "hidden" when it runs but /proc does not
 * show it (another user's process under systemd's ProtectProc=invisible).
 */
function liveStartTicks(pid: number): number | 'hidden' | undefined {
  const fields = statFields(pid);
  if (!fields) return isPidAlive(pid) ? 'hidden' : undefined;
  return fields[STATE] === 'Z' || fields[STATE] === 'X' ? undefined : Number(fields[START_TIME]);
}

function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
