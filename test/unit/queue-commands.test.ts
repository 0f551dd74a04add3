/**
 * "Retry all" over a real spool with a few hundred queued messages and the
 * real queue manager listening, as in the server: one pass over the spool,
 * one rescan, and a message that cannot be changed is reported, not skipped.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import type { Bouncer } from '../../src/bounce/bouncer.js';
import { resolveConfig } from '../../src/config/validate.js';
import type { Deliverer } from '../../src/deliver/deliverer.js';
import { silentLogger } from '../../src/log.js';
import { QueueCommands } from '../../src/queue/commands.js';
import { QueueRunner } from '../../src/queue/runner.js';
import { newQueueId, type QueueId } from '../../src/spool/ids.js';
import { Spool } from '../../src/spool/spool.js';

const QUEUED = 300;
const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-queue-commands-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const config = resolveConfig(
  {
    dataDir: dir,
    delivery: {
      retry: { delays: ['1h'], maxAge: '5d' },
      smarthost: { host: '127.0.0.1', port: 25, security: 'none' },
    },
  },
  'test',
);

/** Counts the spool's reads of each message's records (list reads every message through get) */
function countReads(spool: Spool) {
  const counts = { get: 0, saveState: 0, list: 0 };
  for (const name of Object.keys(counts) as (keyof typeof counts)[]) {
    const original = (spool[name] as (...args: unknown[]) => unknown).bind(spool);
    (spool as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      counts[name]++;
      return original(...args);
    };
  }
  return counts;
}

test(`retry all with ${QUEUED} queued: one pass over the spool, one rescan, failures named`, async () => {
  const spool = await Spool.open(dir, silentLogger());
  const ids: QueueId[] = [];
  for (let i = 0; i < QUEUED; i++) {
    const id = newQueueId();
    ids.push(id);
    await spool.accept(
      {
        id,
        from: 'ups@office.test',
        to: ['ops@example.com'],
        client: { address: '10.0.0.5', helo: 'ups' },
      },
      Readable.from([Buffer.from(`Subject: ${i}\r\n\r\nbody\r\n`)]),
    );
    // Deferred an hour ago for an hour more: not due, so nothing is being delivered during the test
    await spool.saveState(id, {
      attempts: 1,
      nextAttempt: new Date(Date.now() + 3_600_000).toISOString(),
      lastError: '451 later',
      held: false,
      recipients: [{ address: 'ops@example.com', status: 'deferred' }],
    });
  }
  const deliverer = {
    deliver: async () => {
      throw new Error('nothing is due in this test');
    },
  } as unknown as Deliverer;
  const runner = new QueueRunner({
    spool,
    deliverer,
    bouncer: {} as Bouncer,
    config: () => config,
    log: silentLogger(),
  });
  const rescans: Promise<void>[] = [];
  const commands = new QueueCommands(spool, () => void rescans.push(runner.rescan()));
  try {
    const counts = countReads(spool);
    // One message's state cannot be written (a full disk, say): the others are still retried, and it is named
    const unlucky = ids[7]!;
    const saveState = spool.saveState.bind(spool);
    spool.saveState = async (id, state) =>
      id === unlucky
        ? Promise.reject(new Error('ENOSPC: no space left on device'))
        : saveState(id, state);
    const began = Date.now();
    await assert.rejects(commands.retryAll(), (err: Error) => {
      assert.match(
        err.message,
        new RegExp(
          `^Retried ${QUEUED - 1} messages; 1 could not be changed: ${unlucky} \\(ENOSPC: no space left on device\\)$`,
        ),
      );
      return true;
    });
    const tookMs = Date.now() - began;
    await Promise.all(rescans);
    console.log(
      `queue-commands: retry all of ${QUEUED}: ${tookMs} ms, ${JSON.stringify(counts)}, ${rescans.length} rescan(s)`,
    );
    assert.equal(rescans.length, 1, 'the server is told once, not once per message');
    assert.ok(
      counts.get <= 4 * QUEUED,
      `each message's records read a few times, not once per message queued: ${JSON.stringify(counts)}`,
    );
    const due = (await spool.list()).filter((e) => Date.parse(e.state.nextAttempt) <= Date.now());
    assert.equal(due.length, QUEUED - 1);
  } finally {
    await runner.stop(1_000);
  }
});
