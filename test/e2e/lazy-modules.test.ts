/**
 * Issue #13 (memory): an idle relay does not hold the admin page's code.
 * Hono, the routes and the views load when the first web request arrives,
 * and that request is answered as before. Figures are in make bench; this
 * only checks which modules the running process has loaded.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, test } from 'node:test';
import { ROOT, launchRelay, type RunningRelay } from '../support/relay.js';

let relay: RunningRelay | undefined;
const logDir = mkdtempSync(path.join(tmpdir(), 'edge-relay-modules-'));
after(async () => {
  await relay?.stop();
  rmSync(logDir, { recursive: true, force: true });
});

const loaded = (log: string) => readFileSync(log, 'utf8').split('\n');
const webModules = (urls: string[]) =>
  urls.filter((url) => url.includes('/node_modules/hono/') || url.endsWith('/build/web/app.js'));

test('the admin page modules load on the first web request, not at start', async () => {
  const preload = pathToFileURL(path.join(ROOT, 'test/support/module-log.mjs')).href;
  const log = path.join(logDir, 'modules.log');
  relay = await launchRelay({
    env: { NODE_OPTIONS: `--import ${preload}`, EDGE_RELAY_MODULE_LOG: log },
  });
  const atStart = loaded(log);
  assert.ok(
    atStart.some((url) => url.endsWith('/build/main.js')),
    'the module log works',
  );
  assert.deepEqual(webModules(atStart), [], 'no admin page module at start');

  const res = await fetch(`http://127.0.0.1:${relay.webPort}/healthz`);
  assert.equal(res.status, 200);
  assert.ok(
    webModules(loaded(log)).some((url) => url.endsWith('/build/web/app.js')),
    'the first request loaded the admin page',
  );
});
