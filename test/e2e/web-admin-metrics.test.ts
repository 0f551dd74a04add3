/**
 * /metrics as Prometheus sees it, with an API token made on the command line:
 * refusals by stage and code, deferrals and bounces by reply code, upstream
 * errors and reachability, POP3 logins by result. And the token's life on the
 * CLI: create, list, revoke (then 401).
 */
import assert from 'node:assert/strict';
import { readFileSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { poplibLogin, RawSmtp, smtplibSend } from '../support/clients.js';
import { RawPop3 } from '../support/pop3.js';
import { ROOT, launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, viaSmarthost, type Upstream } from '../support/upstream.js';
import { eventually } from '../support/wait.js';

const MAILBOX_PASSWORD = 'scans-password-1';

/** One sample's value, e.g. sample(text, 'edge_relay_pop3_logins_total{result="ok"}') */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Makes an API token with the CLI; returns its text and id */
async function cliToken(
  relay: RunningRelay,
  label: string,
): Promise<{ token: string; id: string }> {
  const created = await relay.cli(['admin', 'token', 'create', label]);
  assert.equal(created.code, 0, created.stderr);
  const match = /\(id ([0-9a-f]{8})\)[\s\S]*\n(er_\S+)/.exec(created.stdout);
  assert.ok(match?.[1] && match[2], `token printed: ${created.stdout}`);
  return { id: match[1], token: match[2] };
}

interface Sighting {
  at: string;
  text: string;
}

/** GET /api/status as JSON (src/web/overview.ts) */
interface Status {
  version: string;
  uptimeSeconds: number;
  disk: { path: string; freeBytes: number; totalBytes: number };
  queue: Record<'queued' | 'deferred' | 'held', number>;
  today: {
    day: string;
    accepted: number;
    rejected: number;
    delivered: number;
    local: number;
    deferred: number;
    bounced: number;
  };
  recent: { to: string; status: string; text: string }[];
  upstream: {
    mode: string;
    target: string;
    reachability: string;
    lastSuccess: Sighting | null;
    lastError: Sighting | null;
    failingSince: string | null;
  };
}

describe('metrics with a CLI-made API token', () => {
  let upstream: Upstream;
  let relay: RunningRelay;
  let token: string;

  const metrics = async (): Promise<string> => {
    const response = await fetch(`http://127.0.0.1:${relay.webPort}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(response.status, 200);
    return response.text();
  };
  /** Polls /metrics until `series` reaches `atLeast` (the runner reports attempts as they end) */
  const counted = async (series: string, atLeast = 1): Promise<number> =>
    eventually(
      series,
      async () => {
        const value = sample(await metrics(), series) ?? 0;
        return value >= atLeast ? value : undefined;
      },
      { timeoutMs: 15_000 },
    );

  before(async () => {
    upstream = await startUpstream({
      requireTls: true,
      rcptReply: (address) =>
        address.startsWith('gone@')
          ? [550, '5.1.1 No such user here']
          : address.startsWith('later@')
            ? [451, '4.3.0 Try again later']
            : undefined,
    });
    relay = await launchRelay({ config: viaSmarthost(upstream) });
    ({ token } = await cliToken(relay, 'Prometheus'));
    const added = await relay.cli(
      ['mailbox', 'add', 'scans', '--password-stdin'],
      `${MAILBOX_PASSWORD}\n`,
    );
    assert.equal(added.code, 0, added.stderr);
  });
  after(async () => {
    await relay.stop();
    await upstream.close();
  });

  test('a token made on the CLI reads /metrics and /api/status, is listed, and gets 401 once revoked', async () => {
    assert.match(await metrics(), /^edge_relay_messages_accepted_total 0$/m);
    const status = await fetch(`http://127.0.0.1:${relay.webPort}/api/status`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(status.status, 200);
    assert.equal(((await status.json()) as { hostname: string }).hostname, 'relay.test');
    const old = await cliToken(relay, 'Old backup script');
    const listed = await relay.cli(['admin', 'token', 'list']);
    assert.match(listed.stdout, /Prometheus/);
    assert.match(listed.stdout, new RegExp(`^${old.id} .* Old backup script$`, 'm'));
    const asOld = () =>
      fetch(`http://127.0.0.1:${relay.webPort}/metrics`, {
        headers: { authorization: `Bearer ${old.token}` },
      });
    assert.equal((await asOld()).status, 200);
    const revoked = await relay.cli(['admin', 'token', 'revoke', old.id]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(
      (await asOld()).status,
      401,
      'a revoked token is refused at once, without a restart',
    );
    const unknown = await relay.cli(['admin', 'token', 'revoke', old.id]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, new RegExp(`No token with id "${old.id}"`));
    assert.equal(
      (
        await fetch(`http://127.0.0.1:${relay.webPort}/metrics`, {
          headers: { authorization: `Bearer ${token}` },
        })
      ).status,
      200,
      'the other token still works',
    );
  });

  test('a refused RCPT, a bounce (upstream 550), a deferral (upstream 451) and upstream errors are counted', async () => {
    const smtp = await RawSmtp.connect(relay.smtpPort);
    await smtp.reply();
    await smtp.command('EHLO printer.lan\r\n');
    await smtp.command('MAIL FROM:<copier@office.test>\r\n');
    assert.match(
      await smtp.command('RCPT TO:<nobody@relay.test>\r\n'),
      /^550/,
      'unknown local user',
    );
    smtp.close();
    assert.equal(await counted('edge_relay_messages_rejected_total{stage="rcpt",code="550"}'), 1);

    await smtplibSend(
      relay.smtpPort,
      'copier@office.test',
      ['gone@example.com'],
      'Subject: to nobody\r\n\r\nx\r\n',
    );
    assert.equal(await counted('edge_relay_recipients_total{status="bounced",reason="550"}'), 1);
    // The bounce report itself goes to the local postmaster mailbox
    await counted('edge_relay_recipients_total{status="local",reason="ok"}');

    const errorsBefore = sample(await metrics(), 'edge_relay_upstream_errors_total') ?? 0;
    await smtplibSend(
      relay.smtpPort,
      'copier@office.test',
      ['later@example.com'],
      'Subject: later\r\n\r\nx\r\n',
    );
    await counted('edge_relay_recipients_total{status="deferred",reason="451"}');
    await counted('edge_relay_upstream_errors_total', errorsBefore + 1);
    // The last word from the upstream was a temporary failure (retries go on every second)
    await eventually(
      'edge_relay_upstream_up 0',
      async () => sample(await metrics(), 'edge_relay_upstream_up') === 0,
      { timeoutMs: 15_000 },
    );
    const text = await metrics();
    assert.equal(sample(text, 'edge_relay_messages_accepted_total'), 2);
    assert.equal(sample(text, 'edge_relay_queue_messages{state="deferred"}'), 1);
    assert.ok(
      (sample(text, 'edge_relay_delivery_duration_seconds_count') ?? 0) >= 3,
      'every attempt is timed',
    );
  });

  test('GET /api/status has what the dashboard shows: upstream, queue, today, recent, disk, version, uptime', async () => {
    const response = await fetch(`http://127.0.0.1:${relay.webPort}/api/status`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const status = (await response.json()) as Status;
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    assert.equal(status.version, version);
    assert.ok(
      status.uptimeSeconds >= 1 && status.uptimeSeconds < 300,
      `uptime ${status.uptimeSeconds} s`,
    );
    const disk = statfsSync(relay.dataDir);
    assert.equal(status.disk.path, relay.dataDir);
    assert.equal(status.disk.totalBytes, disk.blocks * disk.bsize);
    assert.ok(
      Math.abs(status.disk.freeBytes - disk.bavail * disk.bsize) < 256 * 1024 * 1024,
      'free space as the system sees it',
    );
    assert.deepEqual(status.queue, { queued: 0, deferred: 1, held: 0 });
    const { day, deferred, ...today } = status.today;
    assert.match(day, /^\d{4}-\d\d-\d\d$/);
    assert.ok(deferred >= 1);
    assert.deepEqual(today, { accepted: 2, rejected: 1, delivered: 0, local: 1, bounced: 1 });
    assert.ok(
      status.recent.some(
        (r) => r.to === 'gone@example.com' && r.status === 'bounced' && /550/.test(r.text),
      ),
    );
    assert.ok(
      status.recent.some(
        (r) => r.to === 'later@example.com' && r.status === 'deferred' && /451/.test(r.text),
      ),
    );
    assert.equal(status.upstream.mode, 'smarthost');
    assert.equal(status.upstream.target, `127.0.0.1:${upstream.port} (starttls)`);
    assert.equal(status.upstream.reachability, 'failing');
    assert.match(status.upstream.lastError?.text ?? '', /451/);
    assert.ok(status.upstream.failingSince, 'failing since the first 451');
    // The probe a second after start reached the upstream (it sends no message, so the 451 never hit it)
    assert.match(status.upstream.lastSuccess?.text ?? '', /answered EHLO over TLS/);
    assert.ok(
      Date.parse(status.upstream.lastSuccess?.at ?? '') <
        Date.parse(status.upstream.lastError?.at ?? ''),
    );
  });

  test('POP3 logins are counted by result: ok, failed, in_use', async () => {
    const before = await metrics();
    for (const result of ['ok', 'failed', 'in_use'])
      assert.equal(
        sample(before, `edge_relay_pop3_logins_total{result="${result}"}`),
        0,
        `${result} starts at 0`,
      );
    const port = relay.pop3Port!;
    assert.equal(await poplibLogin(port, 'scans', MAILBOX_PASSWORD), 'ok');
    assert.match(await poplibLogin(port, 'scans', 'not-the-password'), /^-ERR \[AUTH\]/);
    const holder = await RawPop3.connect(relay.pop3Port ?? 0);
    try {
      await holder.line();
      await holder.command('USER scans');
      assert.match(await holder.command(`PASS ${MAILBOX_PASSWORD}`), /^\+OK/);
      assert.match(await poplibLogin(port, 'scans', MAILBOX_PASSWORD), /^-ERR \[IN-USE\]/);
    } finally {
      holder.close();
    }
    const after = await metrics();
    assert.equal(sample(after, 'edge_relay_pop3_logins_total{result="ok"}'), 2);
    assert.equal(sample(after, 'edge_relay_pop3_logins_total{result="failed"}'), 1);
    assert.equal(sample(after, 'edge_relay_pop3_logins_total{result="in_use"}'), 1);
  });
});
