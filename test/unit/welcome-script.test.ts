/**
 * The image's welcome step (image/firstboot/welcome), run as the console unit
 * runs it but on a saved log: the login-screen file it writes holds the setup
 * token, so it must be readable by its owner (root on the box) alone, even
 * under the usual umask and over a file an older version left world-readable.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ROOT } from '../support/relay.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'welcome-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the login-screen file with the setup token is mode 0600, the console text still shows it', () => {
  const token = '0123456789abcdef01234567';
  const log = path.join(dir, 'relay.log');
  writeFileSync(
    log,
    `${JSON.stringify({ level: 30, setupToken: token, msg: 'Set the admin password with the setup token' })}\n${JSON.stringify({ level: 30, web: '0.0.0.0:8080', msg: 'edge-relay is running' })}\n`,
  );
  const issue = path.join(dir, 'issue.d/edge-relay.issue');
  mkdirSync(path.dirname(issue));
  // What an earlier version left: the token readable by every local user, and a stale temporary file
  writeFileSync(issue, 'old\n', { mode: 0o644 });
  writeFileSync(`${issue}.tmp`, 'stale\n', { mode: 0o644 });
  const result = spawnSync(
    'sh',
    ['-c', 'umask 022; exec sh "$0" --log "$1"', path.join(ROOT, 'image/firstboot/welcome'), log],
    { encoding: 'utf8', env: { ...process.env, EDGE_RELAY_ISSUE: issue } },
  );
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, new RegExp(`Setup token: +${token}$`, 'm'));
  const text = readFileSync(issue, 'utf8');
  assert.ok(text.includes(token), text);
  assert.ok(text.includes('http://\\4:8080/'), text);
  assert.equal(statSync(issue).mode & 0o777, 0o600);
});
