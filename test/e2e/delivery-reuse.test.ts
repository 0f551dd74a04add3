/**
 * Delivery throughput limits and connection reuse, end to end: a burst of
 * messages to one upstream goes over a few SMTP connections (RSET between
 * messages, one TLS handshake and one AUTH per connection); an upstream that
 * drops a reused connection loses and duplicates nothing; a slow MX domain
 * gets at most `concurrencyPerDestination` connections while another domain's
 * mail keeps flowing.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { RawSmtp } from '../support/clients.js';
import { freePortOn, startDnsServer, type DnsServer } from '../support/dns-server.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import {
  startUpstream,
  viaSmarthost,
  type ReceivedMessage,
  type Upstream,
} from '../support/upstream.js';
import { eventually } from '../support/wait.js';

const AUTH = { user: 'scanner@office.test', pass: 'upstream secret' };

/** Sends one message per recipient over one SMTP session, as a busy copier does; subjects are "<tag> <n>" */
async function sendBurst(port: number, recipients: string[], tag: string): Promise<void> {
  const client = await RawSmtp.connect(port);
  try {
    // The greeting names the protocol once: "220 host ESMTP edge-relay ready"
    assert.match(await client.reply(), /^220 \S+ ESMTP edge-relay ready$/);
    assert.match(await client.command('EHLO copier.office.test\r\n'), /^250/);
    for (const [n, to] of recipients.entries()) {
      assert.match(await client.command('MAIL FROM:<copier@office.test>\r\n'), /^250/);
      assert.match(await client.command(`RCPT TO:<${to}>\r\n`), /^250/);
      assert.match(await client.command('DATA\r\n'), /^354/);
      assert.match(
        await client.command(
          `From: copier@office.test\r\nSubject: ${tag} ${n}\r\n\r\nScan ${n}\r\n.\r\n`,
        ),
        /^250/,
      );
    }
    await client.command('QUIT\r\n');
  } finally {
    client.close();
  }
}

const subjects = (messages: ReceivedMessage[]): string[] =>
  messages.map((m) => /^Subject: (.*)$/m.exec(m.raw.toString())?.[1]?.trim() ?? '?').sort();
const expected = (tag: string, count: number): string[] =>
  Array.from({ length: count }, (_, n) => `${tag} ${n}`).sort();

