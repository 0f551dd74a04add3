/**
 * A lock's holder is known by pid, boot id and start time: a pid that another
 * process has by now (after a reboot, pid 1 in a container) does not keep a
 * stale lock alive, and a lock this very process holds is never taken for stale.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  SELF,
  formatIdentity,
  isRunning,
  parseIdentity,
  type ProcessIdentity,
} from '../../src/util/process-identity.js';
import { eventually } from '../support/wait.js';

const BOOT_ID = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const OTHER_BOOT = '00000000-0000-4000-8000-000000000000';

function startTicksOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

async function withSleeper(
  use: (child: ChildProcess & { pid: number }) => Promise<void> | void,
): Promise<void> {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  await once(child, 'spawn');
  try {
    await use(child as ChildProcess & { pid: number });
  } finally {
    child.kill('SIGKILL');
  }
}

test('a record reads back as written; a bare pid (earlier versions) and junk are understood', () => {
  assert.deepEqual(SELF.started, { bootId: BOOT_ID, ticks: startTicksOf(process.pid) });
  assert.deepEqual(parseIdentity(formatIdentity(SELF)), SELF);
  assert.deepEqual(parseIdentity('4242\n'), { pid: 4242 });
  for (const junk of ['', '0', 'abc', '12:34', '-5', '12:x:y'])
    assert.equal(parseIdentity(junk), undefined, junk);
});

test('this process: its own record is running; a record with its pid but another start or boot is not', () => {
  assert.equal(isRunning(SELF), true, 'a lock this process holds is never stale to itself');
  const started = SELF.started!;
  assert.equal(
    isRunning({ pid: SELF.pid, started: { ...started, ticks: started.ticks - 1 } }),
    false,
    'pid 1 in a container, started again',
  );
  assert.equal(
    isRunning({ pid: SELF.pid, started: { ...started, bootId: OTHER_BOOT } }),
    false,
    'the same pid after a reboot',
  );
  assert.equal(
    isRunning({ pid: SELF.pid }),
    false,
    'an earlier version wrote a bare pid; this process never does',
  );
});

test('another process: running only while the record matches it', async () => {
  await withSleeper((sleeper) => {
    const started = { bootId: BOOT_ID, ticks: startTicksOf(sleeper.pid) };
    assert.equal(isRunning({ pid: sleeper.pid, started }), true);
    assert.equal(
      isRunning({ pid: sleeper.pid, started: { ...started, ticks: started.ticks - 1 } }),
      false,
      'the pid was reused by an unrelated process',
    );
    assert.equal(
      isRunning({ pid: sleeper.pid, started: { ...started, bootId: OTHER_BOOT } }),
      false,
      'written before the last reboot',
    );
    assert.equal(
      isRunning({ pid: sleeper.pid }),
      true,
      'a bare pid of a live process is all an earlier version said',
    );
  });
  assert.equal(isRunning({ pid: 999_999_999 }), false);
  assert.equal(isRunning({ pid: 99_999_999_999 }), false, 'beyond what kill() takes');
});

test('a process that exited but is not reaped yet (a zombie) is not running', async () => {
  // Python forks a child that exits at once and never waits for it
  const parent = spawn(
    'python3',
    [
      '-c',
      'import os, sys, time\npid = os.fork()\nif pid == 0: os._exit(0)\nprint(pid, flush=True)\ntime.sleep(30)',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    const [line] = (await once(parent.stdout!, 'data')) as [Buffer];
    const zombie: ProcessIdentity = { pid: Number(line.toString().trim()) };
    await eventually(
      'the child to be a zombie',
      () => readFileSync(`/proc/${zombie.pid}/stat`, 'utf8').includes(') Z '),
      { timeoutMs: 5_000, everyMs: 10 },
    );
    assert.doesNotThrow(() => process.kill(zombie.pid, 0), 'kill(pid, 0) still says alive');
    assert.equal(isRunning(zombie), false);
  } finally {
    parent.kill('SIGKILL');
  }
});
