import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fsyncDir, writeFileAtomic } from '../../src/util/fsx.js';

test('group-committed folder fsyncs: every caller resolves, errors reach their callers', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-fsx-'));
  await Promise.all(Array.from({ length: 50 }, () => fsyncDir(dir)));
  await fsyncDir(dir);
  await assert.rejects(
    Promise.all([fsyncDir(path.join(dir, 'missing')), fsyncDir(path.join(dir, 'missing'))]),
    /ENOENT/,
  );
  await fsyncDir(dir);
});

test('writeFileAtomic replaces the file whole, with the mode asked for', async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'edge-relay-fsx-')), 'x.json');
  await writeFileAtomic(file, 'one', 0o600);
  await Promise.all([writeFileAtomic(file, 'two', 0o600), writeFileAtomic(file, 'three', 0o600)]);
  assert.match(readFileSync(file, 'utf8'), /^(two|three)$/);
  assert.equal(statSync(file).mode & 0o777, 0o600);
});