describe('delivery: connection reuse and per-destination limits', () => {
  const stops: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  async function smarthostRelay(
    upstream: Upstream,
    smarthost: Record<string, unknown> = {},
  ): Promise<RunningRelay> {
    const relay = await launchRelay({
      config: viaSmarthost(upstream, { retry: { delays: ['1s'], maxAge: '1h' } }, smarthost),
    });
    stops.push(() => relay.stop());
    return relay;
  }

  test('20 messages to the smarthost: fewer connections than messages, one AUTH per connection, RSET between messages', async () => {
    const upstream = await startUpstream({ requireTls: true, auth: AUTH, recordCommands: true });
    stops.push(() => upstream.close());
    const relay = await smarthostRelay(upstream, { user: AUTH.user, password: AUTH.pass });
    await sendBurst(
      relay.smtpPort,
      Array.from({ length: 20 }, (_, n) => `user${n}@example.test`),
      'burst',
    );
    const received = await upstream.waitFor(20);
    assert.deepEqual(subjects(received), expected('burst', 20), 'each message exactly once');
    assert.ok(
      received.every((m) => m.secure && m.user === AUTH.user),
      'over STARTTLS, authenticated',
    );
    const count = (verb: string) => upstream.commands.filter((c) => c === verb).length;
    // Each connection that carried mail logged in once. The others are the relay's upstream probe (a second
    // after start, and every 5 minutes): EHLO, STARTTLS, QUIT, no login
    const logins = count('AUTH');
    const probes = upstream.connections - logins;
    assert.ok(logins < 20, `${logins} connections for 20 messages`);
    const handshakes = count('STARTTLS');
    assert.ok(
      handshakes >= logins && handshakes <= upstream.connections,
      `one TLS handshake per connection: ${handshakes} for ${upstream.connections}`,
    );
    assert.ok(
      upstream.peakConnections <= 4 + probes,
      `at most concurrencyPerDestination (4) at once besides the probe, saw ${upstream.peakConnections}`,
    );
    // Every message after the first on a connection is preceded by RSET
    assert.equal(count('RSET'), 20 - logins);
    assert.equal(count('MAIL'), 20);
  });

  test('the upstream closes reused connections: every message delivered once, none twice, no retry needed', async () => {
    const upstream = await startUpstream({ closeAfterData: (attempt) => attempt % 3 === 0 });
    stops.push(() => upstream.close());
    const relay = await smarthostRelay(upstream);
    await sendBurst(
      relay.smtpPort,
      Array.from({ length: 12 }, (_, n) => `user${n}@example.test`),
      'dropped',
    );
    const received = await upstream.waitFor(12);
    assert.deepEqual(subjects(received), expected('dropped', 12));
    assert.equal(upstream.dataAttempts, 12, 'no message went twice');
    assert.ok(
      upstream.connections >= 4 && upstream.connections < 12,
      `a new connection after each close, reuse otherwise: saw ${upstream.connections}`,
    );
    assert.ok(
      !relay.logs.some((l) => l.msg === 'Recipient deferred'),
      'a dropped idle connection is not a failed delivery',
    );
    await eventually(
      'queue empty',
      async () => (await relay.cli(['queue', 'list', '--json'])).stdout.trim() === '[]',
      { timeoutMs: 5_000 },
    );
  });

  describe('per-destination concurrency (MX)', () => {
    const HOSTS = { slow: '127.0.0.40', fast: '127.0.0.41' } as const;
    let dns: DnsServer;

    test('a slow domain gets at most 2 connections; another domain is delivered while it is still busy', async () => {
      const port = await freePortOn(Object.values(HOSTS));
      const slow = await startUpstream({ host: HOSTS.slow, port, dataDelayMs: 700 });
      const fast = await startUpstream({ host: HOSTS.fast, port });
      dns = await startDnsServer({
        'slow.test': [{ type: 'MX', preference: 10, exchange: 'mx.slow.test' }],
        'mx.slow.test': [{ type: 'A', address: HOSTS.slow }],
        'fast.test': [{ type: 'MX', preference: 10, exchange: 'mx.fast.test' }],
        'mx.fast.test': [{ type: 'A', address: HOSTS.fast }],
      });
      stops.push(
        () => slow.close(),
        () => fast.close(),
        () => dns.close(),
      );
      const relay = await launchRelay({
        config: {
          delivery: {
            mode: 'mx',
            mx: { port, tls: 'none' },
            dns: { servers: [dns.address], timeout: '2s' },
            concurrency: 4,
            concurrencyPerDestination: 2,
          },
        },
      });
      stops.push(() => relay.stop());
      await sendBurst(
        relay.smtpPort,
        Array.from({ length: 10 }, (_, n) => `ops${n}@slow.test`),
        'slow',
      );
      const sentAt = Date.now();
      await sendBurst(relay.smtpPort, ['a@fast.test', 'b@fast.test', 'c@fast.test'], 'fast');
      await fast.waitFor(3, 10_000);
      const slowDone = slow.messages.length;
      // 10 messages, 2 at a time, 0.7 s each: about 3.5 s. Without the limit the 3 fast ones queue behind all 10
      assert.ok(slowDone <= 6, `fast.test delivered while slow.test had only ${slowDone} of 10`);
      assert.ok(Date.now() - sentAt < 3_000, 'fast.test did not wait for slow.test');
      assert.deepEqual(subjects(await slow.waitFor(10, 15_000)), expected('slow', 10));
      assert.ok(
        slow.peakConnections <= 2,
        `slow.test saw ${slow.peakConnections} connections at once`,
      );
      assert.ok(slow.connections < 10, `connections reused for slow.test: ${slow.connections}`);
    });
  });
});
