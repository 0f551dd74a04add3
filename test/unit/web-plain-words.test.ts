/** What the page says in words: schema complaints as sentences about the field, counts with the right noun, no "Saved" over a failed save */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveConfig } from '../../src/config/validate.js';
import { plural } from '../../src/util/plural.js';
import { formPatch, formValues, secretStates, validatePatch } from '../../src/web/settings-form.js';
import { settingsView } from '../../src/web/views/settings.js';
import type { SettingsModel } from '../../src/web/views/settings-controls.js';

const config = resolveConfig({}, 'test');

test('schema complaints read as sentences about the field, not the schema library', () => {
  const values = {
    ...formValues(config),
    port: '70000',
    tlsPort: 'abc',
    security: 'ssl',
    digestTo: 'not an address @',
    maxAge: '',
  };
  const { errors } = validatePatch(config, formPatch(values));
  assert.equal(errors.port, 'Must be at most 65535');
  assert.equal(errors.tlsPort, 'Must be a number');
  assert.equal(errors.security, 'Must be one of: starttls, tls, none');
  assert.match(errors.maxAge ?? '', /^Expected a duration/);
  for (const text of Object.values(errors))
    assert.doesNotMatch(
      text,
      /expected (number|string|int|one of)|Invalid input|Too (big|small)/,
      text,
    );
});

test('counts take the right noun', () => {
  assert.equal(plural(1, 'message'), '1 message');
  assert.equal(plural(0, 'message'), '0 messages');
  assert.equal(plural(1, 'try', 'tries'), '1 try');
  assert.equal(plural(3, 'try', 'tries'), '3 tries');
});

async function renderSettings(model: Partial<SettingsModel>): Promise<string> {
  const base: SettingsModel = {
    values: formValues(config),
    errors: {},
    other: [],
    persistent: true,
    source: '/etc/edge-relay/config.json',
    secrets: secretStates(config),
    ports: { smtp: 25, pop3: 110, web: 80 },
    restartKeys: [],
    revision: 'r1',
  };
  return String(await settingsView({ ...base, ...model }, 'csrf'));
}

test('a failed save does not also say "Saved"', async () => {
  assert.match(await renderSettings({}), /Saved to/);
  const failed = await renderSettings({ errors: { port: 'Must be at most 65535' } });
  assert.match(failed, /Nothing was saved/);
  assert.doesNotMatch(failed, /Saved to/);
});
