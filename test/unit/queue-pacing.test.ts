import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pacer, type PaceLimits } from '../../src/queue/pacing.js';

const MINUTE = 60_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 11, 6, 9, 0, 0);
const M365: PaceLimits = { messagesPerMinute: 30, recipientsPerDay: 10_000 };
const NONE: PaceLimits = { messagesPerMinute: 0, recipientsPerDay: 0 };

describe('pacing', () => {
  it('lets 30 messages a minute through and holds the 31st until the first leaves the window', () => {
    const pacer = new Pacer();
    for (let i = 0; i < 30; i++) {
      assert.deepEqual(pacer.check('m365', M365, 1, T0 + i * 100), { go: true });
      pacer.record('m365', 1, T0 + i * 100);
    }
    assert.deepEqual(pacer.check('m365', M365, 1, T0 + 3_000), {
      go: false,
      until: T0 + MINUTE,
      reason: 'minute',
    });
    assert.deepEqual(pacer.check('m365', M365, 1, T0 + MINUTE), { go: true });
  });

  it('holds a message that would pass the daily recipients until enough of the day has slid out', () => {
    const pacer = new Pacer();
    const limits = { messagesPerMinute: 0, recipientsPerDay: 100 };
    pacer.record('gmail', 60, T0);
    pacer.record('gmail', 30, T0 + 2 * 3_600_000);
    const later = T0 + 5 * 3_600_000;
    assert.deepEqual(pacer.check('gmail', limits, 10, later), { go: true });
    const decision = pacer.check('gmail', limits, 20, later);
    assert.deepEqual(decision, { go: false, until: T0 + DAY, reason: 'day' });
    assert.deepEqual(pacer.check('gmail', limits, 20, T0 + DAY), { go: true });
    assert.equal(pacer.usage('gmail', limits, T0 + DAY).sentToday, 30);
  });

  it('sends a message larger than a whole day once the window is empty, rather than never', () => {
    const pacer = new Pacer();
    const limits = { messagesPerMinute: 0, recipientsPerDay: 10 };
    assert.deepEqual(pacer.check('isp', limits, 50, T0), { go: true });
    pacer.record('isp', 50, T0);
    assert.equal(pacer.check('isp', limits, 50, T0 + MINUTE).go, false);
  });

  it('honours a provider pause, and upstreams do not share counts', () => {
    const pacer = new Pacer();
    pacer.throttle('m365', T0 + 5 * MINUTE, T0);
    assert.deepEqual(pacer.check('m365', NONE, 1, T0 + MINUTE), {
      go: false,
      until: T0 + 5 * MINUTE,
      reason: 'throttled',
    });
    assert.deepEqual(pacer.check('other', NONE, 1, T0 + MINUTE), { go: true });
    assert.equal(pacer.usage('m365', NONE, T0).pausedUntil, T0 + 5 * MINUTE);
    assert.deepEqual(pacer.check('m365', NONE, 1, T0 + 5 * MINUTE), { go: true });
  });

  it('keeps the day and a pause across a restart, and drops what a restore cannot trust', () => {
    const pacer = new Pacer();
    pacer.record('m365', 40, T0);
    pacer.throttle('m365', T0 + 10 * MINUTE, T0);
    const saved = JSON.parse(JSON.stringify(pacer.snapshot(T0 + 1)));
    const restarted = new Pacer();
    restarted.restore(
      {
        ...saved,
        broken: { minutes: 'x' } as never,
        odd: { minutes: [[1, 'a']], pausedUntil: 0 } as never,
      },
      T0 + 2 * MINUTE,
    );
    assert.deepEqual(restarted.usage('m365', M365, T0 + 2 * MINUTE), {
      sentToday: 40,
      dayLimit: 10_000,
      pausedUntil: T0 + 10 * MINUTE,
    });
    assert.deepEqual(restarted.upstreams().sort(), ['m365', 'odd']);
    assert.equal(restarted.usage('odd', M365, T0).sentToday, 0);
  });
});
