/** Spool temp cleanup over real files: leftovers older than a day go, anything newer stays */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cleanSpoolTemp } from '../../src/jobs/spool-cleanup.js';

const HOUR_MS = 3_600_000;

test('removes files and folders untouched for more than a day; keeps newer ones (a reception may be in progress)', async () => {
  const dir = await fs.mkdtemp(path.join(tmpdir(), 'edge-relay-jobs-tmp-'));
  const at = (name: string) => path.join(dir, name);
  await fs.writeFile(at('dead-reception.eml'), 'Subject: half\r\n');
  await fs.mkdir(at('dead-folder'));
  await fs.writeFile(at('dead-folder/inner'), 'x');
  await fs.writeFile(at('yesterday-morning.eml'), 'x');
  await fs.writeFile(at('in-progress.eml'), 'Subject: still arriving\r\n');
  const now = Date.now();
  const past = (hours: number) => new Date(now - hours * HOUR_MS);
  await fs.utimes(at('dead-reception.eml'), past(25), past(25));
  await fs.utimes(at('dead-folder'), past(48), past(48));
  await fs.utimes(at('yesterday-morning.eml'), past(23), past(23));

  assert.equal(await cleanSpoolTemp(dir, now), 2);
  assert.deepEqual((await fs.readdir(dir)).sort(), ['in-progress.eml', 'yesterday-morning.eml']);
  assert.equal(await cleanSpoolTemp(dir, now), 0, 'a second run finds nothing');
  assert.equal(
    await cleanSpoolTemp(dir, now + 2 * HOUR_MS),
    1,
    'a day later the 23-hour-old file goes too',
  );
  assert.deepEqual(await fs.readdir(dir), ['in-progress.eml']);
});

test('an empty folder is nothing to do', async () => {
  assert.equal(
    await cleanSpoolTemp(await fs.mkdtemp(path.join(tmpdir(), 'edge-relay-jobs-tmp-'))),
    0,
  );
});
