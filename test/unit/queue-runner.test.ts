/**
 * The queue manager over a real spool in a temp folder. The deliverer is a
 * recorder we hold back at will: what is tested is when the runner starts
 * deliveries, not how they are made (the e2e tests do that over sockets).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import type { Bouncer } from '../../src/bounce/bouncer.js';
import { resolveConfig } from '../../src/config/validate.js';
import type { Deliverer, DeliveryJob } from '../../src/deliver/deliverer.js';
import { allRecipients } from '../../src/deliver/outcome.js';
import { silentLogger } from '../../src/log.js';
import { QueueRunner } from '../../src/queue/runner.js';
import { newQueueId, type QueueId } from '../../src/spool/ids.js';
import { Spool } from '../../src/spool/spool.js';
import { eventually } from '../support/wait.js';

const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-runner-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const config = resolveConfig(
  {
    dataDir: dir,
    delivery: {
      concurrency: 1,
      retry: { delays: ['1m'], maxAge: '1d' },
      smarthost: { host: '127.0.0.1', port: 25, security: 'none' },
    },
  },
  'test',
);

/**
 * Delivers (records) each message once `release(id)` is called; `delivered`
 * lists them in order. A message in `defer` gets a 4xx instead.
 */
function heldDeliverer(defer = new Set<string>()) {
  const gates = new Map<string, () => void>();
  const waiting = new Map<string, Promise<void>>();
  const gate = (id: string) => {
    if (!waiting.has(id)) waiting.set(id, new Promise<void>((resolve) => gates.set(id, resolve)));
    return waiting.get(id)!;
  };
  const started: string[] = [];
  const delivered: string[] = [];
  const deliverer = {
    async deliver(job: DeliveryJob) {
      started.push(job.queueId);
      await gate(job.queueId);
      if (defer.has(job.queueId))
        return allRecipients(job.recipients, { status: 'deferred', reason: '451 4.3.0 try later' });
      delivered.push(job.queueId);
      return allRecipients(job.recipients, { status: 'delivered', detail: 'recorded' });
    },
  } as unknown as Deliverer;
  return { deliverer, started, delivered, release: (id: string) => (gate(id), gates.get(id)!()) };
}

const send = (spool: Spool, id: QueueId) =>
  spool.accept(
    {
      id,
      from: 'scanner@office.test',
      to: ['archive@example.com'],
      client: { address: '10.0.0.5', helo: 'mfp' },
    },
    Readable.from([Buffer.from('Subject: scan\r\n\r\nbody\r\n')]),
  );

/** Makes the next rescan wait, after reading the spool, until `apply()` */
function holdRescan(spool: Spool) {
  let apply!: () => void;
  const held = new Promise<void>((resolve) => (apply = resolve));
  const state = { snapshotTaken: false, apply };
  const list = spool.list.bind(spool);
  spool.list = async () => {
    const snapshot = await list();
    state.snapshotTaken = true;
    await held;
    spool.list = list;
    return snapshot;
  };
  return state;
}

async function runnerWith(deliverer: Deliverer) {
  const spool = await Spool.open(dir, silentLogger());
  const runner = new QueueRunner({
    spool,
    deliverer,
    bouncer: {} as Bouncer,
    config: () => config,
    log: silentLogger(),
  });
  await runner.start();
  return { spool, runner };
}

test('a message that arrives while a rescan reads the spool is still delivered (not left for the next sweep)', async () => {
  const { deliverer, started, delivered, release } = heldDeliverer();
  const { spool, runner } = await runnerWith(deliverer);
  try {
    // First message: its delivery is held, so the one slot is taken
    const first = newQueueId();
    await send(spool, first);
    await eventually('the first delivery starts', () => started.includes(first));

    // A rescan takes its snapshot of the spool, then is held before it applies it
    const rescan = holdRescan(spool);
    const scan = runner.rescan();
    await eventually('the rescan has read the spool', () => rescan.snapshotTaken);

    // The second message arrives after the snapshot and has to wait for the slot
    const second = newQueueId();
    await send(spool, second);
    rescan.apply();
    await scan;
    release(first);
    release(second);
    await eventually('the second message is delivered', () => delivered.includes(second));
    assert.deepEqual(delivered, [first, second]);
    await eventually('both are removed from the queue', () => runner.inFlight === 0);
    assert.deepEqual(await spool.ids(), []);
  } finally {
    await runner.stop(1_000);
    await spool.close();
  }
});

