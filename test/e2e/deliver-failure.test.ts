/**
 * The Deliverer never throws: an exception on our side during a delivery
 * (here a device inventory that throws while the sender is rewritten)
 * becomes a deferral that counts as an attempt, and once the maximum queue
 * age has passed the message bounces with a report that goes out over a
 * real socket to a real upstream. In process: the real spool, runner,
 * bouncer and Deliverer; only the inventory is made to fail.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Bouncer } from '../../src/bounce/bouncer.js';
import type { Config } from '../../src/config/schema.js';
import type { Deliverer } from '../../src/deliver/deliverer.js';
import { resolveConfig } from '../../src/config/validate.js';
import { silentLogger } from '../../src/log.js';
import { QueueRunner, type AttemptReport } from '../../src/queue/runner.js';
import { newQueueId } from '../../src/spool/ids.js';
import { Spool } from '../../src/spool/spool.js';
import { testDeliverer } from '../support/deliverer.js';
import { startUpstream, viaSmarthost, type Upstream } from '../support/upstream.js';

const DEVICE = '10.0.0.5';
const MINUTE = 60_000;

describe('an exception during a delivery', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'edge-relay-deliver-failure-'));
  const log = silentLogger();
  let upstream: Upstream;
  let settings: Config;
  let spool: Spool;
  let runner: QueueRunner;
  let deliverer: Deliverer;
  const attempts: AttemptReport[] = [];

  const withMaxAge = (maxAge: string): Config =>
    resolveConfig(
      {
        dataDir,
        hostname: 'relay.test',
        ...viaSmarthost(upstream, {
          retry: { delays: ['1h'], maxAge },
          bounce: { notifySender: true },
        }),
      },
      'test',
    );

  before(async () => {
    upstream = await startUpstream();
    settings = withMaxAge('1h');
    const config = () => settings;
    spool = await Spool.open(dataDir, log);
    const deviceName = (address: string) => {
      if (address === DEVICE) throw new TypeError('The device inventory is broken');
      return undefined;
    };
    deliverer = await testDeliverer(config, { deviceName });
    const bouncer = new Bouncer({ spool, config, log, postmasterExists: () => false });
    runner = new QueueRunner({ spool, deliverer, bouncer, config, log });
    runner.on('attempt', (report) => attempts.push(report));
    await runner.start();
  });

  after(async () => {
    await runner.stop(1_000);
    deliverer.close();
    await spool.close();
    await upstream.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const attemptOf = async (id: string, count: number): Promise<AttemptReport> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = attempts.filter((a) => a.id === id);
      if (found.length >= count) return found[count - 1]!;
      if (Date.now() > deadline) throw new Error(`No attempt ${count} of ${id} within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  test('is deferred and counted as an attempt; past the maximum queue age the message bounces and the report goes out', async () => {
    const id = newQueueId();
    const arrived = new Date(Date.now() - 30 * MINUTE);
    const message = {
      id,
      from: 'scanner@office.test',
      to: ['archive@example.com'],
      client: { address: DEVICE, helo: 'mfp' },
    };
    await spool.accept(
      message,
      Readable.from([Buffer.from('From: scanner@office.test\r\nSubject: scan\r\n\r\nbody\r\n')]),
      [],
      arrived,
    );

    const first = await attemptOf(id, 1);
    assert.deepEqual(first.outcomes, [
      {
        address: 'archive@example.com',
        outcome: { status: 'deferred', reason: 'The device inventory is broken (on this box)' },
      },
    ]);
    const deferred = await spool.get(id);
    assert.equal(deferred?.state.attempts, 1, 'the exception counted as an attempt');
    assert.equal(deferred?.state.recipients[0]?.status, 'deferred');
    assert.ok(
      Date.parse(deferred?.state.nextAttempt ?? '') > Date.now() + 50 * MINUTE,
      'retried on the backoff schedule, not in a loop',
    );
    assert.equal(upstream.messages.length, 0);

    // Half an hour in the queue: a maximum age of 10 minutes has passed
    settings = withMaxAge('10m');
    runner.retryAllNow();
    const second = await attemptOf(id, 2);
    assert.equal(second.finished, true);
    const [report] = await upstream.waitFor(1, 10_000);
    assert.equal(report?.from, '');
    assert.deepEqual(report?.to, ['scanner@office.test']);
    const raw = report?.raw.toString('latin1') ?? '';
    assert.match(raw, /Action: failed\r\nStatus: 4\.4\.7\r\n/);
    assert.match(
      raw,
      /Gave up after 10m in the queue; last error: The device inventory is broken \(on this box\)/,
    );
    assert.equal(await spool.get(id), undefined, 'the message has left the queue');
  });
});
