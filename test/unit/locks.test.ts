/**
 * updateJsonFile: the mailbox users and the API tokens are changed by the
 * running server and by the CLI at the same time. Every change must survive,
 * within one process and across processes. LockDir: a lock left by an earlier
 * process with this one's pid is taken over, one this process holds is not.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/log.js';
import { BusyError, LockDir, updateJsonFile } from '../../src/util/locks.js';
import { SELF, formatIdentity } from '../../src/util/process-identity.js';

const LOCKS_MODULE = fileURLToPath(new URL('../../src/util/locks.ts', import.meta.url));
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Adds `count` entries, each change slow enough that unguarded writers would overlap */
async function addEntries(file: string, who: string, count: number): Promise<void> {
  for (let n = 0; n < count; n++) {
    await updateJsonFile<string[], void>(
      file,
      () => [],
      async (list) => {
        await pause(5);
        list.push(`${who}-${n}`);
      },
    );
  }
}

test('changes at once in one process: every one is kept, the file is 0600 and no lock is left', async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'edge-relay-locks-')), 'users.json');
  await Promise.all(['a', 'b', 'c', 'd'].map((who) => addEntries(file, who, 5)));
  assert.equal((JSON.parse(readFileSync(file, 'utf8')) as string[]).length, 20);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(path.dirname(file)), ['users.json']);
});

test('changes at once from four processes (the CLI beside the server): every one is kept', async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'edge-relay-locks-')), 'api-tokens.json');
  const child = `
    const { updateJsonFile } = await import(${JSON.stringify(LOCKS_MODULE)});
    for (let n = 0; n < 5; n++) {
      await updateJsonFile(process.argv[1], () => [], async (list) => { await new Promise((r) => setTimeout(r, 5)); list.push(process.argv[2] + '-' + n); });
    }`;
  const run = (who: string) =>
    new Promise<void>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', child, file, who],
        { timeout: 60_000 },
        (err, _out, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve()),
      ),
    );
  await Promise.all(['p1', 'p2', 'p3', 'p4'].map(run));
  const entries = JSON.parse(readFileSync(file, 'utf8')) as string[];
  assert.equal(entries.length, 20, `kept: ${entries.join(' ')}`);
  assert.deepEqual(readdirSync(path.dirname(file)), ['api-tokens.json'], 'no lock is left');
});

/** Records left by earlier processes that had this process's pid: pid 1 in a container, the same pid after a reboot */
function staleRecordsWithOurPid(): string[] {
  const started = SELF.started!;
  return [
    String(SELF.pid),
    formatIdentity({ pid: SELF.pid, started: { ...started, ticks: started.ticks - 1 } }),
    formatIdentity({
      pid: SELF.pid,
      started: { ...started, bootId: '00000000-0000-4000-8000-000000000000' },
    }),
  ];
}

function capturedLog(): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return {
    lines,
    log: createLogger({
      destination: new Writable({
        write: (chunk, _e, done) => (lines.push(String(chunk)), done()),
      }),
    }),
  };
}

test('a lock left by an earlier process with our pid is taken over and logged; the one we hold is not', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-locks-'));
  const file = path.join(dir, 'message');
  const { lines, log } = capturedLog();
  const locks = new LockDir(dir, log);
  for (const stale of staleRecordsWithOurPid()) {
    symlinkSync(stale, file);
    const release = await locks.acquire('message');
    assert.equal(readlinkSync(file), formatIdentity(SELF));
    await assert.rejects(
      locks.acquire('message'),
      BusyError,
      'held by this very process: never stale to itself',
    );
    await release();
    assert.ok(
      lines.some(
        (line) =>
          line.includes('Took over a lock whose holder no longer runs') &&
          line.includes(`"holder":"${stale}"`),
      ),
      `logged: ${lines.join('')}`,
    );
  }
});

test('at startup only the stale locks go, each with a log line', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-locks-'));
  const { lines, log } = capturedLog();
  const stale = staleRecordsWithOurPid();
  stale.forEach((record, n) => symlinkSync(record, path.join(dir, `stale-${n}`)));
  const release = await new LockDir(dir).acquire('held');
  await new LockDir(dir, log).removeStale();
  assert.deepEqual(readdirSync(dir), ['held']);
  assert.equal(lines.length, stale.length);
  await release();
  assert.equal(existsSync(path.join(dir, 'held')), false);
});
