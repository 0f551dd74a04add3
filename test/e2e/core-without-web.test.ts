/**
 * Issue #17 (one composition root): the relay's core jobs do not depend on
 * the web module. A process that starts only the core (src/core.ts) runs
 * mailbox retention soon after start, and never loads a module of src/web/.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, test } from 'node:test';
import { ROOT, testConfig } from '../support/relay.js';
import { eventually } from '../support/wait.js';

const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-core-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const moduleUrl = (file: string) => pathToFileURL(path.join(ROOT, file)).href;

/** Starts the core as the composition root does, and stops it on SIGTERM */
const CORE_ONLY = `
const [{ ConfigStore }, { startCore }, { createLogger }] = await Promise.all([
  import(${JSON.stringify(moduleUrl('build/config/store.js'))}),
  import(${JSON.stringify(moduleUrl('build/core.js'))}),
  import(${JSON.stringify(moduleUrl('build/log.js'))}),
]);
const core = await startCore(await ConfigStore.open(process.env.CONFIG), createLogger());
process.once('SIGTERM', () => void core.stop().then(() => process.exit(0)));
`;

test('the core runs mailbox retention with the web module never loaded', async () => {
  const dataDir = path.join(dir, 'data');
  const configFile = path.join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify(testConfig(dataDir, { mailbox: { retention: '1d' } })));
  // A message delivered to the postmaster 2 days ago: retention removes it
  const inbox = path.join(dataDir, 'mailboxes', 'postmaster', 'new');
  mkdirSync(inbox, { recursive: true });
  const old = path.join(inbox, '1700000000000.old-report');
  writeFileSync(old, 'Subject: old\r\n\r\nold\r\n');
  const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
  utimesSync(old, twoDaysAgo, twoDaysAgo);

  const moduleLog = path.join(dir, 'modules.log');
  const child = spawn(
    process.execPath,
    ['--import', moduleUrl('test/support/module-log.mjs'), '--input-type=module', '-e', CORE_ONLY],
    {
      cwd: dir,
      env: { ...process.env, CONFIG: configFile, EDGE_RELAY_MODULE_LOG: moduleLog },
    },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    await eventually('retention to run', () => output.includes('Removed a message older than 1d'), {
      timeoutMs: 15_000,
    });
    assert.equal(existsSync(old), false, 'the old message is gone from the mailbox');
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, output);
  const loaded = readFileSync(moduleLog, 'utf8').split('\n');
  assert.ok(
    loaded.some((url) => url.endsWith('/build/core.js')),
    'the module log works',
  );
  assert.ok(
    loaded.some((url) => url.endsWith('/build/jobs/housekeeping.js')),
    'the jobs are part of the core',
  );
  assert.deepEqual(
    loaded.filter((url) => url.includes('/build/web/') || url.includes('/node_modules/hono/')),
    [],
    'no web module was loaded',
  );
});
