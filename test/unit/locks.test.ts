/**
 * updateJsonFile: the mailbox users and the API tokens are changed by the
 * running server and by the CLI at the same time. Every change must survive,
 * within one process and across processes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { LockDir, lockOwnerText, updateJsonFile } from '../../src/util/locks.js';

const LOCKS_MODULE = fileURLToPath(new URL('../../src/util/locks.ts', import.meta.url));
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Adds `count` entries, each change slow enough that unguarded writers would overlap */
async function addEntries(file: string, who: string, count: number): Promise<void> {
  for (let n = 0; n < count; n++) {
    await updateJsonFile<string[], void>(file, () => [], async (list) => {
      await pause(5);
      list.push(`${who}-${n}`);
    });
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
      execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child, file, who], { timeout: 60_000 }, (err, _out, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve())),
    );
  await Promise.all(['p1', 'p2', 'p3', 'p4'].map(run));
  const entries = JSON.parse(readFileSync(file, 'utf8')) as string[];
  assert.equal(entries.length, 20, `kept: ${entries.join(' ')}`);
  assert.deepEqual(readdirSync(path.dirname(file)), ['api-tokens.json'], 'no lock is left');
});

test('a lock from before a power cut is taken over even when its pid is alive now (pids repeat after a reboot)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-locks-'));
  const locks = new LockDir(dir);
  assert.match(lockOwnerText(), new RegExp(`^${process.pid}@[0-9a-f-]{36}$`), 'this boot is named');
  // Our own pid, but another boot: the owner died in the power cut
  symlinkSync(`${process.pid}@00000000-0000-4000-8000-000000000000`, path.join(dir, 'MSG1'));
  const release = await locks.acquire('MSG1');
  await release();
  // The same pid in this boot is a live owner
  symlinkSync(lockOwnerText(), path.join(dir, 'MSG2'));
  await assert.rejects(locks.acquire('MSG2'), /being worked on right now/);
});