test('a deferral made while a rescan reads the spool keeps its backoff (the older snapshot does not restart it)', async () => {
  const message = newQueueId();
  const { deliverer, started, delivered, release } = heldDeliverer(new Set([message]));
  const { spool, runner } = await runnerWith(deliverer);
  try {
    await send(spool, message);
    await eventually('its delivery starts', () => started.includes(message));
    // The snapshot still shows the message untried; then the attempt ends with a 4xx
    const rescan = holdRescan(spool);
    const scan = runner.rescan();
    await eventually('the rescan has read the spool', () => rescan.snapshotTaken);
    release(message);
    await eventually('the attempt is over', () => runner.inFlight === 0);
    rescan.apply();
    await scan;
    // The rescan ends by starting whatever is due, there and then: nothing may be
    assert.equal(runner.inFlight, 0, 'started again by the rescan');
    // One slot (concurrency 1), oldest first: a newer message delivered means the older was not due
    const marker = newQueueId();
    await send(spool, marker);
    release(marker);
    await eventually('a newer message is delivered', () => delivered.includes(marker));
    assert.deepEqual(
      started,
      [message, marker],
      'tried again at once instead of after the 1 minute retry delay',
    );
    const entry = (await spool.list()).find((e) => e.arrival.id === message);
    assert.ok(
      entry && Date.parse(entry.state.nextAttempt) > Date.now() + 50_000,
      'the deferral is on disk',
    );
  } finally {
    await runner.stop(1_000);
    for (const id of await spool.ids()) await spool.remove(id);
    await spool.close();
  }
});

test('a bounce report that cannot be queued is retried, and the delivered recipient is not sent a second copy', async () => {
  const reportDir = mkdtempSync(path.join(tmpdir(), 'edge-relay-runner-report-'));
  const quickRetry = resolveConfig(
    {
      ...config,
      dataDir: reportDir,
      delivery: { ...config.delivery, retry: { delays: ['1s'], maxAge: '1d' } },
    },
    'test',
  );
  const delivered: string[] = [];
  const deliverer = {
    async deliver(job: DeliveryJob) {
      return job.recipients.map((address) => {
        if (address.startsWith('nobody@'))
          return {
            address,
            outcome: {
              status: 'bounced',
              reason: '550 5.1.1 No such user here',
              dsnStatus: '5.1.1',
            },
          };
        delivered.push(address);
        return { address, outcome: { status: 'delivered', detail: 'recorded' } };
      });
    },
  } as unknown as Deliverer;
  let failures = 2;
  const reports: string[][] = [];
  const bouncer = {
    async report(_entry: unknown, failed: { address: string }[]) {
      if (failures-- > 0)
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      reports.push(failed.map((r) => r.address));
    },
  } as unknown as Bouncer;
  const spool = await Spool.open(reportDir, silentLogger());
  const runner = new QueueRunner({
    spool,
    deliverer,
    bouncer,
    config: () => quickRetry,
    log: silentLogger(),
  });
  await runner.start();
  try {
    const id = newQueueId();
    await spool.accept(
      {
        id,
        from: 'scanner@office.test',
        to: ['nobody@example.com', 'boss@example.com'],
        client: { address: '10.0.0.5', helo: 'mfp' },
      },
      Readable.from([Buffer.from('Subject: partial\r\n\r\nbody\r\n')]),
    );
    await eventually('the report is queued after two failures', () => reports.length === 1, {
      timeoutMs: 10_000,
    });
    await eventually(
      'the message leaves the queue',
      () => runner.inFlight === 0 && !spool.has(id),
      { timeoutMs: 5_000 },
    );
    assert.deepEqual(delivered, ['boss@example.com'], 'boss@ got exactly one copy');
    assert.deepEqual(reports, [['nobody@example.com']]);
  } finally {
    await runner.stop(1_000);
    await spool.close();
    rmSync(reportDir, { recursive: true, force: true });
  }
});

test('an attempt routes its recipients once: the same routing picks its slot and goes to the deliverer', async () => {
  let routed = 0;
  // Routing a recipient asks whether its domain is local: count those questions
  const counting: typeof config = {
    ...config,
    mailbox: {
      ...config.mailbox,
      get localDomains() {
        return (routed++, config.mailbox.localDomains);
      },
    },
  };
  const destinations: string[] = [];
  const deliverer = {
    async deliver(job: DeliveryJob) {
      destinations.push(job.destination.kind);
      return allRecipients(job.recipients, { status: 'delivered', detail: 'recorded' });
    },
  } as unknown as Deliverer;
  const spool = await Spool.open(dir, silentLogger());
  const runner = new QueueRunner({
    spool,
    deliverer,
    bouncer: {} as Bouncer,
    config: () => counting,
    log: silentLogger(),
  });
  await runner.start();
  try {
    const id = newQueueId();
    await send(spool, id);
    await eventually(
      'the message is delivered and removed',
      () => destinations.length === 1 && runner.inFlight === 0 && !spool.has(id),
    );
    assert.deepEqual(destinations, ['smarthost']);
    assert.equal(routed, 1, 'one recipient, one attempt: routed once');
  } finally {
    await runner.stop(1_000);
    await spool.close();
  }
});
