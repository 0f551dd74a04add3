/**
 * Hostile input on the SMTP listener: thousands of seeded random sessions
 * (FUZZ_SESSIONS, default 2500; `make soak` runs 20,000). Afterwards the relay
 * is alive, its memory is back near where it started, every reply line it
 * sent was a well-formed SMTP reply, every message it acknowledged reached the
 * upstream (or is still queued), and a normal device still relays.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { smtplibSend } from '../support/clients.js';
import { deliveriesById, queueList, rssKb } from '../support/faults.js';
import { eventually } from '../support/wait.js';
import { rssBackNearBaseline } from '../support/memory.js';
import {
  Rng,
  assertSurvived,
  badReplyLines,
  play,
  queuedIds,
  reportIfExited,
  session,
  type FuzzProfile,
} from '../support/fuzz.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const SESSIONS = Number(process.env.FUZZ_SESSIONS ?? 2500);
const SEED = Number(process.env.FUZZ_SEED ?? 20261126);
const CONCURRENCY = 24;
const PROFILE: FuzzProfile = { hugeLine: 0.01, hugeAddress: 0.02 };

interface Tally {
  sessions: number;
  replies: number;
  hung: number;
  resets: number;
  bad: string[];
  queued: string[];
}

/** Done without the upstream: every recipient went to a local mailbox or bounced (with a report) */
function finishedElsewhere(relay: RunningRelay, id: string): boolean {
  const lines = relay.logs.filter((l) => l.queueId === id);
  const outcomes = lines.filter((l) => typeof l.rcpt === 'string').map((l) => l.status);
  return (
    lines.some((l) => l.msg === 'Message done, removed from the queue') &&
    outcomes.length > 0 &&
    outcomes.every((s) => s === 'local' || s === 'bounced')
  );
}

async function storm(port: number, tally: Tally): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < SESSIONS) {
      const index = next++;
      const rng = new Rng(SEED + index);
      const result = await play(port, session(rng, PROFILE), { closeWaitMs: 15_000 });
      tally.sessions++;
      tally.replies += result.replies.length;
      if (result.hung) tally.hung++;
      if (result.error) tally.resets++;
      for (const line of badReplyLines(result))
        if (tally.bad.length < 20) tally.bad.push(`session ${index}: ${line}`);
      tally.queued.push(...queuedIds(result));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

describe(`SMTP fuzzing: ${SESSIONS} hostile sessions (seed ${SEED})`, () => {
  let upstream: Upstream;
  let relay: RunningRelay;
  const tally: Tally = { sessions: 0, replies: 0, hung: 0, resets: 0, bad: [], queued: [] };
  let baselineKb = 0;

  before(async () => {
    upstream = await startUpstream({ offerTls: false });
    relay = await launchRelay({
      config: {
        smtp: {
          maxConnectionsPerClient: 1000,
          maxMessagesPerMinute: 1_000_000,
          maxConnections: 200,
          idleTimeout: '10s',
          maxMessageSize: 1024 * 1024,
        },
        delivery: {
          smarthost: { host: '127.0.0.1', port: upstream.port, security: 'none' },
          concurrency: 8,
        },
      },
    });
    // Warm up so the baseline includes what any served session loads once
    for (let i = 0; i < 5; i++)
      await smtplibSend(
        relay.smtpPort,
        'warm@example.com',
        ['someone@example.com'],
        'Subject: warm-up\r\n\r\nhello\r\n',
      );
    await upstream.waitFor(5).catch((err) => {
      console.log(relay.output().slice(-3000));
      throw err;
    });
    baselineKb = rssKb(relay.process.pid!);
    const started = Date.now();
    await storm(relay.smtpPort, tally);
    const rssAfter = rssKb(relay.process.pid!);
    console.log(
      `fuzz-smtp: ${tally.sessions} sessions, ${tally.replies} reply lines, ${tally.queued.length} messages accepted, ${tally.hung} sessions not closed in time, ` +
        `${tally.resets} socket errors, ${tally.bad.length} bad replies, ${Date.now() - started} ms; RSS ${baselineKb} kB before, ${rssAfter} kB right after`,
    );
  });
  after(async () => {
    reportIfExited('fuzz-smtp', relay);
    await relay?.stop();
    await upstream?.close();
  });

  test('the relay process survived', () => {
    assertSurvived(relay, tally.sessions, SESSIONS);
  });

  test('every reply line was a well-formed SMTP reply (NNN text, printable, <= 512 octets)', () => {
    assert.ok(tally.replies > SESSIONS, `sessions were answered (${tally.replies} lines)`);
    assert.deepEqual(tally.bad, []);
  });

  test('every session ended: the server closed it after QUIT or on bad input', () => {
    assert.equal(tally.hung, 0, `${tally.hung} sessions were still open 15 s after QUIT`);
  });

  test('every acknowledged message reached the upstream exactly once, or is still queued', async () => {
    const queued = new Set(tally.queued);
    let lastMissing: string[] = [];
    const settled = await eventually(
      'fuzzed messages delivered or deferred',
      async () => {
        const delivered = deliveriesById(upstream.messages);
        const waiting = new Set((await queueList(relay)).map((item) => item.id));
        const missing = [...queued].filter(
          (id) => !delivered.has(id) && !waiting.has(id) && !finishedElsewhere(relay, id),
        );
        if (missing.length) lastMissing = missing;
        return missing.length === 0 ? { delivered, waiting } : undefined;
      },
      { timeoutMs: 60_000, everyMs: 500 },
    ).catch((err: Error) =>
      assert.fail(
        `${err.message}; missing ${lastMissing.join(' ')}; their log: ${JSON.stringify(relay.logs.filter((l) => lastMissing.includes(String(l.queueId))).slice(0, 10))}`,
      ),
    );
    const twice = [...settled.delivered].filter(([id, n]) => queued.has(id) && n > 1);
    assert.deepEqual(twice, [], 'no duplicates');
    console.log(
      `fuzz-smtp: ${queued.size} accepted, ${queued.size - settled.waiting.size} delivered, ${settled.waiting.size} still queued, 0 lost, ${twice.length} duplicates`,
    );
  });

  test('memory is back near the warmed-up baseline', async () => {
    const settledKb = await rssBackNearBaseline(relay.process.pid!, baselineKb);
    console.log(
      `fuzz-smtp: RSS ${baselineKb} kB baseline, ${settledKb} kB after the storm settled`,
    );
  });

  test('a normal device (smtplib) still relays', async () => {
    const before = upstream.messages.length;
    const reply = await smtplibSend(
      relay.smtpPort,
      'printer@office.test',
      ['boss@example.com'],
      'Subject: after the storm\r\n\r\nstill here\r\n',
    );
    assert.match(reply, /^250 .*queued as/);
    await eventually('the device message at the upstream', () =>
      upstream.messages.slice(before).find((m) => m.raw.includes('after the storm')),
    );
  });
});
