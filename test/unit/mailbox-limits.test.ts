/** Retention and quota: the pure plan, and enforcement on a real mailbox folder */
import assert from 'node:assert/strict';
import { mkdtempSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { resolveConfig } from '../../src/config/validate.js';
import { createLogger } from '../../src/log.js';
import { enforceMailboxLimits, planRemovals } from '../../src/mailbox/limits.js';
import { MailboxLocks } from '../../src/mailbox/locks.js';
import { MailboxStore } from '../../src/mailbox/store.js';

const DAY = 86_400_000;
const NOW = new Date('2026-11-26T12:00:00Z');
const msg = (uid: string, daysOld: number, size: number) => ({
  uid,
  size,
  deliveredAt: new Date(NOW.getTime() - daysOld * DAY),
});

describe('planRemovals', () => {
  test('removes what is past retention, then the oldest until under quota', () => {
    const messages = [
      msg('a.1', 40, 10),
      msg('b.2', 31, 10),
      msg('c.3', 5, 50),
      msg('d.4', 2, 50),
      msg('e.5', 1, 50),
    ];
    assert.deepEqual(planRemovals(messages, { retentionMs: 30 * DAY, quotaBytes: 100, now: NOW }), [
      { uid: 'a.1', size: 10, reason: 'retention' },
      { uid: 'b.2', size: 10, reason: 'retention' },
      { uid: 'c.3', size: 50, reason: 'quota' },
    ]);
  });

  test('removes nothing from a mailbox within both limits, whatever the input order', () => {
    assert.deepEqual(
      planRemovals([msg('b.2', 1, 10), msg('a.1', 29, 10)], {
        retentionMs: 30 * DAY,
        quotaBytes: 20,
        now: NOW,
      }),
      [],
    );
    assert.deepEqual(
      planRemovals([msg('b.2', 1, 10), msg('a.1', 29, 10)], {
        retentionMs: 30 * DAY,
        quotaBytes: 15,
        now: NOW,
      }),
      [{ uid: 'a.1', size: 10, reason: 'quota' }],
    );
  });
});

describe('enforceMailboxLimits', () => {
  async function setup() {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'edge-relay-limits-'));
    const lines: Record<string, unknown>[] = [];
    const destination = new PassThrough();
    destination.on('data', (d: Buffer) =>
      d
        .toString()
        .split('\n')
        .filter(Boolean)
        .forEach((l) => lines.push(JSON.parse(l) as Record<string, unknown>)),
    );
    const log = createLogger({ destination });
    const store = await MailboxStore.open(dataDir, log);
    const locks = new MailboxLocks();
    const config = resolveConfig({ dataDir, mailbox: { retention: '30d', quota: 100 } }, 'test');
    /** Delivers a message and backdates it (the store's delivery time is the file's mtime) */
    const deliver = async (name: string, daysOld: number, size: number) => {
      const { uid } = await store.deliver(name, Readable.from([Buffer.alloc(size, 'x')]));
      const when = new Date(NOW.getTime() - daysOld * DAY);
      await fs.utimes(path.join(dataDir, 'mailboxes', name, 'new', uid), when, when);
      return uid;
    };
    return {
      store,
      locks,
      lines,
      deliver,
      options: { mailboxes: store, locks, config: () => config, log, now: () => NOW },
    };
  }

  test('applies retention and quota to every mailbox, logging each removal', async () => {
    const { store, lines, deliver, options } = await setup();
    await store.add('alice', null);
    await store.add('bob', null);
    const old = await deliver('alice', 45, 10);
    const big = await deliver('alice', 3, 80);
    const kept = await deliver('alice', 1, 60);
    const bobs = await deliver('bob', 10, 20);
    const report = await enforceMailboxLimits(options);
    assert.deepEqual(report, { removed: 2, bytes: 90, busy: [] });
    assert.deepEqual(
      (await store.list('alice')).map((m) => m.uid),
      [kept],
    );
    assert.deepEqual(
      (await store.list('bob')).map((m) => m.uid),
      [bobs],
    );
    const removals = lines
      .filter((l) => l.mailbox === 'alice' && typeof l.reason === 'string')
      .map((l) => [l.uid, l.reason]);
    assert.deepEqual(removals, [
      [old, 'retention'],
      [big, 'quota'],
    ]);
  });

  test('skips a mailbox a session holds, and only that one; one mailbox can be named', async () => {
    const { store, locks, deliver, options } = await setup();
    await store.add('alice', null);
    await store.add('bob', null);
    await deliver('alice', 45, 10);
    await deliver('bob', 45, 10);
    const release = locks.tryAcquire('alice', 'POP3 session test');
    assert.ok(release);
    assert.deepEqual(await enforceMailboxLimits(options), {
      removed: 1,
      bytes: 10,
      busy: ['alice'],
    });
    assert.equal((await store.list('alice')).length, 1);
    release();
    assert.deepEqual(await enforceMailboxLimits(options, 'alice'), {
      removed: 1,
      bytes: 10,
      busy: [],
    });
    assert.equal(locks.holder('alice'), undefined, 'housekeeping gave the lock back');
  });
});

describe('MailboxLocks', () => {
  test('one holder at a time; release is idempotent', () => {
    const locks = new MailboxLocks();
    const release = locks.tryAcquire('alice', 'first');
    assert.ok(release);
    assert.equal(locks.tryAcquire('alice', 'second'), null);
    assert.equal(locks.holder('alice'), 'first');
    release();
    const again = locks.tryAcquire('alice', 'third');
    release();
    assert.equal(
      locks.holder('alice'),
      'third',
      'a second release of the first holder does not free the new holder',
    );
    again?.();
  });
});
