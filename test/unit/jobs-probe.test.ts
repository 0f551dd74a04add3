/**
 * The upstream probe against real sockets, through the Deliverer: a live
 * smtp-server upstream (STARTTLS with a certificate from the test CA), a
 * closed port, a wrong certificate, and nothing configured.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Config } from '../../src/config/schema.js';
import { resolveConfig } from '../../src/config/validate.js';
import { probeUpstream } from '../../src/jobs/probe.js';
import { makeCerts } from '../support/certs.js';
import { testDeliverer } from '../support/deliverer.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

let good: Upstream;
let wrongName: Upstream;

const dataDir = mkdtempSync(path.join(tmpdir(), 'edge-relay-probe-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

const smarthost = (port: number, security = 'starttls') =>
  resolveConfig(
    {
      dataDir,
      delivery: {
        smarthost: { host: '127.0.0.1', port, security },
        tls: { verify: true, caFile: makeCerts().caFile },
      },
    },
    'test',
  );

const probe = async (config: Config) => probeUpstream(config, await testDeliverer(() => config));

before(async () => {
  [good, wrongName] = await Promise.all([
    startUpstream({ requireTls: true }),
    startUpstream({ requireTls: true, certificate: 'wrongname' }),
  ]);
});
after(async () => {
  await Promise.all([good.close(), wrongName.close()]);
});

test('a live upstream answers EHLO over verified TLS: ok, and no message is sent', async () => {
  const result = await probe(smarthost(good.port));
  assert.deepEqual(result, { ok: true, text: `127.0.0.1:${good.port} answered EHLO over TLS` });
  assert.equal(good.messages.length, 0);
  assert.ok(good.connections >= 1, 'it really connected');
});

test('a closed port is a failure naming the upstream and the reason', async () => {
  const closed = await startUpstream();
  const port = closed.port;
  await closed.close();
  const result = await probe(smarthost(port));
  assert.equal(result.ok, false);
  assert.match(result.text, new RegExp(`^127\\.0\\.0\\.1:${port}: .*(ECONNREFUSED|refused)`, 'i'));
});

test('a certificate for another name fails the probe, as it would fail delivery', async () => {
  const result = await probe(smarthost(wrongName.port));
  assert.equal(result.ok, false);
  assert.match(
    result.text,
    new RegExp(`^127\\.0\\.0\\.1:${wrongName.port}: .*does not match certificate`),
  );
});

test('nothing to probe: no upstream configured, or direct MX delivery', async () => {
  assert.deepEqual(await probe(resolveConfig({ dataDir }, 'test')), {
    ok: null,
    text: 'No upstream configured',
  });
  assert.equal(
    (await probe(resolveConfig({ dataDir, delivery: { mode: 'mx' } }, 'test'))).ok,
    null,
  );
});
