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

const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-runner-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const config = resolveConfig({ dataDir: dir, delivery: { concurrency: 1, smarthost: { host: '127.0.0.1', port: 25, security: 'none' } } }, 'test');

/** Delivers (records) each message once `release(id)` is called; `delivered` lists them in order */
function heldDeliverer() {
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
      delivered.push(job.queueId);
      return allRecipients(job.recipients, { status: 'delivered', detail: 'recorded' });
    },
  } as unknown as Deliverer;
  return { deliverer, started, delivered, release: (id: string) => (gate(id), gates.get(id)!()) };
}

async function until(what: string, check: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const send = (spool: Spool, id: QueueId) =>
  spool.accept({ id, from: 'scanner@office.test', to: ['archive@example.com'], client: { address: '10.0.0.5', helo: 'mfp' } }, Readable.from([Buffer.from('Subject: scan\r\n\r\nbody\r\n')]));

test('a message that arrives while a rescan reads the spool is still delivered (not left for the next sweep)', async () => {
  const spool = await Spool.open(dir, silentLogger());
  const { deliverer, started, delivered, release } = heldDeliverer();
  const runner = new QueueRunner({ spool, deliverer, bouncer: {} as Bouncer, config: () => config, log: silentLogger() });
  await runner.start();
  try {
    // First message: its delivery is held, so the one slot is taken
    const first = newQueueId();
    await send(spool, first);
    await until('the first delivery starts', () => started.includes(first));

    // A rescan takes its snapshot of the spool, then is held before it applies it
    let openScan!: () => void;
    const scanHeld = new Promise<void>((resolve) => (openScan = resolve));
    let snapshotTaken = false;
    const list = spool.list.bind(spool);
    spool.list = async () => {
      const snapshot = await list();
      snapshotTaken = true;
      await scanHeld;
      return snapshot;
    };
    const scan = runner.rescan();
    await until('the rescan has read the spool', () => snapshotTaken);

    // The second message arrives after the snapshot and has to wait for the slot
    const second = newQueueId();
    await send(spool, second);
    openScan();
    await scan;
    release(first);
    release(second);
    await until('the second message is delivered', () => delivered.includes(second));
    assert.deepEqual(delivered, [first, second]);
    await until('both are removed from the queue', () => runner.inFlight === 0);
    assert.deepEqual(await spool.ids(), []);
  } finally {
    await runner.stop(1_000);
  }
});
