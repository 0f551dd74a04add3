/**
 * Pacing to the upstream's limits, end to end on loopback: a smarthost
 * with a daily limit of 2 recipients gets 2 of 3 messages, the third waits
 * in the queue (accepted from the device, no attempt counted), the dashboard
 * and /api/status say "sent 2 of 2 today" and why mail is held, the daily
 * cap alert lands in the postmaster mailbox, and the counts survive a
 * restart. A provider's "421 4.7.0 ... rate limited" pauses the whole
 * upstream for the rest it is due, without counting an attempt.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { setupAdminOf } from '../support/browser.js';
import { smtplibSend } from '../support/clients.js';
import { launchRelay, newMail, type RunningRelay } from '../support/relay.js';
import { startUpstream, viaSmarthost, type Upstream } from '../support/upstream.js';
import { eventually } from '../support/wait.js';

interface Pace {
  upstream: string;
  label: string;
  sentToday: number;
  dayLimit: number;
  pausedUntil?: number;
  held?: { until: number; reason: string; text: string };
}

const body = (n: number) =>
  `From: scanner@relay.test\r\nTo: someone@example.com\r\nSubject: scan ${n}\r\n\r\npage ${n}\r\n`;

async function readToken(relay: RunningRelay): Promise<string> {
  const created = await relay.cli(['admin', 'token', 'create', 'pacing test']);
  assert.equal(created.code, 0, created.stderr);
  return /^er_\S+$/m.exec(created.stdout)?.[0] ?? '';
}

async function api<T>(relay: RunningRelay, token: string, route: string): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${relay.webPort}${route}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(response.status, 200, route);
  return (await response.json()) as T;
}

const pacing = async (relay: RunningRelay, token: string) =>
  (await api<{ pacing: Pace[] }>(relay, token, '/api/status')).pacing;

describe('pacing to the upstream limits', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('a daily recipient limit holds the third message in the queue, says so, alerts, and survives a restart', async () => {
    const upstream: Upstream = await startUpstream();
    cleanups.push(() => upstream.close());
    const config = {
      ...viaSmarthost(upstream, { pacing: { messagesPerMinute: 0, recipientsPerDay: 2 } }),
      alerts: { dailyCapPercent: 90 },
    };
    let relay = await launchRelay({ config });
    cleanups.push(() => relay.stop());
    const admin = await setupAdminOf(relay);
    const token = await readToken(relay);

    for (const n of [1, 2, 3])
      assert.match(
        await smtplibSend(relay.smtpPort, 'scanner@relay.test', [`user${n}@example.com`], body(n)),
        /^250|ok/i,
        `message ${n} accepted from the device`,
      );
    await upstream.waitFor(2);
    const held = await eventually(
      'the smarthost held by its daily limit',
      async () => (await pacing(relay, token)).find((p) => p.held?.reason === 'day'),
      { timeoutMs: 15_000 },
    );
    assert.ok(held);
    assert.equal(held.upstream, `smarthost:127.0.0.1:${upstream.port}`);
    assert.deepEqual([held.sentToday, held.dayLimit], [2, 2]);
    assert.match(held.held?.text ?? '', /2 recipients a day reached/);
    assert.ok(
      (held.held?.until ?? 0) > Date.now() + 23 * 3_600_000,
      'held until the first of the day leaves the 24 hours',
    );
    assert.equal(upstream.messages.length, 2, 'the third message was not sent');
    assert.equal(upstream.dataAttempts, 2, 'nor tried: the provider never saw it');

    const queue = await api<
      { recipients: { address: string; status: string }[]; attempts: number; heldBack?: string }[]
    >(relay, token, '/api/queue');
    assert.equal(queue.length, 1);
    assert.equal(queue[0]?.recipients[0]?.address, 'user3@example.com');
    assert.equal(queue[0]?.attempts, 0, 'holding back is not an attempt');
    assert.equal(queue[0]?.recipients[0]?.status, 'queued');
    const reason = /^Held back: 127\.0\.0\.1:\d+: 2 recipients a day reached; goes at \d{4}-/;
    assert.match(queue[0]?.heldBack ?? '', reason);
    const listed = await relay.cli(['queue', 'list']);
    assert.match(
      listed.stdout,
      /user3@example\.com \(queued\)\n\s+Held back: 127\.0\.0\.1:\d+: 2 recipients a day reached/,
    );
    assert.match(
      (await admin.get('/queue')).text,
      /class="small held-back">Held back: 127\.0\.0\.1:\d+: 2 recipients a day reached/,
    );

    const metrics = await fetch(`http://127.0.0.1:${relay.webPort}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(metrics.status, 200);
    const scraped = await metrics.text();
    const upstreamLabel = `upstream="127.0.0.1:${upstream.port}"`;
    assert.ok(
      scraped.includes(`edge_relay_upstream_recipients_24h{${upstreamLabel}} 2\n`),
      scraped,
    );
    assert.ok(
      scraped.includes(`edge_relay_upstream_recipients_per_day_limit{${upstreamLabel}} 2\n`),
    );
    assert.ok(scraped.includes(`edge_relay_upstream_holding{${upstreamLabel}} 1\n`));

    const dashboard = await admin.get('/');
    assert.match(dashboard.text, /sent 2 of 2 today/);
    assert.match(dashboard.text, /holding mail until \d\d:\d\d/);
    assert.match(
      dashboard.text,
      /2 recipients a day reached; it waits in the queue, nothing is refused/,
    );

    const alert = await eventually(
      'the daily cap alert',
      () => newMail(relay, 'postmaster').find((m) => m.includes('of its daily limit')),
      { timeoutMs: 15_000 },
    );
    assert.match(alert, /Subject: \[edge-relay\] 127\.0\.0\.1:\d+ at 90% of its daily limit/);
    assert.match(alert, /127\.0\.0\.1:\d+: 2 of 2 recipients in the last 24 hours/);
    assert.match(alert, /mail waits safely in the queue .* it is not refused/);

    // The counts are saved at stop and read at start: the third message still waits
    assert.equal(await relay.stop(), 0);
    const saved = JSON.parse(
      readFileSync(path.join(relay.dataDir, 'pacing.json'), 'utf8'),
    ) as Record<string, { minutes: [number, number][] }>;
    assert.equal(
      saved[held.upstream]?.minutes.reduce((sum, [, count]) => sum + count, 0),
      2,
    );
    relay = await launchRelay({ dir: relay.dir, config });
    const again = await eventually(
      'the restarted relay holding the third message',
      async () => (await pacing(relay, token)).find((p) => p.held?.reason === 'day'),
      { timeoutMs: 15_000 },
    );
    assert.deepEqual([again?.sentToday, again?.dayLimit], [2, 2]);
    assert.equal(upstream.dataAttempts, 2, 'the restart did not forget the day and send the third');
  });

  test('3 messages a minute: of 6 sent at once, 3 go and 3 wait for the minute, held without an attempt', async () => {
    const upstream = await startUpstream();
    cleanups.push(() => upstream.close());
    const relay = await launchRelay({
      config: viaSmarthost(upstream, { pacing: { messagesPerMinute: 3, recipientsPerDay: 0 } }),
    });
    cleanups.push(() => relay.stop());
    const token = await readToken(relay);
    for (const n of [1, 2, 3, 4, 5, 6])
      await smtplibSend(relay.smtpPort, 'scanner@relay.test', [`user${n}@example.com`], body(n));
    await upstream.waitFor(3);
    const held = await eventually(
      'the smarthost held by its minute limit',
      async () => (await pacing(relay, token)).find((p) => p.held?.reason === 'minute'),
      { timeoutMs: 15_000 },
    );
    assert.equal(held?.held?.text, '3 a minute reached');
    assert.ok(
      (held?.held?.until ?? 0) - Date.now() > 50_000,
      'held until the first of the minute is a minute old',
    );
    assert.equal(upstream.dataAttempts, 3);
    const queue = await api<{ attempts: number }[]>(relay, token, '/api/queue');
    assert.deepEqual(
      queue.map((item) => item.attempts),
      [0, 0, 0],
      'the three waiting were accepted and never tried',
    );
  });

  test('"421 4.7.0 rate limited" pauses the whole upstream for its rest; no attempt counted; the mail arrives after', async () => {
    const dataAt: number[] = [];
    const upstream = await startUpstream({
      dataReply: (attempt) => {
        dataAt.push(Date.now());
        return attempt === 1 ? [421, '4.7.0 Too many messages, rate limited'] : undefined;
      },
    });
    cleanups.push(() => upstream.close());
    // The message alone would be retried after 1 s; the upstream rests for the second delay, 3 s
    const relay = await launchRelay({
      config: viaSmarthost(upstream, { retry: { delays: ['1s', '3s'], maxAge: '5d' } }),
    });
    cleanups.push(() => relay.stop());
    const token = await readToken(relay);

    await smtplibSend(relay.smtpPort, 'scanner@relay.test', ['someone@example.com'], body(1));
    const slowDown = await relay.waitForLog((l) => /asked us to slow down/.test(l.msg));
    assert.equal(slowDown.upstream, `smarthost:127.0.0.1:${upstream.port}`);
    const [paused] = (await pacing(relay, token)).filter((p) => p.pausedUntil);
    assert.ok(
      paused?.pausedUntil && paused.pausedUntil > Date.now(),
      'the upstream shows as paused',
    );
    const [queued] = await api<{ attempts: number }[]>(relay, token, '/api/queue');
    assert.equal(queued?.attempts, 0, 'a throttled deferral is not an attempt');

    await upstream.waitFor(1, 20_000);
    const waited = (dataAt[1] ?? 0) - (dataAt[0] ?? 0);
    assert.ok(
      waited >= 2_800,
      `the next attempt waited for the upstream's rest (${waited} ms), not the message's 1 s retry`,
    );
    const done = await relay.waitForLog((l) => l.msg === 'Message done, removed from the queue');
    assert.equal(done.attempts, 1, 'only the delivery counted');
  });

  test("choosing Microsoft 365 on the settings page fills in its limits; the admin's own stay", async () => {
    const relay = await launchRelay();
    cleanups.push(() => relay.stop());
    const admin = await setupAdminOf(relay);
    const page = await admin.get('/settings');
    assert.match(page.text, /name="pacingPerMinute" value="0"/);
    assert.match(page.text, /name="dailyCapPercent" value="90"/);
    assert.equal(
      (await admin.post('/settings', { host: 'smtp.office365.com', port: '587' })).status,
      303,
    );
    const settings = async () =>
      (
        JSON.parse((await admin.get('/api/settings')).text) as {
          config: { delivery: { pacing: unknown } };
        }
      ).config.delivery.pacing;
    assert.deepEqual(await settings(), { messagesPerMinute: 30, recipientsPerDay: 10_000 });
    assert.match((await admin.get('/settings')).text, /name="pacingPerDay" value="10000"/);
    // The admin's own figures, then another provider: they stay
    assert.equal(
      (await admin.post('/settings', { pacingPerMinute: '10', pacingPerDay: '500' })).status,
      303,
    );
    assert.equal((await admin.post('/settings', { host: 'smtp.gmail.com' })).status, 303);
    assert.deepEqual(await settings(), { messagesPerMinute: 10, recipientsPerDay: 500 });
  });
});
