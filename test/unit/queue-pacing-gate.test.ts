/** The queue's pacing gate: which upstream has which limits under the settings, and a provider's "slow down" */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { resolveConfig } from '../../src/config/validate.js';
import type { Config } from '../../src/config/schema.js';
import { allRecipients } from '../../src/deliver/outcome.js';
import { silentLogger } from '../../src/log.js';
import { PacingFile } from '../../src/queue/pacing-file.js';
import { PacingGate } from '../../src/queue/pacing-gate.js';
import type { RouteGroup } from '../../src/route/router.js';

const NOW = Date.parse('2026-12-01T10:00:00Z');

async function gateFor(config: Config): Promise<PacingGate> {
  const file = await PacingFile.open(
    mkdtempSync(path.join(tmpdir(), 'edge-relay-pacing-')),
    silentLogger(),
  );
  return new PacingGate(file, () => config, silentLogger());
}

const toHost: RouteGroup = {
  destination: { kind: 'host', host: '10.0.0.5', port: 25, tls: 'may' },
  recipients: ['a@partner.test', 'b@partner.test'],
};
const toSmarthost: RouteGroup = {
  destination: { kind: 'smarthost', host: 'smtp.example.com', port: 587 },
  recipients: ['c@example.com'],
};
const toMx: RouteGroup = {
  destination: { kind: 'mx', domain: 'example.org', tls: 'may' },
  recipients: ['d@example.org'],
};

test("a domain's own pacing applies to its route host; the smarthost without limits is not held", async () => {
  const config = resolveConfig(
    {
      delivery: {
        smarthost: { host: 'smtp.example.com' },
        domains: {
          'partner.test': {
            route: 'host',
            host: '10.0.0.5',
            pacing: { messagesPerMinute: 0, recipientsPerDay: 3 },
          },
        },
      },
    },
    'test',
  );
  const gate = await gateFor(config);
  assert.equal(gate.holdFor([toHost], NOW), undefined);
  gate.started([toHost, toSmarthost], NOW);
  const hold = gate.holdFor([toHost], NOW + 1_000);
  assert.equal(hold?.reason, 'day', 'two more recipients would pass 3 a day');
  assert.equal(hold?.text, '3 recipients a day reached');
  assert.equal(gate.holdFor([toSmarthost], NOW + 1_000), undefined);
  assert.deepEqual(
    gate.status(NOW + 1_000).map(({ upstream, label, sentToday, dayLimit }) => ({
      upstream,
      label,
      sentToday,
      dayLimit,
    })),
    [{ upstream: 'host:10.0.0.5:25:may', label: '10.0.0.5:25', sentToday: 2, dayLimit: 3 }],
  );
  await gate.close();
});

test('a throttling answer pauses the whole upstream for its Retry-After, or for the second retry delay; other answers do not', async () => {
  const config = resolveConfig(
    { delivery: { mode: 'mx', retry: { delays: ['1m', '7m'], maxAge: '5d' } } },
    'test',
  );
  const gate = await gateFor(config);
  gate.answered(
    toMx,
    allRecipients(toMx.recipients, { status: 'deferred', reason: '451 4.3.0 try later' }),
    NOW,
  );
  assert.equal(gate.holdFor([toMx], NOW), undefined, 'a plain deferral slows only its message');
  gate.answered(
    toMx,
    allRecipients(toMx.recipients, {
      status: 'deferred',
      reason: '421 4.7.0 rate limited',
      throttled: true,
    }),
    NOW,
  );
  assert.deepEqual(gate.holdFor([{ ...toMx, recipients: ['other@example.org'] }], NOW + 1_000), {
    until: NOW + 7 * 60_000,
    reason: 'throttled',
    text: 'the provider asked us to slow down',
  });
  assert.equal(
    gate.status(NOW).find((p) => p.upstream === 'mx:example.org:may')?.pausedUntil,
    NOW + 7 * 60_000,
  );
  gate.answered(
    toSmarthost,
    allRecipients(toSmarthost.recipients, {
      status: 'deferred',
      reason: 'Graph 429',
      retryAfterMs: 30_000,
      throttled: true,
    }),
    NOW,
  );
  assert.equal(gate.holdFor([toSmarthost], NOW + 29_000)?.until, NOW + 30_000);
  assert.equal(
    gate.holdFor([toSmarthost], NOW + 30_000),
    undefined,
    'free again once the wait is over',
  );
  await gate.close();
});
