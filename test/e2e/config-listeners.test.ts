/**
 * Issue #17: config listeners can be removed, and a stopped relay leaves
 * none behind (a settings change after stop() must not reach a stopped
 * runner, health or job timetable).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { startRelay } from '../../src/app.js';
import type { Config } from '../../src/config/schema.js';
import { ConfigStore } from '../../src/config/store.js';
import { silentLogger } from '../../src/log.js';
import { testConfig } from '../support/relay.js';

const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-listeners-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function storeIn(name: string): Promise<ConfigStore> {
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(testConfig(path.join(dir, name))));
  return ConfigStore.open(file);
}

test('onChange returns what removes the listener; the others still hear every change', async () => {
  const store = await storeIn('remove');
  const heard: string[] = [];
  const removeFirst = store.onChange((config: Config) => heard.push(`first ${config.hostname}`));
  store.onChange((config: Config) => heard.push(`second ${config.hostname}`));
  await store.update({ hostname: 'one.test' });
  removeFirst();
  removeFirst();
  await store.update({ hostname: 'two.test' });
  assert.deepEqual(heard, ['first one.test', 'second one.test', 'second two.test']);
});

test('a stopped relay has removed every config listener it added', async () => {
  const store = await storeIn('relay');
  const added = new Set<() => void>();
  const onChange = store.onChange.bind(store);
  store.onChange = (listener) => {
    const remove = onChange(listener);
    const tracked = () => {
      added.delete(tracked);
      remove();
    };
    added.add(tracked);
    return tracked;
  };
  const relay = await startRelay(store, silentLogger());
  assert.ok(
    added.size >= 3,
    `the runner, the upstream health and the digest listen (${added.size} listeners)`,
  );
  await relay.stop();
  assert.equal(added.size, 0, 'every listener was removed on stop');
});
