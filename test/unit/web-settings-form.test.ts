/** The settings form <-> config mapping (pure): password write-only, errors on the right field */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveConfig } from '../../src/config/validate.js';
import {
  formPatch,
  formValues,
  validatePatch,
  withProviderPacing,
} from '../../src/web/settings-form.js';

const config = resolveConfig(
  {
    delivery: {
      smarthost: { host: 'smtp.example.com', user: 'relay', password: 'S3cret-upstream' },
    },
  },
  'test',
);

test('the form shows every value except the password', () => {
  const values = formValues(config);
  assert.equal(values.host, 'smtp.example.com');
  assert.equal(values.password, '');
  assert.equal(values.maxMessageSize, '50');
  assert.equal(values.allowNetworks?.split('\n')[0], '127.0.0.0/8');
  assert.equal(values.verify, 'on');
  assert.ok(!JSON.stringify(values).includes('S3cret'));
});

test('an unchanged form round-trips to a patch that validates and keeps the password', () => {
  const patch = formPatch(formValues(config));
  assert.deepEqual(validatePatch(config, patch), { errors: {}, other: [] });
  assert.equal(
    (patch.delivery as { smarthost: Record<string, unknown> }).smarthost.password,
    undefined,
    'an empty password field is left out',
  );
  assert.equal((patch.smtp as { maxMessageSize: number }).maxMessageSize, 52_428_800);
});

test('a new password, or "remove", is written; an unticked checkbox is false', () => {
  const values = { ...formValues(config), password: 'new-one', verify: '' };
  const patch = formPatch(values) as {
    delivery: { smarthost: { password?: string }; tls: { verify: boolean } };
  };
  assert.equal(patch.delivery.smarthost.password, 'new-one');
  assert.equal(patch.delivery.tls.verify, false);
  const cleared = formPatch({ ...formValues(config), clearPassword: 'on' }) as {
    delivery: { smarthost: { password?: string } };
  };
  assert.equal(cleared.delivery.smarthost.password, '');
});

test('schema complaints land on the field they are about, with the line number for lists', () => {
  const values = {
    ...formValues(config),
    allowNetworks: '10.0.0.0/8\n10.0.0.0/33',
    port: 'abc',
    retryDelays: '1m, soon',
    security: 'ssl',
  };
  const { errors } = validatePatch(config, formPatch(values));
  assert.match(errors.allowNetworks ?? '', /^Entry 2: Expected a network/);
  assert.match(errors.retryDelays ?? '', /^Entry 2: Expected a duration/);
  assert.ok(errors.port);
  assert.ok(errors.security);
  assert.equal(errors.host, undefined);
});

test("choosing Microsoft 365 or Gmail fills in the provider's sending limits, unless the admin has set limits", () => {
  const pacingOf = (patch: unknown) =>
    (patch as { delivery?: { pacing?: unknown } }).delivery?.pacing;
  assert.deepEqual(
    pacingOf(
      withProviderPacing(config, { delivery: { smarthost: { host: 'smtp.office365.com' } } }),
    ),
    { messagesPerMinute: 30, recipientsPerDay: 10_000 },
  );
  assert.deepEqual(pacingOf(withProviderPacing(config, { delivery: { mode: 'graph' } })), {
    messagesPerMinute: 30,
    recipientsPerDay: 10_000,
  });
  assert.deepEqual(
    pacingOf(
      withProviderPacing(config, formPatch({ ...formValues(config), host: 'smtp.gmail.com' })),
    ),
    { messagesPerMinute: 0, recipientsPerDay: 2_000 },
  );
  // Limits of the admin's own, given now or before, stay; an unknown server, or no change of provider, fills in nothing
  const own = {
    delivery: {
      smarthost: { host: 'smtp.office365.com' },
      pacing: { messagesPerMinute: 5, recipientsPerDay: 0 },
    },
  };
  assert.deepEqual(pacingOf(withProviderPacing(config, own)), {
    messagesPerMinute: 5,
    recipientsPerDay: 0,
  });
  const limited = resolveConfig(
    {
      delivery: {
        smarthost: { host: 'smtp.example.com' },
        pacing: { messagesPerMinute: 0, recipientsPerDay: 500 },
      },
    },
    'test',
  );
  assert.equal(
    pacingOf(
      withProviderPacing(limited, { delivery: { smarthost: { host: 'smtp.office365.com' } } }),
    ),
    undefined,
  );
  assert.equal(
    pacingOf(withProviderPacing(config, { delivery: { smarthost: { host: 'mail.example.net' } } })),
    undefined,
  );
  const office = resolveConfig({ delivery: { smarthost: { host: 'smtp.office365.com' } } }, 'test');
  assert.deepEqual(
    pacingOf(
      withProviderPacing(office, {
        delivery: { pacing: { messagesPerMinute: 0, recipientsPerDay: 0 } },
      }),
    ),
    { messagesPerMinute: 0, recipientsPerDay: 0 },
    'an admin may turn the limits off again',
  );
});
